/* write.c: the write path of a core node (write.h).
 *
 * A write is an `op` held in the pending table (pending.h) and driven by
 * callbacks through its states:
 *
 *   (queued behind another write to its uid)
 *     -> WAIT_ACTIVE (partition restoring, or its earlier writers not yet
 *        fenced)
 *     -> PRODUCING (handed to Kafka, in the partition's next transaction)
 *     -> WAIT_APPLIED (committed; this node's store has not applied the
 *        offset yet)
 *     -> answered and freed, and the next write to the uid starts
 *
 * The state is guarded by the pending table's lock, since the sweeper reads
 * it there (write_expire). Calls into the partition table and the changelog
 * are made without that lock held.
 *
 * A create with an Idempotency-Key is queued on the key (it has no uid
 * yet): it answers with what the key already made, if anything, else it
 * draws a uid in its partition. The key and the create's request hash
 * travel in the record, and every later record of the profile carries them
 * on, so the store's key index survives compaction.
 */
#include "write.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"

enum { OP_NEW, OP_WAIT_ACTIVE, OP_PRODUCING, OP_WAIT_APPLIED };

typedef struct op {
	pending_call pc;
	changelog_delivery dl;
	service *svc;
	Profile__V1__Request *req;
	reply_fn done;
	void *arg;
	int state;
	int32_t p;  /* the partition of uid */
	int64_t at; /* the offset its record landed at, -1 before */
	partition_waiter w;
	/* Set by write_expire for finish: why the sweeper took it. */
	int expired_status;
	const char *expired_msg;
	int left; /* already out of the pending table */
	/* The new state (unused by a delete's reply). */
	int deleting;
	char qkey[WIRE_UID_LEN + 1]; /* its queue: the uid, or a keyed create's key hash */
	char uid[WIRE_UID_LEN + 1];
	char idem[WIRE_IDEM_KEY_MAX + 1]; /* the Idempotency-Key the record carries, or "" */
	uint64_t idem_hash;
	Profile__V1__Profile state_after;
	char *username, *email;
} op;

#define OP_OF(member, ptr) ((op *)((char *)(ptr)-offsetof(op, member)))

static const pending_ops write_ops;
static void write_delivered(changelog_delivery *d, int status, int32_t p, int64_t offset);

/* ---- ops --------------------------------------------------------------- */

static op *
op_new(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg)
{
	op *o = calloc(1, sizeof *o);

	if (o == NULL)
		return NULL;
	o->svc = svc;
	o->req = req;
	o->done = done;
	o->arg = arg;
	o->pc.ops = &write_ops;
	o->pc.deadline = deadline;
	o->dl.done = write_delivered;
	o->at = -1;
	profile__v1__profile__init(&o->state_after);
	__atomic_add_fetch(&svc->writes, 1, __ATOMIC_RELAXED);
	pending_add(svc->pd, &o->pc);
	return o;
}

static void
op_free(op *o)
{
	__atomic_sub_fetch(&o->svc->writes, 1, __ATOMIC_RELAXED);
	profile__v1__request__free_unpacked(o->req, NULL);
	free(o->username);
	free(o->email);
	free(o);
}

/* Answers the write unless the sweeper already did (r's body set by the
 * caller). */
static void
op_reply(op *o, Profile__V1__Response *r)
{
	if (pending_claim_reply(o->svc->pd, &o->pc)) {
		r->request_id = o->req->request_id;
		o->done(o->arg, r);
	}
}

static void
op_set_state(op *o, int state)
{
	pending_lock(o->svc->pd);
	o->state = state;
	pending_unlock(o->svc->pd);
}

/* ---- the write path ---------------------------------------------------- */

static op *write_start(op *o);

/* Ends a write: answers it (if not yet), leaves the pending table, frees
 * it, and returns the next write to the same uid, for the caller to start. */
