/* metrics.c: counting and rendering /metrics (metrics.h). */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

static const int codes[GM_CODES - 1] = {200, 201, 204, 304, 400, 404, 405, 409, 412,
                                        413, 415, 422, 429, 499, 500, 501, 503, 504};

/* Seconds, as the core's (core/metrics.c): a gateway answer adds its own
 * hop to the core's time. */
static const double bounds[GM_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};

void
gateway_metrics_count(gateway_metrics *m, int route, int head, int http, int64_t micros)
{
	double s = (double)micros / 1e6;
	int c = 0, b = 0;

	if (route < 0 || route >= GM_ROUTES - 1)
		route = GM_ROUTES - 1;
	while (c < GM_CODES - 1 && codes[c] != http)
		c++;
	while (b < GM_BUCKETS && s > bounds[b])
		b++;
	__atomic_add_fetch(&m->answers[route][head != 0][c], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->buckets[route][b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->micros[route], micros > 0 ? (uint64_t)micros : 0, __ATOMIC_RELAXED);
}

void
gateway_metrics_refused(gateway_metrics *m)
{
	__atomic_add_fetch(&m->refused, 1, __ATOMIC_RELAXED);
}

/* ---- the text ---------------------------------------------------------- */

typedef struct out {
	char *buf;
	size_t len, cap;
	int failed;
} out;

static void
put(out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *grown = realloc(o->buf, o->cap * 2 + (size_t)n);
		if (grown == NULL) {
			o->failed = 1;
			return;
		}
		o->buf = grown;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

static void
family(out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newline escaped, into buf. */
static const char *
label(const char *v, char *buf, size_t size)
{
	size_t n = 0;

	for (; *v && n + 2 < size; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			buf[n++] = '\\';
			buf[n++] = *v == '\n' ? 'n' : *v;
		} else {
			buf[n++] = *v;
		}
	}
	buf[n] = '\0';
	return buf;
}

/* One histogram's lines: bucket counts (not cumulative) per bound, then
 * +Inf; labels is the text inside {} before le. */
static void
histogram(out *o, const char *name, const char *labels, const double *le, const uint64_t *counts,
          size_t nle, double sum)
{
	uint64_t acc = 0;

	for (size_t i = 0; i < nle; i++) {
		acc += counts[i];
		put(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, le[i], (unsigned long long)acc);
	}
	acc += counts[nle];
	put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)acc);
	put(o, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, sum, name, labels, (unsigned long long)acc);
}

static void
render_gateway(out *o, const gateway_metrics *m, const int waiting[2])
{
	const char *method, *path;
	uint64_t counts[GM_BUCKETS + 1];
	char labels[160];

	family(o, "profile_gateway_http_requests_total", "counter", "HTTP requests answered, by method, route and status code.");
	for (int r = 0; r < GM_ROUTES; r++) {
		api_route_label(r < GM_ROUTES - 1 ? r : -1, &method, &path);
		for (int h = 0; h < 2; h++)
			for (int c = 0; c < GM_CODES; c++) {
				uint64_t n = __atomic_load_n(&m->answers[r][h][c], __ATOMIC_RELAXED);
				char code[8];
				if (n == 0)
					continue;
				if (c < GM_CODES - 1)
					snprintf(code, sizeof code, "%d", codes[c]);
				else
					snprintf(code, sizeof code, "other");
				put(o, "profile_gateway_http_requests_total{method=\"%s\",route=\"%s\",code=\"%s\"} %llu\n",
				    h ? "HEAD" : method, path, code, (unsigned long long)n);
			}
	}
	family(o, "profile_gateway_http_request_duration_seconds", "histogram",
	       "Time from a request's arrival to its answer, by route.");
	for (int r = 0; r < GM_ROUTES; r++) {
		uint64_t any = 0;
		for (int b = 0; b <= GM_BUCKETS; b++)
			any += counts[b] = __atomic_load_n(&m->buckets[r][b], __ATOMIC_RELAXED);
		if (any == 0)
			continue;
		api_route_label(r < GM_ROUTES - 1 ? r : -1, &method, &path);
		snprintf(labels, sizeof labels, "route=\"%s\"", path);
		histogram(o, "profile_gateway_http_request_duration_seconds", labels, bounds, counts, GM_BUCKETS,
		          (double)__atomic_load_n(&m->micros[r], __ATOMIC_RELAXED) / 1e6);
	}
	family(o, "profile_gateway_requests_waiting", "gauge", "Requests waiting for a core now, reads and writes.");
	put(o, "profile_gateway_requests_waiting{kind=\"read\"} %d\n", __atomic_load_n(&waiting[0], __ATOMIC_RELAXED));
	put(o, "profile_gateway_requests_waiting{kind=\"write\"} %d\n", __atomic_load_n(&waiting[1], __ATOMIC_RELAXED));
	family(o, "profile_gateway_requests_refused_total", "counter",
	       "Requests answered 503 at once because --max-waiting were already waiting.");
	put(o, "profile_gateway_requests_refused_total %llu\n",
	    (unsigned long long)__atomic_load_n(&m->refused, __ATOMIC_RELAXED));
}

