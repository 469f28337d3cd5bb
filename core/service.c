/* service.c: the profile operations (service.h).
 *
 * A call that can be answered at once (a read of an active partition, a bad
 * argument) never allocates anything beyond the reply. A call that must wait
 * becomes an `op` on the live list, driven by callbacks:
 *
 *   write:  QUEUED (another write to the uid is running)
 *        -> WAIT_ACTIVE (partition restoring) -> PRODUCING (in Kafka)
 *        -> WAIT_APPLIED (our store has not applied the offset yet) -> end
 *   read:   WAIT_ACTIVE -> run again
 *
 * One mutex guards the live list, the per-key queues and each op's state
 * and replied flag. Callbacks into the partition table and the changelog are
 * made without it held.
 */
#include "service.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"

#define KEY_BUCKETS 4096
#define SWEEP_INTERVAL_MS 20

enum op_state { OP_QUEUED, OP_WAIT_ACTIVE, OP_PRODUCING, OP_WAIT_APPLIED };

typedef struct op op;

typedef struct keyslot {
	struct keyslot *next;
	char uid[WIRE_UID_LEN + 1];
	op *head; /* the running write; the rest wait behind it */
	op *tail;
} keyslot;

struct op {
	service *svc;
	Profile__V1__Request *req;
	service_done_fn done;
	void *arg;
	int64_t deadline; /* monotonic ms */
	int state;
	int replied;
	int is_write;
	int32_t p;               /* the partition waited on */
	partition_waiter w;
	op *qnext;               /* next write to the same uid */
	op *prev, *next;         /* live list */
	keyslot *key;
	/* Writes: the new state (unused by a delete). */
	int deleting;
	char uid[WIRE_UID_LEN + 1];
	Profile__V1__Profile state_after;
	char *username, *email;
};

struct service {
	service_config cfg;
	partitions *t;
	changelog *cl;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	op live;                 /* list head (sentinel) */
	keyslot *keys[KEY_BUCKETS];
	pthread_t sweeper;
	int stopping;
	uint64_t requests, writes, in_flight;
};

/* ---- replies ----------------------------------------------------------- */

static void
answer(service_done_fn done, void *arg, uint64_t id, int status, const char *msg)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;

	r.request_id = id;
	r.status = (Profile__V1__Status)status;
	r.message = (char *)(msg ? msg : "");
	done(arg, &r);
}

/* Sends the op's answer unless one was sent. body: set on r by the caller. */
static void
op_reply(op *o, Profile__V1__Response *r)
{
	service *svc = o->svc;
	int first;

	pthread_mutex_lock(&svc->mu);
	first = !o->replied;
	o->replied = 1;
	pthread_mutex_unlock(&svc->mu);
	if (first) {
		r->request_id = o->req->request_id;
		o->done(o->arg, r);
	}
}

static void
op_fail(op *o, int status, const char *msg)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;

	r.status = (Profile__V1__Status)status;
	r.message = (char *)msg;
	op_reply(o, &r);
}

/* ---- ops and the live list --------------------------------------------- */

static op *
op_new(service *svc, Profile__V1__Request *req, service_done_fn done, void *arg, int64_t deadline)
{
	op *o = calloc(1, sizeof *o);

	if (o == NULL)
		return NULL;
	o->svc = svc;
	o->req = req;
	o->done = done;
	o->arg = arg;
	o->deadline = deadline;
	profile__v1__profile__init(&o->state_after);
	pthread_mutex_lock(&svc->mu);
	o->next = svc->live.next;
	o->prev = &svc->live;
	svc->live.next->prev = o;
	svc->live.next = o;
	svc->in_flight++;
	pthread_mutex_unlock(&svc->mu);
	return o;
}

/* Under svc->mu. */
static void
op_unlink(op *o)
{
	o->prev->next = o->next;
	o->next->prev = o->prev;
	o->svc->in_flight--;
}

static void
op_free(op *o)
{
	profile__v1__request__free_unpacked(o->req, NULL);
	free(o->username);
	free(o->email);
	free(o);
}

/* ---- per-key serialization --------------------------------------------- */

static keyslot **
key_find(service *svc, const char *uid)
{
	keyslot **kp = &svc->keys[(uint32_t)wire_murmur2(uid, WIRE_UID_LEN) % KEY_BUCKETS];

	while (*kp && memcmp((*kp)->uid, uid, WIRE_UID_LEN) != 0)
		kp = &(*kp)->next;
	return kp;
}

