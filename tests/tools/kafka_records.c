/* kafka_records: prints every record a Kafka topic holds, as any consumer
 * that knows nothing of this project reads them (read_committed): each
 * partition from its beginning to its end at the time of the call, one line
 * per record,
 *
 *     PARTITION OFFSET KEY VALUE
 *
 * KEY and VALUE in hex ("-" for a null value: a tombstone; "" keys as "-"
 * too). The tests' oracle of what Kafka stored: it replaces any journal of
 * a broker's own. Joins no group (manual assignment, nothing committed).
 * Usage: kafka_records BROKERS TOPIC */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
hex(const void *p, size_t n)
{
	const unsigned char *b = p;

	if (p == NULL || n == 0) {
		fputc('-', stdout);
		return;
	}
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

int
main(int argc, char **argv)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_partition_list_t *l;
	rd_kafka_t *rk;
	const char *brokers, *topic;
	int n = -1, left, idle = 0;
	char *done;

	if (argc != 3) {
		fprintf(stderr, "usage: kafka_records BROKERS TOPIC\n");
		return 2;
	}
	brokers = argv[1];
	topic = argv[2];
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "group.id", "kafka-records", err, sizeof err) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof err) != RD_KAFKA_CONF_OK ||
	    (rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err)) == NULL) {
		fprintf(stderr, "kafka_records: %s\n", err);
		return 1;
	}
	if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafka_records: no broker answered\n");
		return 1;
	}
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
			n = md->topics[i].partition_cnt;
	rd_kafka_metadata_destroy(md);
	if (n <= 0) {
		fprintf(stderr, "kafka_records: no topic %s\n", topic);
		return 1;
	}
	l = rd_kafka_topic_partition_list_new(n);
	for (int p = 0; p < n; p++)
		rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	done = calloc((size_t)n, 1);
	/* A partition is read once its end (the high watermark) is reached. */
	for (left = n; left > 0 && idle < 300;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

		if (m == NULL) {
			idle++;
			continue;
		}
		idle = 0;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (m->partition >= 0 && m->partition < n && !done[m->partition]) {
				done[m->partition] = 1;
				left--;
			}
		} else if (m->err) {
			fprintf(stderr, "kafka_records: %s\n", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			return 1;
		} else if (!done[m->partition]) {
			printf("%d %lld ", (int)m->partition, (long long)m->offset);
			hex(m->key, m->key_len);
			fputc(' ', stdout);
			hex(m->payload, m->payload ? m->len : 0);
			fputc('\n', stdout);
		}
		rd_kafka_message_destroy(m);
	}
	free(done);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	if (left > 0) {
		fprintf(stderr, "kafka_records: %d partition(s) not read to their end in 30 s\n", left);
		return 1;
	}
	return 0;
}
