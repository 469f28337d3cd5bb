/* txn.c: the changelog's transactional writing (changelog.h): a producer of
 * its own for each partition this node writes, with the transactional.id
 * "<group>.<topic>.<partition>", and a thread that puts the records queued
 * for the partition into one transaction at a time.
 *
 * Fencing: the node that takes a partition over calls init_transactions
 * for its id before it writes. The coordinator then aborts the previous
 * owner's open transaction and bumps the id's epoch, so whatever that
 * owner still sends (a produce, a commit) is refused: a record a former
 * owner wrote is never visible to a read_committed reader. The partition
 * is writable once the node's store has read it up to the end seen after
 * that (changelog_claim's ready).
 *
 * Group commit: while a transaction commits, the records that arrive wait
 * for the next one, which takes all of them. A record's outcome is told
 * once its transaction ended: PROFILE_OK (committed), PROFILE_UNAVAILABLE
 * (aborted, or never sent: it is not in the log), PROFILE_DEADLINE_EXCEEDED
 * (the commit's outcome is unknown).
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "changelog.h"
#include "changelog_impl.h"
#include "deadline.h"
#include "log.h"
#include "wire.h"

#define TXN_API_MS 10000  /* each transactional call's own timeout */
#define TXN_RETRY_MS 1000 /* between attempts to initialize */

typedef struct txn_rec {
	struct txn_rec *next;
	void *value; /* owned until produced */
	size_t value_len;
	changelog_delivery *d;
	int64_t offset;
	int err; /* delivery failed */
	int done;
	size_t key_len;
	char key[]; /* copied */
} txn_rec;

struct txn_part {
	changelog *cl;
	int32_t p;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	int started;
	int claimed;   /* this node writes p */
	uint64_t gen;  /* of the claim */
	uint64_t have; /* the claim rk was initialized for, 0 = none */
	txn_ready_fn ready;
	void *ready_arg;
	rd_kafka_t *rk;
	txn_rec *q, **qtail; /* waiting for the next transaction */
	int busy;            /* a transaction is under way */
	uint64_t retries;    /* atomic: rk's request retries (its statistics) */
};

/* A partition producer's callbacks; opaque is its txn_part. */
static void
txn_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	txn_rec *r = m->_private;

	(void)rk;
	r->offset = m->offset;
	r->err = m->err != RD_KAFKA_RESP_ERR_NO_ERROR;
	r->done = 1;
	if (r->err) {
		__atomic_add_fetch(&((txn_part *)opaque)->cl->produce_errors, 1, __ATOMIC_RELAXED);
		log_warn("kafka: transactional delivery to partition %d failed: %s", (int)m->partition,
		         rd_kafka_err2str(m->err));
	}
}

static int
txn_on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	(void)len;
	__atomic_store_n(&((txn_part *)opaque)->retries, producer_stats_retries(json), __ATOMIC_RELAXED);
	return 0; /* librdkafka frees json */
}

/* A fatal error (fenced, out of step with the broker) also fails the
 * transaction's next call: the thread makes a new producer then. */
static void
txn_on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	int32_t p = ((txn_part *)opaque)->p;
	char why[512];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, why, sizeof why);
		log_error("kafka: partition %d: the producer hit a fatal error (%s); making a new one", (int)p, why);
		return;
	}
	log_warn("kafka: partition %d's producer: %s: %s", (int)p, rd_kafka_err2name(err), reason);
}

/* Under tp->mu: waits on tp->cv for a change, or for ms at most (its clock
 * is CLOCK_MONOTONIC, txn_open). */
static void
wait_ms(txn_part *tp, int64_t ms)
{
	struct timespec at;

	deadline_after(&at, CLOCK_MONOTONIC, ms);
	pthread_cond_timedwait(&tp->cv, &tp->mu, &at);
}

