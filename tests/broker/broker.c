/* broker.c: profile-kafka-broker, a local Kafka for tests and the quick start.
 *
 * librdkafka's mock cluster speaks the real Kafka protocol over TCP (produce,
 * fetch, consumer groups, idempotent producers) but keeps data only in memory
 * and lacks CreateTopics. This program makes it usable as the service's
 * Kafka on a machine without one:
 *   - it pre-creates the topics (`profiles` with --partitions, the members
 *     topic with one partition);
 *   - it journals every record it receives to DATA/journal/, by consuming
 *     the topics itself, and at start replays the journal in order into the
 *     same partitions, so offsets are unchanged across restarts;
 *   - it writes its bootstrap list atomically to DATA/bootstrap once the
 *     replay is done (clients never see a half-restored log), and prints it;
 *   - it warns as a partition nears the mock's size limit (about 5 MiB,
 *     beyond which the mock silently drops the oldest records).
 *   - it takes faults while running, from DATA/control (a Unix socket; the
 *     same program with --control "COMMAND" sends one and prints the
 *     answer): "down" and "up" (every broker), "rtt MS" (added latency),
 *     "error produce|fetch CODE [COUNT]" (the next COUNT requests of that
 *     kind fail with Kafka error CODE, a number or a name such as
 *     OUT_OF_ORDER_SEQUENCE_NUMBER), and "clear" (all of these undone).
 * Guarantee: exact across clean shutdowns (SIGINT/SIGTERM drain the journal
 * first). A kill -9 of this program may lose the newest acknowledged records,
 * because it journals after the producer's acknowledgement.
 *
 * Journal record: u32 length of the rest, i64 offset, i32 key length (-1 =
 * null), key, i32 value length (-1 = null), value, then (when the record has
 * headers) u32 header count and per header u32 name length, name, i32 value
 * length (-1 = null), value; and u32 FNV-1a of all before it. A torn tail
 * (kill -9 mid-write) is cut off at replay.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

#define MOCK_PARTITION_LIMIT (5 * 1024 * 1024) /* bytes the mock keeps per partition */
#define RECORD_OVERHEAD 70                     /* approximate bytes per record in the mock */

