/* read.c: the read path of a core node (read.h): where a read is answered,
 * the positions it must see, and its wait for a restoring partition. */
#include "read.h"

#include <stddef.h>
#include <stdlib.h>

/* ---- where a read is answered ------------------------------------------ */

int
node_reads_here(service *svc, const Profile__V1__Request *req, int32_t p)
{
	int64_t age_ms, lag;

	if (!partitions_owned(svc->t, p))
		return 0;
	if (svc->cfg.standbys == 0 || node_owns(svc, p))
		return 1;
	return req->stale_set_case == PROFILE__V1__REQUEST__STALE_SET_MAX_STALE_S &&
	       partitions_staleness(svc->t, p, &age_ms, &lag) && age_ms <= (int64_t)req->max_stale_s * 1000;
}

Profile__V1__Staleness *
node_staleness(service *svc, const Profile__V1__Request *req, int32_t p, Profile__V1__Staleness *st)
{
	int64_t age_ms, lag;

	if (req->stale_set_case != PROFILE__V1__REQUEST__STALE_SET_MAX_STALE_S || node_owns(svc, p))
		return NULL;
	(void)partitions_staleness(svc->t, p, &age_ms, &lag);
	profile__v1__staleness__init(st);
	st->age_s = age_ms <= 0 ? 0 : age_ms >= (int64_t)UINT32_MAX * 1000 ? UINT32_MAX : (uint32_t)((age_ms + 999) / 1000);
	st->lag = lag;
	return st;
}

/* ---- reads that wait for a restoring partition or a position ----------- */

int64_t
node_min_position(const Profile__V1__Request *req, int32_t p)
{
	int64_t min = -1;

	for (size_t i = 0; i < req->n_min_positions; i++)
		if (req->min_positions[i]->partition == p && req->min_positions[i]->offset > min)
			min = req->min_positions[i]->offset;
	return min;
}

typedef struct read_op {
	pending_call pc;
	service *svc;
	node_read_fn read;
	Profile__V1__Request *req;
	reply_fn done;
	void *arg;
	int32_t p; /* the partition waited on */
	partition_waiter w;
	int waiting; /* under the pending lock: w is queued on p */
} read_op;

#define READ_OP_OF(member, ptr) ((read_op *)((char *)(ptr)-offsetof(read_op, member)))

static const pending_ops read_ops;

static void read_wait(read_op *o);

static void
read_end(read_op *o)
{
	(void)pending_leave(o->svc->pd, &o->pc);
	profile__v1__request__free_unpacked(o->req, NULL);
	free(o);
}

/* The partition became active (or was revoked, or the deadline passed):
 * run the read again, unless it was answered. */
static void
on_read_active(partition_waiter *w, int status)
{
	read_op *o = READ_OP_OF(w, w);
	int32_t p = o->p; /* a get re-reads the partition it waited for */

	if (status != PROFILE_OK) {
		if (pending_claim_reply(o->svc->pd, &o->pc))
			reply_status(o->done, o->arg, o->req->request_id, PROFILE_UNAVAILABLE,
			             status != PROFILE_DEADLINE_EXCEEDED ? "partition was revoked"
			             : node_min_position(o->req, o->p) >= 0
			                 ? "this replica has not applied the position asked for yet; retry later"
			                 : "partition is restoring; retry later");
	} else if (pending_claim_reply(o->svc->pd, &o->pc)) {
		if (o->read(o->svc, o->req, o->pc.deadline, o->done, o->arg, &p) == PROFILE_ABORTED) {
			/* Another partition (a search's next) is restoring. */
			pending_lock(o->svc->pd);
			o->pc.replied = 0;
			pending_unlock(o->svc->pd);
			o->p = p;
			read_wait(o);
			return;
		}
	}
	read_end(o);
}

static void
read_wait(read_op *o)
{
	pending_lock(o->svc->pd);
	o->waiting = 1;
	pending_unlock(o->svc->pd);
	switch (partitions_wait_read(o->svc->t, o->p, node_min_position(o->req, o->p), &o->w, on_read_active)) {
	case PROFILE_ABORTED:
		return;
	case PROFILE_OK:
		return on_read_active(&o->w, PROFILE_OK);
	default:
		return on_read_active(&o->w, PROFILE_UNAVAILABLE);
	}
}

void
node_read(service *svc, node_read_fn read, Profile__V1__Request *req, int32_t p, int64_t deadline,
          reply_fn done, void *arg)
{
	read_op *o;

	if (read(svc, req, deadline, done, arg, &p) != PROFILE_ABORTED) {
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	if ((o = calloc(1, sizeof *o)) == NULL) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	*o = (read_op){.svc = svc, .read = read, .req = req, .done = done, .arg = arg, .p = p};
	o->pc.ops = &read_ops;
	o->pc.deadline = deadline;
	pending_add(svc->pd, &o->pc);
	read_wait(o);
}

/* Under the pending lock: a read still waiting is taken and answered
 * UNAVAILABLE; one whose wake is running answers by itself. */
static int
read_expire(pending_call *c, int all, pending_answer *out)
{
	read_op *o = READ_OP_OF(pc, c);

	(void)all;
	(void)out;
	if (!o->waiting || !partitions_cancel(o->svc->t, o->p, &o->w))
		return PENDING_SKIP;
	return PENDING_TAKE;
}

static void
read_finish(pending_call *c)
{
	on_read_active(&READ_OP_OF(pc, c)->w, PROFILE_DEADLINE_EXCEEDED);
}

static void
read_drop(pending_call *c)
{
	read_op *o = READ_OP_OF(pc, c);

	profile__v1__request__free_unpacked(o->req, NULL);
	free(o);
}

static const pending_ops read_ops = {read_expire, read_finish, read_drop};