/* One counter or gauge with a value per reachable node. */
static void
per_node(out *o, const Profile__V1__ClusterReply *c, const char *name, const char *type, const char *help,
         uint64_t (*value)(const Profile__V1__StatusReply *s))
{
	char node[160];

	family(o, name, type, help);
	for (size_t i = 0; i < c->n_nodes; i++)
		if (c->nodes[i]->status)
			put(o, "%s{node=\"%s\"} %llu\n", name, label(c->nodes[i]->node_id, node, sizeof node),
			    (unsigned long long)value(c->nodes[i]->status));
}

static uint64_t v_forwards(const Profile__V1__StatusReply *s) { return s->forwards; }
static uint64_t v_owned(const Profile__V1__StatusReply *s) { return s->n_owned; }
static uint64_t v_restores(const Profile__V1__StatusReply *s) { return s->restores; }
static uint64_t v_rebalances(const Profile__V1__StatusReply *s) { return s->rebalances; }
static uint64_t v_produce_errors(const Profile__V1__StatusReply *s) { return s->produce_errors; }
static uint64_t v_request_retries(const Profile__V1__StatusReply *s) { return s->request_retries; }
static uint64_t v_producer_restarts(const Profile__V1__StatusReply *s) { return s->producer_restarts; }
static uint64_t v_store_transactions(const Profile__V1__StatusReply *s) { return s->store_transactions; }
static uint64_t v_store_records(const Profile__V1__StatusReply *s) { return s->store_records; }
static uint64_t v_applied_on_ack(const Profile__V1__StatusReply *s) { return s->applied_on_ack; }

static void
render_requests(out *o, const Profile__V1__ClusterReply *c)
{
	char node[160], labels[256];

	family(o, "profile_node_requests_total", "counter",
	       "Requests a core node answered, by method and status (gRPC code names).");
	for (size_t i = 0; i < c->n_nodes; i++) {
		const Profile__V1__StatusReply *s = c->nodes[i]->status;
		for (size_t k = 0; s && k < s->n_methods; k++)
			for (size_t a = 0; a < s->methods[k]->n_answers; a++)
				put(o, "profile_node_requests_total{node=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
				    label(c->nodes[i]->node_id, node, sizeof node), s->methods[k]->method,
				    profile_status_name((int)s->methods[k]->answers[a]->status),
				    (unsigned long long)s->methods[k]->answers[a]->count);
	}
	family(o, "profile_node_request_duration_seconds", "histogram",
	       "Time from a request's arrival at a core node to its answer, by method.");
	for (size_t i = 0; i < c->n_nodes; i++) {
		const Profile__V1__StatusReply *s = c->nodes[i]->status;
		for (size_t k = 0; s && k < s->n_methods; k++) {
			const Profile__V1__MethodStats *ms = s->methods[k];
			uint64_t any = 0;
			for (size_t b = 0; b < ms->n_buckets; b++)
				any += ms->buckets[b];
			if (any == 0 || ms->n_buckets != s->n_latency_bounds + 1)
				continue;
			snprintf(labels, sizeof labels, "node=\"%s\",method=\"%s\"",
			         label(c->nodes[i]->node_id, node, sizeof node), ms->method);
			histogram(o, "profile_node_request_duration_seconds", labels, s->latency_bounds, ms->buckets,
			          s->n_latency_bounds, ms->seconds);
		}
	}
}

/* Per partition a node serves: what fn reads of it. */
static void
per_partition(out *o, const Profile__V1__ClusterReply *c, const char *name, const char *help,
              int64_t (*value)(const Profile__V1__PartitionState *p))
{
	char node[160];

	family(o, name, "gauge", help);
	for (size_t i = 0; i < c->n_nodes; i++) {
		const Profile__V1__StatusReply *s = c->nodes[i]->status;
		for (size_t k = 0; s && k < s->n_partitions; k++)
			put(o, "%s{node=\"%s\",partition=\"%d\"} %lld\n", name,
			    label(c->nodes[i]->node_id, node, sizeof node), (int)s->partitions[k]->partition,
			    (long long)value(s->partitions[k]));
	}
}

static int64_t p_applied(const Profile__V1__PartitionState *p) { return p->applied_offset; }
static int64_t p_lag(const Profile__V1__PartitionState *p) { return p->lag; }
static int64_t
p_remaining(const Profile__V1__PartitionState *p)
{
	return p->state == PROFILE__V1__PARTITION_STATE__STATE__RESTORING ? p->lag : 0;
}
static int64_t p_replayed(const Profile__V1__PartitionState *p) { return (int64_t)p->replayed; }
static int64_t p_bytes(const Profile__V1__PartitionState *p) { return (int64_t)p->store_bytes; }
static int64_t p_records(const Profile__V1__PartitionState *p) { return (int64_t)p->store_records; }

