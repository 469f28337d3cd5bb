/* partition_impl.h: the partition table's insides, shared by partition.c
 * (ownership, restore state, reads and waits), partition_view.c and
 * fencing.c (writing: claims, the fencing of earlier writers, writes
 * waiting to be applied). Not for other modules: they use partition.h. */
#ifndef PROFILE_PARTITION_IMPL_H
#define PROFILE_PARTITION_IMPL_H

#include <pthread.h>

#include "partition.h"
#include "stall.h"

#define STORE_RETRY_MS 1000
#define STORE_RETRY_MAX_MS 8000

typedef struct part {
	pthread_mutex_t mu;
	pthread_rwlock_t rw; /* read: store in use; write: store opened/closed */
	store *st;
	int owned;
	int active;
	int64_t applied;  /* last applied offset, -1 = none */
	int64_t own_last; /* the last record applied from this node's acknowledgement, -1 = none */
	int64_t target;   /* restoring until applied >= target */
	int target_known; /* else: until the consumer reports the end */
	int64_t hi;       /* log end last seen, -1 = unknown */
	int64_t fresh_at; /* monotonic ms: last seen at the log end (applied >= hi - 1) */
	uint64_t replayed;
	int verify; /* first record must be the one at `applied` */
	uint64_t fingerprint;
	int64_t lo;            /* log start seen at assignment, -1 = unknown */
	int64_t rebuild_start; /* monotonic ms a rebuild from the log began, 0 = none */
	/* A store that cannot be opened or written: the partition is
	 * unavailable, records are not applied (the consumer is sent back
	 * to applied + 1 once the store works again). */
	/* Lost (the group session ended, as when Kafka is away): the store
	 * stays open to answer reads until held_until (monotonic ms). */
	int held;
	int64_t held_until;
	int failed;
	int recovering;                 /* reopened after failing: not yet applied a batch */
	int64_t failed_since, retry_at; /* monotonic ms */
	int retry_ms;                   /* backoff */
	char problem[200];
	partition_waiter *waiters;
	/* Writing. */
	int claimed;        /* this node writes p */
	uint64_t gen;       /* bumped by every claim and release */
	int fence_asked;    /* need_fence called for gen, no answer yet */
	int64_t fenced_end; /* the log end once earlier writers were fenced, -1 = not yet */
	uint64_t restores;  /* atomic: times it replayed records to become active */
} part;

struct partitions {
	char *dir;
	char *tune;
	int keep_damaged; /* set-aside copies of damaged stores kept per partition */
	int lost_read_ms; /* how long a lost partition's store still answers reads */
	int32_t count;
	part *parts;
	partition_hooks hooks;
	int fencing;
	uint64_t applied_on_ack; /* atomic: records applied from their acknowledgement */
	stall stall;             /* reads refused while it says so */
};

enum { KEPT, REVOKED, LOST }; /* how take_waiters finds p */

/* What to ask of the node once the locks are released. */
typedef struct asks {
	int fence; /* need_fence(gen) */
	uint64_t gen;
} asks;

/* partition.c */
partition_waiter *pt_take_waiters(const partitions *t, part *pt, int how);
void pt_wake_all(partition_waiter *w);
int pt_enqueue(partitions *t, int32_t p, partition_waiter *w, partition_wake_fn wake, int not_owned);

void pt_release_held(partitions *t, int32_t p, int expired_only);

/* fencing.c */
int pt_writable(const partitions *t, const part *pt);
asks pt_asks_for(const partitions *t, part *pt);
void pt_ask(partitions *t, int32_t p, asks a);
void pt_settle_unlock(partitions *t, part *pt, int32_t p);

#endif
