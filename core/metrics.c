/* metrics.c: per-method answer counts and latency histograms (metrics.h). */
#include "metrics.h"

#include <string.h>

const char *const metrics_method_names[METRICS_METHODS] = {
    "create", "get", "update", "delete", "search", "status", "cluster", "unknown",
};

/* Seconds; chosen around what a node does: a local get in well under a
 * millisecond, a write in a few, a deadline at 5 s. */
static const double bounds[METRICS_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};

void
metrics_answered(node_metrics *m, int method, int status, int64_t micros)
{
	double s = (double)micros / 1e6;
	int b = 0;

	if (method < 0 || method >= METRICS_METHODS)
		method = METRICS_METHODS - 1;
	if (status < 0 || status >= METRICS_STATUSES)
		status = PROFILE_UNKNOWN;
	while (b < METRICS_BUCKETS && s > bounds[b])
		b++;
	__atomic_add_fetch(&m->answers[method][status], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->buckets[method][b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->micros[method], micros > 0 ? (uint64_t)micros : 0, __ATOMIC_RELAXED);
}

void
metrics_fill(const node_metrics *m, metrics_buf *b, Profile__V1__StatusReply *reply)
{
	memset(b, 0, sizeof *b);
	memcpy(b->bounds, bounds, sizeof bounds);
	for (int i = 0; i < METRICS_METHODS; i++) {
		Profile__V1__MethodStats *st = &b->stats[i];
		size_t n = 0;

		profile__v1__method_stats__init(st);
		st->method = (char *)metrics_method_names[i];
		for (int s = 0; s < METRICS_STATUSES; s++) {
			uint64_t c = __atomic_load_n(&m->answers[i][s], __ATOMIC_RELAXED);
			if (c == 0)
				continue;
			profile__v1__method_stats__answers__init(&b->answers[i][n]);
			b->answers[i][n].status = (Profile__V1__Status)s;
			b->answers[i][n].count = c;
			b->answer_ptrs[i][n] = &b->answers[i][n];
			n++;
		}
		st->n_answers = n;
		st->answers = b->answer_ptrs[i];
		for (int k = 0; k <= METRICS_BUCKETS; k++)
			b->buckets[i][k] = __atomic_load_n(&m->buckets[i][k], __ATOMIC_RELAXED);
		st->n_buckets = METRICS_BUCKETS + 1;
		st->buckets = b->buckets[i];
		st->seconds = (double)__atomic_load_n(&m->micros[i], __ATOMIC_RELAXED) / 1e6;
		b->stats_ptrs[i] = st;
	}
	reply->n_methods = METRICS_METHODS;
	reply->methods = b->stats_ptrs;
	reply->n_latency_bounds = METRICS_BUCKETS;
	reply->latency_bounds = b->bounds;
}
