/* calls.c: the public calls of libprofile-client (profile/client.h), in
 * their asynchronous form: each checks its arguments, builds its Request in
 * an `op` that owns it, starts it through client_call, and turns the answer
 * into the caller's result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

/* One public call in flight: the request it owns and where its result goes. */
typedef struct op {
	Profile__V1__Request req;
	union {
		Profile__V1__CreateRequest create;
		Profile__V1__GetRequest get;
		Profile__V1__UpdateRequest update;
		Profile__V1__DeleteRequest del;
		Profile__V1__SearchRequest search;
	} body;
	Profile__V1__Precondition pre;
	char uid[WIRE_UID_LEN + 1];
	char *username, *email, *idem;
	Profile__V1__Position *positions; /* a read's min_positions */
	Profile__V1__Position **position_ptrs;
	int want_position; /* a delete that answers where it landed */
	profile_done_fn done;
	void *arg;
} op;

/* The most positions one read may name. */
#define POSITIONS_MAX 1024

static void
op_free(op *o)
{
	free(o->positions);
	free(o->position_ptrs);
	free(o->username);
	free(o->email);
	free(o->idem);
	free(o);
}

/* What a Response says about how stale the copy read was, into p. */
static void
note_staleness(profile_info *p, const Profile__V1__Response *resp)
{
	if (resp->staleness == NULL)
		return;
	p->stale = 1;
	p->age_s = resp->staleness->age_s;
	p->lag = resp->staleness->lag;
}

/* Turns a Response into the public result of the op's method. */
static int
result_of(const op *o, const Profile__V1__Response *resp, void **result)
{
	profile_list *l;

	*result = NULL;
	switch (o->req.body_case) {
	case PROFILE__V1__REQUEST__BODY_DELETE:
		if (o->want_position) {
			profile_info *gone = calloc(1, sizeof *gone);
			if (gone == NULL)
				return PROFILE_RESOURCE_EXHAUSTED;
			snprintf(gone->uid, sizeof gone->uid, "%s", o->uid);
			if (resp->position)
				snprintf(gone->position, sizeof gone->position, "%d:%lld", (int)resp->position->partition,
				         (long long)resp->position->offset);
			*result = gone;
		}
		return PROFILE_OK;
	case PROFILE__V1__REQUEST__BODY_SEARCH:
		if (resp->body_case != PROFILE__V1__RESPONSE__BODY_SEARCH)
			return PROFILE_INTERNAL;
		if ((l = calloc(1, sizeof *l)) == NULL ||
		    (resp->search->n_profiles &&
		     (l->items = calloc(resp->search->n_profiles, sizeof *l->items)) == NULL)) {
			free(l);
			return PROFILE_RESOURCE_EXHAUSTED;
		}
		for (size_t i = 0; i < resp->search->n_profiles; i++) {
			if ((l->items[i] = client_profile_from(resp->search->profiles[i])) == NULL) {
				profile_list_free(l);
				return PROFILE_RESOURCE_EXHAUSTED;
			}
			note_staleness(l->items[i], resp);
			l->count = i + 1;
		}
		*result = l;
		return PROFILE_OK;
	default:
		if (resp->body_case != PROFILE__V1__RESPONSE__BODY_PROFILE)
			return PROFILE_INTERNAL;
		if ((*result = client_profile_from(resp->profile)) == NULL)
			return PROFILE_RESOURCE_EXHAUSTED;
		note_staleness(*result, resp);
		if (resp->position)
			snprintf(((profile_info *)*result)->position, PROFILE_POSITION_SIZE, "%d:%lld",
			         (int)resp->position->partition, (long long)resp->position->offset);
		return PROFILE_OK;
	}
}

static void
op_answer(void *arg, int status, Profile__V1__Response *resp)
{
	op *o = arg;
	void *result = NULL;

	if (status == PROFILE_OK) {
		status = (int)resp->status;
		client_set_message(resp->message);
		if (status == PROFILE_OK && (status = result_of(o, resp, &result)) != PROFILE_OK)
			client_set_message("the service's answer could not be read");
		profile__v1__response__free_unpacked(resp, NULL);
	} else {
		client_set_message(status == PROFILE_UNAVAILABLE         ? "no core node took the request"
		            : status == PROFILE_DEADLINE_EXCEEDED ? "no answer from the service in time"
		            : status == PROFILE_INTERNAL          ? "malformed answer from the service"
		                                                  : "");
	}
	o->done(o->arg, status, result);
	op_free(o);
}

static op *
op_new(profile_done_fn done, void *arg)
{
	op *o = calloc(1, sizeof *o);

	if (o == NULL)
		return NULL;
	profile__v1__request__init(&o->req);
	o->done = done;
	o->arg = arg;
	return o;
}