typedef struct journal {
	char topic[256];
	int32_t partition;
	int fd;
	int64_t next;  /* offset of the next record to journal */
	int64_t bytes; /* approximate size of the partition in the mock */
	int warned;    /* highest warning level given: 0, 80, 95, 100 */
} journal;

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint32_t
fnv32(const uint8_t *p, size_t n, uint32_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void
put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void
put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void
size_warn(journal *j)
{
	int level = j->bytes >= MOCK_PARTITION_LIMIT              ? 100
	            : j->bytes >= MOCK_PARTITION_LIMIT / 100 * 95 ? 95
	            : j->bytes >= MOCK_PARTITION_LIMIT / 100 * 80 ? 80
	                                                          : 0;
	if (level > j->warned) {
		j->warned = level;
		log_warn("WARNING: %s [%d] holds about %lld bytes, %d%% of the local broker's %d MiB "
		         "per-partition limit; past it the oldest records are dropped. Use more partitions "
		         "or a real Kafka.",
		         j->topic, (int)j->partition, (long long)j->bytes, level, MOCK_PARTITION_LIMIT >> 20);
	}
}

/* Bytes the headers of m take in a journal record (0 without headers). */
static size_t
headers_size(rd_kafka_headers_t *hdrs)
{
	const char *name;
	const void *val;
	size_t size, total = 0;

	for (size_t i = 0; hdrs && rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == 0; i++)
		total += 4 + strlen(name) + 4 + (val ? size : 0);
	return total ? 4 + total : 0;
}

static uint8_t *
headers_put(uint8_t *p, rd_kafka_headers_t *hdrs)
{
	const char *name;
	const void *val;
	size_t size, n = 0, len;
	uint8_t *count = p;

	p += 4;
	for (; rd_kafka_header_get_all(hdrs, n, &name, &val, &size) == 0; n++) {
		len = strlen(name);
		put32(p, (uint32_t)len), p += 4;
		memcpy(p, name, len), p += len;
		put32(p, val ? (uint32_t)size : (uint32_t)-1), p += 4;
		if (val)
			memcpy(p, val, size), p += size;
	}
	put32(count, (uint32_t)n);
	return p;
}

/* Appends one record. 0 or -1 (logged). */
static int
journal_append(journal *j, const rd_kafka_message_t *m)
{
	int32_t klen = m->key ? (int32_t)m->key_len : -1, vlen = m->payload ? (int32_t)m->len : -1;
	size_t kl = klen > 0 ? (size_t)klen : 0, vl = vlen > 0 ? (size_t)vlen : 0;
	rd_kafka_headers_t *hdrs = NULL;
	size_t hl, body, total;
	uint8_t *buf, *p;
	ssize_t w;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		hdrs = NULL;
	hl = headers_size(hdrs);
	body = 8 + 4 + kl + 4 + vl + hl;
	total = 4 + body + 4;
	if ((buf = malloc(total)) == NULL)
		return -1;
	p = buf;
	put32(p, (uint32_t)(body + 4)), p += 4;
	put64(p, (uint64_t)m->offset), p += 8;
	put32(p, (uint32_t)klen), p += 4;
	if (kl)
		memcpy(p, m->key, kl), p += kl;
	put32(p, (uint32_t)vlen), p += 4;
	if (vl) /* a tombstone has no value at all */
		memcpy(p, m->payload, vl), p += vl;
	if (hl)
		p = headers_put(p, hdrs);
	put32(p, fnv32(buf, (size_t)(p - buf), 2166136261u));
	w = write(j->fd, buf, total);
	free(buf);
	if (w != (ssize_t)total) {
		log_error("journal %s-%d: write failed: %s", j->topic, (int)j->partition, strerror(errno));
		return -1;
	}
	j->next = m->offset + 1;
	j->bytes += (int64_t)(kl + vl + hl + RECORD_OVERHEAD);
	size_warn(j);
	return 0;
}

/* The headers journaled in at[0..len) (NULL when none or malformed). */
static rd_kafka_headers_t *
headers_get(const uint8_t *at, size_t len)
{
	rd_kafka_headers_t *hdrs;
	uint32_t n;
	size_t pos = 4;

	if (len < 4 || (n = get32(at)) == 0 || n > len)
		return NULL;
	hdrs = rd_kafka_headers_new(n);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t nl, vl;
		const uint8_t *name;

		if (pos + 4 > len || (nl = get32(at + pos)) > len - pos - 4 || pos + 4 + nl + 4 > len)
			goto bad;
		name = at + pos + 4;
		pos += 4 + nl;
		vl = get32(at + pos);
		pos += 4;
		if (vl != (uint32_t)-1 && vl > len - pos)
			goto bad;
		rd_kafka_header_add(hdrs, (const char *)name, (ssize_t)nl,
		                    vl == (uint32_t)-1 ? NULL : at + pos,
		                    vl == (uint32_t)-1 ? 0 : (ssize_t)vl);
		pos += vl == (uint32_t)-1 ? 0 : vl;
	}
	return hdrs;
bad:
	rd_kafka_headers_destroy(hdrs);
	return NULL;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	int64_t want = (int64_t)(intptr_t)m->_private;

	(void)rk;
	if (m->err) {
		log_error("replay: %s", rd_kafka_err2str(m->err));
		*(int *)opaque = 1;
	} else if (m->offset != want) {
		log_error("replay: record of offset %lld landed at %lld", (long long)want,
		          (long long)m->offset);
		*(int *)opaque = 1;
	}
}

