/* producer.c: the changelog's producer (changelog.h): records handed to
 * Kafka and their delivery reports, the producer's thread, its renewal
 * after a fatal error, and what it counts. changelog.c makes it and the
 * consumers; both share changelog_impl.h.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "changelog_impl.h"
#include "kafka.h"
#include "log.h"
#include "wire.h"

void
changelog_keep_acked(changelog *cl, int32_t p, int64_t offset, const void *key, size_t key_len, const void *value,
                     size_t value_len)
{
	acked_record *a;
	char *at;

	/* Otherwise the consumer applies it when it reads it. */
	if (cl->h.acked == NULL || cl->data_queue == NULL || key == NULL ||
	    (a = malloc(sizeof *a + key_len + value_len)) == NULL)
		return;
	at = (char *)(a + 1);
	a->next = NULL;
	a->p = p;
	a->rec = (store_record){.offset = offset,
	                        .key = memcpy(at, key, key_len),
	                        .key_len = key_len,
	                        .value = value ? memcpy(at + key_len, value, value_len) : NULL,
	                        .value_len = value ? value_len : 0};
	pthread_mutex_lock(&cl->acked_mu);
	if (cl->n_acked < ACKED_MAX) {
		*cl->acked_tail = a;
		cl->acked_tail = &a->next;
		cl->n_acked++;
		a = NULL;
	}
	pthread_mutex_unlock(&cl->acked_mu);
	free(a);
	rd_kafka_queue_yield(cl->data_queue);
}

/* A record of the topic in the log now, kept for the consumer thread: a
 * write is answered once its node applied it, and this spares it the wait
 * for the consumer to read it back. */
static void
keep_acked(changelog *cl, const rd_kafka_message_t *m)
{
	if (strcmp(rd_kafka_topic_name(m->rkt), cl->topic) == 0)
		changelog_keep_acked(cl, m->partition, m->offset, m->key, m->key_len, m->payload, m->len);
}

static int
by_partition_offset(const void *x, const void *y)
{
	const acked_record *a = *(acked_record *const *)x, *b = *(acked_record *const *)y;

	if (a->p != b->p)
		return a->p < b->p ? -1 : 1;
	return a->rec.offset < b->rec.offset ? -1 : a->rec.offset > b->rec.offset;
}

