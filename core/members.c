/* members.c: the partition -> node table, kept through Kafka (members.h). */
#include "members.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "wire.h"

struct members {
	members_config cfg;
	char *topic;
	char *node_id;
	char *address;
	rd_kafka_t *producer;
	rd_kafka_t *reader;
	pthread_t thread;
	int stopping; /* atomic */
	int started;
	pthread_rwlock_t lock; /* guards the table below */
	member_node *nodes;
	size_t n_nodes, cap_nodes;
	int *owner; /* per partition: index into nodes, or -1 */
	int ready;
	int64_t end_at_open; /* the reader is ready past this offset */
};

static rd_kafka_t *
client_new(const members_config *cfg, rd_kafka_type_t type)
{
	rd_kafka_conf_t *conf = kafka_conf_new(cfg->brokers, cfg->node_id);
	char err[256];
	rd_kafka_t *rk;

	if (conf == NULL)
		return NULL;
	if (type == RD_KAFKA_PRODUCER) {
		rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
		rd_kafka_conf_set(conf, "acks", "all", err, sizeof err);
		rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
	} else {
		/* Manual assignment; the id is required by librdkafka, never joined. */
		rd_kafka_conf_set(conf, "group.id", "profiled-members-reader", err, sizeof err);
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
		/* The table needs the whole topic: a reset must never skip to
		 * its end (librdkafka's default). */
		rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err);
	}
	/* The changelog took the same lists first and reported any bad one. */
	if (kafka_conf_apply(conf, cfg->kafka_opts) != PROFILE_OK ||
	    (type == RD_KAFKA_CONSUMER && kafka_conf_apply(conf, cfg->consumer_opts) != PROFILE_OK)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	if ((rk = rd_kafka_new(type, conf, err, sizeof err)) == NULL)
		log_error("members: %s", err);
	return rk;
}

/* Under the write lock: the node's index, added if new. */
static int
node_index(members *m, const char *id, const char *address)
{
	for (size_t i = 0; i < m->n_nodes; i++)
		if (strcmp(m->nodes[i].id, id) == 0) {
			snprintf(m->nodes[i].address, sizeof m->nodes[i].address, "%s", address);
			return (int)i;
		}
	if (m->n_nodes == m->cap_nodes) {
		size_t cap = m->cap_nodes ? m->cap_nodes * 2 : 8;
		member_node *grown = realloc(m->nodes, cap * sizeof *grown);
		if (grown == NULL)
			return -1;
		m->nodes = grown;
		m->cap_nodes = cap;
	}
	memset(&m->nodes[m->n_nodes], 0, sizeof m->nodes[0]);
	snprintf(m->nodes[m->n_nodes].id, sizeof m->nodes[0].id, "%s", id);
	snprintf(m->nodes[m->n_nodes].address, sizeof m->nodes[0].address, "%s", address);
	return (int)m->n_nodes++;
}

int
members_apply(members *m, const void *record, size_t len, int64_t offset)
{
	Profile__V1__Member *mb;
	int idx, rc = PROFILE_OK;

	if (record == NULL) /* a tombstone: compaction's business */
		return PROFILE_OK;
	if ((mb = profile__v1__member__unpack(NULL, len, record)) == NULL)
		return PROFILE_INVALID_ARGUMENT;
	pthread_rwlock_wrlock(&m->lock);
	if ((idx = node_index(m, mb->node_id, mb->address)) >= 0) {
		m->nodes[idx].leaving = mb->leaving;
		/* Its earlier claims lapse; the new ones supersede anyone's. */
		for (int32_t p = 0; p < m->cfg.partitions; p++)
			if (m->owner[p] == idx)
				m->owner[p] = -1;
		for (size_t i = 0; i < mb->n_partitions && !mb->leaving; i++)
			if (mb->partitions[i] >= 0 && mb->partitions[i] < m->cfg.partitions)
				m->owner[mb->partitions[i]] = idx;
	} else {
		rc = PROFILE_RESOURCE_EXHAUSTED;
	}
	if (offset + 1 >= m->end_at_open)
		m->ready = 1;
	pthread_rwlock_unlock(&m->lock);
	profile__v1__member__free_unpacked(mb, NULL);
	return rc;
}

static void *
reader_main(void *arg)
{
	members *m = arg;

	while (!__atomic_load_n(&m->stopping, __ATOMIC_ACQUIRE)) {
		rd_kafka_message_t *msg = rd_kafka_consumer_poll(m->reader, 100);

		rd_kafka_poll(m->producer, 0); /* delivery reports */
		if (msg == NULL)
			continue;
		if (msg->err == 0) {
			if (members_apply(m, msg->payload, msg->len, msg->offset) == PROFILE_INVALID_ARGUMENT)
				log_warn("members: offset %lld is not a member record, skipped", (long long)msg->offset);
		} else if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			log_warn("members: %s", rd_kafka_message_errstr(msg));
		}
		rd_kafka_message_destroy(msg);
	}
	return NULL;
}