/* Answers and frees a list of records. */
static void
answer(txn_part *tp, txn_rec *list, int status)
{
	while (list) {
		txn_rec *next = list->next;

		if (status == PROFILE_OK)
			changelog_keep_acked(tp->cl, tp->p, list->offset, list->key, list->key_len, list->value,
			                     list->value_len);
		list->d->done(list->d, status, tp->p, status == PROFILE_OK ? list->offset : -1);
		free(list->value);
		free(list);
		list = next;
	}
}

/* The thread's, without tp->mu held (rk is the thread's alone). */
static void
drop_producer(txn_part *tp)
{
	pthread_mutex_lock(&tp->mu);
	tp->have = 0; /* txn_produce takes nothing more */
	pthread_mutex_unlock(&tp->mu);
	if (tp->rk == NULL)
		return;
	__atomic_add_fetch(&tp->cl->retries_base, __atomic_exchange_n(&tp->retries, 0, __ATOMIC_RELAXED),
	                   __ATOMIC_RELAXED);
	rd_kafka_purge(tp->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_destroy(tp->rk);
	tp->rk = NULL;
}

/* A producer for p that fenced every earlier one, or NULL. */
static rd_kafka_t *
init_producer(txn_part *tp)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(tp->cl->producer_conf);
	char id[512], err[512];
	rd_kafka_error_t *error;
	rd_kafka_t *rk;

	snprintf(id, sizeof id, "%s.%s.%d", tp->cl->group, tp->cl->topic, (int)tp->p);
	rd_kafka_conf_set_opaque(conf, tp);
	rd_kafka_conf_set_dr_msg_cb(conf, txn_on_delivery);
	rd_kafka_conf_set_stats_cb(conf, txn_on_stats);
	rd_kafka_conf_set_error_cb(conf, txn_on_error);
	if (rd_kafka_conf_set(conf, "transactional.id", id, err, sizeof err) != RD_KAFKA_CONF_OK ||
	    (rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err)) == NULL) {
		log_error("kafka: partition %d: cannot make a transactional producer: %s", (int)tp->p, err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	if ((error = rd_kafka_init_transactions(rk, TXN_API_MS)) != NULL) {
		log_warn("kafka: partition %d: cannot take the transactional id %s: %s; trying again", (int)tp->p, id,
		         rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		rd_kafka_destroy(rk);
		return NULL;
	}
	return rk;
}

/* Produces the batch in one transaction and returns the status every record
 * of it is answered with. On any status but PROFILE_OK the producer may be
 * unusable: *broken says to make a new one (which aborts what is open). */
static int
run_transaction(txn_part *tp, txn_rec *batch, int *broken)
{
	rd_kafka_error_t *error;
	size_t sent = 0, done;
	int failed = 0;

	*broken = 0;
	if ((error = rd_kafka_begin_transaction(tp->rk)) != NULL) {
		log_warn("kafka: partition %d: cannot begin a transaction: %s", (int)tp->p,
		         rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		*broken = 1;
		return PROFILE_UNAVAILABLE;
	}
	for (txn_rec *r = batch; r && !failed; r = r->next) {
		rd_kafka_resp_err_t err = rd_kafka_producev(
		    tp->rk, RD_KAFKA_V_TOPIC(tp->cl->topic), RD_KAFKA_V_PARTITION(tp->p),
		    RD_KAFKA_V_KEY(r->key, r->key_len), RD_KAFKA_V_VALUE(r->value, r->value_len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			log_warn("kafka: partition %d: produce in a transaction: %s", (int)tp->p, rd_kafka_err2str(err));
			failed = 1;
		} else {
			sent++;
		}
	}
	/* The commit would flush too, but its flush wakes every 10 ms only. */
	do {
		rd_kafka_poll(tp->rk, 5);
		done = 0;
		for (txn_rec *r = batch; r; r = r->next) {
			done += r->done;
			failed |= r->err;
		}
	} while (done < sent);
	if (!failed) {
		error = rd_kafka_commit_transaction(tp->rk, TXN_API_MS);
		if (error == NULL)
			return PROFILE_OK;
		log_warn("kafka: partition %d: commit: %s", (int)tp->p, rd_kafka_error_string(error));
		if (!rd_kafka_error_txn_requires_abort(error)) {
			/* Fenced, fatal or timed out: it may have committed. */
			rd_kafka_error_destroy(error);
			*broken = 1;
			return PROFILE_DEADLINE_EXCEEDED;
		}
		rd_kafka_error_destroy(error);
	}
	if ((error = rd_kafka_abort_transaction(tp->rk, TXN_API_MS)) != NULL) {
		/* The next owner, or this node's next producer, aborts it. */
		log_warn("kafka: partition %d: abort: %s", (int)tp->p, rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		*broken = 1;
	}
	return PROFILE_UNAVAILABLE;
}

static void *
txn_main(void *arg)
{
	txn_part *tp = arg;
	changelog *cl = tp->cl;
	txn_rec *batch;

	pthread_mutex_lock(&tp->mu);
	while (!__atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE)) {
		int status, broken;

		if (tp->claimed && tp->have != tp->gen) {
			uint64_t gen = tp->gen;
			rd_kafka_t *rk;
			int64_t lo = -1, hi = -1;

			pthread_mutex_unlock(&tp->mu);
			drop_producer(tp);
			rk = init_producer(tp);
			if (rk && rd_kafka_query_watermark_offsets(rk, cl->topic, tp->p, &lo, &hi, TXN_API_MS) != 0) {
				rd_kafka_destroy(rk);
				rk = NULL;
			}
			pthread_mutex_lock(&tp->mu);
			if (rk == NULL) {
				wait_ms(tp, TXN_RETRY_MS);
				continue;
			}
			tp->rk = rk;
			tp->have = gen;
			if (tp->claimed && tp->gen == gen) {
				txn_ready_fn ready = tp->ready;
				void *ready_arg = tp->ready_arg;

				pthread_mutex_unlock(&tp->mu);
				log_info("partition %d: transactional writer ready (log end %lld)", (int)tp->p,
				         (long long)hi);
				ready(ready_arg, tp->p, gen, hi);
				pthread_mutex_lock(&tp->mu);
			}
			continue;
		}
		if (!tp->claimed || tp->q == NULL) {
			if (!tp->claimed && tp->rk) {
				pthread_mutex_unlock(&tp->mu);
				drop_producer(tp);
				pthread_mutex_lock(&tp->mu);
				continue;
			}
			if (!tp->claimed && tp->q) {
				batch = tp->q;
				tp->q = NULL;
				tp->qtail = &tp->q;
				pthread_mutex_unlock(&tp->mu);
				answer(tp, batch, PROFILE_UNAVAILABLE);
				pthread_mutex_lock(&tp->mu);
				continue;
			}
			pthread_cond_wait(&tp->cv, &tp->mu);
			continue;
		}
		batch = tp->q;
		tp->q = NULL;
		tp->qtail = &tp->q;
		tp->busy = 1;
		pthread_mutex_unlock(&tp->mu);
		status = run_transaction(tp, batch, &broken);
		if (broken) {
			/* A new producer (made at once while p is claimed) aborts
			 * what this one left open. */
			drop_producer(tp);
			__atomic_add_fetch(&cl->producer_restarts, 1, __ATOMIC_RELAXED);
			log_info("kafka: partition %d: a new producer took over", (int)tp->p);
		}
		answer(tp, batch, status);
		pthread_mutex_lock(&tp->mu);
		tp->busy = 0;
		pthread_cond_broadcast(&tp->cv);
	}
	/* Closing: nothing more is sent. */
	batch = tp->q;
	tp->q = NULL;
	tp->qtail = &tp->q;
	pthread_mutex_unlock(&tp->mu);
	answer(tp, batch, PROFILE_UNAVAILABLE);
	drop_producer(tp);
	return NULL;
}

int
txn_open(changelog *cl)
{
	pthread_condattr_t ca;

	if ((cl->txn = calloc((size_t)cl->partitions, sizeof *cl->txn)) == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	for (int32_t p = 0; p < cl->partitions; p++) {
		txn_part *tp = &cl->txn[p];

		tp->cl = cl;
		tp->p = p;
		tp->qtail = &tp->q;
		pthread_mutex_init(&tp->mu, NULL);
		pthread_cond_init(&tp->cv, &ca);
	}
	pthread_condattr_destroy(&ca);
	return PROFILE_OK;
}

void
txn_close(changelog *cl)
{
	if (cl->txn == NULL)
		return;
	for (int32_t p = 0; p < cl->partitions; p++) {
		txn_part *tp = &cl->txn[p];

		pthread_mutex_lock(&tp->mu);
		pthread_cond_broadcast(&tp->cv);
		pthread_mutex_unlock(&tp->mu);
		if (tp->started)
			pthread_join(tp->th, NULL);
		pthread_mutex_destroy(&tp->mu);
		pthread_cond_destroy(&tp->cv);
	}
	free(cl->txn);
	cl->txn = NULL;
}

int
changelog_claim(changelog *cl, int32_t p, uint64_t gen, txn_ready_fn ready, void *arg)
{
	txn_part *tp;

	if (cl->txn == NULL || p < 0 || p >= cl->partitions)
		return PROFILE_INVALID_ARGUMENT;
	tp = &cl->txn[p];
	pthread_mutex_lock(&tp->mu);
	tp->claimed = 1;
	tp->gen = gen;
	tp->ready = ready;
	tp->ready_arg = arg;
	if (!tp->started && pthread_create(&tp->th, NULL, txn_main, tp) == 0)
		tp->started = 1;
	pthread_cond_broadcast(&tp->cv);
	pthread_mutex_unlock(&tp->mu);
	return tp->started ? PROFILE_OK : PROFILE_RESOURCE_EXHAUSTED;
}

void
changelog_release(changelog *cl, int32_t p)
{
	txn_part *tp;

	if (cl->txn == NULL || p < 0 || p >= cl->partitions)
		return;
	tp = &cl->txn[p];
	pthread_mutex_lock(&tp->mu);
	tp->claimed = 0;
	pthread_cond_broadcast(&tp->cv);
	pthread_mutex_unlock(&tp->mu);
}

int
txn_produce(changelog *cl, int32_t p, const char *key, size_t key_len, void *value, size_t value_len,
            changelog_delivery *d)
{
	txn_part *tp = &cl->txn[p];
	txn_rec *r;

	if ((r = malloc(sizeof *r + key_len)) == NULL)
		return PROFILE_UNAVAILABLE;
	*r = (txn_rec){.value = value, .value_len = value_len, .d = d, .offset = -1, .key_len = key_len};
	memcpy(r->key, key, key_len);
	pthread_mutex_lock(&tp->mu);
	if (!tp->claimed || tp->have != tp->gen) {
		pthread_mutex_unlock(&tp->mu);
		free(r);
		return PROFILE_UNAVAILABLE;
	}
	*tp->qtail = r;
	tp->qtail = &r->next;
	pthread_cond_broadcast(&tp->cv);
	pthread_mutex_unlock(&tp->mu);
	return PROFILE_OK;
}

int
txn_flush(changelog *cl, int timeout_ms)
{
	int64_t until = wire_mono_ms() + timeout_ms;
	int left = 0;

	if (cl->txn == NULL)
		return 0;
	for (int32_t p = 0; p < cl->partitions; p++) {
		txn_part *tp = &cl->txn[p];

		pthread_mutex_lock(&tp->mu);
		/* The thread broadcasts when each transaction ends. */
		while ((tp->busy || (tp->q && tp->claimed)) && wire_mono_ms() < until)
			wait_ms(tp, until - wire_mono_ms());
		left += tp->busy || (tp->q && tp->claimed);
		pthread_mutex_unlock(&tp->mu);
	}
	return left;
}

uint64_t
txn_retries(changelog *cl)
{
	uint64_t sum = 0;

	for (int32_t p = 0; cl->txn && p < cl->partitions; p++)
		sum += __atomic_load_n(&cl->txn[p].retries, __ATOMIC_RELAXED);
	return sum;
}
