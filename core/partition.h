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
 * Writing: the node claims the partitions it writes (its share of the
 * consumer group). A claimed partition is *writable* once it is active, the
 * node has fenced every earlier writer of it (the need_fence hook: it takes
 * the partition's transactional id) and its store has read the log up to
 * the end seen after that.
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
 * that claims, releases or hears that earlier writers are fenced; never on the thread of
 * partitions_wait when the condition already holds: see partitions_wait).
 * status: PROFILE_OK when the condition holds, PROFILE_UNAVAILABLE when the
 * partition was revoked (or released) first; for partitions_wait_applied,
 * see there. */
typedef void (*partition_wake_fn)(partition_waiter *w, int status);

/* Embedded in the waiting operation; owned by it. */
struct partition_waiter {
	partition_waiter *next;
	int64_t offset; /* wake when applied >= offset; PARTITION_ACTIVE, PARTITION_WRITABLE */
	int write;      /* waits in partitions_wait_applied */
	partition_wake_fn wake;
	int queued;
	int status; /* the status it is woken with */
};

#define PARTITION_ACTIVE (-1)
#define PARTITION_WRITABLE (-2)

/* What the table asks of the node; each runs without locks held. */
typedef struct partition_hooks {
	void *arg;
	/* p is claimed and active and its earlier writers are not fenced
	 * yet: fence them, and report the log end seen then with
	 * partitions_fence_written(gen). */
	void (*need_fence)(void *arg, int32_t p, uint64_t gen);
	/* p is no longer claimed: stop writing it (changelog_release). */
	void (*release)(void *arg, int32_t p);
} partition_hooks;

typedef struct partition_info {
	int32_t partition;
	int owned;
	int active;
	int64_t applied;   /* last applied offset, -1 when none */
	int64_t lag;       /* records between the store and the log end seen */
	uint64_t replayed; /* records applied while restoring, since assignment */
	int failed;        /* owned, but its store cannot be opened or written */
	int held_back;     /* owned and working, but reads are held back (partitions_held_back) */
	char problem[200]; /* why, when failed or held back */
	uint64_t store_bytes, store_records; /* store_size, 0 without a store */
} partition_info;

/* How stale this node's copy of p is: *lag records behind the log end it
 * knows, and *age_ms since it was last at that end (0 while it is there).
 * 1 when p is followed here and readable (active, its store working). */
int partitions_staleness(partitions *t, int32_t p, int64_t *age_ms, int64_t *lag);

/* Partitions that replayed records from the log to become active, since
 * the table was made. */
uint64_t partitions_restores(partitions *t);

/* Records this node applied from their acknowledgement (partitions_on_acked),
 * since the table was made. */
uint64_t partitions_applied_on_ack(partitions *t);

/* A table for `count` partitions whose stores live under dir (created if
 * needed) with Kyoto Cabinet tuning `tune`. PROFILE_OK and *out, or
 * PROFILE_INTERNAL / PROFILE_RESOURCE_EXHAUSTED. */
int partitions_new(partitions **out, const char *dir, const char *tune, int32_t count);

/* How many set-aside copies of a damaged store to keep per partition
 * (default 3; older ones are removed). */
void partitions_set_keep_damaged(partitions *t, int keep);

/* How long (ms; 0: not at all) the store of a partition this node lost
 * (its group session ended, as when it cannot reach Kafka) still answers
 * reads. Until then nobody else may have taken it over; after, another
 * node may have (also one that resumed after a stall: it lost p while
 * another took it over), and its newest writes would be missing here.
 * Default 0. */
void partitions_set_lost_read_ms(partitions *t, int ms);

/* Closes every open store. NULL is a no-op. */
void partitions_free(partitions *t);

/* Sets the hooks (before the changelog starts). fencing 0 turns fencing
 * off (a test's fault point): claimed partitions are writable once active,
 * and nothing fences earlier writers. */
void partitions_set_hooks(partitions *t, const partition_hooks *h, int fencing);

/* This node writes p from now (claim 1) or no longer (claim 0): a release
 * wakes the writers waiting for p to be writable, with UNAVAILABLE, and
 * ends the reads of a store kept since p was lost (the group has moved p
 * elsewhere). */
void partitions_claim(partitions *t, int32_t p, int claim);

/* The fencing asked for by need_fence(gen) is done, and the log ended at
 * offset `end` then (or, with end -1, it failed: it is asked for again on
 * the next partitions_tick). Ignored when p was released or claimed again
 * since. */