/* Produces one journaled record (copied; hdrs taken on success). */
static rd_kafka_resp_err_t
replay_one(rd_kafka_t *producer, journal *j, const void *kp, int32_t klen, void *vp, int32_t vlen,
           rd_kafka_headers_t *hdrs, int64_t offset)
{
	size_t kl = klen > 0 ? (size_t)klen : 0, vl = vlen > 0 ? (size_t)vlen : 0;

	if (hdrs)
		return rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(j->topic),
		                         RD_KAFKA_V_PARTITION(j->partition), RD_KAFKA_V_KEY(kp, kl),
		                         RD_KAFKA_V_VALUE(vp, vl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                         RD_KAFKA_V_HEADERS(hdrs),
		                         RD_KAFKA_V_OPAQUE((void *)(intptr_t)offset), RD_KAFKA_V_END);
	return rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(j->topic), RD_KAFKA_V_PARTITION(j->partition),
	                         RD_KAFKA_V_KEY(kp, kl), RD_KAFKA_V_VALUE(vp, vl),
	                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	                         RD_KAFKA_V_OPAQUE((void *)(intptr_t)offset), RD_KAFKA_V_END);
}

/* Reads j's file and produces its records into the mock, in order. */
static int
journal_replay(journal *j, rd_kafka_t *producer, size_t *count)
{
	struct stat st;
	uint8_t *data;
	size_t pos = 0, good = 0;

	if (fstat(j->fd, &st) != 0)
		return -1;
	if (st.st_size == 0)
		return 0;
	if ((data = malloc((size_t)st.st_size)) == NULL ||
	    pread(j->fd, data, (size_t)st.st_size, 0) != st.st_size) {
		free(data);
		return -1;
	}
	while (pos + 4 <= (size_t)st.st_size) {
		uint32_t len = get32(data + pos);
		const uint8_t *r = data + pos + 4;
		int64_t offset;
		int32_t klen, vlen;
		const uint8_t *key, *val;
		rd_kafka_headers_t *hdrs;
		rd_kafka_resp_err_t err;

		if (len < 8 + 4 + 4 + 4 || pos + 4 + len > (size_t)st.st_size ||
		    fnv32(data + pos, 4 + len - 4, 2166136261u) != get32(r + len - 4))
			break;
		offset = (int64_t)get64(r);
		klen = (int32_t)get32(r + 8);
		key = r + 12;
		if (klen > 0 && (size_t)klen > len - 20)
			break;
		vlen = (int32_t)get32(key + (klen > 0 ? klen : 0));
		val = key + (klen > 0 ? klen : 0) + 4;
		if (vlen > 0 && (size_t)vlen > (size_t)(r + len - 4 - val))
			break;
		hdrs = headers_get(val + (vlen > 0 ? vlen : 0),
		                   (size_t)(r + len - 4 - (val + (vlen > 0 ? vlen : 0))));
		if (offset != j->next)
			log_warn("journal %s-%d: offset %lld follows %lld", j->topic, (int)j->partition,
			         (long long)offset, (long long)j->next - 1);
		const void *kp = klen >= 0 ? (const void *)key : NULL;
		void *vp = vlen >= 0 ? (void *)val : NULL;

		do {
			err = replay_one(producer, j, kp, klen, vp, vlen, hdrs, offset);
			if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				rd_kafka_poll(producer, 10);
		} while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			hdrs = NULL; /* taken */
		else if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		if (err) {
			log_error("replay: %s", rd_kafka_err2str(err));
			free(data);
			return -1;
		}
		j->next = offset + 1;
		j->bytes += (klen > 0 ? klen : 0) + (vlen > 0 ? vlen : 0) + RECORD_OVERHEAD;
		pos += 4 + len;
		good = pos;
		(*count)++;
	}
	if (good < (size_t)st.st_size) {
		log_warn("journal %s-%d: cutting a torn tail of %zu bytes", j->topic, (int)j->partition,
		         (size_t)st.st_size - good);
		if (ftruncate(j->fd, (off_t)good) != 0)
			log_error("journal: truncate: %s", strerror(errno));
	}
	free(data);
	size_warn(j);
	return 0;
}

