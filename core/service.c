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
#include "peers.h"

#define KEY_BUCKETS 4096
#define SWEEP_INTERVAL_MS 20
/* A node answers a request it cannot serve in time this long before the
 * caller's deadline (a tenth of it, within these bounds), so the caller
 * hears UNAVAILABLE ("not executed, retry") instead of timing out itself. */
#define MARGIN_MIN_MS 5
#define MARGIN_MAX_MS 250
/* The cluster view gives each member this long to report its status; one
 * that does not is shown unreachable (a hung node must not stall the view). */
#define STATUS_TIMEOUT_MS 500

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
	reply_fn done;
	void *arg;
	int64_t deadline; /* monotonic ms */
	int state;
	int replied;
	int is_write;
	int32_t p; /* the partition waited on */
	partition_waiter w;
	op *qnext;       /* next write to the same uid */
	op *prev, *next; /* live list */
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
	op live; /* list head (sentinel) */
	keyslot *keys[KEY_BUCKETS];
	pthread_t sweeper;
	int stopping;
	uint64_t requests, forwards; /* atomics, for the status */
	peers *peers;              /* NULL: a node alone */
	uint8_t *owned;              /* per partition: the group assigned it here (writes) */
	int in_group;
};

/* ---- replies ----------------------------------------------------------- */

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
op_new(service *svc, Profile__V1__Request *req, reply_fn done, void *arg, int64_t deadline)
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
	pthread_mutex_unlock(&svc->mu);
	return o;
}

