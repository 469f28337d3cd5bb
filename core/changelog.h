/* changelog.h: the Kafka side of a core node.
 *
 * Owns the librdkafka handles: the producers (in transactional mode, the
 * default, one transactional producer per partition this node writes; else
 * one idempotent producer; acks=all, Kafka's murmur2 partitioning computed
 * by us and set explicitly) and one group consumer on the `profiles` topic,
 * which reads read_committed. The consumer thread is the only thread that
 * writes to the stores: it hands each batch of records to the handler, and
 * tells it when partitions are assigned and revoked. In replicated mode a
 * second consumer, the follower, reads every partition for the stores, and
 * the group consumer only decides ownership. rd_kafka error codes are
 * mapped to profile statuses here and never leave this module.
 */
#ifndef PROFILE_CHANGELOG_H
#define PROFILE_CHANGELOG_H

#include <stddef.h>
#include <stdint.h>

#include "profile/status.h"
#include "record.h"

typedef struct changelog changelog;

/* The outcome of one changelog_produce, embedded in what waits for it:
 * done(d, PROFILE_OK, p, offset) once the record is in the log,
 * PROFILE_UNAVAILABLE when it surely is not, PROFILE_DEADLINE_EXCEEDED when
 * that is unknown (it timed out). Runs on the producer's poll thread (or the
 * consumer's, while a revoke waits for records in flight). */
typedef struct changelog_delivery changelog_delivery;
struct changelog_delivery {
	void (*done)(changelog_delivery *d, int status, int32_t p, int64_t offset);
};

/* What the changelog asks of the node. Every callback runs on the consumer
 * thread. */
typedef struct changelog_handler {
	void *arg;
	/* Partition p is now ours. Return the offset to resume from (the last
	 * applied one, to verify it, or CHANGELOG_OFFSET_BEGINNING). lo/hi are
	 * the log's watermarks (-1 when they could not be read). */
	int64_t (*assigned)(void *arg, int32_t p, int64_t lo, int64_t hi);
	/* Partition p is no longer ours: lost (the group moved it while this
	 * node was away, so another node may already write it), or revoked in
	 * an orderly rebalance (records produced before are in the log ahead of
	 * anything the next owner writes: the producer is flushed first). */
	void (*revoked)(void *arg, int32_t p, int lost);
	/* Records of partition p in log order. Return CHANGELOG_CONTINUE to go
	 * on, or an offset (or CHANGELOG_OFFSET_BEGINNING) to be fed p again
	 * from there: after a failed apply, or when the store found the log is
	 * not the one it followed. */
	int64_t (*records)(void *arg, int32_t p, const store_record *recs, size_t n);
	/* Records of p this node produced, in log order, known from their
	 * acknowledgements before the consumer reads them back: the handler
	 * may apply them now if nothing is missing before them (the consumer
	 * still reads them, and skips what was applied). Optional. */
	void (*acked)(void *arg, int32_t p, const store_record *recs, size_t n);
	/* The consumer is up to date with p up to hi (next offset): called
	 * when a fetch shows no more records. */
	void (*caught_up)(void *arg, int32_t p, int64_t hi);
	/* Every half second, for each partition the stores are fed: return an
	 * offset to be fed p again from there (a store that works again), or
	 * CHANGELOG_CONTINUE. Optional. */
	int64_t (*idle)(void *arg, int32_t p);
	/* After each rebalance: the whole assignment now (consumer thread). */
	void (*rebalanced)(void *arg, const int32_t *parts, size_t n);
	void *rebalanced_arg;
	/* Replicated mode with a follow set (NULL: every partition is
	 * followed): 1 when p is to be followed now. Asked for every partition
	 * on the consumer thread a few times a second; a partition that turns
	 * wanted is assigned from where `assigned` says, one that turns
	 * unwanted is revoked (not lost). */
	int (*follows)(void *arg, int32_t p);
	void *follows_arg;
} changelog_handler;

