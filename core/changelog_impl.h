/* changelog_impl.h: the changelog's state, shared by its files
 * (changelog.c: the consumers and making everything; producer.c: the
 * producer; txn.c: the transactional producers; lease.c: the read lease).
 * Nothing outside them includes it.
 */
#ifndef PROFILE_CHANGELOG_IMPL_H
#define PROFILE_CHANGELOG_IMPL_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdint.h>

#include "changelog.h"
#include "stall.h"

typedef struct txn_part txn_part;

/* A record of the topic this node produced, copied from its
 * acknowledgement for the consumer thread (changelog.h: acked). */
typedef struct acked_record {
	struct acked_record *next;
	int32_t p;
	store_record rec; /* key and value point into this allocation */
} acked_record;

/* At most this many wait for the consumer thread; past it, records are
 * left to be read back from the log as any other. */
#define ACKED_MAX 1024

struct changelog {
	/* The producer, replaced after a fatal error (renew_producer): users
	 * hold producer_rw for reading while they use it. */
	rd_kafka_t *producer;
	pthread_rwlock_t producer_rw;
	rd_kafka_conf_t *producer_conf; /* to make another */
	int producer_fatal;             /* atomic: the producer raised a fatal error */
	rd_kafka_t *consumer; /* the group consumer */
	rd_kafka_t *follower; /* replicated mode: reads every partition */
	int replicated;
	pthread_t group_thread;
	changelog_handler h;
	char *topic;
	int32_t partitions;
	int stopping; /* atomic */
	pthread_t consumer_thread, producer_thread;
	/* changelog_watch_stalls: its thread ticks `stall`; the thread that
	 * polls the group consumer ends a stall. */
	stall *stall;
	pthread_t stall_thread;
	/* The read lease (stall.h), renewed by lease.c's thread every
	 * lease_tick_ms when stall->lease_ms is set; applied_next: per
	 * partition, the offset after what its store applied (-1: none yet),
	 * which the renewals commit. */
	int64_t *applied_next; /* atomics */
	int64_t lease_tick_ms;
	pthread_t lease_thread;
	int leasing;
	int threads_started;
	/* Transactional mode (txn.c): per partition, its producer and queue. */
	txn_part *txn;
	char *group;
	uint8_t *following;  /* replicated mode with a follow set: per partition, followed now */
	/* Acknowledged records for the consumer thread (oldest first), and
	 * the queue its poll waits on, to wake it. */
	pthread_mutex_t acked_mu;
	acked_record *acked, **acked_tail;
	size_t n_acked;
	rd_kafka_queue_t *data_queue;
	/* atomics, for the status */
	uint64_t produce_errors, rebalances, producer_restarts;
	int assigned_once; /* the group consumer has had its first assignment */
	uint64_t retries_now, retries_base; /* this producer's, and those before it */
};


/* lease.c: the read lease's thread (arg: the changelog). */
void *lease_main(void *arg);

/* producer.c: the producer thread's body (arg: the changelog), which also
 * renews a producer after a fatal error; the callbacks a producer's
 * configuration needs; and a flush: waits up to timeout_ms for every record
 * in flight, 0 when none is left. */
void *producer_main(void *arg);
/* The requests a producer sent a broker again, summed over its brokers, from
 * its statistics (json). */
uint64_t producer_stats_retries(const char *json);
void producer_conf_callbacks(rd_kafka_conf_t *conf);
int producer_flush(changelog *cl, int timeout_ms);
/* A record of the topic now in the log (committed), copied for the
 * consumer thread to apply (changelog.h: acked); value NULL: a tombstone.
 * Any thread. */
void changelog_keep_acked(changelog *cl, int32_t p, int64_t offset, const void *key, size_t key_len,
                          const void *value, size_t value_len);

/* txn.c: the partitions' transactional producers: made by txn_open (each
 * thread once its partition is first claimed), joined and freed by
 * txn_close once `stopping` is set. txn_produce queues a record for p's
 * next transaction (PROFILE_UNAVAILABLE when p is not ready to be written
 * here: nothing was taken); txn_flush waits up to timeout_ms for the
 * transactions under way and queued, and returns how many partitions still
 * have some. */
int txn_open(changelog *cl);
void txn_close(changelog *cl);
int txn_produce(changelog *cl, int32_t p, const char *key, size_t key_len, void *value, size_t value_len,
                changelog_delivery *d);
int txn_flush(changelog *cl, int timeout_ms);
/* The transactional producers' request retries now (changelog_counters). */
uint64_t txn_retries(changelog *cl);
/* Consumer thread: hands the acknowledged records to the handler's acked
 * callback (recs: room for ACKED_MAX), oldest first, a run of one
 * partition at a time; frees them. */
void producer_apply_acked(changelog *cl, store_record *recs);

#endif