int
members_open(members **out, const members_config *cfg)
{
	members *m = calloc(1, sizeof *m);
	rd_kafka_topic_partition_list_t *l;
	int64_t lo = 0, hi = 0;
	rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (m == NULL || (m->owner = malloc((size_t)cfg->partitions * sizeof *m->owner)) == NULL) {
		free(m);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	m->cfg = *cfg;
	for (int32_t p = 0; p < cfg->partitions; p++)
		m->owner[p] = -1;
	pthread_rwlock_init(&m->lock, NULL);
	if ((m->topic = strdup(cfg->topic ? cfg->topic : "")) == NULL ||
	    (m->node_id = strdup(cfg->node_id ? cfg->node_id : "")) == NULL ||
	    (m->address = strdup(cfg->address ? cfg->address : "")) == NULL) {
		members_close(m, 0);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	m->cfg.topic = m->topic;
	m->cfg.node_id = m->node_id;
	m->cfg.address = m->address;
	if (cfg->brokers == NULL) { /* the table alone */
		m->ready = 1;
		*out = m;
		return PROFILE_OK;
	}
	if ((m->producer = client_new(cfg, RD_KAFKA_PRODUCER)) == NULL ||
	    (m->reader = client_new(cfg, RD_KAFKA_CONSUMER)) == NULL) {
		members_close(m, 0);
		return PROFILE_INVALID_ARGUMENT;
	}
	kafka_topic_ensure(m->producer, m->topic, 1, 10000);
	/* A topic just made may have no leader known to this client yet: ask
	 * again for 10 s at most. */
	for (int64_t deadline = wire_mono_ms() + 10000, left;
	     (rc = rd_kafka_query_watermark_offsets(m->reader, m->topic, 0, &lo, &hi, 2000)) != 0 &&
	     (left = deadline - wire_mono_ms()) > 0;)
		usleep(250 * 1000);
	if (rc != 0) {
		log_error("members: cannot read topic %s", m->topic);
		members_close(m, 0);
		return PROFILE_UNAVAILABLE;
	}
	m->end_at_open = hi;
	m->ready = hi <= lo;
	l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, m->topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(m->reader, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (pthread_create(&m->thread, NULL, reader_main, m) != 0) {
		members_close(m, 0);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	m->started = 1;
	*out = m;
	return PROFILE_OK;
}

static void
publish(members *m, const int32_t *parts, size_t n, int leaving)
{
	Profile__V1__Member mb = PROFILE__V1__MEMBER__INIT;
	size_t len;
	uint8_t *buf;
	rd_kafka_resp_err_t err;

	mb.node_id = m->node_id;
	mb.address = m->address;
	mb.partitions = (int32_t *)parts;
	mb.n_partitions = n;
	mb.leaving = leaving;
	mb.updated_at = wire_now_ms();
	len = profile__v1__member__get_packed_size(&mb);
	if ((buf = malloc(len)) == NULL)
		return;
	profile__v1__member__pack(&mb, buf);
	err = rd_kafka_producev(m->producer, RD_KAFKA_V_TOPIC(m->topic), RD_KAFKA_V_PARTITION(0),
	                        RD_KAFKA_V_KEY(m->node_id, strlen(m->node_id)), RD_KAFKA_V_VALUE(buf, len),
	                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_END);
	if (err) {
		log_warn("members: publish: %s", rd_kafka_err2str(err));
		free(buf);
	}
}

void
members_publish(members *m, const int32_t *parts, size_t n)
{
	if (m->producer)
		publish(m, parts, n, 0);
}

void
members_close(members *m, int timeout_ms)
{
	if (m == NULL)
		return;
	if (m->started) {
		publish(m, NULL, 0, 1);
		rd_kafka_flush(m->producer, timeout_ms);
		__atomic_store_n(&m->stopping, 1, __ATOMIC_RELEASE);
		pthread_join(m->thread, NULL);
	}
	if (m->reader) {
		rd_kafka_consumer_close(m->reader);
		rd_kafka_destroy(m->reader);
	}
	if (m->producer)
		rd_kafka_destroy(m->producer);
	pthread_rwlock_destroy(&m->lock);
	free(m->nodes);
	free(m->owner);
	free(m->topic);
	free(m->node_id);
	free(m->address);
	free(m);
}

int
members_owner(members *m, int32_t p, char *id, size_t id_size, char *address, size_t addr_size)
{
	int rc = PROFILE_NOT_FOUND;

	if (p < 0 || p >= m->cfg.partitions)
		return PROFILE_NOT_FOUND;
	pthread_rwlock_rdlock(&m->lock);
	if (m->owner[p] >= 0) {
		const member_node *n = &m->nodes[m->owner[p]];
		if (id)
			snprintf(id, id_size, "%s", n->id);
		if (address)
			snprintf(address, addr_size, "%s", n->address);
		rc = PROFILE_OK;
	}
	pthread_rwlock_unlock(&m->lock);
	return rc;
}

int
members_ready(members *m)
{
	int r;

	pthread_rwlock_rdlock(&m->lock);
	r = m->ready;
	pthread_rwlock_unlock(&m->lock);
	return r;
}

int
members_snapshot(members *m, member_node **nodes, size_t *n_nodes, int *owner)
{
	int rc = PROFILE_OK;

	pthread_rwlock_rdlock(&m->lock);
	*n_nodes = m->n_nodes;
	*nodes = malloc((m->n_nodes ? m->n_nodes : 1) * sizeof **nodes);
	if (*nodes == NULL)
		rc = PROFILE_RESOURCE_EXHAUSTED;
	else if (m->n_nodes > 0)
		memcpy(*nodes, m->nodes, m->n_nodes * sizeof **nodes);
	memcpy(owner, m->owner, (size_t)m->cfg.partitions * sizeof *owner);
	pthread_rwlock_unlock(&m->lock);
	return rc;
}