void
producer_apply_acked(changelog *cl, store_record *recs)
{
	acked_record *list, *by[ACKED_MAX];
	size_t n = 0;

	pthread_mutex_lock(&cl->acked_mu);
	list = cl->acked;
	cl->acked = NULL;
	cl->acked_tail = &cl->acked;
	cl->n_acked = 0;
	pthread_mutex_unlock(&cl->acked_mu);
	for (; list != NULL; list = list->next)
		by[n++] = list;
	qsort(by, n, sizeof *by, by_partition_offset);
	for (size_t i = 0, start = 0; i < n; i++) {
		recs[i - start] = by[i]->rec;
		if (i + 1 == n || by[i + 1]->p != by[start]->p) {
			cl->h.acked(cl->h.arg, by[start]->p, recs, i + 1 - start);
			start = i + 1;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(by[i]);
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	int status = kafka_status(m->err);

	(void)rk;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		keep_acked(opaque, m);
	} else {
		__atomic_add_fetch(&((changelog *)opaque)->produce_errors, 1, __ATOMIC_RELAXED);
		/* Not persisted for sure: the write did not happen and may be
		 * retried. Otherwise the outcome is unknown. */
		if (rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
			status = PROFILE_UNAVAILABLE;
		else if (status != PROFILE_DEADLINE_EXCEEDED)
			status = PROFILE_DEADLINE_EXCEEDED;
		log_warn("kafka: delivery to partition %d failed: %s", (int)m->partition,
		         rd_kafka_err2str(m->err));
	}
	((changelog_delivery *)m->_private)->done(m->_private, status, m->partition, m->offset);
}

/* Waits up to timeout_ms for every record in flight; 0 when none is left. */
int
producer_flush(changelog *cl, int timeout_ms)
{
	int left;

	if (cl->txn)
		return txn_flush(cl, timeout_ms);
	pthread_rwlock_rdlock(&cl->producer_rw);
	left = rd_kafka_flush(cl->producer, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR
	           ? 0
	           : rd_kafka_outq_len(cl->producer);
	pthread_rwlock_unlock(&cl->producer_rw);
	return left;
}

/* librdkafka's statistics (statistics.interval.ms): the producer's
 * request retries, summed over its brokers (their "txretries": requests
 * sent again after a timeout or a lost connection; the idempotent
 * producer's retries of messages a broker refused are not counted there). */
uint64_t
producer_stats_retries(const char *json)
{
	uint64_t sum = 0;

	for (const char *at = json; (at = strstr(at, "\"txretries\":")) != NULL;)
		sum += strtoull(at += 12, NULL, 10);
	return sum;
}

static int
on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	(void)len;
	__atomic_store_n(&((changelog *)opaque)->retries_now, producer_stats_retries(json), __ATOMIC_RELAXED);
	return 0; /* librdkafka frees json */
}

void
changelog_counters(changelog *cl, changelog_stats *out)
{
	out->produce_errors = __atomic_load_n(&cl->produce_errors, __ATOMIC_RELAXED);
	out->request_retries = __atomic_load_n(&cl->retries_base, __ATOMIC_RELAXED) +
	                       __atomic_load_n(&cl->retries_now, __ATOMIC_RELAXED) + txn_retries(cl);
	out->producer_restarts = __atomic_load_n(&cl->producer_restarts, __ATOMIC_RELAXED);
	out->rebalances = __atomic_load_n(&cl->rebalances, __ATOMIC_RELAXED);
}

void
producer_conf_callbacks(rd_kafka_conf_t *conf)
{
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_stats_cb(conf, on_stats);
}

/* After a fatal error (an idempotent producer out of step with the broker:
 * nothing it sends is accepted any more): a new producer takes over, and the
 * old one's records are purged, each answered by its delivery report as
 * surely not written (UNAVAILABLE) or possibly written (DEADLINE_EXCEEDED).
 * (This producer writes only with fencing off: transactional mode has a
 * producer per partition, txn.c.) */
static void
renew_producer(changelog *cl)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(cl->producer_conf);
	rd_kafka_t *fresh, *old;
	char err[512];
	int left;

	if ((fresh = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err)) == NULL) {
		log_error("kafka: cannot make a new producer (%s); trying again", err);
		rd_kafka_conf_destroy(conf);
		return;
	}
	pthread_rwlock_wrlock(&cl->producer_rw);
	old = cl->producer;
	cl->producer = fresh;
	__atomic_add_fetch(&cl->producer_restarts, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&cl->retries_base, __atomic_exchange_n(&cl->retries_now, 0, __ATOMIC_RELAXED),
	                   __ATOMIC_RELAXED);
	__atomic_store_n(&cl->producer_fatal, 0, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&cl->producer_rw);
	left = rd_kafka_outq_len(old);
	rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	for (int i = 0; i < 100 && rd_kafka_outq_len(old) > 0; i++)
		rd_kafka_poll(old, 50);
	rd_kafka_destroy(old);
	log_info("kafka: a new producer took over; %d record(s) in flight were answered", left);
}

void *
producer_main(void *arg)
{
	changelog *cl = arg;
	int64_t renew_at = 0;

	while (!__atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE)) {
		pthread_rwlock_rdlock(&cl->producer_rw);
		rd_kafka_poll(cl->producer, 50);
		pthread_rwlock_unlock(&cl->producer_rw);
		if (__atomic_load_n(&cl->producer_fatal, __ATOMIC_ACQUIRE) && wire_mono_ms() >= renew_at) {
			renew_at = wire_mono_ms() + 1000; /* at most once a second */
			renew_producer(cl);
		}
	}
	return NULL;
}

int
changelog_produce(changelog *cl, int32_t p, const char *key, size_t key_len, void *value, size_t value_len,
                  changelog_delivery *d)
{
	rd_kafka_vu_t vu[6];
	size_t n = 0;
	rd_kafka_error_t *error;

	if (cl->txn)
		return txn_produce(cl, p, key, key_len, value, value_len, d);
	/* The value is handed over (F_FREE); the key is copied. */
	vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
	vu[n++].u.cstr = cl->topic;
	vu[n].vtype = RD_KAFKA_VTYPE_PARTITION;
	vu[n++].u.i32 = p;
	vu[n].vtype = RD_KAFKA_VTYPE_KEY;
	vu[n++].u.mem = (typeof(vu[0].u.mem)){(void *)key, key_len};
	vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[n++].u.mem = (typeof(vu[0].u.mem)){value, value_len};
	vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[n++].u.i = RD_KAFKA_MSG_F_FREE;
	vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[n++].u.ptr = d;
	pthread_rwlock_rdlock(&cl->producer_rw);
	error = rd_kafka_produceva(cl->producer, vu, n);
	pthread_rwlock_unlock(&cl->producer_rw);
	if (error != NULL) {
		log_warn("kafka: produce to partition %d: %s", (int)p, rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		return PROFILE_UNAVAILABLE;
	}
	return PROFILE_OK;
}