static int
op_start(profile_client *c, op *o, uint32_t deadline_ms, int mode)
{
	int rc = client_call(c, &o->req, deadline_ms, mode, op_answer, o);

	if (rc != PROFILE_OK)
		op_free(o);
	return rc;
}

static int
check(int rc, const char *why)
{
	if (rc != PROFILE_OK)
		client_set_message(why);
	return rc;
}

/* Applies one of wire.h's rules to s; on failure the rule's sentence
 * becomes the thread's last message. */
static int
rule(int (*check_fn)(const char *, const char **), const char *s)
{
	const char *why = NULL;
	int rc = check_fn(s, &why);

	return check(rc, why);
}

static int
check_uid(const char *uid, char *out)
{
	if (rule(wire_check_uid, uid) != PROFILE_OK)
		return PROFILE_INVALID_ARGUMENT;
	for (int i = 0; i <= WIRE_UID_LEN; i++)
		out[i] = (uid[i] >= 'A' && uid[i] <= 'F') ? (char)(uid[i] - 'A' + 'a') : uid[i];
	return PROFILE_OK;
}

static void
set_precondition(op *o, uint64_t expected_version, Profile__V1__Precondition **slot)
{
	if (expected_version == PROFILE_ANY_VERSION)
		return;
	profile__v1__precondition__init(&o->pre);
	o->pre.check_case = PROFILE__V1__PRECONDITION__CHECK_VERSION;
	o->pre.version = expected_version;
	*slot = &o->pre;
}

/* The common start of the calls on one uid: checks the handle, the
 * callback and the uid, and makes the op with the uid in canonical form.
 * NULL with *rc set when a check failed (nothing was sent). */
static op *
op_for_uid(profile_client *c, const char *uid, profile_done_fn done, void *arg, int *rc)
{
	char id[WIRE_UID_LEN + 1];
	op *o;

	client_set_message("");
	if (c == NULL || done == NULL) {
		*rc = check(PROFILE_INVALID_ARGUMENT, "no handle or no callback");
		return NULL;
	}
	if ((*rc = check_uid(uid, id)) != PROFILE_OK)
		return NULL;
	if ((o = op_new(done, arg)) == NULL) {
		*rc = PROFILE_RESOURCE_EXHAUSTED;
		return NULL;
	}
	memcpy(o->uid, id, sizeof o->uid);
	return o;
}

