/* kafka_rtt.c: the one-write baseline of the benchmark. One record at a
 * time, produced as the core produces (idempotent, acks=all, linger.ms=0)
 * and consumed back by a consumer already reading the partition's end: the
 * least a write that is answered only once it has been read back can take on
 * this broker. Uses its own topic, created (one partition) when missing.
 * With --transactional, each record is produced in a transaction of its
 * own (a transactional.id, begin, produce, commit) and read back by a
 * read_committed consumer: what fencing writes with transactions costs a
 * write that shares its transaction with no other. --transactional=N puts
 * N records in each transaction (a group commit of N writes); each round
 * ends when the last of them is read back.
 * usage: bench-kafka-rtt BROKERS TOPIC SECONDS [--transactional[=N]] [PROPERTY=VALUE...]
 *   (properties apply to the consumer)
 * prints: records p50_ms p99_ms (the milliseconds are per round) */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int
fail(const char *why)
{
	fprintf(stderr, "bench-kafka-rtt: %s\n", why);
	return 1;
}

static int delivered;

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)m;
	(void)opaque;
	delivered++;
}

static rd_kafka_t *
make(rd_kafka_type_t type, const char *brokers, const char *txn_id, char **props, int nprops)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];

	rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err);
	if (type == RD_KAFKA_PRODUCER) {
		rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
		rd_kafka_conf_set(conf, "acks", "all", err, sizeof err);
		rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
		rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
		if (txn_id != NULL)
			rd_kafka_conf_set(conf, "transactional.id", txn_id, err, sizeof err);
	} else {
		rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof err);
		rd_kafka_conf_set(conf, "group.id", "bench-kafka-rtt", err, sizeof err);
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
		for (int i = 0; i < nprops; i++) {
			char *eq = strchr(props[i], '=');
			if (eq) {
				*eq = '\0';
				rd_kafka_conf_set(conf, props[i], eq + 1, err, sizeof err);
				*eq = '=';
			}
		}
	}
	return rd_kafka_new(type, conf, err, sizeof err);
}

int
main(int argc, char **argv)
{
	rd_kafka_t *prod, *cons;
	rd_kafka_topic_partition_list_t *l;
	uint32_t *lat;
	size_t n = 0, cap = 1 << 20;
	int64_t end, lo, hi;
	char payload[32], txn_id[300];
	int txn, per_round = 1, first_prop = 4;
	rd_kafka_error_t *error;

	if (argc < 4) {
		fprintf(stderr, "usage: bench-kafka-rtt BROKERS TOPIC SECONDS [--transactional[=N]] [PROPERTY=VALUE...]\n");
		return 2;
	}
	txn = argc > 4 && strncmp(argv[4], "--transactional", 15) == 0;
	if (txn && argv[4][15] == '=' && (per_round = atoi(argv[4] + 16)) < 1)
		return fail("--transactional=N: N is a number of records, 1 or more");
	first_prop += txn;
	snprintf(txn_id, sizeof txn_id, "bench-kafka-rtt-%s", argv[2]);
	prod = make(RD_KAFKA_PRODUCER, argv[1], txn ? txn_id : NULL, NULL, 0);
	cons = make(RD_KAFKA_CONSUMER, argv[1], NULL, argv + first_prop, argc - first_prop);
	if (prod == NULL || cons == NULL || (lat = malloc(cap * sizeof *lat)) == NULL)
		return fail("cannot make the clients");
	if (txn && (error = rd_kafka_init_transactions(prod, 30000)) != NULL)
		return fail(rd_kafka_error_string(error));
	/* A first record; then read from the end. Every record has a key: the
	 * topic is compacted, as the service's, and Kafka refuses a record
	 * without one there. */
	if (kafka_topic_ensure(prod, argv[2], 1, 10000) != 1)
		return fail("cannot create the topic");
	if (txn && (error = rd_kafka_begin_transaction(prod)) != NULL)
		return fail(rd_kafka_error_string(error));
	if (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_PARTITION(0),
	                      RD_KAFKA_V_KEY("first", 5), RD_KAFKA_V_VALUE("x", 1),
	                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) != 0 ||
	    rd_kafka_flush(prod, 30000) != 0)
		return fail("the first record was not delivered in 30 s");
	if (txn && (error = rd_kafka_commit_transaction(prod, 30000)) != NULL)
		return fail(rd_kafka_error_string(error));
	if (rd_kafka_query_watermark_offsets(cons, argv[2], 0, &lo, &hi, 10000) != 0)
		return fail("cannot read the partition's end");
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, argv[2], 0)->offset = hi;
	rd_kafka_assign(cons, l);
	rd_kafka_topic_partition_list_destroy(l);
	end = now_us() + (int64_t)(atof(argv[3]) * 1e6);
	while (now_us() < end && n < cap) {
		int64_t t0 = now_us();
		int len = 0;
		int seen = 0;

		if (txn && (error = rd_kafka_begin_transaction(prod)) != NULL)
			return fail(rd_kafka_error_string(error));
		for (int i = 0; i < per_round; i++) {
			/* The last record of the round is the one read back. */
			if (i + 1 < per_round)
				len = snprintf(payload, sizeof payload, "%zu.%d", n, i);
			else
				len = snprintf(payload, sizeof payload, "%zu", n);
			if (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_PARTITION(0),
			                      RD_KAFKA_V_KEY(payload, (size_t)len),
			                      RD_KAFKA_V_VALUE(payload, (size_t)len),
			                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) != 0)
				return fail("cannot produce");
		}
		/* The commit flushes first, but its flush wakes every 10 ms
		 * only: waiting for the delivery reports here is faster. */
		for (int want = delivered + per_round; txn && delivered < want;)
			rd_kafka_poll(prod, 100);
		if (txn && (error = rd_kafka_commit_transaction(prod, 30000)) != NULL)
			return fail(rd_kafka_error_string(error));
		while (!seen && now_us() < end + 10000000) {
			rd_kafka_message_t *m;
			rd_kafka_poll(prod, 0);
			if ((m = rd_kafka_consumer_poll(cons, 10)) == NULL)
				continue;
			seen = m->err == 0 && m->len == (size_t)len && memcmp(m->payload, payload, (size_t)len) == 0;
			rd_kafka_message_destroy(m);
		}
		if (!seen)
			return fail("a record was not read back within 10 s");
		lat[n++] = (uint32_t)(now_us() - t0);
	}
	qsort(lat, n, sizeof *lat, cmp_u32);
	printf("%zu %.3f %.3f\n", n * (size_t)per_round, n ? lat[n / 2] / 1000.0 : 0, n ? lat[n * 99 / 100] / 1000.0 : 0);
	rd_kafka_consumer_close(cons);
	rd_kafka_destroy(cons);
	rd_kafka_flush(prod, 5000);
	rd_kafka_destroy(prod);
	free(lat);
	return 0;
}
