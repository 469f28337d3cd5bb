/* changelog.c: makes and closes the librdkafka producer and consumers
 * (changelog.h), and runs the consumers.
 *
 * Two threads: the consumer thread polls the group consumer (rebalances,
 * records, end-of-partition events) and hands records to the handler in
 * per-partition runs; the producer thread (producer.c) polls the producer so
 * that delivery reports arrive. librdkafka serves callbacks only from those
 * polls, so every handler callback runs on one of these two threads. In
 * replicated mode a third polls the group consumer; each transactional
 * producer (txn.c) and the stall watch have a thread of their own.
 */
#include "changelog.h"
#include "changelog_impl.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "log.h"
#include "wire.h"

#define BATCH_MAX 1024       /* records taken from the consumer per round */
#define REVOKE_FLUSH_MS 2000 /* an orderly revoke waits this long for records in flight */
#define METADATA_TIMEOUT_MS 10000
#define WATERMARK_TIMEOUT_MS 5000
#define IDLE_EVERY_MS 500 /* how often the handler's idle callback runs */


static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	changelog *cl = opaque;
	char why[512];

	if (err == RD_KAFKA_RESP_ERR__FATAL && rd_kafka_type(rk) == RD_KAFKA_PRODUCER) {
		rd_kafka_fatal_error(rk, why, sizeof why);
		log_error("kafka: the producer hit a fatal error (%s); making a new one", why);
		__atomic_store_n(&cl->producer_fatal, 1, __ATOMIC_RELEASE);
		return;
	}
	log_warn("kafka: %s: %s", rd_kafka_err2name(err), reason);
}

