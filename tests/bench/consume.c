/* consume.c: the restore baseline of the benchmark. Reads every partition of
 * a topic from the beginning to its end with librdkafka, counting records
 * and applying nothing: how fast the log itself can be read here.
 * usage: bench-consume BROKERS TOPIC [PROPERTY=VALUE...]
 * prints: records seconds records_per_second */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_partition_list_t *l;
	char err[256];
	rd_kafka_t *rk;
	int64_t total = 0, seen = 0;
	int n = 0;
	double t0;

	if (argc < 3)
		return 2;
	rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err);
	rd_kafka_conf_set(conf, "group.id", "bench-consume", err, sizeof err);
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
	for (int i = 3; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (eq) {
			*eq = '\0';
			rd_kafka_conf_set(conf, argv[i], eq + 1, err, sizeof err);
		}
	}
	if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err)) == NULL)
		return 1;
	if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != 0)
		return 1;
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, argv[2]) == 0)
			n = md->topics[i].partition_cnt;
	rd_kafka_metadata_destroy(md);
	l = rd_kafka_topic_partition_list_new(n);
	for (int p = 0; p < n; p++) {
		int64_t lo, hi;
		rd_kafka_query_watermark_offsets(rk, argv[2], p, &lo, &hi, 10000);
		total += hi - lo;
		rd_kafka_topic_partition_list_add(l, argv[2], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	}
	t0 = now();
	rd_kafka_assign(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	while (seen < total) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
		if (m == NULL)
			continue;
		if (m->err == 0)
			seen++;
		rd_kafka_message_destroy(m);
	}
	{
		double secs = now() - t0;
		printf("%lld %.3f %.0f\n", (long long)seen, secs, seen / secs);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}
