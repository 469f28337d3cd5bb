/* watch.c: profilectl watch, the change feed.
 *
 * Reads the profiles topic straight from Kafka (no consumer group: it
 * assigns itself every partition, so any number of watchers can run and none
 * disturbs the core nodes) and prints each record as one JSON line, flushed
 * at once so it can be piped into other systems. It reads read_committed,
 * as the stores do: a write the service did not commit (a former owner's,
 * fenced by the transactions) is never seen.
 */
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.pb-c.h"
#include "profilectl.h"
#include "wire.h"

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One record as one line; records that are not profile events, or whose
 * key is not UTF-8, are reported on stderr and skipped. */
static void
print_change(const rd_kafka_message_t *m)
{
	char uid[64];
	size_t klen = m->key_len < sizeof uid - 1 ? m->key_len : sizeof uid - 1;
	Profile__V1__ProfileEvent *ev = NULL;
	const Profile__V1__Profile *p;

	memcpy(uid, m->key ? m->key : "", m->key ? klen : 0);
	uid[m->key ? klen : 0] = '\0';
	if (!wire_utf8_valid(uid, strlen(uid))) {
		fprintf(stderr, "watch: partition %d offset %lld: unreadable key, skipped\n",
		        (int)m->partition, (long long)m->offset);
		return;
	}
	if (m->payload == NULL) {
		fputs("{\"op\":\"delete\",\"uid\":", stdout);
		jsonl_string(stdout, uid);
		fputs(",\"profile\":null", stdout);
	} else {
		ev = profile__v1__profile_event__unpack(NULL, m->len, m->payload);
		p = ev ? ev->profile : NULL;
		if (p == NULL || !wire_utf8_valid(p->uid, strlen(p->uid)) ||
		    !wire_utf8_valid(p->username, strlen(p->username)) ||
		    !wire_utf8_valid(p->email, strlen(p->email))) {
			fprintf(stderr, "watch: partition %d offset %lld: not a profile event, skipped\n",
			        (int)m->partition, (long long)m->offset);
			if (ev)
				profile__v1__profile_event__free_unpacked(ev, NULL);
			return;
		}
		fprintf(stdout, "{\"op\":\"%s\",\"uid\":",
		        ev->type == PROFILE__V1__EVENT_TYPE__CREATED ? "create" : "update");
		jsonl_string(stdout, uid);
		fputs(",\"profile\":", stdout);
		jsonl_profile_fields(stdout, p->uid, p->username, p->email, p->version, p->created_at,
		                     p->updated_at, NULL);
		fputc('}', stdout);
		profile__v1__profile_event__free_unpacked(ev, NULL);
	}
	fprintf(stdout, ",\"partition\":%d,\"offset\":%lld}\n", (int)m->partition, (long long)m->offset);
	fflush(stdout);
}

static int
set(rd_kafka_conf_t *conf, const char *kv)
{
	char key[256], err[256];
	const char *eq = strchr(kv, '=');

	if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof key) {
		fprintf(stderr, "profilectl watch: -X wants KEY=VALUE, not '%s'\n", kv);
		return -1;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	if (rd_kafka_conf_set(conf, key, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "profilectl watch: %s\n", err);
		return -1;
	}
	return 0;
}

int
watch_main(int argc, char **argv)
{
	static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
	                                     {"topic", required_argument, NULL, 't'},
	                                     {"from-beginning", no_argument, NULL, 'B'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *brokers = getenv("PROFILE_BROKERS"), *topic = "profiles";
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *parts;
	struct sigaction sa = {0};
	rd_kafka_t *rk;
	int from_beginning = 0, c, count = -1;
	rd_kafka_resp_err_t last_err = 0;
	char err[512];

	optind = 0; /* full reset: the global options were parsed with "+" */
	while ((c = getopt_long(argc, argv, "b:t:X:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			brokers = optarg;
			break;
		case 't':
			topic = optarg;
			break;
		case 'B':
			from_beginning = 1;
			break;
		case 'X':
			if (set(conf, optarg) != 0) {
				rd_kafka_conf_destroy(conf);
				return 2;
			}
			break;
		case 'h':
			rd_kafka_conf_destroy(conf);
			printf("usage: profilectl watch --brokers LIST [--from-beginning] [--topic NAME] [-X "
			       "KEY=VALUE]...\n\n"
			       "Prints every change on the profiles topic as one JSON line:\n"
			       "{\"op\":\"create|update|delete\",\"uid\",\"profile\",\"partition\","
			       "\"offset\"}.\n");
			return 0;
		default:
			rd_kafka_conf_destroy(conf);
			fprintf(stderr, "try 'profilectl watch --help'\n");
			return 2;
		}
	}
	if (brokers == NULL || *brokers == '\0' || optind != argc) {
		rd_kafka_conf_destroy(conf);
		fprintf(
		    stderr,
		    "profilectl watch: needs --brokers LIST (or $PROFILE_BROKERS) and no other arguments\n");
		return 2;
	}
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "client.id", "profilectl-watch", err, sizeof err) ||
	    /* librdkafka's consumer wants a group id even with a manual
	     * assignment; this one is never joined and nothing is committed. */
	    rd_kafka_conf_set(conf, "group.id", "profilectl-watch", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err) ||
	    rd_kafka_conf_set(conf, "auto.offset.reset", from_beginning ? "earliest" : "latest", err,
	                      sizeof err)) {
		fprintf(stderr, "profilectl watch: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return 2;
	}
	if ((rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err)) == NULL) {
		fprintf(stderr, "profilectl watch: %s\n", err);
		return 1;
	}
	sa.sa_handler = on_signal; /* no SA_RESTART: the poll returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (rd_kafka_metadata(rk, 1, NULL, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < md->topic_cnt; i++)
			if (strcmp(md->topics[i].topic, topic) == 0 && md->topics[i].err == 0)
				count = md->topics[i].partition_cnt;
		rd_kafka_metadata_destroy(md);
	}
	if (count <= 0) {
		fprintf(stderr, "UNAVAILABLE: %s\n",
		        count < 0 ? "topic not found, or no broker answered" : "topic has no partitions");
		rd_kafka_destroy(rk);
		return 1;
	}
	parts = rd_kafka_topic_partition_list_new(count);
	for (int p = 0; p < count; p++)
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
		    from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	fprintf(stderr, "watching %s (%d partitions) from the %s\n", topic, count,
	        from_beginning ? "beginning" : "end");

	while (!stop) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (m == NULL)
			continue;
		if (m->err == 0) {
			print_change(m);
			last_err = 0;
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && m->err != last_err) {
			/* Once per distinct error, not once per poll. */
			fprintf(stderr, "watch: %s\n", rd_kafka_message_errstr(m));
			last_err = m->err;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return 0;
}