static void
on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	changelog *cl = opaque;
	int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
	rd_kafka_error_t *error = NULL;
	int lost = err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && rd_kafka_assignment_lost(rk);

	__atomic_add_fetch(&cl->rebalances, 1, __ATOMIC_RELAXED);
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		__atomic_store_n(&cl->assigned_once, 1, __ATOMIC_RELEASE);

	/* An orderly revoke lets the transactions under way end first, so
	 * that the next owner does not have to abort them. */
	if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && !lost && producer_flush(cl, REVOKE_FLUSH_MS) != 0)
		log_warn("kafka: records still in flight after %d ms at a revoke", REVOKE_FLUSH_MS);
	if (cl->replicated) {
		/* Ownership only: the follower feeds the stores. Assigned
		 * partitions are paused so this consumer never fetches them. */
		if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
			if (cooperative)
				error = rd_kafka_incremental_assign(rk, parts);
			else
				rd_kafka_assign(rk, parts);
			rd_kafka_pause_partitions(rk, parts);
		} else if (cooperative) {
			error = rd_kafka_incremental_unassign(rk, parts);
		} else {
			rd_kafka_assign(rk, NULL);
		}
	} else if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		for (int i = 0; i < parts->cnt; i++) {
			rd_kafka_topic_partition_t *tp = &parts->elems[i];
			int64_t lo = -1, hi = -1;

			if (rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition, &lo, &hi,
			                                     WATERMARK_TIMEOUT_MS) != 0)
				lo = hi = -1;
			tp->offset = cl->h.assigned(cl->h.arg, tp->partition, lo, hi);
			/* What the store holds already: the read lease's commits
			 * start from it (before the consumer has read anything). */
			if (cl->leasing && tp->partition >= 0 && tp->partition < cl->partitions)
				__atomic_store_n(&cl->applied_next[tp->partition],
				                 tp->offset >= 0 ? tp->offset : lo > 0 ? lo : 0, __ATOMIC_RELEASE);
			if (tp->offset == CHANGELOG_OFFSET_BEGINNING)
				tp->offset = RD_KAFKA_OFFSET_BEGINNING;
		}
		if (cooperative)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			rd_kafka_assign(rk, parts);
	} else {
		if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			log_warn("kafka: rebalance error: %s", rd_kafka_err2str(err));
		for (int i = 0; i < parts->cnt; i++)
			cl->h.revoked(cl->h.arg, parts->elems[i].partition, lost);
		if (cooperative)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			rd_kafka_assign(rk, NULL);
	}
	if (error) {
		log_error("kafka: rebalance: %s", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	if (cl->h.rebalanced) {
		rd_kafka_topic_partition_list_t *now = NULL;
		int32_t *mine;
		size_t n = 0;

		if (rd_kafka_assignment(rk, &now) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    (mine = calloc((size_t)now->cnt + 1, sizeof *mine)) != NULL) {
			for (int i = 0; i < now->cnt; i++)
				if (strcmp(now->elems[i].topic, cl->topic) == 0)
					mine[n++] = now->elems[i].partition;
			cl->h.rebalanced(cl->h.rebalanced_arg, mine, n);
			free(mine);
		}
		if (now)
			rd_kafka_topic_partition_list_destroy(now);
	}
}

static void
seek(changelog *cl, int32_t p, int64_t offset)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_error_t *error;

	rd_kafka_topic_partition_list_add(l, cl->topic, p)->offset =
	    offset == CHANGELOG_OFFSET_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING : offset;
	if ((error = rd_kafka_seek_partitions(cl->consumer, l, WATERMARK_TIMEOUT_MS)) != NULL) {
		log_error("kafka: seek partition %d: %s", (int)p, rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/* Read (and applied) up to next: the group's committed offset follows (for
 * monitoring; the stores stay the truth). Not in replicated mode, whose
 * followers share one group id and no assignment. */
static void
store_read(changelog *cl, int32_t p, int64_t next)
{
	rd_kafka_topic_partition_list_t *l;

	if (cl->replicated)
		return;
	if (cl->leasing && p >= 0 && p < cl->partitions) {
		/* The lease's commits carry it (lease.c); stored for the
		 * auto-commit too, it was committed twice and could go back. */
		__atomic_store_n(&cl->applied_next[p], next, __ATOMIC_RELEASE);
		return;
	}
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, cl->topic, p)->offset = next;
	rd_kafka_offsets_store(cl->consumer, l);
	rd_kafka_topic_partition_list_destroy(l);
}

/* Hands msgs[0..n) (one partition, log order) to the handler. */
static void
deliver_run(changelog *cl, rd_kafka_message_t **msgs, size_t n, store_record *recs)
{
	int32_t p = msgs[0]->partition;
	int64_t to;

	for (size_t i = 0; i < n; i++) {
		recs[i].offset = msgs[i]->offset;
		recs[i].key = msgs[i]->key;
		recs[i].key_len = msgs[i]->key_len;
		recs[i].value = msgs[i]->payload;
		recs[i].value_len = msgs[i]->len;
	}
	to = cl->h.records(cl->h.arg, p, recs, n);
	if (to != CHANGELOG_CONTINUE)
		seek(cl, p, to);
	else
		store_read(cl, p, msgs[n - 1]->offset + 1);
}

/* The consumer whose records feed the stores. */
static rd_kafka_t *
data_consumer(const changelog *cl)
{
	return cl->replicated ? cl->follower : cl->consumer;
}

#define FOLLOW_EVERY_MS 200 /* how often the follow set is asked for */

/* Replicated mode with a follow set: the follower takes up the partitions
 * the handler wants now, each from where its store stands, and lets go of
 * the others. Consumer thread. */
static void
follow_update(changelog *cl)
{
	for (int32_t p = 0; p < cl->partitions; p++) {
		int want = cl->h.follows(cl->h.follows_arg, p) != 0;
		rd_kafka_topic_partition_list_t *l;
		rd_kafka_error_t *error;
		int64_t lo = -1, hi = -1, from;

		if (want == cl->following[p])
			continue;
		l = rd_kafka_topic_partition_list_new(1);
		if (want) {
			if (rd_kafka_query_watermark_offsets(cl->follower, cl->topic, p, &lo, &hi,
			                                     WATERMARK_TIMEOUT_MS) != 0)
				lo = hi = -1;
			from = cl->h.assigned(cl->h.arg, p, lo, hi);
			rd_kafka_topic_partition_list_add(l, cl->topic, p)->offset =
			    from == CHANGELOG_OFFSET_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING : from;
			error = rd_kafka_incremental_assign(cl->follower, l);
		} else {
			rd_kafka_topic_partition_list_add(l, cl->topic, p);
			error = rd_kafka_incremental_unassign(cl->follower, l);
			cl->h.revoked(cl->h.arg, p, 0);
		}
		rd_kafka_topic_partition_list_destroy(l);
		if (error) {
			log_error("kafka: follow partition %d: %s", (int)p, rd_kafka_error_string(error));
			rd_kafka_error_destroy(error);
			continue;
		}
		cl->following[p] = (uint8_t)want;
	}
}

/* Leaves the group. librdkafka before 2.3.0 aborts (an assertion in the
 * cooperative-sticky assignor, librdkafka #4312) when a consumer that joined
 * its group is closed before its first assignment: such a consumer is
 * polled until that assignment comes (a join completes within a rebalance),
 * for FIRST_ASSIGNMENT_MS at most, and then closed. */
#define FIRST_ASSIGNMENT_MS 5000
static void
group_leave(changelog *cl)
{
	for (int waited = 0; waited < FIRST_ASSIGNMENT_MS && !__atomic_load_n(&cl->assigned_once, __ATOMIC_ACQUIRE);
	     waited += 100) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(cl->consumer, 100);
		if (m)
			rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(cl->consumer);
}

/* After a poll of the group consumer, which served any rebalance that
 * librdkafka learnt of: ends a stall once its settle time has passed. */
static void
stall_settle(changelog *cl)
{
	if (cl->stall && stall_polled(cl->stall, stall_now_ms()))
		log_info("kafka: the group has been heard from since the stall; reads resume");
}

static void *
stall_main(void *arg)
{
	changelog *cl = arg;

	while (!__atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE)) {
		struct timespec tick = {0, STALL_TICK_MS * 1000000L};
		int64_t gap;

		nanosleep(&tick, NULL);
		if ((gap = stall_tick(cl->stall, stall_now_ms())) > 0)
			log_warn("kafka: this process did not run for %.1f s, long enough for its group session to "
			         "have ended: no reads until the group has been heard from",
			         (double)gap / 1000);
	}
	return NULL;
}

static int64_t
conf_ms(rd_kafka_t *rk, const char *name, int64_t otherwise)
{
	char buf[32];
	size_t size = sizeof buf;

	return rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &size) == RD_KAFKA_CONF_OK ? atoll(buf) : otherwise;
}