/* Under svc->mu. */
static void
op_unlink(op *o)
{
	o->prev->next = o->next;
	o->next->prev = o->prev;
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
		return write_end(o, PROFILE_UNAVAILABLE, "deadline passed before the write started; not executed");
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
		write_drive(write_end(o, status,
		                      status == PROFILE_UNAVAILABLE
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

/* ---- search: here, and scattered to the owners of the rest ------------- */

typedef struct search_ctx {
	reply_fn done;
	void *arg;
	uint64_t id;
	Profile__V1__Profile **found; /* this node's part */
	size_t n;
	size_t nodes;
	char (*addresses)[MEMBERS_ADDR_MAX];
	const char **addr_ptrs;
	Profile__V1__Request *reqs;
	Profile__V1__Request **req_ptrs;
	Profile__V1__SearchRequest *sreqs;
	int32_t *parts; /* storage for every node's partition list */
} search_ctx;

static void
free_profiles(Profile__V1__Profile **found, size_t n)
{
	for (size_t i = 0; i < n; i++)
		profile__v1__profile__free_unpacked(found[i], NULL);
	free(found);
}

static void
search_ctx_free(search_ctx *c)
{
	free_profiles(c->found, c->n);
	free(c->addresses);
	free(c->addr_ptrs);
	free(c->reqs);
	free(c->req_ptrs);
	free(c->sreqs);
	free(c->parts);
	free(c);
}

/* Answers a search with the profiles of every part, most recent first. */
static void
search_reply(reply_fn done, void *arg, uint64_t id, Profile__V1__Profile **found, size_t n)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	Profile__V1__SearchReply sr = PROFILE__V1__SEARCH_REPLY__INIT;

	if (n > 1)
		qsort(found, n, sizeof *found, cmp_recent);
	sr.n_profiles = n;
	sr.profiles = found;
	r.request_id = id;
	r.body_case = PROFILE__V1__RESPONSE__BODY_SEARCH;
	r.search = &sr;
	done(arg, &r);
}

static void
search_gathered(void *arg, size_t n, const int *status, Profile__V1__Response *const *resp)
{
	search_ctx *c = arg;
	Profile__V1__Profile **all;
	size_t total = c->n;

	/* Never a silent partial result: one missing part fails the search. */
	for (size_t i = 0; i < n; i++) {
		if (status[i] != PROFILE_OK || resp[i]->status != PROFILE__V1__STATUS__OK ||
		    resp[i]->body_case != PROFILE__V1__RESPONSE__BODY_SEARCH) {
			reply_status(
			    c->done, c->arg, c->id, PROFILE_UNAVAILABLE,
			    "a node holding part of the data did not answer; no partial result is given");
			search_ctx_free(c);
			return;
		}
		total += resp[i]->search->n_profiles;
	}
	if ((all = malloc((total ? total : 1) * sizeof *all)) == NULL) {
		reply_status(c->done, c->arg, c->id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		search_ctx_free(c);
		return;
	}
	total = 0;
	for (size_t i = 0; i < c->n; i++)
		all[total++] = c->found[i];
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < resp[i]->search->n_profiles; k++)
			all[total++] = resp[i]->search->profiles[k];
	search_reply(c->done, c->arg, c->id, all, total);
	free(all);
	search_ctx_free(c);
}

/* Scatters the search of remote[0..nr) to their owners; takes found. */
static void
search_scatter(service *svc, const Profile__V1__Request *req, reply_fn done, void *arg,
               int64_t deadline, Profile__V1__Profile **found, size_t n, const int32_t *remote, size_t nr)
{
	search_ctx *c = calloc(1, sizeof *c);
	int64_t left = deadline - wire_mono_ms();
	int self;

	if (c == NULL || (c->addresses = calloc(nr, sizeof *c->addresses)) == NULL ||
	    (c->addr_ptrs = calloc(nr, sizeof *c->addr_ptrs)) == NULL ||
	    (c->reqs = calloc(nr, sizeof *c->reqs)) == NULL ||
	    (c->req_ptrs = calloc(nr, sizeof *c->req_ptrs)) == NULL ||
	    (c->sreqs = calloc(nr, sizeof *c->sreqs)) == NULL ||
	    (c->parts = calloc(nr, sizeof *c->parts)) == NULL) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		if (c)
			search_ctx_free(c);
		free_profiles(found, n);
		return;
	}
	c->done = done;
	c->arg = arg;
	c->id = req->request_id;
	c->found = found;
	c->n = n;
	/* Group the partitions by owner: one request per node. */
	for (size_t i = 0; i < nr; i++) {
		char addr[MEMBERS_ADDR_MAX];
		size_t k;

		if (peers_owner(svc->peers, remote[i], addr, sizeof addr, &self) != PROFILE_OK || self) {
			reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE,
			               "no node serves a partition right now");
			search_ctx_free(c);
			return;
		}
		for (k = 0; k < c->nodes && strcmp(c->addresses[k], addr) != 0; k++)
			;
		if (k == c->nodes) {
			snprintf(c->addresses[k], sizeof c->addresses[k], "%s", addr);
			c->addr_ptrs[k] = c->addresses[k];
			profile__v1__request__init(&c->reqs[k]);
			profile__v1__search_request__init(&c->sreqs[k]);
			c->sreqs[k].email = req->search->email;
			c->reqs[k].body_case = PROFILE__V1__REQUEST__BODY_SEARCH;
			c->reqs[k].search = &c->sreqs[k];
			c->req_ptrs[k] = &c->reqs[k];
			c->nodes++;
		}
		c->parts[i] = remote[i];
	}
	/* Each node's list: the entries of c->parts that it owns, contiguous. */
	{
		int32_t *sorted = malloc(nr * sizeof *sorted);
		size_t at = 0;
		if (sorted == NULL) {
			reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED,
			               "out of memory");
			search_ctx_free(c);
			return;
		}
		for (size_t k = 0; k < c->nodes; k++) {
			c->sreqs[k].partitions = sorted + at;
			for (size_t i = 0; i < nr; i++) {
				char addr[MEMBERS_ADDR_MAX];
				if (peers_owner(svc->peers, c->parts[i], addr, sizeof addr, &self) ==
				        PROFILE_OK &&
				    strcmp(addr, c->addresses[k]) == 0)
					sorted[at++] = c->parts[i];
			}
			c->sreqs[k].n_partitions = (size_t)(sorted + at - c->sreqs[k].partitions);
		}
		free(c->parts);
		c->parts = sorted;
	}
	__atomic_fetch_add(&svc->forwards, c->nodes, __ATOMIC_RELAXED);
	if (peers_gather(svc->peers, c->addr_ptrs, c->req_ptrs, c->nodes, left > 0 ? (uint32_t)left : 1,
	                  search_gathered, c) != PROFILE_OK) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		search_ctx_free(c);
	}
}