static rd_kafka_t *
client_new(rd_kafka_type_t type, const char *bootstraps, int *failed)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof err);
	rd_kafka_conf_set(conf, "client.id", "profile-kafka-broker", err, sizeof err);
	if (type == RD_KAFKA_PRODUCER) {
		rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
		rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err);
		rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
		rd_kafka_conf_set_opaque(conf, failed);
	} else {
		rd_kafka_conf_set(conf, "group.id", "profile-kafka-broker-journal", err, sizeof err);
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
		rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", err, sizeof err);
		rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof err);
	}
	if ((rk = rd_kafka_new(type, conf, err, sizeof err)) == NULL)
		log_error("kafka client: %s", err);
	return rk;
}

static int
write_bootstrap(const char dir[static 1], const char *bootstraps)
{
	char tmp[4096], path[4096];
	FILE *f;

	if (strlen(dir) > 2048)
		return -1;
	snprintf(tmp, sizeof tmp, "%s/bootstrap.tmp", dir);
	snprintf(path, sizeof path, "%s/bootstrap", dir);
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "%s\n", bootstraps);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return rename(tmp, path);
}

static journal *
find_journal(journal *js, size_t n, const char *topic, int32_t p)
{
	for (size_t i = 0; i < n; i++)
		if (js[i].partition == p && strcmp(js[i].topic, topic) == 0)
			return &js[i];
	return NULL;
}

/* Consumes whatever is available and journals it; waits up to timeout_ms
 * for the first record. Returns records journaled, -1 on a write failure. */
static long
journal_poll(rd_kafka_t *consumer, journal *js, size_t n, int timeout_ms)
{
	long got = 0;
	rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, timeout_ms);

	for (; m != NULL; m = rd_kafka_consumer_poll(consumer, 0)) {
		journal *j;

		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				log_warn("journal consumer: %s", rd_kafka_message_errstr(m));
		} else if ((j = find_journal(js, n, rd_kafka_topic_name(m->rkt), m->partition)) != NULL &&
		           m->offset >= j->next) {
			if (journal_append(j, m) != 0) {
				rd_kafka_message_destroy(m);
				return -1;
			}
			got++;
		}
		rd_kafka_message_destroy(m);
		if (got >= 10000)
			break;
	}
	return got;
}

/* ---- faults, on command ------------------------------------------------- */

#define API_PRODUCE 0
#define API_FETCH 1

/* A Kafka error code from a number or its name (without the
 * RD_KAFKA_RESP_ERR_ prefix); -1 when neither. */
static int
error_code(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);

	if (*s && *end == '\0')
		return n >= 0 && n < 1000 ? (int)n : -1;
	for (int code = 0; code < 1000; code++)
		if (strcmp(rd_kafka_err2name((rd_kafka_resp_err_t)code), s) == 0)
			return code;
	return -1;
}

