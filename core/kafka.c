/* kafka.c: configuration, topics and the error map shared by the core's
 * librdkafka clients (kafka.h). */
#include "kafka.h"

#include <string.h>
#include <unistd.h>

#include "log.h"
#include "wire.h"

/* How long a topic is waited for until every partition has a leader. */
#define TOPIC_WAIT_MS 10000

int
kafka_status(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_NO_ERROR:
		return PROFILE_OK;
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
		return PROFILE_DEADLINE_EXCEEDED;
	case RD_KAFKA_RESP_ERR__QUEUE_FULL:
		return PROFILE_RESOURCE_EXHAUSTED;
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
	case RD_KAFKA_RESP_ERR__FATAL:
		return PROFILE_UNAVAILABLE;
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
		return PROFILE_INVALID_ARGUMENT;
	default:
		return PROFILE_INTERNAL;
	}
}

static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	if (level <= 3)
		log_error("kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
	else if (level <= 4)
		log_warn("kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
	else
		log_debug("kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

rd_kafka_conf_t *
kafka_conf_new(const char *brokers, const char *client_id)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "client.id", client_id, err, sizeof err) != RD_KAFKA_CONF_OK) {
		log_error("kafka: %s", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, on_log);
	return conf;
}

int
kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *opts)
{
	char err[256];

	for (; opts && *opts; opts++) {
		char key[256];
		const char *eq = strchr(*opts, '=');
		size_t klen = eq ? (size_t)(eq - *opts) : 0;

		if (eq == NULL || klen == 0 || klen >= sizeof key) {
			log_error("kafka: property '%s' is not key=value", *opts);
			return PROFILE_INVALID_ARGUMENT;
		}
		memcpy(key, *opts, klen);
		key[klen] = '\0';
		if (rd_kafka_conf_set(conf, key, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
			log_error("kafka: %s", err);
			return PROFILE_INVALID_ARGUMENT;
		}
	}
	return PROFILE_OK;
}

int32_t
kafka_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
	const struct rd_kafka_metadata *md;
	int32_t n = 0;

	/* all_topics=1 lists without triggering the broker's auto-create. */
	if (rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -1;
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
			n = md->topics[i].partition_cnt;
	rd_kafka_metadata_destroy(md);
	return n;
}

static void
topic_create(rd_kafka_t *rk, const char *topic, int32_t partitions)
{
	char err[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, err, sizeof err);
	rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev;

	if (nt == NULL) {
		log_warn("kafka: topic %s: %s", topic, err);
		goto out;
	}
	rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
	/* A day before compaction may act on a record: a reader of the change
	 * feed that is less than a day behind sees every change, not only the
	 * newest of each key. */
	rd_kafka_NewTopic_set_config(nt, "min.compaction.lag.ms", "86400000");
	rd_kafka_AdminOptions_set_request_timeout(opt, 5000, err, sizeof err);
	rd_kafka_CreateTopics(rk, &nt, 1, opt, q);
	ev = rd_kafka_queue_poll(q, 6000);
	if (ev == NULL) {
		log_warn("kafka: creating topic %s: no answer from the broker", topic);
	} else {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t cnt = 0;
		const rd_kafka_topic_result_t **tr =
		    res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;

		if (rd_kafka_event_error(ev))
			log_warn("kafka: creating topic %s: %s", topic, rd_kafka_event_error_string(ev));
		else if (cnt == 1 && rd_kafka_topic_result_error(tr[0]))
			log_warn("kafka: creating topic %s: %s", topic,
			         rd_kafka_topic_result_error_string(tr[0]));
		else
			log_info("kafka: created topic %s (%d partitions, compacted)", topic,
			         (int)partitions);
		rd_kafka_event_destroy(ev);
	}
out:
	rd_kafka_queue_destroy(q);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_NewTopic_destroy(nt);
}

/* The partition count of topic when every partition has a leader in one
 * broker's metadata, else 0. */
static int32_t
topic_led(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
	const struct rd_kafka_metadata *md;
	int32_t led = 0;

	if (rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	for (int i = 0; i < md->topic_cnt; i++) {
		if (strcmp(md->topics[i].topic, topic) != 0 || md->topics[i].err != 0)
			continue;
		led = md->topics[i].partition_cnt;
		for (int p = 0; p < md->topics[i].partition_cnt; p++)
			if (md->topics[i].partitions[p].leader < 0 || md->topics[i].partitions[p].err != 0)
				led = 0;
	}
	rd_kafka_metadata_destroy(md);
	return led;
}

int32_t
kafka_topic_ensure(rd_kafka_t *rk, const char *topic, int32_t partitions, int timeout_ms)
{
	int32_t n = kafka_topic_partitions(rk, topic, timeout_ms);
	int64_t deadline = wire_mono_ms() + TOPIC_WAIT_MS, left;

	if (n < 0)
		return n;
	if (n == 0)
		topic_create(rk, topic, partitions);
	/* A broker answers CreateTopics before every broker's metadata shows
	 * the topic and its leaders (and another node may have just created
	 * it): poll, bounded, rather than assume; and take the count from the
	 * answer that showed it whole (another broker may not know the topic
	 * yet). A topic whose leader is away is returned after the bound. */
	while ((left = deadline - wire_mono_ms()) > 0) {
		if ((n = topic_led(rk, topic, (int)(left < timeout_ms ? left : timeout_ms))) > 0)
			return n;
		usleep(100 * 1000);
	}
	return kafka_topic_partitions(rk, topic, timeout_ms);
}