/* Queues the write behind the running one for its uid. 1 when it may run
 * now, 0 when queued, -1 on allocation failure. */
static int
key_enter(op *o)
{
	service *svc = o->svc;
	keyslot **kp, *k;
	int run = 1;

	pthread_mutex_lock(&svc->mu);
	kp = key_find(svc, o->uid);
	if ((k = *kp) == NULL) {
		if ((k = calloc(1, sizeof *k)) == NULL) {
			pthread_mutex_unlock(&svc->mu);
			return -1;
		}
		memcpy(k->uid, o->uid, sizeof k->uid);
		*kp = k;
		k->head = k->tail = o;
	} else {
		k->tail->qnext = o;
		k->tail = o;
		o->state = OP_QUEUED;
		run = 0;
	}
	o->key = k;
	pthread_mutex_unlock(&svc->mu);
	return run;
}

/* Under svc->mu: removes o from its key's queue; returns the write that may
 * run next when o was running, else NULL. */
static op *
key_leave(op *o)
{
	keyslot *k = o->key, **kp;
	op *next = NULL;

	if (k == NULL)
		return NULL;
	if (k->head == o) {
		k->head = next = o->qnext;
		if (next == NULL)
			k->tail = NULL;
	} else {
		op *q = k->head;
		while (q && q->qnext != o)
			q = q->qnext;
		if (q) {
			q->qnext = o->qnext;
			if (k->tail == o)
				k->tail = q;
		}
	}
	if (k->head == NULL) {
		kp = key_find(o->svc, k->uid);
		*kp = k->next;
		free(k);
	}
	o->key = NULL;
	return next;
}

/* ---- the write path ---------------------------------------------------- */

static op *write_start(op *o);

/* Ends a write: answers it (if not yet), releases its key, frees it, and
 * returns the next write for the same uid, to be started by the caller. */
static op *
write_end(op *o, int status, const char *msg)
{
	service *svc = o->svc;
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	Profile__V1__DeleteReply del = PROFILE__V1__DELETE_REPLY__INIT;
	op *next;

	r.status = (Profile__V1__Status)status;
	r.message = (char *)(msg ? msg : "");
	if (status == PROFILE_OK && o->deleting) {
		r.body_case = PROFILE__V1__RESPONSE__BODY_DELETED;
		r.deleted = &del;
	} else if (status == PROFILE_OK) {
		r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
		r.profile = &o->state_after;
	}
	op_reply(o, &r);
	pthread_mutex_lock(&svc->mu);
	next = key_leave(o);
	op_unlink(o);
	pthread_mutex_unlock(&svc->mu);
	op_free(o);
	return next;
}

/* Runs writes until one has to wait. */
static void
write_drive(op *o)
{
	while (o != NULL)
		o = write_start(o);
}

static int
precondition_fails(const Profile__V1__Precondition *pc, const Profile__V1__Profile *cur)
{
	return pc && pc->check_case == PROFILE__V1__PRECONDITION__CHECK_VERSION &&
	       pc->version != cur->version;
}

static char *
dup_or_keep(const char *given, const char *cur)
{
	return strdup(given ? given : cur);
}

/* Validates the write against the caught-up store and produces the new
 * state. Returns the next write to start when this one ended at once. */