static int
search_run(service *svc, const Profile__V1__Request *req, reply_fn done, void *arg, int64_t deadline,
           int32_t *wait_p)
{
	const Profile__V1__SearchRequest *sq = req->search;
	int32_t count = partitions_count(svc->t);
	size_t np = sq->n_partitions ? sq->n_partitions : (size_t)count, nr = 0, n = 0;
	int32_t *remote = calloc(np, sizeof *remote);
	Profile__V1__Profile **found = NULL;
	char key[WIRE_EMAIL_MAX + 1];
	int rc = PROFILE_OK;
	store *st;

	if (remote == NULL) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	wire_email_key(sq->email, key);
	for (size_t i = 0; i < np && rc == PROFILE_OK; i++) {
		int32_t p = sq->n_partitions ? sq->partitions[i] : (int32_t)i;

		if (p < 0 || p >= count) {
			rc = PROFILE_INVALID_ARGUMENT;
		} else if ((rc = partitions_read_begin(svc->t, p, &st)) == PROFILE_OK) {
			rc = store_search(st, key, &found, &n);
			partitions_read_end(svc->t, p);
		} else if (rc == PROFILE_ABORTED) {
			*wait_p = p;
		} else if (rc == PROFILE_UNAVAILABLE && req->hops == 0 && svc->peers) {
			remote[nr++] = p; /* not served here: ask its owner */
			rc = PROFILE_OK;
		}
	}
	if (rc == PROFILE_OK && nr > 0) {
		search_scatter(svc, req, done, arg, deadline, found, n, remote, nr);
		free(remote);
		return PROFILE_OK;
	}
	free(remote);
	if (rc == PROFILE_OK)
		search_reply(done, arg, req->request_id, found, n);
	else if (rc == PROFILE_INVALID_ARGUMENT || rc == PROFILE_INTERNAL)
		reply_status(done, arg, req->request_id, rc,
		               rc == PROFILE_INTERNAL ? "store read failed" : "no such partition");
	else if (rc != PROFILE_ABORTED)
		reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE,
		               "a partition is not served by this node");
	free_profiles(found, n);
	return rc;
}

/* Runs a read. PROFILE_ABORTED: partition *wait_p is restoring (nothing was
 * answered); otherwise the answer was given (or will be, by the nodes a
 * search was scattered to) through done. */