/* Carries out one command line; the answer ("ok ..." or "error: ...") in out. */
static void
control_do(rd_kafka_mock_cluster_t *mc, int brokers, char *line, char *out, size_t len)
{
	char *argv[4] = {0};
	int argc = 0;

	for (char *tok = strtok(line, " \t\r\n"); tok && argc < 4; tok = strtok(NULL, " \t\r\n"))
		argv[argc++] = tok;
	if (argc == 1 && (strcmp(argv[0], "down") == 0 || strcmp(argv[0], "up") == 0)) {
		for (int b = 1; b <= brokers; b++)
			if (argv[0][0] == 'd')
				rd_kafka_mock_broker_set_down(mc, b);
			else
				rd_kafka_mock_broker_set_up(mc, b);
		snprintf(out, len, "ok: %d broker(s) %s", brokers, argv[0]);
	} else if (argc == 2 && strcmp(argv[0], "rtt") == 0 && atoi(argv[1]) >= 0) {
		for (int b = 1; b <= brokers; b++)
			rd_kafka_mock_broker_set_rtt(mc, b, atoi(argv[1]));
		snprintf(out, len, "ok: round trips take %d ms more", atoi(argv[1]));
	} else if ((argc == 3 || argc == 4) && strcmp(argv[0], "error") == 0 &&
	           (strcmp(argv[1], "produce") == 0 || strcmp(argv[1], "fetch") == 0) &&
	           error_code(argv[2]) >= 0 && (argc == 3 || (atoi(argv[3]) > 0 && atoi(argv[3]) <= 1000))) {
		int count = argc == 4 ? atoi(argv[3]) : 1, code = error_code(argv[2]);
		rd_kafka_resp_err_t *errs = calloc((size_t)count, sizeof *errs);

		for (int i = 0; errs && i < count; i++)
			errs[i] = (rd_kafka_resp_err_t)code;
		if (errs)
			rd_kafka_mock_push_request_errors_array(mc, argv[1][0] == 'p' ? API_PRODUCE : API_FETCH,
			                                        (size_t)count, errs);
		free(errs);
		snprintf(out, len, "ok: the next %d %s request(s) fail with %s", count, argv[1],
		         rd_kafka_err2name((rd_kafka_resp_err_t)code));
	} else if (argc == 1 && strcmp(argv[0], "clear") == 0) {
		rd_kafka_mock_clear_request_errors(mc, API_PRODUCE);
		rd_kafka_mock_clear_request_errors(mc, API_FETCH);
		for (int b = 1; b <= brokers; b++) {
			rd_kafka_mock_broker_set_rtt(mc, b, 0);
			rd_kafka_mock_broker_set_up(mc, b);
		}
		snprintf(out, len, "ok: faults cleared");
	} else {
		snprintf(out, len, "error: commands are: down | up | rtt MS | error produce|fetch CODE [COUNT] | clear");
	}
}