static op *
write_execute(op *o)
{
	service *svc = o->svc;
	Profile__V1__Request *req = o->req;
	Profile__V1__Profile *cur = NULL;
	const Profile__V1__Precondition *pc = NULL;
	Profile__V1__ProfileEvent ev = PROFILE__V1__PROFILE_EVENT__INIT;
	uint8_t *buf = NULL;
	size_t len = 0;
	store *st;
	int rc;

	if (wire_mono_ms() >= o->deadline)
		return write_end(o, PROFILE_DEADLINE_EXCEEDED, "deadline passed before the write started");
	rc = partitions_read_begin(svc->t, o->p, &st);
	if (rc != PROFILE_OK)
		return write_end(o, PROFILE_UNAVAILABLE, "partition is not served by this node");
	rc = store_get(st, o->uid, &cur);
	partitions_read_end(svc->t, o->p);
	if (rc != PROFILE_OK && rc != PROFILE_NOT_FOUND)
		return write_end(o, PROFILE_UNAVAILABLE, "store read failed");

	switch (req->body_case) {
	case PROFILE__V1__REQUEST__BODY_CREATE:
		if (cur != NULL) {
			profile__v1__profile__free_unpacked(cur, NULL);
			return write_end(o, PROFILE_ALREADY_EXISTS, "uid already exists");
		}
		o->username = strdup(req->create->username);
		o->email = strdup(req->create->email);
		o->state_after.version = 1;
		o->state_after.created_at = wire_now_ms();
		o->state_after.updated_at = o->state_after.created_at;
		ev.type = PROFILE__V1__EVENT_TYPE__CREATED;
		break;
	case PROFILE__V1__REQUEST__BODY_UPDATE:
	case PROFILE__V1__REQUEST__BODY_DELETE: {
		int upd = req->body_case == PROFILE__V1__REQUEST__BODY_UPDATE;

		pc = upd ? req->update->precondition : req->delete_->precondition;
		if (cur == NULL)
			return write_end(o, PROFILE_NOT_FOUND, "no profile with this uid");
		if (precondition_fails(pc, cur)) {
			char msg[96];
			snprintf(msg, sizeof msg, "version is %llu, not %llu",
			         (unsigned long long)cur->version, (unsigned long long)pc->version);
			profile__v1__profile__free_unpacked(cur, NULL);
			return write_end(o, PROFILE_FAILED_PRECONDITION, msg);
		}
		if (upd) {
			Profile__V1__UpdateRequest *u = req->update;
			o->username = dup_or_keep(u->username_set_case ? u->username : NULL, cur->username);
			o->email = dup_or_keep(u->email_set_case ? u->email : NULL, cur->email);
			ev.type = PROFILE__V1__EVENT_TYPE__UPDATED;
		} else {
			o->deleting = 1;
			o->username = strdup(cur->username);
			o->email = strdup(cur->email);
		}
		o->state_after.version = cur->version + 1;
		o->state_after.created_at = cur->created_at;
		o->state_after.updated_at = wire_now_ms();
		/* Keep updated_at increasing even if the clock steps back. */
		if (o->state_after.updated_at <= cur->updated_at)
			o->state_after.updated_at = cur->updated_at + 1;
		break;
	}
	default:
		return write_end(o, PROFILE_INTERNAL, "not a write");
	}
	if (cur)
		profile__v1__profile__free_unpacked(cur, NULL);
	if (o->username == NULL || o->email == NULL)
		return write_end(o, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
	o->state_after.uid = o->uid;
	o->state_after.username = o->username;
	o->state_after.email = o->email;

	if (!o->deleting) {
		ev.profile = &o->state_after;
		len = profile__v1__profile_event__get_packed_size(&ev);
		if ((buf = malloc(len)) == NULL)
			return write_end(o, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		profile__v1__profile_event__pack(&ev, buf);
	}
	pthread_mutex_lock(&svc->mu);
	o->state = OP_PRODUCING;
	svc->writes++;
	pthread_mutex_unlock(&svc->mu);
	rc = changelog_produce(svc->cl, o->p, o->uid, WIRE_UID_LEN, buf, len, o);
	free(buf);
	if (rc != PROFILE_OK)
		return write_end(o, rc, "Kafka did not take the write");
	return NULL;
}

static void
on_active(partition_waiter *w, int status)
{
	op *o = (op *)((char *)w - offsetof(op, w));

	if (status != PROFILE_OK)
		write_drive(write_end(o, PROFILE_UNAVAILABLE, "partition was revoked"));
	else
		write_drive(write_execute(o));
}

static op *
write_start(op *o)
{
	service *svc = o->svc;

	pthread_mutex_lock(&svc->mu);
	o->state = OP_WAIT_ACTIVE;
	pthread_mutex_unlock(&svc->mu);
	switch (partitions_wait(svc->t, o->p, -1, &o->w, on_active)) {
	case PROFILE_OK:
		return write_execute(o);
	case PROFILE_ABORTED:
		return NULL; /* restoring: on_active continues */
	default:
		return write_end(o, PROFILE_UNAVAILABLE, "partition is not served by this node");
	}
}

static void
on_applied(partition_waiter *w, int status)
{
	op *o = (op *)((char *)w - offsetof(op, w));

	/* Revoked after Kafka acknowledged the write: it is durable, and the
	 * next owner restores up to it before serving, so it is still OK. */
	(void)status;
	write_drive(write_end(o, PROFILE_OK, NULL));
}

void
service_on_delivered(void *arg, void *opaque, int status, int32_t p, int64_t offset)
{
	service *svc = arg;
	op *o = opaque;

	if (status != PROFILE_OK) {
		write_drive(write_end(o, status, status == PROFILE_UNAVAILABLE
		                                     ? "Kafka did not take the write"
		                                     : "Kafka did not acknowledge the write in time"));
		return;
	}
	pthread_mutex_lock(&svc->mu);
	o->state = OP_WAIT_APPLIED;
	pthread_mutex_unlock(&svc->mu);
	switch (partitions_wait(svc->t, p, offset, &o->w, on_applied)) {
	case PROFILE_ABORTED:
		break;
	default:
		write_drive(write_end(o, PROFILE_OK, NULL));
	}
}

/* ---- reads ------------------------------------------------------------- */

static int
cmp_recent(const void *a, const void *b)
{
	const Profile__V1__Profile *x = *(Profile__V1__Profile *const *)a;
	const Profile__V1__Profile *y = *(Profile__V1__Profile *const *)b;

	if (x->updated_at != y->updated_at)
		return x->updated_at < y->updated_at ? 1 : -1;
	return strcmp(x->uid, y->uid);
}

/* Runs a read. PROFILE_ABORTED: partition *wait_p is restoring (nothing was
 * answered); otherwise the answer was given through done. */
static int
read_run(service *svc, const Profile__V1__Request *req, service_done_fn done, void *arg, int32_t *wait_p)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	store *st;
	int rc;

	r.request_id = req->request_id;
	if (req->body_case == PROFILE__V1__REQUEST__BODY_GET) {
		const char *uid = req->get->uid;
		int32_t p = wire_partition(uid, WIRE_UID_LEN, partitions_count(svc->t));
		Profile__V1__Profile *prof = NULL;

		if ((rc = partitions_read_begin(svc->t, p, &st)) == PROFILE_ABORTED) {
			*wait_p = p;
			return rc;
		}
		if (rc != PROFILE_OK) {
			answer(done, arg, req->request_id, rc, "partition is not served by this node");
			return rc;
		}
		rc = store_get(st, uid, &prof);
		partitions_read_end(svc->t, p);
		r.status = (Profile__V1__Status)rc;
		if (rc == PROFILE_OK) {
			r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
			r.profile = prof;
		} else {
			r.message = rc == PROFILE_NOT_FOUND ? "no profile with this uid" : "store read failed";
		}
		done(arg, &r);
		if (prof)
			profile__v1__profile__free_unpacked(prof, NULL);
		return rc;
	}

	/* Search: every partition, each from its caught-up store. */
	{
		char key[WIRE_EMAIL_MAX + 1];
		Profile__V1__SearchReply sr = PROFILE__V1__SEARCH_REPLY__INIT;
		Profile__V1__Profile **found = NULL;
		size_t n = 0;

		wire_email_key(req->search->email, key);
		rc = PROFILE_OK;
		for (int32_t p = 0; p < partitions_count(svc->t) && rc == PROFILE_OK; p++) {
			if ((rc = partitions_read_begin(svc->t, p, &st)) == PROFILE_OK) {
				rc = store_search(st, key, &found, &n);
				partitions_read_end(svc->t, p);
			} else if (rc == PROFILE_ABORTED) {
				*wait_p = p;
			}
		}
		if (rc == PROFILE_OK) {
			if (n > 1)
				qsort(found, n, sizeof *found, cmp_recent);
			sr.n_profiles = n;
			sr.profiles = found;
			r.body_case = PROFILE__V1__RESPONSE__BODY_SEARCH;
			r.search = &sr;
			done(arg, &r);
		} else if (rc != PROFILE_ABORTED) {
			answer(done, arg, req->request_id, rc == PROFILE_UNAVAILABLE ? rc : PROFILE_INTERNAL,
			       rc == PROFILE_UNAVAILABLE ? "a partition is not served by this node"
			                                 : "store read failed");
		}
		for (size_t i = 0; i < n; i++)
			profile__v1__profile__free_unpacked(found[i], NULL);
		free(found);
		return rc;
	}
}

static void read_wait(op *o, int32_t p);

static void
on_read_active(partition_waiter *w, int status)
{
	op *o = (op *)((char *)w - offsetof(op, w));
	service *svc = o->svc;
	int32_t p = -1;
	int replied;

	pthread_mutex_lock(&svc->mu);
	replied = o->replied;
	pthread_mutex_unlock(&svc->mu);
	if (status != PROFILE_OK)
		op_fail(o, PROFILE_UNAVAILABLE, "partition was revoked");
	else if (!replied && read_run(svc, o->req, o->done, o->arg, &p) == PROFILE_ABORTED)
		return read_wait(o, p);
	pthread_mutex_lock(&svc->mu);
	o->replied = 1;
	op_unlink(o);
	pthread_mutex_unlock(&svc->mu);
	op_free(o);
}

static void
read_wait(op *o, int32_t p)
{
	service *svc = o->svc;

	pthread_mutex_lock(&svc->mu);
	o->state = OP_WAIT_ACTIVE;
	o->p = p;
	pthread_mutex_unlock(&svc->mu);
	switch (partitions_wait(svc->t, p, -1, &o->w, on_read_active)) {
	case PROFILE_ABORTED:
		return;
	case PROFILE_OK:
		return on_read_active(&o->w, PROFILE_OK);
	default:
		return on_read_active(&o->w, PROFILE_UNAVAILABLE);
	}
}

static void
status_run(service *svc, const Profile__V1__Request *req, service_done_fn done, void *arg)
{
	int32_t n = partitions_count(svc->t), owned = 0;
	partition_info *info = calloc((size_t)n, sizeof *info);
	Profile__V1__PartitionState *ps = calloc((size_t)n, sizeof *ps);
	Profile__V1__PartitionState **pps = calloc((size_t)n, sizeof *pps);
	Profile__V1__StatusReply sr = PROFILE__V1__STATUS_REPLY__INIT;
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;

	if (!info || !ps || !pps) {
		answer(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	partitions_info(svc->t, svc->cl, info);
	for (int32_t p = 0; p < n; p++) {
		if (!info[p].owned)
			continue;
		profile__v1__partition_state__init(&ps[owned]);
		ps[owned].partition = p;
		ps[owned].state = info[p].active ? PROFILE__V1__PARTITION_STATE__STATE__ACTIVE
		                                 : PROFILE__V1__PARTITION_STATE__STATE__RESTORING;
		ps[owned].lag = info[p].lag;
		ps[owned].applied_offset = info[p].applied;
		ps[owned].replayed = info[p].replayed;
		pps[owned] = &ps[owned];
		owned++;
	}
	sr.node_id = (char *)svc->cfg.node_id;
	sr.address = (char *)svc->cfg.address;
	sr.partition_count = n;
	sr.n_partitions = (size_t)owned;
	sr.partitions = pps;
	pthread_mutex_lock(&svc->mu);
	sr.requests = svc->requests;
	pthread_mutex_unlock(&svc->mu);
	r.request_id = req->request_id;
	r.body_case = PROFILE__V1__RESPONSE__BODY_STATUS_REPLY;
	r.status_reply = &sr;
	done(arg, &r);
out:
	free(info);
	free(ps);
	free(pps);
}

/* ---- entry ------------------------------------------------------------- */

void
service_new_uid(char *out)
{
	uint8_t b[16];
	size_t got = 0;

	while (got < sizeof b) {
		ssize_t n = getrandom(b + got, sizeof b - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(out, WIRE_UID_LEN + 1,
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
	         b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* Checks the request's arguments; PROFILE_OK or INVALID_ARGUMENT + *why. */
static int
check_request(const Profile__V1__Request *req, const char **why)
{
	int rc = PROFILE_OK;

	switch (req->body_case) {
	case PROFILE__V1__REQUEST__BODY_CREATE:
		if ((rc = wire_check_username(req->create->username, why)) == PROFILE_OK)
			rc = wire_check_email(req->create->email, why);
		return rc;
	case PROFILE__V1__REQUEST__BODY_GET:
		return wire_check_uid(req->get->uid, why);
	case PROFILE__V1__REQUEST__BODY_UPDATE: {
		const Profile__V1__UpdateRequest *u = req->update;
		if ((rc = wire_check_uid(u->uid, why)) != PROFILE_OK)
			return rc;
		if (!u->username_set_case && !u->email_set_case) {
			*why = "an update must set username or email";
			return PROFILE_INVALID_ARGUMENT;
		}
		if (u->username_set_case && (rc = wire_check_username(u->username, why)) != PROFILE_OK)
			return rc;
		if (u->email_set_case)
			rc = wire_check_email(u->email, why);
		return rc;
	}
	case PROFILE__V1__REQUEST__BODY_DELETE:
		return wire_check_uid(req->delete_->uid, why);
	case PROFILE__V1__REQUEST__BODY_SEARCH:
		return wire_check_email(req->search->email, why);
	case PROFILE__V1__REQUEST__BODY_STATUS:
		return PROFILE_OK;
	default:
		*why = "request has no known method";
		return PROFILE_UNIMPLEMENTED;
	}
}

static void
lowercase(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'F')
			*s = (char)(*s - 'A' + 'a');
}

void
service_call(service *svc, Profile__V1__Request *req, service_done_fn done, void *arg)
{
	const char *why = NULL;
	uint32_t budget = req->deadline_ms ? req->deadline_ms : svc->cfg.default_deadline_ms;
	int64_t deadline;
	int32_t p = -1;
	op *o;
	int rc;

	if (budget > svc->cfg.max_deadline_ms)
		budget = svc->cfg.max_deadline_ms;
	deadline = wire_mono_ms() + budget;
	pthread_mutex_lock(&svc->mu);
	svc->requests++;
	pthread_mutex_unlock(&svc->mu);

	if ((rc = check_request(req, &why)) != PROFILE_OK) {
		answer(done, arg, req->request_id, rc, why);
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	/* uids are compared (and keyed on Kafka) in canonical lowercase. */
	if (req->body_case == PROFILE__V1__REQUEST__BODY_GET)
		lowercase(req->get->uid);
	if (req->body_case == PROFILE__V1__REQUEST__BODY_STATUS) {
		status_run(svc, req, done, arg);
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	if (req->body_case == PROFILE__V1__REQUEST__BODY_GET ||
	    req->body_case == PROFILE__V1__REQUEST__BODY_SEARCH) {
		if (read_run(svc, req, done, arg, &p) != PROFILE_ABORTED) {
			profile__v1__request__free_unpacked(req, NULL);
			return;
		}
		if ((o = op_new(svc, req, done, arg, deadline)) == NULL) {
			answer(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
			profile__v1__request__free_unpacked(req, NULL);
			return;
		}
		read_wait(o, p);
		return;
	}

	if ((o = op_new(svc, req, done, arg, deadline)) == NULL) {
		answer(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	o->is_write = 1;
	if (req->body_case == PROFILE__V1__REQUEST__BODY_CREATE)
		service_new_uid(o->uid);
	else
		memcpy(o->uid, req->body_case == PROFILE__V1__REQUEST__BODY_UPDATE ? req->update->uid
		                                                                   : req->delete_->uid,
		       WIRE_UID_LEN);
	lowercase(o->uid);
	o->p = wire_partition(o->uid, WIRE_UID_LEN, partitions_count(svc->t));
	if (!partitions_owned(svc->t, o->p)) {
		write_end(o, PROFILE_UNAVAILABLE, "partition is not served by this node");
		return;
	}
	switch (key_enter(o)) {
	case 1:
		write_drive(o);
		break;
	case -1:
		write_end(o, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		break;
	}
}

/* ---- deadlines --------------------------------------------------------- */

/* Answers every op whose deadline passed. What never started is dropped
 * (a queued write) or answered UNAVAILABLE (a wait for a restoring
 * partition); what is in Kafka is answered DEADLINE_EXCEEDED and finishes
 * in the background, still holding its key. all: answer everything now
 * (shutdown).
 *
 * Every decision is taken under svc->mu (waits are cancelled under it too:
 * the lock order is svc->mu, then a partition's), and only what this sweep
 * then owns, or copies of a reply's address, is used after unlocking. */
typedef struct expiry {
	op *own;                  /* removed from everything: ours to end */
	service_done_fn done;     /* or: only answer this address */
	void *arg;
	uint64_t id;
	const char *msg;
	int status;
} expiry;

static void
sweep(service *svc, int all)
{
	int64_t now = wire_mono_ms();
	expiry *ex = NULL;
	size_t n = 0, cap = 0;
	op *o, *next;

	pthread_mutex_lock(&svc->mu);
	for (o = svc->live.next; o != &svc->live; o = next) {
		expiry e = {0};

		next = o->next;
		if (o->replied || (!all && o->deadline > now))
			continue;
		if (n == cap) {
			expiry *grown = realloc(ex, (cap = cap ? cap * 2 : 16) * sizeof *ex);
			if (grown == NULL)
				break; /* the next sweep tries again */
			ex = grown;
		}
		e.done = o->done;
		e.arg = o->arg;
		e.id = o->req->request_id;
		if (o->state == OP_QUEUED) {
			(void)key_leave(o);
			op_unlink(o);
			o->replied = 1;
			e.own = o;
			e.status = PROFILE_DEADLINE_EXCEEDED;
			e.msg = "deadline passed while an earlier write to this uid ran";
		} else if (o->state == OP_WAIT_ACTIVE) {
			if (!partitions_cancel(svc->t, o->p, &o->w))
				continue; /* its wake is running; it answers */
			e.own = o;
			e.status = PROFILE_UNAVAILABLE;
			e.msg = "partition is restoring; retry later";
		} else {
			o->replied = 1;
			e.status = PROFILE_DEADLINE_EXCEEDED;
			e.msg = "no acknowledgement from Kafka within the deadline; the write may still apply";
		}
		ex[n++] = e;
	}
	pthread_mutex_unlock(&svc->mu);

	for (size_t i = 0; i < n; i++) {
		o = ex[i].own;
		if (o != NULL && o->state == OP_WAIT_ACTIVE) {
			if (o->is_write)
				write_drive(write_end(o, ex[i].status, ex[i].msg));
			else
				on_read_active(&o->w, ex[i].status);
			continue;
		}
		answer(ex[i].done, ex[i].arg, ex[i].id, ex[i].status, ex[i].msg);
		if (o != NULL)
			op_free(o);
	}
	free(ex);
}

static void *
sweeper_main(void *arg)
{
	service *svc = arg;
	struct timespec ts;

	pthread_mutex_lock(&svc->mu);
	while (!svc->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += SWEEP_INTERVAL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&svc->cv, &svc->mu, &ts);
		if (svc->stopping)
			break;
		pthread_mutex_unlock(&svc->mu);
		sweep(svc, 0);
		pthread_mutex_lock(&svc->mu);
	}
	pthread_mutex_unlock(&svc->mu);
	return NULL;
}

int
service_new(service **out, const service_config *cfg, partitions *t)
{
	service *svc = calloc(1, sizeof *svc);
	pthread_condattr_t ca;

	if (svc == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	svc->cfg = *cfg;
	svc->t = t;
	svc->live.next = svc->live.prev = &svc->live;
	pthread_mutex_init(&svc->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&svc->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&svc->sweeper, NULL, sweeper_main, svc) != 0) {
		free(svc);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	*out = svc;
	return PROFILE_OK;
}

void
service_attach(service *svc, changelog *cl)
{
	svc->cl = cl;
}

void
service_free(service *svc)
{
	if (svc == NULL)
		return;
	pthread_mutex_lock(&svc->mu);
	svc->stopping = 1;
	pthread_cond_signal(&svc->cv);
	pthread_mutex_unlock(&svc->mu);
	pthread_join(svc->sweeper, NULL);
	sweep(svc, 1);
	/* What is left was in Kafka when the changelog closed: answered above,
	 * and no callback will come for it any more. */
	pthread_mutex_lock(&svc->mu);
	while (svc->live.next != &svc->live) {
		op *o = svc->live.next;
		(void)key_leave(o);
		op_unlink(o);
		op_free(o);
	}
	pthread_mutex_unlock(&svc->mu);
	pthread_mutex_destroy(&svc->mu);
	pthread_cond_destroy(&svc->cv);
	free(svc);
}

void
service_stats_get(service *svc, service_stats *out)
{
	pthread_mutex_lock(&svc->mu);
	out->requests = svc->requests;
	out->forwards = 0;
	out->writes = svc->writes;
	out->in_flight = svc->in_flight;
	pthread_mutex_unlock(&svc->mu);
}
