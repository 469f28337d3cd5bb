/* fencing.c: the writing side of the partition table (partition.h):
 * claims, the fencing of earlier writers (the need_fence hook takes the
 * partition's transactional id, changelog_claim), whether a partition is
 * writable, and the wait of a committed write for its node's store.
 */

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
	/* fenced_end: the log end seen once this node's transactional producer
	 * for p fenced every earlier one; the store must have read up to it. */
	return pt->fenced_end >= 0 && pt->applied >= pt->fenced_end - 1;
}

/* Under pt->mu: what p needs from the node now. */
asks
pt_asks_for(const partitions *t, part *pt)
{
	asks a = {0, 0};

	if (t->fencing && pt->claimed && pt->active && pt->fenced_end < 0 && !pt->fence_asked) {
		pt->fence_asked = 1;
		a.fence = 1;
		a.gen = pt->gen;
	}
	return a;
}

void
pt_ask(partitions *t, int32_t p, asks a)
{
	if (a.fence && t->hooks.need_fence)
		t->hooks.need_fence(t->hooks.arg, p, a.gen);
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

int
partitions_wait_applied(partitions *t, int32_t p, int64_t offset, partition_waiter *w, partition_wake_fn wake)
{
	w->offset = offset;
	w->write = 1;
	/* Not followed here: committed, so in the log for good. */
	return pt_enqueue(t, p, w, wake, PROFILE_OK);
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
	pt->fenced_end = -1;
	pt->fence_asked = 0;
	pt_settle_unlock(t, pt, p);
	if (!claim && t->fencing && t->hooks.release)
		t->hooks.release(t->hooks.arg, p);
}

void
partitions_fence_written(partitions *t, int32_t p, uint64_t gen, int64_t end)
{
	part *pt = &t->parts[p];

	pthread_mutex_lock(&pt->mu);
	if (pt->gen != gen || !pt->claimed) {
		pthread_mutex_unlock(&pt->mu);
		return;
	}
	pt->fence_asked = 0; /* on a failure, the next tick asks again */
	if (end >= 0) {
		pt->fenced_end = end;
		log_info("partition %d: earlier writers fenced; writable once read up to the log end (%lld)",
		         (int)p, (long long)end);
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
partitions_writable(partitions *t, int32_t p)
{
	part *pt = &t->parts[p];
	int rc;

	pthread_mutex_lock(&pt->mu);
	rc = pt_writable(t, pt) ? PROFILE_OK : PROFILE_UNAVAILABLE;
	pthread_mutex_unlock(&pt->mu);
	return rc;
}