void
changelog_watch_stalls(changelog *cl, stall *s, int64_t lease_ms)
{
	int64_t session = conf_ms(cl->consumer, "session.timeout.ms", 45000),
	        beat = conf_ms(cl->consumer, "heartbeat.interval.ms", 3000),
	        limit = session - 2 * beat > session / 2 ? session - 2 * beat : session / 2;

	stall_init(s, limit, beat + 1000);
	cl->stall = s;
	/* No lease in replicated mode: there no node owns partitions to read. */
	if (lease_ms != 0 && !cl->replicated &&
	    (cl->applied_next = malloc((size_t)cl->partitions * sizeof *cl->applied_next)) != NULL) {
		for (int32_t p = 0; p < cl->partitions; p++)
			cl->applied_next[p] = -1;
		if (lease_ms >= session)
			log_warn("kafka: a read lease of %lld ms is not shorter than the group session (%lld ms); "
			         "using %lld ms", (long long)lease_ms, (long long)session, (long long)limit);
		stall_lease(s, lease_ms < 0 || lease_ms >= session ? limit : lease_ms);
		cl->lease_tick_ms = beat / 2 > STALL_TICK_MS ? beat / 2 : STALL_TICK_MS;
		cl->leasing = 1;
	}
}

static void *
consumer_main(void *arg)
{
	changelog *cl = arg;
	rd_kafka_t *rk = data_consumer(cl);
	rd_kafka_message_t **batch = calloc(BATCH_MAX, sizeof *batch);
	store_record *recs = calloc(BATCH_MAX, sizeof *recs);
	_Static_assert(ACKED_MAX <= BATCH_MAX, "recs takes a round of acknowledged records");

	int64_t idle_at = 0, follow_at = 0;

	while (!__atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE)) {
		size_t n = 0, start = 0;
		rd_kafka_message_t *m;

		if (cl->following && wire_mono_ms() >= follow_at) {
			follow_at = wire_mono_ms() + FOLLOW_EVERY_MS;
			follow_update(cl);
		}
		/* This node's own writes first: their answers wait for them. */
		producer_apply_acked(cl, recs);
		m = rd_kafka_consumer_poll(rk, 100);

		if (cl->h.idle && wire_mono_ms() >= idle_at) {
			idle_at = wire_mono_ms() + IDLE_EVERY_MS;
			for (int32_t p = 0; p < cl->partitions; p++) {
				int64_t to = cl->h.idle(cl->h.arg, p);
				if (to != CHANGELOG_CONTINUE)
					seek(cl, p, to);
			}
		}

		while (m != NULL) {
			if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				/* Deliver what came before, then report the end. */
				for (size_t i = start; i < n; i++)
					if (i + 1 == n ||
					    batch[i + 1]->partition != batch[start]->partition) {
						deliver_run(cl, batch + start, i + 1 - start, recs);
						start = i + 1;
					}
				cl->h.caught_up(cl->h.arg, m->partition, m->offset);
				/* Past the transactions' markers, too. */
				store_read(cl, m->partition, m->offset);
				rd_kafka_message_destroy(m);
			} else if (m->err) {
				log_warn("kafka: consumer: %s", rd_kafka_message_errstr(m));
				rd_kafka_message_destroy(m);
			} else {
				batch[n++] = m;
			}
			if (n == BATCH_MAX)
				break;
			m = rd_kafka_consumer_poll(rk, 0);
		}
		for (size_t i = start; i < n; i++)
			if (i + 1 == n || batch[i + 1]->partition != batch[start]->partition) {
				deliver_run(cl, batch + start, i + 1 - start, recs);
				start = i + 1;
			}
		for (size_t i = 0; i < n; i++)
			rd_kafka_message_destroy(batch[i]);
		if (!cl->replicated)
			stall_settle(cl);
	}
	if (cl->replicated) {
		/* The follower leaves no group: revoke its partitions here. */
		for (int32_t p = 0; p < cl->partitions; p++)
			if (cl->following == NULL || cl->following[p])
				cl->h.revoked(cl->h.arg, p, 0);
		rd_kafka_consumer_close(cl->follower);
	} else {
		/* Leaving the group serves the revoke through on_rebalance, here. */
		group_leave(cl);
	}
	free(batch);
	free(recs);
	return NULL;
}

