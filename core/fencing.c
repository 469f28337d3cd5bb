/* fencing.c: the writing side of the partition table (partition.h):
 * claims, this node's fence records, whether a partition is writable, and
 * the fate of each write: applied, or fenced by a newer owner's fence
 * (fence.h), also when the partition was lost first and the tracer reads
 * it on.
 */
#include <string.h>

#include "log.h"
#include "partition_impl.h"

void
partitions_on_acked(void *arg, int32_t p, const store_record *recs, size_t n)
{
	partitions *t = arg;
	part *pt;

	/* The consumer thread's, as every change to applied: no lock needed
	 * to read it here. A store still to be checked against the log
	 * (verify) takes its first record from the consumer. Right after a
	 * record of this node's previous transaction, the one offset between
	 * is that transaction's commit marker: nothing else can come between
	 * while the node is the partition's only writer, and once it is not
	 * (fenced), nothing it writes is committed. */
	if (p < 0 || p >= t->count || n == 0)
		return;
	pt = &t->parts[p];
	if (pt->verify || (recs[0].offset != pt->applied + 1 &&
	                   !(t->fencing && pt->own_last == pt->applied && recs[0].offset == pt->applied + 2)))
		return;
	(void)partitions_on_records(t, p, recs, n);
	if (pt->applied == recs[n - 1].offset) {
		pt->own_last = pt->applied;
		__atomic_add_fetch(&t->applied_on_ack, n, __ATOMIC_RELAXED);
	}
}

/* Under pt->mu: p may take writes now. */
int
pt_writable(const partitions *t, const part *pt)
{
	if (!pt->active || !pt->claimed)
		return 0;
	if (!t->fencing)
		return 1;
	/* own_fence: the log end seen once this node's transactional producer
	 * for p fenced every earlier one; the store must have read up to it. */
	return pt->own_fence >= 0 && pt->applied >= pt->own_fence - 1;
}

/* Under pt->mu: the fate of the write stamped `token` at `offset`, which
 * has been applied past: PROFILE_OK, PROFILE_FAILED_PRECONDITION (fenced),
 * or PROFILE_DEADLINE_EXCEEDED when the steps that would tell are gone. */
int
pt_write_fate(const part *pt, int64_t offset, int64_t token)
{
	if (token < 0)
		return PROFILE_OK; /* fencing off */
	for (size_t i = 0; i < pt->n_steps; i++)
		if (pt->steps[i].at < offset && pt->steps[i].fence > token)
			return PROFILE_FAILED_PRECONDITION;
	if (pt->steps_lost && pt->n_steps > 0 && pt->steps[0].fence > token)
		return PROFILE_DEADLINE_EXCEEDED;
	return PROFILE_OK;
}

/* Under pt->mu: what p needs from the node now. */
asks
pt_asks_for(const partitions *t, part *pt)
{
	asks a = {0, 0, 0};

	if (t->fencing && pt->claimed && pt->active && pt->own_fence < 0 && !pt->fence_asked) {
		pt->fence_asked = 1;
		a.fence = 1;
		a.gen = pt->gen;
	}
	/* Restates are asked for at most once a second: the list empties as
	 * they apply, and one that failed is asked for again. */
	if (pt_writable(t, pt) && pt->st != NULL && store_fenced_count(pt->st) > 0 &&
	    wire_mono_ms() - pt->restate_at >= RESTATE_EVERY_MS) {
		pt->restate_at = wire_mono_ms();
		a.restate = 1;
	}
	return a;
}

void
pt_ask(partitions *t, int32_t p, asks a)
{
	if (a.fence && t->hooks.need_fence)
		t->hooks.need_fence(t->hooks.arg, p, a.gen);
	if (a.restate && t->hooks.restate)
		t->hooks.restate(t->hooks.arg, p);
}

/* Under pt->mu, which it releases: wakes what p's state now lets go on,
 * and asks the node for what p needs. */
void
pt_settle_unlock(partitions *t, part *pt, int32_t p)
{
	partition_waiter *w = pt_take_waiters(t, pt, KEPT);
	asks a = pt_asks_for(t, pt);

	pthread_mutex_unlock(&pt->mu);
	pt_wake_all(w);
	pt_ask(t, p, a);
}

/* Under pt->mu, p lost: its writes with a token wait for the tracer,
 * which reads p past their offsets, to tell whether a newer fence came
 * first (partitions_on_traced). */
void
pt_orphan_writes(part *pt)
{
	for (partition_waiter **pp = &pt->waiters; *pp;) {
		partition_waiter *w = *pp;

		if (w->write && w->token >= 0) {
			*pp = w->next;
			w->next = pt->orphans;
			pt->orphans = w;
		} else {
			pp = &w->next;
		}
	}
}

