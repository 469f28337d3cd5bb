/* bulk_load.c: loads a large data set for the benchmark straight into the
 * log, not through the API: COUNT created profiles (valid ProfileEvent
 * records, keyed by a random UUID v4 and put in Kafka's default partition
 * for it, as the core does), produced with librdkafka as fast as the broker
 * takes them. A missing topic is created first, as a core creates it. Cores started afterwards restore them like any history.
 * usage: bench-bulk-load BROKERS TOPIC PARTITIONS COUNT
 * prints 1000 "uid email" lines of profiles spread over the set, then
 * "records seconds records_per_second" */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kafka.h"
#include "profile.pb-c.h"
#include "wire.h"

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long failed;

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk, (void)opaque;
	if (m->err)
		failed++;
}

/* A lowercase canonical UUID v4 from 16 random bytes. */
static void
uuid4(char out[37], uint8_t b[16])
{
	static const char hex[] = "0123456789abcdef";
	int j = 0;

	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[b[i] >> 4];
		out[j++] = hex[b[i] & 15];
	}
	out[j] = '\0';
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	char err[256];
	long count;
	int32_t partitions;
	double t0;
	int64_t at = (int64_t)time(NULL) * 1000;
	uint8_t buf[512], rnd[4096];
	size_t rnd_left = 0;

	if (argc != 5 || (partitions = atoi(argv[3])) < 1 || (count = atol(argv[4])) < 1)
		return 2;
	rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err);
	rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
	rd_kafka_conf_set(conf, "linger.ms", "20", err, sizeof err);
	rd_kafka_conf_set(conf, "batch.num.messages", "10000", err, sizeof err);
	rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof err);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err)) == NULL) {
		fprintf(stderr, "bench-bulk-load: %s\n", err);
		return 1;
	}
	if (kafka_topic_ensure(rk, argv[2], partitions, 10000) != partitions) {
		fprintf(stderr, "bench-bulk-load: topic %s is missing or has not %d partitions\n", argv[2],
		        (int)partitions);
		return 1;
	}
	t0 = now();
	for (long i = 0; i < count; i++) {
		Profile__V1__ProfileEvent ev = PROFILE__V1__PROFILE_EVENT__INIT;
		Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
		char uid[37], email[64];
		size_t len;

		if (rnd_left < 16) {
			if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
				return 1;
			rnd_left = sizeof rnd;
		}
		uuid4(uid, rnd + sizeof rnd - rnd_left);
		rnd_left -= 16;
		snprintf(email, sizeof email, "bulk%ld@bulk.example", i);
		p.uid = uid;
		p.username = "bulk";
		p.email = email;
		p.version = 1;
		p.created_at = p.updated_at = at;
		ev.type = PROFILE__V1__EVENT_TYPE__CREATED;
		ev.profile = &p;
		len = profile__v1__profile_event__pack(&ev, buf);
		while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[2]),
		                         RD_KAFKA_V_PARTITION(wire_partition(uid, 36, partitions)),
		                         RD_KAFKA_V_KEY(uid, 36), RD_KAFKA_V_VALUE(buf, len),
		                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) ==
		       RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		rd_kafka_poll(rk, 0);
		if (i % (count > 1000 ? count / 1000 : 1) == 0)
			printf("%s %s\n", uid, email);
	}
	if (rd_kafka_flush(rk, 120000) != 0 || failed) {
		fprintf(stderr, "bench-bulk-load: %d records not delivered, %ld failed\n", rd_kafka_outq_len(rk), failed);
		return 1;
	}
	printf("%ld %.3f %.0f\n", count, now() - t0, count / (now() - t0));
	rd_kafka_destroy(rk);
	return 0;
}