/* DIR/control, listening (non-blocking); -1 on error (logged). */
static int
control_listen(const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/control", dir) >= sizeof sa.sun_path) {
		log_warn("%s/control: path too long for a socket; no fault control", dir);
		return -1;
	}
	unlink(sa.sun_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 8) != 0) {
		log_warn("%s: %s; no fault control", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Serves the commands waiting on the control socket. */
static void
control_serve(int lfd, rd_kafka_mock_cluster_t *mc, int brokers)
{
	struct timeval tv = {1, 0};
	char line[256], out[256];
	int fd;

	while (lfd >= 0 && (fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		ssize_t n;

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		if ((n = read(fd, line, sizeof line - 1)) > 0) {
			line[n] = '\0';
			control_do(mc, brokers, line, out, sizeof out);
			log_info("control: %.*s -> %s", (int)strcspn(line, "\r\n"), line, out);
			strcat(out, "\n");
			if (write(fd, out, strlen(out)) < 0)
				log_warn("control: cannot answer: %s", strerror(errno));
		}
		close(fd);
	}
}

/* --control: sends one command to a running broker and prints its answer. */
static int
control_send(const char *dir, const char *cmd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char out[256];
	ssize_t n;
	int fd;

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/control", dir);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		fprintf(stderr, "profile-kafka-broker: %s: %s (is the broker running with --data %s?)\n",
		        sa.sun_path, strerror(errno), dir);
		return 1;
	}
	if (write(fd, cmd, strlen(cmd)) < 0 || (n = read(fd, out, sizeof out - 1)) <= 0) {
		fprintf(stderr, "profile-kafka-broker: %s: no answer\n", sa.sun_path);
		close(fd);
		return 1;
	}
	close(fd);
	out[n] = '\0';
	fputs(out, stdout);
	return strncmp(out, "ok", 2) == 0 ? 0 : 2;
}

int
main(int argc, char **argv)
{
	const char *opt_data, *opt_topic, *opt_members, *opt_control;
	long opt_partitions, opt_brokers;
	cli_option options[] = {
	    {"data", 'd', "PROFILE_BROKER_DATA", CLI_STRING, "./var/kafka", "DIR",
	     "journal and bootstrap file directory", &opt_data},
	    {"partitions", 'p', "PROFILE_BROKER_PARTITIONS", CLI_INT, "12", "N",
	     "partitions of the profiles topic (fixed once the journal exists)", &opt_partitions},
	    {"brokers", 'n', "PROFILE_BROKER_COUNT", CLI_INT, "1", "N", "brokers in the mock cluster",
	     &opt_brokers},
	    {"topic", 't', "PROFILE_BROKER_TOPIC", CLI_STRING, "profiles", "NAME", "the profiles topic",
	     &opt_topic},
	    {"members-topic", 0, "PROFILE_BROKER_MEMBERS_TOPIC", CLI_STRING, "profiles.members", "NAME",
	     "the membership topic (one partition)", &opt_members},
	    {"control", 0, NULL, CLI_STRING, NULL, "COMMAND",
	     "send a fault to the broker running on --data and exit: down, up, rtt MS, "
	     "error produce|fetch CODE [COUNT], clear",
	     &opt_control},
	};
	char dir[2048], path[sizeof dir + 512], err[256];
	rd_kafka_conf_t *conf;
	rd_kafka_t *host = NULL, *producer = NULL, *consumer = NULL;
	rd_kafka_mock_cluster_t *mc;
	rd_kafka_topic_partition_list_t *assign;
	const char *bootstraps;
	journal *js;
	size_t nj, replayed = 0;
	int failed = 0, rc, cfd;
	struct sigaction sa = {0};

	log_set_name("kafka-broker");
	rc = cli_parse(argc, argv, "profile-kafka-broker [OPTIONS]",
	               "A local Kafka for tests and the quick start: librdkafka's mock cluster with the\n"
	               "topics pre-created, a journal that survives restarts, and the bootstrap list\n"
	               "written to DIR/bootstrap once it is ready. Exact across clean shutdowns; a\n"
	               "kill -9 may lose the newest acknowledged records.",
	               options, sizeof options / sizeof options[0]);
	if (rc)
		return rc == 1 ? 0 : 2;
	if (opt_control != NULL)
		return control_send(opt_data, opt_control);
	if (opt_partitions < 1 || opt_partitions > 1000 || opt_brokers < 1 || opt_brokers > 9) {
		fprintf(stderr, "profile-kafka-broker: --partitions must be 1..1000, --brokers 1..9\n");
		return 2;
	}
	if (strlen(opt_data) >= sizeof dir) {
		fprintf(stderr, "profile-kafka-broker: --data path too long\n");
		return 2;
	}
	snprintf(dir, sizeof dir, "%s", opt_data);
	snprintf(path, sizeof path, "%s/bootstrap", dir);
	unlink(path); /* a stale list must never be read while we restore */
	snprintf(path, sizeof path, "%s/journal", dir);
	if ((mkdir(dir, 0755) != 0 && errno != EEXIST) || (mkdir(path, 0755) != 0 && errno != EEXIST)) {
		log_error("cannot create %s: %s", path, strerror(errno));
		return 1;
	}

	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The partition count is fixed by the journal once one exists. */
	{
		char meta[sizeof dir + 32];
		FILE *f;
		long have = 0;

		snprintf(meta, sizeof meta, "%s/journal/partitions", dir);
		if ((f = fopen(meta, "r")) != NULL) {
			if (fscanf(f, "%ld", &have) != 1)
				have = 0;
			fclose(f);
		}
		if (have > 0 && have != opt_partitions) {
			log_warn("the journal in %s has %ld partitions; using that, not %ld", path, have,
			         opt_partitions);
			opt_partitions = have;
		} else if (have == 0 && (f = fopen(meta, "w")) != NULL) {
			fprintf(f, "%ld\n", opt_partitions);
			fclose(f);
		}
	}

	conf = rd_kafka_conf_new();
	/* This handle only hosts the mock cluster; it never connects. */
	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
	if ((host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err)) == NULL) {
		log_error("%s", err);
		return 1;
	}
	if ((mc = rd_kafka_mock_cluster_new(host, (int)opt_brokers)) == NULL) {
		log_error("cannot start the mock cluster");
		return 1;
	}
	bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
	if (rd_kafka_mock_topic_create(mc, opt_topic, (int)opt_partitions, 1) ||
	    rd_kafka_mock_topic_create(mc, opt_members, 1, 1)) {
		log_error("cannot create the topics");
		return 1;
	}

	nj = (size_t)opt_partitions + 1;
	js = calloc(nj, sizeof *js);
	for (size_t i = 0; i < nj; i++) {
		journal *j = &js[i];
		snprintf(j->topic, sizeof j->topic, "%s",
		         i < (size_t)opt_partitions ? opt_topic : opt_members);
		j->partition = i < (size_t)opt_partitions ? (int32_t)i : 0;
		snprintf(path, sizeof path, "%s/journal/%s-%d.log", dir, j->topic, (int)j->partition);
		if ((j->fd = open(path, O_RDWR | O_CREAT | O_APPEND, 0644)) < 0) {
			log_error("cannot open %s: %s", path, strerror(errno));
			return 1;
		}
	}

	if ((producer = client_new(RD_KAFKA_PRODUCER, bootstraps, &failed)) == NULL)
		return 1;
	for (size_t i = 0; i < nj && !failed; i++)
		if (journal_replay(&js[i], producer, &replayed) != 0)
			failed = 1;
	while (!failed && rd_kafka_outq_len(producer) > 0)
		rd_kafka_flush(producer, 1000);
	rd_kafka_destroy(producer);
	if (failed) {
		log_error("replay of the journal failed; not serving a partial log");
		return 1;
	}

	if ((consumer = client_new(RD_KAFKA_CONSUMER, bootstraps, NULL)) == NULL)
		return 1;
	assign = rd_kafka_topic_partition_list_new((int)nj);
	for (size_t i = 0; i < nj; i++)
		rd_kafka_topic_partition_list_add(assign, js[i].topic, js[i].partition)->offset = js[i].next;
	rd_kafka_assign(consumer, assign);
	rd_kafka_topic_partition_list_destroy(assign);

	if (write_bootstrap(dir, bootstraps) != 0) {
		log_error("cannot write %s/bootstrap: %s", dir, strerror(errno));
		return 1;
	}
	log_info("replayed %zu records; serving Kafka on %s (topics %s x%ld, %s x1)", replayed, bootstraps,
	         opt_topic, opt_partitions, opt_members);
	printf("%s\n", bootstraps);
	fflush(stdout);

	cfd = control_listen(dir);
	while (!stop) {
		control_serve(cfd, mc, (int)opt_brokers);
		if (journal_poll(consumer, js, nj, 100) < 0)
			break;
	}
	if (cfd >= 0) {
		close(cfd);
		snprintf(path, sizeof path, "%s/control", dir);
		unlink(path);
	}
	/* Faults end with the run: the drain below needs the brokers. */
	{
		char clear[] = "clear", out[128];
		control_do(mc, (int)opt_brokers, clear, out, sizeof out);
	}

	/* Drain: journal everything the mock holds before it goes away. */
	for (int round = 0; round < 50; round++) {
		int behind = 0;
		for (size_t i = 0; i < nj; i++) {
			int64_t lo, hi;
			if (rd_kafka_query_watermark_offsets(consumer, js[i].topic, js[i].partition, &lo, &hi,
			                                     1000) == 0 &&
			    hi > js[i].next)
				behind = 1;
		}
		if (!behind)
			break;
		if (journal_poll(consumer, js, nj, 100) < 0)
			break;
	}
	for (size_t i = 0; i < nj; i++) {
		fsync(js[i].fd);
		close(js[i].fd);
	}
	rd_kafka_consumer_close(consumer);
	rd_kafka_destroy(consumer);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(host);
	snprintf(path, sizeof path, "%s/bootstrap", dir);
	unlink(path);
	free(js);
	log_info("stopped; journal flushed");
	return 0;
}