static void
render_partitions(out *o, const Profile__V1__ClusterReply *c)
{
	static const struct {
		Profile__V1__PartitionState__State state;
		const char *name;
	} states[] = {{PROFILE__V1__PARTITION_STATE__STATE__RESTORING, "restoring"},
	              {PROFILE__V1__PARTITION_STATE__STATE__ACTIVE, "active"},
	              {PROFILE__V1__PARTITION_STATE__STATE__UNAVAILABLE, "unavailable"}};
	char node[160];

	family(o, "profile_partition_state", "gauge",
	       "1 for the state a partition is in on the node serving it (restoring, active, unavailable).");
	for (size_t i = 0; i < c->n_nodes; i++) {
		const Profile__V1__StatusReply *s = c->nodes[i]->status;
		for (size_t k = 0; s && k < s->n_partitions; k++)
			for (size_t j = 0; j < sizeof states / sizeof states[0]; j++)
				put(o, "profile_partition_state{node=\"%s\",partition=\"%d\",state=\"%s\"} %d\n",
				    label(c->nodes[i]->node_id, node, sizeof node), (int)s->partitions[k]->partition,
				    states[j].name, s->partitions[k]->state == states[j].state);
	}
	per_partition(o, c, "profile_partition_applied_offset", "Offset of the last record its store applied (-1: none).",
	              p_applied);
	per_partition(o, c, "profile_partition_lag_records", "Records between its store and the log end.", p_lag);
	per_partition(o, c, "profile_partition_restore_remaining_records",
	              "Records left to replay while restoring (0 once active).", p_remaining);
	per_partition(o, c, "profile_partition_replayed_records", "Records replayed since it was assigned.",
	              p_replayed);
	per_partition(o, c, "profile_partition_store_bytes", "Size of its store file.", p_bytes);
	per_partition(o, c, "profile_partition_store_records",
	              "Records in its store file (profiles and their indexes).", p_records);
}

static void
render_nodes(out *o, const Profile__V1__ClusterReply *c)
{
	char node[160];

	family(o, "profile_node_up", "gauge", "1 when the core node answered the cluster view, else 0.");
	for (size_t i = 0; i < c->n_nodes; i++)
		put(o, "profile_node_up{node=\"%s\"} %d\n", label(c->nodes[i]->node_id, node, sizeof node),
		    c->nodes[i]->status != NULL);
	render_requests(o, c);
	per_node(o, c, "profile_node_forwards_total", "counter", "Requests a node sent on to their owner.",
	         v_forwards);
	per_node(o, c, "profile_node_owned_partitions", "gauge", "Partitions the group assigned to a node.",
	         v_owned);
	per_node(o, c, "profile_node_restores_total", "counter",
	         "Partitions a node replayed from the log to make them active.", v_restores);
	per_node(o, c, "profile_node_rebalances_total", "counter", "Assignment changes a node went through.",
	         v_rebalances);
	per_node(o, c, "profile_node_produce_errors_total", "counter",
	         "Records whose delivery to Kafka failed (the write answered 503 or 504).", v_produce_errors);
	per_node(o, c, "profile_node_kafka_request_retries_total", "counter",
	         "Requests the producer sent a broker again after a timeout or a lost connection (librdkafka's "
	         "statistics, every 5 s).",
	         v_request_retries);
	per_node(o, c, "profile_node_producer_restarts_total", "counter",
	         "Producers replaced after a fatal error (their records in flight answered 503 or 504).",
	         v_producer_restarts);
	per_node(o, c, "profile_node_store_transactions_total", "counter",
	         "Store transactions that applied records (writes of several uids share one).", v_store_transactions);
	per_node(o, c, "profile_node_store_records_total", "counter", "Records the store transactions applied.",
	         v_store_records);
	per_node(o, c, "profile_node_records_applied_on_ack_total", "counter",
	         "Records a node applied from Kafka's acknowledgement of its own write, before reading them back.",
	         v_applied_on_ack);
	render_partitions(o, c);
}

char *
gateway_metrics_render(const gateway_metrics *m, const int waiting[2], const Profile__V1__ClusterReply *cluster)
{
	out o = {malloc(16384), 0, 16384, 0};

	if (o.buf == NULL)
		return NULL;
	o.buf[0] = '\0';
	render_gateway(&o, m, waiting);
	family(&o, "profile_cluster_view_up", "gauge",
	       "1 when a core answered the cluster view for this scrape (node metrics below), else 0.");
	put(&o, "profile_cluster_view_up %d\n", cluster != NULL);
	if (cluster != NULL) {
		family(&o, "profile_cluster_partitions", "gauge", "Partitions of the profiles topic.");
		put(&o, "profile_cluster_partitions %d\n", (int)cluster->partition_count);
		render_nodes(&o, cluster);
	}
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}