void partitions_fence_written(partitions *t, int32_t p, uint64_t gen, int64_t end);

/* Asks again for what a failure left undone (fencing that failed), and ends
 * the reads of stores held since a loss once their time is up. Call every
 * second or so. */
void partitions_tick(partitions *t);

/* Just before a write of p is handed to Kafka: PROFILE_OK when p is
 * writable here, else PROFILE_UNAVAILABLE (nothing may be written). */
int partitions_writable(partitions *t, int32_t p);

int32_t partitions_count(const partitions *t);

/* The changelog handler's callbacks (see changelog.h); they take the table
 * as arg. */
int64_t partitions_on_assigned(void *t, int32_t p, int64_t lo, int64_t hi);
void partitions_on_revoked(void *t, int32_t p, int lost);
int64_t partitions_on_records(void *t, int32_t p, const store_record *recs, size_t n);
/* This node's own records of p, from their acknowledgements (the
 * changelog's acked callback): applied as partitions_on_records would when
 * the first follows the applied offset, so a write is answered without
 * waiting for the consumer to read it back; else left to the consumer. */
void partitions_on_acked(void *t, int32_t p, const store_record *recs, size_t n);
void partitions_on_caught_up(void *t, int32_t p, int64_t hi);
/* The consumer is idle for p (called every half second or so): when p's
 * store failed and its retry is due, opens it again and returns the offset
 * to consume p from, else CHANGELOG_CONTINUE. */
int64_t partitions_on_idle(void *t, int32_t p);

/* The table's stall watch (stall.h), for the changelog to drive: while it
 * suspects a stall, no read is begun (PROFILE_UNAVAILABLE). Not watched
 * until its first tick. */
struct stall *partitions_stall(partitions *t);

/* Starts a read of partition p that must see at least offset min (-1: any).
 * PROFILE_OK: *s is its store, valid until partitions_read_end(t, p), which
 * must follow. PROFILE_UNAVAILABLE: not served here (or a store held after
 * a loss that has not applied min, or the process may have stalled past its
 * group session: partitions_stall). PROFILE_FAILED_PRECONDITION: its store
 * is unavailable. PROFILE_ABORTED: served, but restoring or behind min
 * (wait with partitions_wait_read). */
int partitions_read_begin(partitions *t, int32_t p, int64_t min, store **s);
void partitions_read_end(partitions *t, int32_t p);

/* Waits as a read of p at min must: until p is active, and then until it
 * has applied min. As partitions_wait. */
int partitions_wait_read(partitions *t, int32_t p, int64_t min, partition_waiter *w, partition_wake_fn wake);

/* Waits until p is active (offset PARTITION_ACTIVE), writable
 * (PARTITION_WRITABLE) or has applied offset. Returns PROFILE_OK when that
 * already holds (wake is not called),
 * PROFILE_UNAVAILABLE when p is not owned (wake is not called), or
 * PROFILE_ABORTED when w was queued: wake will be called once, unless
 * partitions_cancel removes it first. */
int partitions_wait(partitions *t, int32_t p, int64_t offset, partition_waiter *w, partition_wake_fn wake);

/* Waits until the write committed at offset of p has been applied here.
 * Returns, without calling wake, PROFILE_OK when it has, or when this node
 * does not follow p (the write is in the log for good; the next owner reads
 * it before it writes). PROFILE_ABORTED: queued, and wake gets PROFILE_OK
 * once applied, or when p is revoked first. */
int partitions_wait_applied(partitions *t, int32_t p, int64_t offset, partition_waiter *w,
                            partition_wake_fn wake);

/* Removes a queued waiter. 1 when removed (wake will not be called), 0 when
 * its wake has already been taken for calling. */
int partitions_cancel(partitions *t, int32_t p, partition_waiter *w);

/* 1 when p is owned by this node (active or restoring), or was lost lately
 * and its store still answers reads (partitions_set_lost_read_ms). */
int partitions_owned(partitions *t, int32_t p);

/* Fills info[0..count) (count = partitions_count) with a snapshot.
 * log_end[p], when given, is the log end offset of p as the caller last saw
 * it (for the lag); NULL: only what the table itself has seen. */
void partitions_info(partitions *t, const int64_t *log_end, partition_info *info);

/* Why this node refuses reads of every partition it follows right now (the
 * process stalled and has not caught up with Kafka, or its read lease has
 * lapsed), or NULL when it serves them. */
const char *partitions_held_back(partitions *t);

#endif
