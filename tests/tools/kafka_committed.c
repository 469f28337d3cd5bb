/* kafka_committed: prints the offsets a consumer group committed for a
 * topic, one "partition offset" line each (-1001: none), as
 * kafka-consumer-groups --describe would read them. Joins no group: it only
 * asks the group coordinator (OffsetFetch).
 * Usage: kafka_committed BROKERS GROUP TOPIC PARTITIONS */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

int
main(int argc, char **argv)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_resp_err_t rc;
	rd_kafka_t *rk;
	int n;

	if (argc != 5 || (n = atoi(argv[4])) <= 0) {
		fprintf(stderr, "usage: kafka_committed BROKERS GROUP TOPIC PARTITIONS\n");
		return 2;
	}
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "group.id", argv[2], err, sizeof err) != RD_KAFKA_CONF_OK ||
	    (rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err)) == NULL) {
		fprintf(stderr, "kafka_committed: %s\n", err);
		return 1;
	}
	l = rd_kafka_topic_partition_list_new(n);
	for (int p = 0; p < n; p++)
		rd_kafka_topic_partition_list_add(l, argv[3], p);
	if ((rc = rd_kafka_committed(rk, l, 10000)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafka_committed: %s\n", rd_kafka_err2str(rc));
		return 1;
	}
	for (int i = 0; i < l->cnt; i++)
		printf("%d %lld\n", (int)l->elems[i].partition, (long long)l->elems[i].offset);
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return 0;
}