typedef struct changelog_config {
	const char *brokers; /* bootstrap list */
	const char *topic;   /* "profiles" */
	const char *group;   /* consumer group id */
	const char *client_id;
	int32_t partitions; /* partitions to create the topic with, if absent */
	/* "key=value" librdkafka properties, NULL-terminated arrays or NULL:
	 * for both clients, then for each one (later ones win). */
	const char *const *kafka_opts;
	const char *const *producer_opts;
	const char *const *consumer_opts;
	/* Replicated state: the group consumer only decides ownership (its
	 * partitions stay paused) and a follower consumer, assigned every
	 * partition by hand, feeds the handler all of them. */
	int replicated;
	/* Writes in transactions, a producer per partition written (txn.c):
	 * the fence of ownership moves. Else one idempotent producer, with no
	 * fence (a test's fault point). */
	int transactional;
} changelog_config;

/* Connects, makes sure the topic exists (trying to create it compacted; a
 * broker that cannot create topics never blocks start-up beyond a few
 * seconds) and reads its partition count. Nothing is consumed or produced
 * until changelog_start. On PROFILE_OK *out is a new handle for
 * changelog_close. Errors: PROFILE_INVALID_ARGUMENT (bad property, message
 * logged), PROFILE_UNAVAILABLE (no broker answered, or the topic does not
 * exist and cannot be made). */
int changelog_open(changelog **out, const changelog_config *cfg);

/* Watches for stalls of this process long enough to have ended its group
 * session (stall.h), from changelog_start: limit_ms from the group
 * consumer's session.timeout.ms and heartbeat.interval.ms (the session,
 * less two heartbeats, and half of it at least), settle_ms from the
 * heartbeat (one, and a second more). And, unless lease_ms is 0 or the
 * changelog is replicated, keeps s's read lease (lease_ms; -1: the same as
 * limit_ms), renewed every half heartbeat. s must outlive the changelog.
 * Call before changelog_start. */
struct stall;
void changelog_watch_stalls(changelog *cl, struct stall *s, int64_t lease_ms);

/* Starts the threads and joins the group; h's callbacks begin. Once. */
int changelog_start(changelog *cl, const changelog_handler *h);

/* Leaves the group (revoking every partition through the handler), flushes
 * the producer for at most timeout_ms, and frees. NULL is a no-op. */
void changelog_close(changelog *cl, int timeout_ms);

/* Partitions of the topic. */
int32_t changelog_partition_count(const changelog *cl);

/* Appends a record (value NULL = tombstone) to partition p: in its next
 * transaction in transactional mode (changelog_claim first). value, when
 * not NULL, is
 * malloc'd and taken on PROFILE_OK (librdkafka frees it once sent: no
 * copy); on failure it stays the caller's. The outcome arrives once through
 * d. PROFILE_OK when queued; PROFILE_UNAVAILABLE when not (nothing was
 * produced, d will not be called). */
int changelog_produce(changelog *cl, int32_t p, const char *key, size_t key_len, void *value,
                      size_t value_len, changelog_delivery *d);

/* Transactional mode: this node writes p from now on (the claim `gen`).
 * A producer with p's transactional.id is made and initialized, which
 * fences every earlier writer of p; then ready(arg, p, gen, end) tells the
 * log end seen after that, which the store must reach before a write is
 * validated (any thread; called again after a producer had to be made
 * anew). PROFILE_OK, or PROFILE_INVALID_ARGUMENT when not transactional. */
typedef void (*txn_ready_fn)(void *arg, int32_t p, uint64_t gen, int64_t end);
int changelog_claim(changelog *cl, int32_t p, uint64_t gen, txn_ready_fn ready, void *arg);

/* Transactional mode: p is no longer written here; its producer is closed
 * once its transaction under way ends, and what waits is answered
 * UNAVAILABLE. */
void changelog_release(changelog *cl, int32_t p);

/* What the changelog counted since it opened, for the status. */
typedef struct changelog_stats {
	uint64_t produce_errors;  /* records whose delivery failed */
	uint64_t request_retries;   /* requests the producer sent a broker again */
	uint64_t producer_restarts; /* producers replaced after a fatal error */
	uint64_t rebalances;      /* assignment changes of the group consumer */
} changelog_stats;

void changelog_counters(changelog *cl, changelog_stats *out);

/* The log end offset of p last seen by the consumer, or -1. */
int64_t changelog_high_watermark(changelog *cl, int32_t p);

#endif
