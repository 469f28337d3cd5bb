/* partition_view.c: what the partition table says about itself
 * (partition.h): who serves what, reads of the stores, restore counts, the
 * status snapshot.
 */
#include <stdio.h>

#include "partition.h"
#include "partition_impl.h"
#include "wire.h"

int
partitions_owned(partitions *t, int32_t p)
{
	part *pt = &t->parts[p];
	int owned;

	pthread_mutex_lock(&pt->mu);
	owned = pt->owned || (pt->held && wire_mono_ms() < pt->held_until);
	pthread_mutex_unlock(&pt->mu);
	return owned;
}

int
partitions_staleness(partitions *t, int32_t p, int64_t *age_ms, int64_t *lag)
{
	part *pt = &t->parts[p];
	int ok;

	pthread_mutex_lock(&pt->mu);
	ok = pt->owned && pt->active && !pt->failed && pt->st != NULL;
	*lag = pt->hi >= 0 && pt->hi - 1 > pt->applied ? pt->hi - 1 - pt->applied : 0;
	*age_ms = *lag == 0 ? 0 : pt->fresh_at > 0 ? wire_mono_ms() - pt->fresh_at : INT64_MAX;
	pthread_mutex_unlock(&pt->mu);
	return ok;
}

uint64_t
partitions_applied_on_ack(partitions *t)
{
	return __atomic_load_n(&t->applied_on_ack, __ATOMIC_RELAXED);
}

uint64_t
partitions_restores(partitions *t)
{
	uint64_t n = 0;

	for (int32_t p = 0; p < t->count; p++)
		n += __atomic_load_n(&t->parts[p].restores, __ATOMIC_RELAXED);
	return n;
}

void
partitions_info(partitions *t, const int64_t *log_end, partition_info *info)
{
	const char *held = partitions_held_back(t);

	for (int32_t p = 0; p < t->count; p++) {
		part *pt = &t->parts[p];
		int64_t hi = log_end ? log_end[p] : -1;

		pthread_mutex_lock(&pt->mu);
		if (hi < pt->hi)
			hi = pt->hi;
		info[p].partition = p;
		info[p].owned = pt->owned;
		info[p].active = pt->active;
		info[p].applied = pt->applied;
		info[p].replayed = pt->replayed;
		info[p].lag = hi >= 0 && hi - 1 > pt->applied ? hi - 1 - pt->applied : 0;
		info[p].failed = pt->owned && pt->failed;
		info[p].held_back = pt->owned && !pt->failed && held != NULL;
		info[p].store_bytes = info[p].store_records = 0;
		if (pt->st)
			store_size(pt->st, &info[p].store_bytes, &info[p].store_records);
		snprintf(info[p].problem, sizeof info[p].problem, "%s",
		         info[p].failed ? pt->problem : info[p].held_back ? held : "");
		pthread_mutex_unlock(&pt->mu);
	}
}

const char *
partitions_held_back(partitions *t)
{
	int64_t now = stall_now_ms();

	return stall_suspect(&t->stall, now)
	           ? "this node stalled; its reads resume once it has caught up with Kafka"
	       : !stall_leased(&t->stall, now)
	           ? "this node's read lease has lapsed: the group coordinator has not accepted its offset commits "
	             "lately, so another node may own its partitions; reads resume once it does"
	           : NULL;
}

struct stall *
partitions_stall(partitions *t)
{
	return &t->stall;
}

int
partitions_read_begin(partitions *t, int32_t p, int64_t min, store **s)
{
	part *pt = &t->parts[p];
	int64_t now = stall_now_ms();
	int rc;

	if (stall_suspect(&t->stall, now))
		return PROFILE_UNAVAILABLE;
	pthread_rwlock_rdlock(&pt->rw);
	pthread_mutex_lock(&pt->mu);
	rc = pt->held && !pt->owned && wire_mono_ms() < pt->held_until
	         ? (pt->applied >= min ? PROFILE_OK : PROFILE_UNAVAILABLE) /* it applies nothing more */
	     : !pt->owned                              ? PROFILE_UNAVAILABLE
	     : pt->failed || !pt->st                   ? PROFILE_FAILED_PRECONDITION
	     : !pt->active || pt->applied < min        ? PROFILE_ABORTED
	     : !stall_leased(&t->stall, now)           ? PROFILE_UNAVAILABLE /* another node may own it */
	                                               : PROFILE_OK;
	pthread_mutex_unlock(&pt->mu);
	if (rc != PROFILE_OK) {
		pthread_rwlock_unlock(&pt->rw);
		return rc;
	}
	*s = pt->st;
	return PROFILE_OK;
}

int
partitions_wait_read(partitions *t, int32_t p, int64_t min, partition_waiter *w, partition_wake_fn wake)
{
	part *pt = &t->parts[p];
	int64_t offset;

	pthread_mutex_lock(&pt->mu);
	offset = pt->active && pt->applied < min ? min : PARTITION_ACTIVE;
	pthread_mutex_unlock(&pt->mu);
	return partitions_wait(t, p, offset, w, wake);
}

void
partitions_read_end(partitions *t, int32_t p)
{
	pthread_rwlock_unlock(&t->parts[p].rw);
}
