/* partition.h: the partitions of `profiles` as this node sees them.
 *
 * For each partition: whether this node owns it, its store while owned, and
 * its restore state. A newly assigned partition is *restoring* until its
 * store has applied the log up to the end seen at assignment; only then is it
 * *active* and may answer reads and validate writes (a store that is not
 * caught up must never answer NOT_FOUND). Waiters let an operation continue
 * when a partition becomes active or has applied a given offset: that is how
 * a write replies only after its own store applied it (read-your-writes).
 *
 * The changelog's consumer thread drives the table through the
 * partitions_on_* functions; any thread may read and wait.
 */
#ifndef PROFILE_PARTITION_H
#define PROFILE_PARTITION_H

#include <stdint.h>

#include "record.h"
#include "store.h"

typedef struct partitions partitions;

typedef struct partition_waiter partition_waiter;

/* Called once, without locks held, on the consumer thread (or on the thread
 * of partitions_wait when the condition already holds: it is then not
 * called; see partitions_wait). status: PROFILE_OK when the condition holds,
 * PROFILE_UNAVAILABLE when the partition was revoked first. */
typedef void (*partition_wake_fn)(partition_waiter *w, int status);

/* Embedded in the waiting operation; owned by it. */
struct partition_waiter {
	partition_waiter *next;
	int64_t offset; /* wake when applied >= offset; -1: when active */
	partition_wake_fn wake;
	int queued;
};

typedef struct partition_info {
	int32_t partition;
	int owned;
	int active;
	int64_t applied;   /* last applied offset, -1 when none */
	int64_t lag;       /* records between the store and the log end seen */
	uint64_t replayed; /* records applied while restoring, since assignment */
} partition_info;

/* A table for `count` partitions whose stores live under dir (created if
 * needed) with Kyoto Cabinet tuning `tune`. PROFILE_OK and *out, or
 * PROFILE_INTERNAL / PROFILE_RESOURCE_EXHAUSTED. */
int partitions_new(partitions **out, const char *dir, const char *tune, int32_t count);

/* Closes every open store. NULL is a no-op. */
void partitions_free(partitions *t);

int32_t partitions_count(const partitions *t);

/* The changelog handler's callbacks (see changelog.h); they take the table
 * as arg. */
int64_t partitions_on_assigned(void *t, int32_t p, int64_t lo, int64_t hi);
void partitions_on_revoked(void *t, int32_t p);
int64_t partitions_on_records(void *t, int32_t p, const store_record *recs, size_t n);
void partitions_on_caught_up(void *t, int32_t p, int64_t hi);

/* Starts a read of partition p. PROFILE_OK: *s is its store, valid until
 * partitions_read_end(t, p), which must follow. PROFILE_UNAVAILABLE: not
 * owned. PROFILE_ABORTED: owned but restoring (wait with partitions_wait). */
int partitions_read_begin(partitions *t, int32_t p, store **s);
void partitions_read_end(partitions *t, int32_t p);

/* Waits until p is active (offset -1) or has applied offset. Returns
 * PROFILE_OK when that already holds (wake is not called),
 * PROFILE_UNAVAILABLE when p is not owned (wake is not called), or
 * PROFILE_ABORTED when w was queued: wake will be called once, unless
 * partitions_cancel removes it first. */
int partitions_wait(partitions *t, int32_t p, int64_t offset, partition_waiter *w, partition_wake_fn wake);

/* Removes a queued waiter. 1 when removed (wake will not be called), 0 when
 * its wake has already been taken for calling. */
int partitions_cancel(partitions *t, int32_t p, partition_waiter *w);

/* 1 when p is owned by this node (active or restoring). */
int partitions_owned(partitions *t, int32_t p);

/* Fills info[0..count) (count = partitions_count) with a snapshot.
 * log_end[p], when given, is the log end offset of p as the caller last saw
 * it (for the lag); NULL: only what the table itself has seen. */
void partitions_info(partitions *t, const int64_t *log_end, partition_info *info);

#endif