/* Replicated mode: keeps the group consumer in the group (its partitions
 * are paused, so it only ever sees rebalances). */
static void *
group_main(void *arg)
{
	changelog *cl = arg;

	while (!__atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(cl->consumer, 100);
		if (m)
			rd_kafka_message_destroy(m);
		stall_settle(cl);
	}
	group_leave(cl);
	return NULL;
}

static rd_kafka_conf_t *
conf_new(const changelog_config *cfg, const char *const *own, changelog *cl)
{
	rd_kafka_conf_t *conf = kafka_conf_new(cfg->brokers, cfg->client_id ? cfg->client_id : "profiled");

	if (conf == NULL)
		return NULL;
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_opaque(conf, cl);
	if (kafka_conf_apply(conf, own) != PROFILE_OK ||
	    kafka_conf_apply(conf, cfg->kafka_opts) != PROFILE_OK) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

/* The topic's partition count into cl->partitions, creating the topic when
 * it is missing and the broker can. PROFILE_OK or PROFILE_UNAVAILABLE. */
static int
topic_partitions(changelog *cl, const changelog_config *cfg)
{
	int32_t n = kafka_topic_ensure(cl->producer, cfg->topic, cfg->partitions, METADATA_TIMEOUT_MS);

	if (n <= 0) {
		log_error("kafka: %s", n < 0 ? "no broker answered the metadata request"
		                             : "topic does not exist and could not be created");
		return PROFILE_UNAVAILABLE;
	}
	cl->partitions = n;
	return PROFILE_OK;
}

/* Replicated mode's reader of every partition; NULL (logged) on error. */
static rd_kafka_t *
follower_new(const changelog_config *cfg, const char *const *defaults, changelog *cl)
{
	rd_kafka_conf_t *conf = conf_new(cfg, defaults, cl);
	rd_kafka_t *rk = NULL;
	char gid[512], err[512] = "cannot configure it";

	/* A group id librdkafka requires; never joined (manual assignment). */
	snprintf(gid, sizeof gid, "%s-follower", cfg->group);
	if (conf == NULL || kafka_conf_apply(conf, cfg->consumer_opts) != PROFILE_OK ||
	    rd_kafka_conf_set(conf, "group.id", gid, err, sizeof err) != RD_KAFKA_CONF_OK ||
	    (rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err)) == NULL) {
		log_error("kafka: follower: %s", err);
		if (conf)
			rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	return rk;
}

int
changelog_open(changelog **out, const changelog_config *cfg)
{
	static const char *const producer_defaults[] = {
	    "enable.idempotence=true",    "acks=all", "linger.ms=0", "message.timeout.ms=10000",
	    "partitioner=murmur2_random", "statistics.interval.ms=5000", NULL};
	/* The group consumer commits what its stores applied (deliver_run). */
	static const char *const commit_applied[] = {"enable.auto.commit=true", "enable.auto.offset.store=false",
	                                             NULL};
	/* The group session bounds failover: a node killed outright keeps its
	 * partitions until the session expires. 10 s, not librdkafka's 45 s (made
	 * for consumers that pause in garbage collection): a stock broker allows
	 * 6 s at least (group.min.session.timeout.ms), a rebalance adds little. */
	static const char *const consumer_defaults[] = {
	    "enable.auto.commit=false", "auto.offset.reset=earliest", "enable.partition.eof=true",
	    "partition.assignment.strategy=cooperative-sticky", "session.timeout.ms=10000",
	    "heartbeat.interval.ms=1000", "isolation.level=read_committed", NULL};
	rd_kafka_conf_t *pconf = NULL, *cconf = NULL;
	changelog *cl;
	char err[512];
	int rc = PROFILE_INVALID_ARGUMENT;

	if ((cl = calloc(1, sizeof *cl)) == NULL || (cl->topic = strdup(cfg->topic)) == NULL) {
		free(cl);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	cl->replicated = cfg->replicated;
	if (cfg->transactional && (cl->group = strdup(cfg->group)) == NULL) {
		free(cl->topic);
		free(cl);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	pthread_mutex_init(&cl->acked_mu, NULL);
	cl->acked_tail = &cl->acked;

	if ((pconf = conf_new(cfg, producer_defaults, cl)) == NULL ||
	    kafka_conf_apply(pconf, cfg->producer_opts) != PROFILE_OK)
		goto fail;
	producer_conf_callbacks(pconf);
	if ((cl->producer_conf = rd_kafka_conf_dup(pconf)) == NULL)
		goto fail;
	pthread_rwlock_init(&cl->producer_rw, NULL);
	if ((cconf = conf_new(cfg, consumer_defaults, cl)) == NULL ||
	    (!cl->replicated && kafka_conf_apply(cconf, commit_applied) != PROFILE_OK) ||
	    kafka_conf_apply(cconf, cfg->consumer_opts) != PROFILE_OK ||
	    rd_kafka_conf_set(cconf, "group.id", cfg->group, err, sizeof err) != RD_KAFKA_CONF_OK)
		goto fail;
	rd_kafka_conf_set_rebalance_cb(cconf, on_rebalance);

	if ((cl->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err)) == NULL) {
		log_error("kafka: producer: %s", err);
		goto fail;
	}
	pconf = NULL;

	if ((rc = topic_partitions(cl, cfg)) != PROFILE_OK)
		goto fail;
	if (cfg->transactional && (rc = txn_open(cl)) != PROFILE_OK)
		goto fail;
	if ((cl->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, err, sizeof err)) == NULL) {
		log_error("kafka: consumer: %s", err);
		rc = PROFILE_INVALID_ARGUMENT;
		goto fail;
	}
	cconf = NULL;
	rd_kafka_poll_set_consumer(cl->consumer);
	if (cl->replicated && (cl->follower = follower_new(cfg, consumer_defaults, cl)) == NULL) {
		rc = PROFILE_INVALID_ARGUMENT;
		goto fail;
	}
	*out = cl;
	return PROFILE_OK;

fail:
	if (pconf)
		rd_kafka_conf_destroy(pconf);
	if (cconf)
		rd_kafka_conf_destroy(cconf);
	if (cl->follower)
		rd_kafka_destroy(cl->follower);
	if (cl->consumer)
		rd_kafka_destroy(cl->consumer);
	if (cl->producer)
		rd_kafka_destroy(cl->producer);
	if (cl->producer_conf) {
		rd_kafka_conf_destroy(cl->producer_conf);
		pthread_rwlock_destroy(&cl->producer_rw);
	}
	pthread_mutex_destroy(&cl->acked_mu);
	txn_close(cl);
	free(cl->group);
	free(cl->topic);
	free(cl);
	return rc;
}

void
changelog_close(changelog *cl, int timeout_ms)
{
	int left;

	if (cl == NULL)
		return;
	if (cl->threads_started && (left = producer_flush(cl, timeout_ms)) > 0)
		log_warn("kafka: %d records not acknowledged at shutdown", left);
	__atomic_store_n(&cl->stopping, 1, __ATOMIC_RELEASE);
	txn_close(cl);
	if (cl->threads_started) {
		pthread_join(cl->consumer_thread, NULL);
		pthread_join(cl->producer_thread, NULL);
		if (cl->stall)
			pthread_join(cl->stall_thread, NULL);
		if (cl->leasing)
			pthread_join(cl->lease_thread, NULL);
		if (cl->replicated)
			pthread_join(cl->group_thread, NULL);
	} else {
		rd_kafka_consumer_close(cl->consumer);
		if (cl->follower)
			rd_kafka_consumer_close(cl->follower);
	}
	if (cl->follower)
		rd_kafka_destroy(cl->follower);
	free(cl->following);
	free(cl->applied_next);
	while (cl->acked != NULL) { /* acknowledged after the consumer stopped */
		acked_record *next = cl->acked->next;
		free(cl->acked);
		cl->acked = next;
	}
	pthread_mutex_destroy(&cl->acked_mu);
	if (cl->data_queue)
		rd_kafka_queue_destroy(cl->data_queue);
	rd_kafka_destroy(cl->consumer);
	rd_kafka_destroy(cl->producer);
	rd_kafka_conf_destroy(cl->producer_conf);
	pthread_rwlock_destroy(&cl->producer_rw);
	free(cl->group);
	free(cl->topic);
	free(cl);
}

int
changelog_start(changelog *cl, const changelog_handler *h)
{
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_resp_err_t err;

	cl->h = *h;
	if (cl->replicated && h->follows && (cl->following = calloc((size_t)cl->partitions, 1)) == NULL) {
		rd_kafka_topic_partition_list_destroy(sub);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	rd_kafka_topic_partition_list_add(sub, cl->topic, RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(cl->consumer, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (err) {
		log_error("kafka: subscribe: %s", rd_kafka_err2str(err));
		return PROFILE_UNAVAILABLE;
	}
	if (cl->replicated && !cl->following) {
		/* Follow every partition from where its store stands. */
		rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(cl->partitions);

		for (int32_t p = 0; p < cl->partitions; p++) {
			int64_t lo = -1, hi = -1;
			if (rd_kafka_query_watermark_offsets(cl->follower, cl->topic, p, &lo, &hi,
			                                     WATERMARK_TIMEOUT_MS) != 0)
				lo = hi = -1;
			int64_t from = cl->h.assigned(cl->h.arg, p, lo, hi);
			rd_kafka_topic_partition_list_add(all, cl->topic, p)->offset =
			    from == CHANGELOG_OFFSET_BEGINNING ? RD_KAFKA_OFFSET_BEGINNING : from;
		}
		rd_kafka_assign(cl->follower, all);
		rd_kafka_topic_partition_list_destroy(all);
	}
	cl->data_queue = rd_kafka_queue_get_consumer(data_consumer(cl));
	if (pthread_create(&cl->producer_thread, NULL, producer_main, cl) != 0)
		return PROFILE_RESOURCE_EXHAUSTED;
	if (pthread_create(&cl->consumer_thread, NULL, consumer_main, cl) != 0) {
		__atomic_store_n(&cl->stopping, 1, __ATOMIC_RELEASE);
		pthread_join(cl->producer_thread, NULL);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	/* The third thread: the group's, in replicated mode. */
	if (cl->replicated && pthread_create(&cl->group_thread, NULL, group_main, cl) != 0) {
		__atomic_store_n(&cl->stopping, 1, __ATOMIC_RELEASE);
		pthread_join(cl->producer_thread, NULL);
		pthread_join(cl->consumer_thread, NULL);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	if (cl->stall && pthread_create(&cl->stall_thread, NULL, stall_main, cl) != 0) {
		log_warn("kafka: cannot start a thread; stalls of this process are not watched for");
		cl->stall = NULL;
	}
	if (cl->leasing && (cl->stall == NULL || pthread_create(&cl->lease_thread, NULL, lease_main, cl) != 0)) {
		log_warn("kafka: cannot start a thread; reads are not bound by a lease");
		if (cl->stall)
			stall_lease(cl->stall, 0);
		cl->leasing = 0;
	}
	cl->threads_started = 1;
	return PROFILE_OK;
}

int32_t
changelog_partition_count(const changelog *cl)
{
	return cl->partitions;
}

int64_t
changelog_high_watermark(changelog *cl, int32_t p)
{
	int64_t lo, hi;

	if (rd_kafka_get_watermark_offsets(data_consumer(cl), cl->topic, p, &lo, &hi) != 0)
		return -1;
	return hi;
}