static int
read_run(service *svc, const Profile__V1__Request *req, reply_fn done, void *arg, int64_t deadline,
         int32_t *wait_p)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	const char *uid;
	int32_t p;
	Profile__V1__Profile *prof = NULL;
	store *st;
	int rc;

	if (req->body_case == PROFILE__V1__REQUEST__BODY_SEARCH)
		return search_run(svc, req, done, arg, deadline, wait_p);
	uid = req->get->uid;
	p = wire_partition(uid, WIRE_UID_LEN, partitions_count(svc->t));
	r.request_id = req->request_id;
	if ((rc = partitions_read_begin(svc->t, p, &st)) == PROFILE_ABORTED) {
		*wait_p = p;
		return rc;
	}
	if (rc != PROFILE_OK) {
		reply_status(done, arg, req->request_id, rc, "partition is not served by this node");
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
	else if (!replied && read_run(svc, o->req, o->done, o->arg, o->deadline, &p) == PROFILE_ABORTED)
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

/* ---- status and the cluster view -------------------------------------- */

/* A node's status, with the storage its pointers point into. */
typedef struct status_buf {
	Profile__V1__StatusReply reply;
	partition_info *info;
	int64_t *log_end;
	Profile__V1__PartitionState *ps;
	Profile__V1__PartitionState **pps;
	int32_t *owned;
} status_buf;

static void
status_buf_fini(status_buf *b)
{
	free(b->info);
	free(b->log_end);
	free(b->ps);
	free(b->pps);
	free(b->owned);
}

static int
status_build(service *svc, status_buf *b)
{
	int32_t n = partitions_count(svc->t), served = 0, owned = 0;

	memset(b, 0, sizeof *b);
	profile__v1__status_reply__init(&b->reply);
	b->info = calloc((size_t)n, sizeof *b->info);
	b->ps = calloc((size_t)n, sizeof *b->ps);
	b->pps = calloc((size_t)n, sizeof *b->pps);
	b->owned = calloc((size_t)n, sizeof *b->owned);
	if (!b->info || !b->ps || !b->pps || !b->owned) {
		status_buf_fini(b);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	if ((b->log_end = calloc((size_t)n, sizeof *b->log_end)) == NULL) {
		status_buf_fini(b);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	for (int32_t p = 0; p < n; p++)
		b->log_end[p] = svc->cl ? changelog_high_watermark(svc->cl, p) : -1;
	partitions_info(svc->t, b->log_end, b->info);
	for (int32_t p = 0; p < n; p++) {
		if (__atomic_load_n(&svc->owned[p], __ATOMIC_RELAXED))
			b->owned[owned++] = p;
		if (!b->info[p].owned)
			continue;
		profile__v1__partition_state__init(&b->ps[served]);
		b->ps[served].partition = p;
		b->ps[served].state = b->info[p].active ? PROFILE__V1__PARTITION_STATE__STATE__ACTIVE
		                                        : PROFILE__V1__PARTITION_STATE__STATE__RESTORING;
		b->ps[served].lag = b->info[p].lag;
		b->ps[served].applied_offset = b->info[p].applied;
		b->ps[served].replayed = b->info[p].replayed;
		b->pps[served] = &b->ps[served];
		served++;
	}
	b->reply.node_id = (char *)svc->cfg.node_id;
	b->reply.address = (char *)svc->cfg.address;
	b->reply.partition_count = n;
	b->reply.n_partitions = (size_t)served;
	b->reply.partitions = b->pps;
	b->reply.n_owned = (size_t)owned;
	b->reply.owned = b->owned;
	b->reply.state_mode = svc->cfg.replicated ? "replicated" : "partitioned";
	b->reply.requests = __atomic_load_n(&svc->requests, __ATOMIC_RELAXED);
	b->reply.forwards = __atomic_load_n(&svc->forwards, __ATOMIC_RELAXED);
	b->reply.in_group = __atomic_load_n(&svc->in_group, __ATOMIC_RELAXED);
	return PROFILE_OK;
}

static void
status_run(service *svc, const Profile__V1__Request *req, reply_fn done, void *arg)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	status_buf b;

	if (status_build(svc, &b) != PROFILE_OK) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r.request_id = req->request_id;
	r.body_case = PROFILE__V1__RESPONSE__BODY_STATUS_REPLY;
	r.status_reply = &b.reply;
	done(arg, &r);
	status_buf_fini(&b);
}

typedef struct cluster_ctx {
	service *svc;
	reply_fn done;
	void *arg;
	uint64_t id;
	member_node *nodes; /* from the members table */
	size_t n_nodes;
	int *owner;    /* per partition: index into nodes, or -1 */
	size_t *asked; /* remote request i went to nodes[asked[i]] */
	const char **addrs;
	Profile__V1__Request *reqs;
	Profile__V1__Request **req_ptrs;
	Profile__V1__StatusRequest sreq;
	status_buf self; /* this node's own status */
	int self_index;
} cluster_ctx;

static void
cluster_ctx_free(cluster_ctx *c)
{
	free(c->nodes);
	free(c->owner);
	free(c->asked);
	free(c->addrs);
	free(c->reqs);
	free(c->req_ptrs);
	status_buf_fini(&c->self);
	free(c);
}

/* Builds the cluster view from the table and every node's status. */
static void
cluster_gathered(void *arg, size_t n, const int *status, Profile__V1__Response *const *resp)
{
	cluster_ctx *c = arg;
	int32_t count = partitions_count(c->svc->t);
	const Profile__V1__StatusReply **st = calloc(c->n_nodes + 1, sizeof *st);
	Profile__V1__ClusterNode *cn = calloc(c->n_nodes + 1, sizeof *cn);
	Profile__V1__ClusterNode **cnp = calloc(c->n_nodes + 1, sizeof *cnp);
	Profile__V1__ClusterPartition *cp = calloc((size_t)count, sizeof *cp);
	Profile__V1__ClusterPartition **cpp = calloc((size_t)count, sizeof *cpp);
	int32_t *owned = calloc((size_t)count + 1, sizeof *owned);
	Profile__V1__ClusterReply cr = PROFILE__V1__CLUSTER_REPLY__INIT;
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	size_t at = 0;

	if (!st || !cn || !cnp || !cp || !cpp || !owned) {
		reply_status(c->done, c->arg, c->id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (c->self_index >= 0)
		st[c->self_index] = &c->self.reply;
	for (size_t i = 0; i < n; i++)
		if (status[i] == PROFILE_OK && resp[i]->status == PROFILE__V1__STATUS__OK &&
		    resp[i]->body_case == PROFILE__V1__RESPONSE__BODY_STATUS_REPLY)
			st[c->asked[i]] = resp[i]->status_reply;
	for (size_t k = 0; k < c->n_nodes; k++) {
		profile__v1__cluster_node__init(&cn[k]);
		cn[k].node_id = c->nodes[k].id;
		cn[k].address = c->nodes[k].address;
		cn[k].reachable = st[k] != NULL;
		cn[k].requests = st[k] ? st[k]->requests : 0;
		cn[k].forwards = st[k] ? st[k]->forwards : 0;
		cn[k].partitions = owned + at;
		for (int32_t p = 0; p < count; p++)
			if (c->owner[p] == (int)k)
				owned[at++] = p;
		cn[k].n_partitions = (size_t)(owned + at - cn[k].partitions);
		cnp[k] = &cn[k];
	}
	for (int32_t p = 0; p < count; p++) {
		const Profile__V1__StatusReply *o = c->owner[p] >= 0 ? st[c->owner[p]] : NULL;

		profile__v1__cluster_partition__init(&cp[p]);
		cp[p].partition = p;
		cp[p].owner = c->owner[p] >= 0 ? c->nodes[c->owner[p]].id : "";
		cp[p].applied_offset = -1;
		for (size_t i = 0; o && i < o->n_partitions; i++)
			if (o->partitions[i]->partition == p) {
				cp[p].state = o->partitions[i]->state;
				cp[p].lag = o->partitions[i]->lag;
				cp[p].applied_offset = o->partitions[i]->applied_offset;
				cp[p].replayed = o->partitions[i]->replayed;
			}
		cpp[p] = &cp[p];
	}
	cr.partition_count = count;
	cr.n_nodes = c->n_nodes;
	cr.nodes = cnp;
	cr.n_partitions = (size_t)count;
	cr.partitions = cpp;
	r.request_id = c->id;
	r.body_case = PROFILE__V1__RESPONSE__BODY_CLUSTER;
	r.cluster = &cr;
	c->done(c->arg, &r);
out:
	free(st);
	free(cn);
	free(cnp);
	free(cp);
	free(cpp);
	free(owned);
	cluster_ctx_free(c);
}

/* The cluster view: the members table, and each member's status asked for
 * at once (a member that does not answer is shown unreachable). */
static void
cluster_run(service *svc, const Profile__V1__Request *req, reply_fn done, void *arg, int64_t deadline)
{
	int32_t count = partitions_count(svc->t);
	cluster_ctx *c = calloc(1, sizeof *c);
	int64_t left = deadline - wire_mono_ms();
	size_t nr = 0;

	if (svc->peers && !peers_ready(svc->peers)) {
		free(c);
		reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE,
		               "this node has not read the membership yet");
		return;
	}
	if (c == NULL || (c->owner = calloc((size_t)count, sizeof *c->owner)) == NULL ||
	    status_build(svc, &c->self) != PROFILE_OK) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		if (c) {
			free(c->owner);
			free(c);
		}
		return;
	}
	c->svc = svc;
	c->done = done;
	c->arg = arg;
	c->id = req->request_id;
	c->self_index = -1;
	if (svc->peers != NULL &&
	    peers_snapshot(svc->peers, &c->nodes, &c->n_nodes, c->owner) == PROFILE_OK && c->n_nodes == 0) {
		/* In a group, yet no member known: the table lags; say so. */
		reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE,
		               "this node has not read the membership yet");
		cluster_ctx_free(c);
		return;
	}
	if (svc->peers == NULL || c->nodes == NULL) {
		/* Alone: this node is the whole cluster. */
		free(c->nodes);
		c->nodes = calloc(1, sizeof *c->nodes);
		c->n_nodes = c->nodes ? 1 : 0;
		for (int32_t p = 0; p < count; p++)
			c->owner[p] = -1;
		if (c->nodes) {
			snprintf(c->nodes[0].id, sizeof c->nodes[0].id, "%s", svc->cfg.node_id);
			snprintf(c->nodes[0].address, sizeof c->nodes[0].address, "%s", svc->cfg.address);
			for (size_t i = 0; i < c->self.reply.n_owned; i++)
				c->owner[c->self.reply.owned[i]] = 0;
		}
	}
	c->asked = calloc(c->n_nodes + 1, sizeof *c->asked);
	c->addrs = calloc(c->n_nodes + 1, sizeof *c->addrs);
	c->reqs = calloc(c->n_nodes + 1, sizeof *c->reqs);
	c->req_ptrs = calloc(c->n_nodes + 1, sizeof *c->req_ptrs);
	if (!c->asked || !c->addrs || !c->reqs || !c->req_ptrs) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		cluster_ctx_free(c);
		return;
	}
	profile__v1__status_request__init(&c->sreq);
	for (size_t k = 0; k < c->n_nodes; k++) {
		if (strcmp(c->nodes[k].id, svc->cfg.node_id) == 0) {
			c->self_index = (int)k;
			continue;
		}
		if (c->nodes[k].leaving || req->hops > 0)
			continue;
		profile__v1__request__init(&c->reqs[nr]);
		c->reqs[nr].body_case = PROFILE__V1__REQUEST__BODY_STATUS;
		c->reqs[nr].status = &c->sreq;
		c->req_ptrs[nr] = &c->reqs[nr];
		c->addrs[nr] = c->nodes[k].address;
		c->asked[nr] = k;
		nr++;
	}
	if (nr == 0) {
		cluster_gathered(c, 0, NULL, NULL);
		return;
	}
	if (left > STATUS_TIMEOUT_MS)
		left = STATUS_TIMEOUT_MS;
	if (peers_gather(svc->peers, c->addrs, c->req_ptrs, nr, left > 0 ? (uint32_t)left : 1,
	                  cluster_gathered, c) != PROFILE_OK) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		cluster_ctx_free(c);
	}
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
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
	         b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
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
	case PROFILE__V1__REQUEST__BODY_CLUSTER:
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

