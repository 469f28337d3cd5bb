/* kafka_topic: a topic's settings through Kafka's admin API, as
 * kafka-topics and kafka-configs would show or make them.
 *
 *   kafka_topic BROKERS create TOPIC PARTITIONS [KEY=VALUE...]
 *       creates the topic (the broker's replication factor) with those
 *       settings; exit 0 once it exists.
 *   kafka_topic BROKERS describe TOPIC
 *       prints "partitions N" and "replication R", then every setting the
 *       broker reports for the topic as KEY=VALUE, one a line.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rd_kafka_event_t *
wait_result(rd_kafka_queue_t *q)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);

	if (ev == NULL) {
		fprintf(stderr, "kafka_topic: no answer from the broker\n");
		exit(1);
	}
	if (rd_kafka_event_error(ev)) {
		fprintf(stderr, "kafka_topic: %s\n", rd_kafka_event_error_string(ev));
		exit(1);
	}
	return ev;
}

static int
create(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic, int partitions, char **kv, int n)
{
	char err[512];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, err, sizeof err);
	rd_kafka_event_t *ev;
	const rd_kafka_topic_result_t **tr;
	size_t cnt;

	if (nt == NULL) {
		fprintf(stderr, "kafka_topic: %s\n", err);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		char *eq = strchr(kv[i], '=');

		if (eq == NULL) {
			fprintf(stderr, "kafka_topic: %s is not KEY=VALUE\n", kv[i]);
			return 2;
		}
		*eq = '\0';
		rd_kafka_NewTopic_set_config(nt, kv[i], eq + 1);
	}
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	ev = wait_result(q);
	tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
	if (cnt != 1 || rd_kafka_topic_result_error(tr[0])) {
		fprintf(stderr, "kafka_topic: %s\n", cnt ? rd_kafka_topic_result_error_string(tr[0]) : "no result");
		return 1;
	}
	rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy(nt);
	return 0;
}

static int
describe(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	const rd_kafka_ConfigResource_t **rs;
	const rd_kafka_ConfigEntry_t **entries;
	rd_kafka_event_t *ev;
	size_t cnt, n;
	int found = 0;

	if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafka_topic: no broker answered\n");
		return 1;
	}
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strcmp(md->topics[i].topic, topic) != 0 || md->topics[i].err)
			continue;
		found = 1;
		printf("partitions %d\n", md->topics[i].partition_cnt);
		printf("replication %d\n", md->topics[i].partition_cnt ? md->topics[i].partitions[0].replica_cnt : 0);
	}
	rd_kafka_metadata_destroy(md);
	if (!found) {
		fprintf(stderr, "kafka_topic: no topic %s\n", topic);
		return 1;
	}
	rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
	ev = wait_result(q);
	rs = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
	if (cnt != 1 || rd_kafka_ConfigResource_error(rs[0])) {
		fprintf(stderr, "kafka_topic: %s\n", cnt ? rd_kafka_ConfigResource_error_string(rs[0]) : "no result");
		return 1;
	}
	entries = rd_kafka_ConfigResource_configs(rs[0], &n);
	for (size_t i = 0; i < n; i++) {
		const char *v = rd_kafka_ConfigEntry_value(entries[i]);

		printf("%s=%s\n", rd_kafka_ConfigEntry_name(entries[i]), v ? v : "");
	}
	rd_kafka_event_destroy(ev);
	rd_kafka_ConfigResource_destroy(res);
	return 0;
}

int
main(int argc, char **argv)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;
	rd_kafka_queue_t *q;
	int rc;

	if (argc < 4 || (strcmp(argv[2], "create") == 0 && argc < 5) ||
	    (strcmp(argv[2], "create") != 0 && strcmp(argv[2], "describe") != 0)) {
		fprintf(stderr, "usage: kafka_topic BROKERS create TOPIC PARTITIONS [KEY=VALUE...]\n"
		                "       kafka_topic BROKERS describe TOPIC\n");
		return 2;
	}
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err) != RD_KAFKA_CONF_OK ||
	    (rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err)) == NULL) {
		fprintf(stderr, "kafka_topic: %s\n", err);
		return 1;
	}
	q = rd_kafka_queue_new(rk);
	if (strcmp(argv[2], "create") == 0)
		rc = create(rk, q, argv[3], atoi(argv[4]), argv + 5, argc - 5);
	else
		rc = describe(rk, q, argv[3]);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return rc;
}