int
partitions_on_traced(void *arg, int32_t p, const store_record *recs, size_t n)
{
	partitions *t = arg;
	partition_waiter *wake = NULL;
	part *pt;
	int more;

	if (p < 0 || p >= t->count)
		return 0;
	pt = &t->parts[p];
	pthread_mutex_lock(&pt->mu);
	for (size_t i = 0; i < n && pt->orphans; i++) {
		int fenced = record_fenced(&recs[i], pt->trace_fence);

		pt->trace_fence = record_fence_after(&recs[i], pt->trace_fence);
		pt->trace_from = recs[i].offset + 1;
		for (partition_waiter **pp = &pt->orphans; *pp;) {
			partition_waiter *o = *pp;

			if (o->offset > recs[i].offset) {
				pp = &o->next;
				continue;
			}
			/* Its own record, applied or fenced; or passed (compacted
			 * away, which a day-long compaction lag rules out). */
			o->status = o->offset < recs[i].offset ? PROFILE_DEADLINE_EXCEEDED
			            : fenced                   ? PROFILE_FAILED_PRECONDITION
			                                       : PROFILE_OK;
			*pp = o->next;
			o->queued = 0;
			o->next = wake;
			wake = o;
		}
	}
	more = pt->orphans != NULL;
	pthread_mutex_unlock(&pt->mu);
	pt_wake_all(wake);
	return more;
}

/* Under pt->mu: records where the fence rose in recs (just applied). */
void
pt_note_fence_steps(part *pt, const store_record *recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t next = record_fence_after(&recs[i], pt->fence);

		if (next == pt->fence)
			continue;
		if (pt->n_steps == FENCE_STEPS) {
			memmove(pt->steps, pt->steps + 1, (FENCE_STEPS - 1) * sizeof pt->steps[0]);
			pt->n_steps--;
			pt->steps_lost = 1;
		}
		pt->steps[pt->n_steps++] = (fence_step){recs[i].offset, next};
		pt->fence = next;
	}
}

int
partitions_wait_applied(partitions *t, int32_t p, int64_t offset, int64_t token, partition_waiter *w,
                        partition_wake_fn wake)
{
	part *pt = &t->parts[p];
	int64_t from = -1;

	w->offset = offset;
	w->token = token;
	w->write = 1;
	if (token >= 0 && t->fencing) {
		/* Landed after this node lost p: the tracer tells its fate. */
		pthread_mutex_lock(&pt->mu);
		if (!pt->owned && pt->trace_from >= 0) {
			w->wake = wake;
			w->queued = 1;
			w->next = pt->orphans;
			pt->orphans = w;
			from = pt->trace_from;
		}
		pthread_mutex_unlock(&pt->mu);
		if (from >= 0) {
			if (t->hooks.trace)
				t->hooks.trace(t->hooks.arg, p, from);
			return PROFILE_ABORTED;
		}
	}
	return pt_enqueue(t, p, w, wake, token >= 0 ? PROFILE_DEADLINE_EXCEEDED : PROFILE_OK);
}

/* ---- writing ------------------------------------------------------------ */

void
partitions_set_hooks(partitions *t, const partition_hooks *h, int fencing)
{
	t->hooks = *h;
	t->fencing = fencing;
}

void
partitions_claim(partitions *t, int32_t p, int claim)
{
	part *pt = &t->parts[p];

	pthread_mutex_lock(&pt->mu);
	if (pt->claimed == !!claim) {
		pthread_mutex_unlock(&pt->mu);
		return;
	}
	pt->claimed = !!claim;
	pt->gen++;
	pt->own_fence = -1;
	pt->fence_asked = 0;
	pt_settle_unlock(t, pt, p);
	if (!claim && t->fencing && t->hooks.release)
		t->hooks.release(t->hooks.arg, p);
}

void
partitions_fence_written(partitions *t, int32_t p, uint64_t gen, int64_t offset)
{
	part *pt = &t->parts[p];

	pthread_mutex_lock(&pt->mu);
	if (pt->gen != gen || !pt->claimed) {
		pthread_mutex_unlock(&pt->mu);
		return;
	}
	pt->fence_asked = 0; /* on a failure, the next tick asks again */
	if (offset >= 0) {
		pt->own_fence = offset;
		log_info("partition %d: earlier writers fenced; writable once read up to offset %lld", (int)p,
		         (long long)offset);
		pt_settle_unlock(t, pt, p);
		return;
	}
	pthread_mutex_unlock(&pt->mu);
}

void
partitions_tick(partitions *t)
{
	for (int32_t p = 0; p < t->count; p++) {
		part *pt = &t->parts[p];
		asks a;

		pthread_mutex_lock(&pt->mu);
		a = pt_asks_for(t, pt);
		pthread_mutex_unlock(&pt->mu);
		pt_ask(t, p, a);
		pt_release_held(t, p, 1);
	}
}

int
partitions_write_token(partitions *t, int32_t p, int64_t *token)
{
	part *pt = &t->parts[p];
	int rc;

	pthread_mutex_lock(&pt->mu);
	rc = pt_writable(t, pt) ? PROFILE_OK : PROFILE_UNAVAILABLE;
	*token = -1; /* the transaction fences, not a token */
	pthread_mutex_unlock(&pt->mu);
	return rc;
}