/* Whether the group assigned p to this node (it takes p's writes). */
static int
owns(service *svc, int32_t p)
{
	return __atomic_load_n(&svc->owned[p], __ATOMIC_RELAXED);
}

/* The part of a caller's budget this node may use: all but the margin in
 * which it answers what it could not serve (see MARGIN_MIN_MS). */
static uint32_t
answer_budget(uint32_t budget)
{
	uint32_t m = budget / 10;

	m = m < MARGIN_MIN_MS ? MARGIN_MIN_MS : m > MARGIN_MAX_MS ? MARGIN_MAX_MS : m;
	return budget > m ? budget - m : 1;
}

/* Hands req to the owner of p: forwarded once, or UNAVAILABLE when it was
 * forwarded already (a node must not answer for a partition it lost). */
static void
send_to_owner(service *svc, int32_t p, Profile__V1__Request *req, int64_t deadline, int write,
              reply_fn done, void *arg)
{
	int64_t left = deadline - wire_mono_ms();

	if (req->hops > 0 || svc->peers == NULL) {
		reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE,
		               "this node does not own the partition");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	__atomic_fetch_add(&svc->forwards, 1, __ATOMIC_RELAXED);
	peers_forward(svc->peers, p, req, left > 0 ? (uint32_t)left : 1, write, done, arg);
}