int
profile_create_idempotent_async(profile_client *c, const char *username, const char *email,
                                const char *idempotency_key, uint32_t deadline_ms, profile_done_fn done,
                                void *arg)
{
	op *o;

	client_set_message("");
	if (c == NULL || done == NULL)
		return check(PROFILE_INVALID_ARGUMENT, "no handle or no callback");
	if (rule(wire_check_username, username) || rule(wire_check_email, email) ||
	    (idempotency_key && rule(wire_check_idem_key, idempotency_key)))
		return PROFILE_INVALID_ARGUMENT;
	if ((o = op_new(done, arg)) == NULL || (o->username = strdup(username)) == NULL ||
	    (o->email = strdup(email)) == NULL ||
	    (idempotency_key && (o->idem = strdup(idempotency_key)) == NULL)) {
		if (o)
			op_free(o);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	profile__v1__create_request__init(&o->body.create);
	o->body.create.username = o->username;
	o->body.create.email = o->email;
	if (o->idem)
		o->body.create.idempotency_key = o->idem;
	o->req.body_case = PROFILE__V1__REQUEST__BODY_CREATE;
	o->req.create = &o->body.create;
	return op_start(c, o, deadline_ms, o->idem ? CLIENT_IDEMPOTENT : CLIENT_WRITE);
}

int
profile_create_async(profile_client *c, const char *username, const char *email, uint32_t deadline_ms,
                     profile_done_fn done, void *arg)
{
	return profile_create_idempotent_async(c, username, email, NULL, deadline_ms, done, arg);
}

/* A read's options (NULL: none) into o's request. */
static int
set_read_options(op *o, const profile_read_options *ro)
{
	const char *why = NULL;
	const char *min_positions = ro ? ro->min_positions : NULL;
	size_t n = 0;
	int rc;

	if (ro && ro->allow_stale) {
		o->req.stale_set_case = PROFILE__V1__REQUEST__STALE_SET_MAX_STALE_S;
		o->req.max_stale_s = ro->max_stale_s;
	}
	if (min_positions == NULL || min_positions[0] == '\0')
		return PROFILE_OK;
	rc = wire_positions_new(min_positions, POSITIONS_MAX, &o->positions, &o->position_ptrs, &n, &why);
	if (rc != PROFILE_OK)
		return rc == PROFILE_INVALID_ARGUMENT ? check(rc, why) : rc;
	o->req.n_min_positions = n;
	o->req.min_positions = o->position_ptrs;
	return PROFILE_OK;
}

int
profile_get_async(profile_client *c, const char *uid, uint32_t deadline_ms, profile_done_fn done, void *arg)
{
	return profile_get_with_async(c, uid, NULL, deadline_ms, done, arg);
}

int
profile_get_with_async(profile_client *c, const char *uid, const profile_read_options *ro, uint32_t deadline_ms,
                       profile_done_fn done, void *arg)
{
	int rc;
	op *o = op_for_uid(c, uid, done, arg, &rc);

	if (o == NULL)
		return rc;
	if ((rc = set_read_options(o, ro)) != PROFILE_OK) {
		op_free(o);
		return rc;
	}
	profile__v1__get_request__init(&o->body.get);
	o->body.get.uid = o->uid;
	o->req.body_case = PROFILE__V1__REQUEST__BODY_GET;
	o->req.get = &o->body.get;
	return op_start(c, o, deadline_ms, CLIENT_READ);
}

int
profile_update_async(profile_client *c, const char *uid, const char *username, const char *email,
                     uint64_t expected_version, uint32_t deadline_ms, profile_done_fn done, void *arg)
{
	Profile__V1__UpdateRequest *u;
	int rc;
	op *o;

	/* The fields first: nothing is allocated for a call that fails them. */
	client_set_message("");
	if (username == NULL && email == NULL)
		return check(PROFILE_INVALID_ARGUMENT, "an update must set username or email");
	if ((username && rule(wire_check_username, username)) || (email && rule(wire_check_email, email)))
		return PROFILE_INVALID_ARGUMENT;
	if ((o = op_for_uid(c, uid, done, arg, &rc)) == NULL)
		return rc;
	if ((username && (o->username = strdup(username)) == NULL) ||
	    (email && (o->email = strdup(email)) == NULL)) {
		op_free(o);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	u = &o->body.update;
	profile__v1__update_request__init(u);
	u->uid = o->uid;
	if (o->username) {
		u->username_set_case = PROFILE__V1__UPDATE_REQUEST__USERNAME_SET_USERNAME;
		u->username = o->username;
	}
	if (o->email) {
		u->email_set_case = PROFILE__V1__UPDATE_REQUEST__EMAIL_SET_EMAIL;
		u->email = o->email;
	}
	set_precondition(o, expected_version, &u->precondition);
	o->req.body_case = PROFILE__V1__REQUEST__BODY_UPDATE;
	o->req.update = u;
	return op_start(c, o, deadline_ms, CLIENT_WRITE);
}

static int
delete_start(profile_client *c, const char *uid, uint64_t expected_version, uint32_t deadline_ms,
             int want_position, profile_done_fn done, void *arg)
{
	int rc;
	op *o = op_for_uid(c, uid, done, arg, &rc);

	if (o == NULL)
		return rc;
	o->want_position = want_position;
	profile__v1__delete_request__init(&o->body.del);
	o->body.del.uid = o->uid;
	set_precondition(o, expected_version, &o->body.del.precondition);
	o->req.body_case = PROFILE__V1__REQUEST__BODY_DELETE;
	o->req.delete_ = &o->body.del;
	return op_start(c, o, deadline_ms, CLIENT_WRITE);
}

int
profile_delete_async(profile_client *c, const char *uid, uint64_t expected_version, uint32_t deadline_ms,
                     profile_done_fn done, void *arg)
{
	return delete_start(c, uid, expected_version, deadline_ms, 0, done, arg);
}

int
profile_delete_at_async(profile_client *c, const char *uid, uint64_t expected_version, uint32_t deadline_ms,
                        profile_done_fn done, void *arg)
{
	return delete_start(c, uid, expected_version, deadline_ms, 1, done, arg);
}

int
profile_search_async(profile_client *c, const char *email, uint32_t deadline_ms, profile_done_fn done,
                     void *arg)
{
	return profile_search_with_async(c, email, NULL, deadline_ms, done, arg);
}

int
profile_search_with_async(profile_client *c, const char *email, const profile_read_options *ro,
                          uint32_t deadline_ms, profile_done_fn done, void *arg)
{
	op *o;
	int rc;

	client_set_message("");
	if (c == NULL || done == NULL)
		return check(PROFILE_INVALID_ARGUMENT, "no handle or no callback");
	if (rule(wire_check_email, email))
		return PROFILE_INVALID_ARGUMENT;
	if ((o = op_new(done, arg)) == NULL || (o->email = strdup(email)) == NULL) {
		if (o)
			op_free(o);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	if ((rc = set_read_options(o, ro)) != PROFILE_OK) {
		op_free(o);
		return rc;
	}
	profile__v1__search_request__init(&o->body.search);
	o->body.search.email = o->email;
	o->req.body_case = PROFILE__V1__REQUEST__BODY_SEARCH;
	o->req.search = &o->body.search;
	return op_start(c, o, deadline_ms, CLIENT_READ);
}