static op *
write_end(op *o, int status, const char *msg)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	Profile__V1__DeleteReply del = PROFILE__V1__DELETE_REPLY__INIT;
	Profile__V1__Position pos = PROFILE__V1__POSITION__INIT;
	pending_call *next = NULL;

	r.status = (Profile__V1__Status)status;
	r.message = (char *)(msg ? msg : "");
	if (status == PROFILE_OK && o->deleting) {
		r.body_case = PROFILE__V1__RESPONSE__BODY_DELETED;
		r.deleted = &del;
	} else if (status == PROFILE_OK) {
		r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
		r.profile = &o->state_after;
	}
	if (status == PROFILE_OK && o->at >= 0) {
		pos.partition = o->p;
		pos.offset = o->at;
		r.position = &pos;
	}
	op_reply(o, &r);
	if (!o->left)
		next = pending_leave(o->svc->pd, &o->pc);
	op_free(o);
	return next ? OP_OF(pc, next) : NULL;
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

/* Sets o's new state from the current one (cur, NULL when absent) and the
 * request. PROFILE_OK, or the status to end the write with (*msg says why;
 * its storage is msgbuf). */
static int
write_state(op *o, const Profile__V1__Profile *cur, char *msgbuf, size_t msgsize, const char **msg)
{
	const Profile__V1__Request *req = o->req;

	if (req->body_case == PROFILE__V1__REQUEST__BODY_CREATE) {
		if (cur != NULL) {
			*msg = "uid already exists";
			return PROFILE_ALREADY_EXISTS;
		}
		o->username = strdup(req->create->username);
		o->email = strdup(req->create->email);
		o->state_after.version = 1;
		o->state_after.created_at = wire_now_ms();
		o->state_after.updated_at = o->state_after.created_at;
	} else {
		int upd = req->body_case == PROFILE__V1__REQUEST__BODY_UPDATE;
		const Profile__V1__Precondition *pc =
		    upd ? req->update->precondition : req->delete_->precondition;

		if (cur == NULL) {
			*msg = "no profile with this uid";
			return PROFILE_NOT_FOUND;
		}
		if (precondition_fails(pc, cur)) {
			snprintf(msgbuf, msgsize, "version is %llu, not %llu",
			         (unsigned long long)cur->version, (unsigned long long)pc->version);
			*msg = msgbuf;
			return PROFILE_FAILED_PRECONDITION;
		}
		if (upd) {
			const Profile__V1__UpdateRequest *u = req->update;
			o->username = dup_or_keep(u->username_set_case ? u->username : NULL, cur->username);
			o->email = dup_or_keep(u->email_set_case ? u->email : NULL, cur->email);
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
	}
	if (o->username == NULL || o->email == NULL) {
		*msg = "out of memory";
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	o->state_after.uid = o->uid;
	o->state_after.username = o->username;
	o->state_after.email = o->email;
	return PROFILE_OK;
}

/* Hands the record to Kafka. Returns the next write to start when this one
 * ended at once. */
static op *
write_hand_over(op *o, uint8_t *buf, size_t len)
{
	int rc = changelog_produce(o->svc->cl, o->p, o->uid, WIRE_UID_LEN, buf, len, &o->dl);

	if (rc != PROFILE_OK) {
		free(buf); /* not taken */
		return write_end(o, rc, "Kafka did not take the write");
	}
	return NULL;
}

/* The fault point of the fencing tests (--fault-write-delay-ms): the write
 * was checked, and reaches Kafka only after the delay, as from a node that
 * stalled at the worst moment. */
typedef struct delayed {
	op *o;
	uint8_t *buf;
	size_t len;
} delayed;

static void *
delayed_main(void *arg)
{
	delayed *d = arg;
	struct timespec ts = {d->o->svc->cfg.fault_write_delay_ms / 1000,
	                      (long)(d->o->svc->cfg.fault_write_delay_ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
	write_drive(write_hand_over(d->o, d->buf, d->len));
	free(d);
	return NULL;
}

static op *
write_produce_later(op *o, uint8_t *buf, size_t len)
{
	delayed *d = malloc(sizeof *d);
	pthread_t th;

	if (d != NULL) {
		*d = (delayed){o, buf, len};
		if (pthread_create(&th, NULL, delayed_main, d) == 0) {
			pthread_detach(th);
			return NULL;
		}
		free(d);
	}
	return write_hand_over(o, buf, len);
}

/* Hands o's new state (or a tombstone) to Kafka. Returns the next write to
 * start when this one ended at once. */
static op *
write_produce(op *o)
{
	Profile__V1__ProfileEvent ev = PROFILE__V1__PROFILE_EVENT__INIT;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (!o->deleting) {
		ev.type = o->req->body_case == PROFILE__V1__REQUEST__BODY_CREATE
		              ? PROFILE__V1__EVENT_TYPE__CREATED
		              : PROFILE__V1__EVENT_TYPE__UPDATED;
		ev.profile = &o->state_after;
		ev.idempotency_key = o->idem;
		ev.request_hash = o->idem_hash;
		len = profile__v1__profile_event__get_packed_size(&ev);
		if ((buf = malloc(len)) == NULL)
			return write_end(o, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		profile__v1__profile_event__pack(&ev, buf);
	}
	/* Last look before Kafka: a node that knows it lost the partition
	 * writes nothing. One that does not know yet is fenced by Kafka: the
	 * next owner took the partition's transactional id. */
	if (partitions_writable(o->svc->t, o->p) != PROFILE_OK) {
		free(buf);
		return write_end(o, PROFILE_UNAVAILABLE,
		                 "this node no longer writes the partition; not executed");
	}
	op_set_state(o, OP_PRODUCING);
	if (o->svc->cfg.fault_write_delay_ms > 0)
		return write_produce_later(o, buf, len);
	return write_hand_over(o, buf, len);
}

/* Validates the write against the caught-up store and produces the new
 * state. Returns the next write to start when this one ended at once. */
/* A keyed create: what the key made before (replay answers it), or a new
 * uid in o's partition (into o->uid). PROFILE_OK to go on creating; another
 * status (with *msg) ends the write; PROFILE_ALREADY_EXISTS: replayed. */
static int
idem_resolve(op *o, store *st, const char **msg)
{
	const Profile__V1__CreateRequest *c = o->req->create;
	char uid[WIRE_UID_LEN + 1];
	uint64_t hash = wire_request_hash(c->username, c->email), was;
	int64_t created_at;
	int rc = store_idem_get(st, c->idempotency_key, uid, &was, &created_at);
	Profile__V1__Profile *cur = NULL;

	snprintf(o->idem, sizeof o->idem, "%s", c->idempotency_key);
	o->idem_hash = hash;
	if (rc == PROFILE_OK && was != hash) {
		*msg = "this Idempotency-Key was used with another username or email";
		return PROFILE_INVALID_ARGUMENT;
	}
	if (rc == PROFILE_OK) { /* the same create again: its answer again */
		memcpy(o->uid, uid, sizeof o->uid);
		o->username = strdup(c->username);
		o->email = strdup(c->email);
		o->state_after = (Profile__V1__Profile)PROFILE__V1__PROFILE__INIT;
		o->state_after.uid = o->uid;
		o->state_after.username = o->username;
		o->state_after.email = o->email;
		o->state_after.version = 1;
		o->state_after.created_at = o->state_after.updated_at = created_at;
		*msg = "out of memory";
		return o->username && o->email ? PROFILE_ALREADY_EXISTS : PROFILE_RESOURCE_EXHAUSTED;
	}
	if (rc != PROFILE_NOT_FOUND) {
		*msg = "store read failed";
		return PROFILE_UNAVAILABLE;
	}
	for (int tries = 0; tries < 1000000; tries++) {
		write_new_uid(uid);
		if (wire_partition(uid, WIRE_UID_LEN, partitions_count(o->svc->t)) != o->p)
			continue;
		if ((rc = store_get(st, uid, &cur)) == PROFILE_NOT_FOUND) {
			memcpy(o->uid, uid, sizeof o->uid);
			return PROFILE_OK;
		}
		if (cur)
			profile__v1__profile__free_unpacked(cur, NULL);
		cur = NULL;
	}
	*msg = "no free uid in the key's partition";
	return PROFILE_UNAVAILABLE;
}

/* Reads what the write needs from the store: the current state of o's uid
 * (*cur, NULL when absent) and the Idempotency-Key it carries on. */
static int
write_read(op *o, store *st, Profile__V1__Profile **cur, const char **msg)
{
	int rc;

	if (o->req->body_case == PROFILE__V1__REQUEST__BODY_CREATE &&
	    o->req->create->idempotency_key[0] != '\0' && (rc = idem_resolve(o, st, msg)) != PROFILE_OK)
		return rc;
	/* A keyed create has its key already; anything else carries on what
	 * the profile has. */
	if (o->idem[0])
		rc = store_get(st, o->uid, cur);
	else
		rc = store_get_idem(st, o->uid, cur, o->idem, &o->idem_hash);
	if (rc != PROFILE_OK && rc != PROFILE_NOT_FOUND) {
		*msg = "store read failed";
		return PROFILE_UNAVAILABLE;
	}
	return PROFILE_OK;
}

/* Validates the write against the caught-up store and produces the new
 * state. Returns the next write to start when this one ended at once. */
static op *
write_execute(op *o)
{
	service *svc = o->svc;
	Profile__V1__Profile *cur = NULL;
	const char *msg = NULL;
	char msgbuf[96];
	store *st;
	int rc;

	if (wire_mono_ms() >= o->pc.deadline)
		return write_end(o, PROFILE_UNAVAILABLE,
		                 "deadline passed before the write started; not executed");
	if (partitions_read_begin(svc->t, o->p, -1, &st) != PROFILE_OK) {
		const char *held = partitions_held_back(svc->t);

		return write_end(o, PROFILE_UNAVAILABLE, held ? held : "partition is not served by this node");
	}
	rc = write_read(o, st, &cur, &msg);
	partitions_read_end(svc->t, o->p);
	if (rc == PROFILE_ALREADY_EXISTS)
		return write_end(o, PROFILE_OK, NULL); /* a keyed create, replayed */
	if (rc != PROFILE_OK) {
		if (cur)
			profile__v1__profile__free_unpacked(cur, NULL);
		return write_end(o, rc, msg);
	}
	rc = write_state(o, cur, msgbuf, sizeof msgbuf, &msg);
	if (cur)
		profile__v1__profile__free_unpacked(cur, NULL);
	if (rc != PROFILE_OK)
		return write_end(o, rc, msg);
	return write_produce(o);
}

static void
on_active(partition_waiter *w, int status)
{
	op *o = OP_OF(w, w);

	if (status != PROFILE_OK)
		write_drive(write_end(o, PROFILE_UNAVAILABLE, "partition was revoked"));
	else
		write_drive(write_execute(o));
}

static op *
write_start(op *o)
{
	op_set_state(o, OP_WAIT_ACTIVE);
	switch (partitions_wait(o->svc->t, o->p, PARTITION_WRITABLE, &o->w, on_active)) {
	case PROFILE_OK:
		return write_execute(o);
	case PROFILE_ABORTED:
		return NULL; /* restoring: on_active continues */
	default:
		return write_end(o, PROFILE_UNAVAILABLE, "partition is not served by this node");
	}
}

/* A committed write is applied here, or its partition moved on (it is in
 * the log for good): answered. */
static void
on_applied(partition_waiter *w, int status)
{
	(void)status;
	write_drive(write_end(OP_OF(w, w), PROFILE_OK, NULL));
}

static void
write_delivered(changelog_delivery *d, int status, int32_t p, int64_t offset)
{
	op *o = OP_OF(dl, d);
	int rc;

	if (status != PROFILE_OK) {
		write_drive(write_end(o, status,
		                      status == PROFILE_UNAVAILABLE
		                          ? "Kafka did not take the write (or another node took the partition "
		                            "over first); not executed"
		                          : "Kafka did not acknowledge the write in time"));
		return;
	}
	op_set_state(o, OP_WAIT_APPLIED);
	o->at = offset;
	if ((rc = partitions_wait_applied(o->svc->t, p, offset, &o->w, on_applied)) != PROFILE_ABORTED)
		write_drive(write_end(o, PROFILE_OK, NULL));
}

/* ---- deadlines (pending_ops) ------------------------------------------- */

/* Under the pending lock. What never started is not executed (UNAVAILABLE);
 * what is in Kafka is answered DEADLINE_EXCEEDED and finishes in the
 * background, still first in its uid's queue. */
static int
write_expire(pending_call *c, int all, pending_answer *out)
{
	op *o = OP_OF(pc, c);

	(void)all;
	if (c->queued) {
		(void)pending_leave_locked(o->svc->pd, c);
		o->left = 1;
		o->expired_status = PROFILE_UNAVAILABLE;
		o->expired_msg = "deadline passed while an earlier write to this uid ran; not executed";
		return PENDING_TAKE;
	}
	switch (o->state) {
	case OP_NEW:
		return PENDING_SKIP; /* starting now: write_execute checks the deadline */
	case OP_WAIT_ACTIVE:
		/* The lock order is the pending table's, then a partition's. */
		if (!partitions_cancel(o->svc->t, o->p, &o->w))
			return PENDING_SKIP; /* its wake is running; it answers */
		o->expired_status = PROFILE_UNAVAILABLE;
		o->expired_msg = "partition is restoring; retry later";
		return PENDING_TAKE;
	default:
		*out = (pending_answer){
		    o->done, o->arg, o->req->request_id, PROFILE_DEADLINE_EXCEEDED,
		    o->state == OP_WAIT_APPLIED
		        ? "Kafka took the write but this node's store had not applied it by the deadline; outcome unknown"
		        : "no acknowledgement from Kafka within the deadline; the write may still apply"};
		return PENDING_ANSWER;
	}
}

static void
write_finish(pending_call *c)
{
	op *o = OP_OF(pc, c);

	write_drive(write_end(o, o->expired_status, o->expired_msg));
}

static void
write_drop(pending_call *c)
{
	op_free(OP_OF(pc, c));
}

static const pending_ops write_ops = {write_expire, write_finish, write_drop};

/* ---- starting writes ----------------------------------------------------- */

void
write_new_uid(char *out)
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

/* Starts a write of uid (partition p) here. */
void
write_begin(service *svc, Profile__V1__Request *req, const char *uid, int32_t p, int64_t deadline,
            reply_fn done, void *arg)
{
	op *o;

	/* Past the cap a write is refused at once, not queued to wait out its
	 * deadline: the caller is told to come back. */
	if (svc->cfg.max_writes > 0 &&
	    __atomic_load_n(&svc->writes, __ATOMIC_RELAXED) >= svc->cfg.max_writes) {
		Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;

		r.request_id = req->request_id;
		r.status = PROFILE__V1__STATUS__UNAVAILABLE;
		r.message = "node overloaded: too many writes in progress; retry later";
		r.overloaded = 1;
		done(arg, &r);
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	if ((o = op_new(svc, req, deadline, done, arg)) == NULL) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	memcpy(o->qkey, uid, sizeof o->qkey);
	memcpy(o->uid, uid, sizeof o->uid);
	o->p = p;
	switch (pending_enter(svc->pd, &o->pc, o->qkey)) {
	case 1:
		write_drive(o);
		break;
	case -1:
		write_end(o, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		break;
	}
}