/* A new uid whose partition this node owns and serves, so that a create
 * never needs another hop; -1 when it owns none (the create is then
 * forwarded). Still a random version 4 UUID: draws are only filtered. */
static int32_t
uid_for_create(service *svc, char *uid)
{
	int32_t count = partitions_count(svc->t);
	int any = 0;

	for (int32_t p = 0; p < count && !any; p++)
		any = owns(svc, p);
	for (int tries = 0; any && tries < 100000; tries++) {
		int32_t p;
		service_new_uid(uid);
		p = wire_partition(uid, WIRE_UID_LEN, count);
		if (owns(svc, p))
			return p;
	}
	service_new_uid(uid);
	return -1;
}

void
service_call(service *svc, Profile__V1__Request *req, reply_fn done, void *arg)
{
	const char *why = NULL;
	uint32_t budget = req->deadline_ms ? req->deadline_ms : svc->cfg.default_deadline_ms;
	int32_t count = partitions_count(svc->t);
	int64_t deadline;
	int32_t p = -1;
	op *o;
	int rc;

	if (budget > svc->cfg.max_deadline_ms)
		budget = svc->cfg.max_deadline_ms;
	deadline = wire_mono_ms() + answer_budget(budget);
	__atomic_fetch_add(&svc->requests, 1, __ATOMIC_RELAXED); /* no lock on the hot path */

	if ((rc = check_request(req, &why)) != PROFILE_OK) {
		reply_status(done, arg, req->request_id, rc, why);
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	switch (req->body_case) {
	case PROFILE__V1__REQUEST__BODY_STATUS:
		status_run(svc, req, done, arg);
		profile__v1__request__free_unpacked(req, NULL);
		return;
	case PROFILE__V1__REQUEST__BODY_CLUSTER:
		cluster_run(svc, req, done, arg, deadline);
		profile__v1__request__free_unpacked(req, NULL);
		return;
	case PROFILE__V1__REQUEST__BODY_GET:
		/* uids are compared (and keyed on Kafka) in canonical lowercase. */
		lowercase(req->get->uid);
		p = wire_partition(req->get->uid, WIRE_UID_LEN, count);
		if (!partitions_owned(svc->t, p)) {
			send_to_owner(svc, p, req, deadline, 0, done, arg);
			return;
		}
		/* fall through */
	case PROFILE__V1__REQUEST__BODY_SEARCH:
		if (read_run(svc, req, done, arg, deadline, &p) != PROFILE_ABORTED) {
			profile__v1__request__free_unpacked(req, NULL);
			return;
		}
		if ((o = op_new(svc, req, done, arg, deadline)) == NULL) {
			reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED,
			               "out of memory");
			profile__v1__request__free_unpacked(req, NULL);
			return;
		}
		read_wait(o, p);
		return;
	default:
		break;
	}

	/* Writes: served by the owner of partition(uid). */
	{
		char uid[WIRE_UID_LEN + 1];

		if (req->body_case == PROFILE__V1__REQUEST__BODY_CREATE) {
			if ((p = uid_for_create(svc, uid)) < 0) {
				send_to_owner(svc, wire_partition(uid, WIRE_UID_LEN, count), req, deadline, 1,
				              done, arg);
				return;
			}
		} else {
			memcpy(uid,
			       req->body_case == PROFILE__V1__REQUEST__BODY_UPDATE ? req->update->uid
			                                                           : req->delete_->uid,
			       WIRE_UID_LEN);
			uid[WIRE_UID_LEN] = '\0';
			lowercase(uid);
			p = wire_partition(uid, WIRE_UID_LEN, count);
			if (!owns(svc, p)) {
				send_to_owner(svc, p, req, deadline, 1, done, arg);
				return;
			}
		}
		if ((o = op_new(svc, req, done, arg, deadline)) == NULL) {
			reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED,
			               "out of memory");
			profile__v1__request__free_unpacked(req, NULL);
			return;
		}
		o->is_write = 1;
		memcpy(o->uid, uid, sizeof o->uid);
		o->p = p;
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

void
service_on_rebalanced(void *arg, const int32_t *parts, size_t n)
{
	service *svc = arg;
	int32_t count = partitions_count(svc->t);

	for (int32_t p = 0; p < count; p++)
		__atomic_store_n(&svc->owned[p], 0, __ATOMIC_RELAXED);
	for (size_t i = 0; i < n; i++)
		if (parts[i] >= 0 && parts[i] < count)
			__atomic_store_n(&svc->owned[parts[i]], 1, __ATOMIC_RELAXED);
	__atomic_store_n(&svc->in_group, 1, __ATOMIC_RELAXED);
}

void
service_attach_peers(service *svc, peers *r)
{
	svc->peers = r;
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
	op *own;              /* removed from everything: ours to end */
	reply_fn done; /* or: only answer this address */
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
			/* Never started, and now never will: not executed. */
			e.status = PROFILE_UNAVAILABLE;
			e.msg = "deadline passed while an earlier write to this uid ran; not executed";
		} else if (o->state == OP_WAIT_ACTIVE) {
			if (!partitions_cancel(svc->t, o->p, &o->w))
				continue; /* its wake is running; it answers */
			e.own = o;
			e.status = PROFILE_UNAVAILABLE;
			e.msg = "partition is restoring; retry later";
		} else {
			o->replied = 1;
			e.status = PROFILE_DEADLINE_EXCEEDED;
			e.msg =
			    "no acknowledgement from Kafka within the deadline; the write may still apply";
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
		reply_status(ex[i].done, ex[i].arg, ex[i].id, ex[i].status, ex[i].msg);
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
	if ((svc->owned = calloc((size_t)partitions_count(t), 1)) == NULL) {
		free(svc);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
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
	free(svc->owned);
	free(svc);
}
