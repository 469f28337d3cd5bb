/* metrics.h: what a node counts about the requests it answers, for the
 * status and /metrics (docs/operations.md).
 *
 * Counters only ever grow and are atomics: metrics_answered runs on any
 * thread, metrics_fill reads a snapshot that may be a few requests apart
 * between its fields, as every Prometheus scrape may be.
 */
#ifndef PROFILE_METRICS_H
#define PROFILE_METRICS_H

#include <stdint.h>

#include "wire.h"

#define METRICS_METHODS 8  /* rpc.c's methods, then "unknown" */
#define METRICS_STATUSES 15 /* Status codes 0..14 */
#define METRICS_BUCKETS 14 /* latency bounds; one more bucket for +Inf */

typedef struct node_metrics {
	uint64_t answers[METRICS_METHODS][METRICS_STATUSES];
	uint64_t buckets[METRICS_METHODS][METRICS_BUCKETS + 1];
	uint64_t micros[METRICS_METHODS];
} node_metrics;

/* Method names by index, as profile.proto's ProfileService names them
 * (lower case); the last is "unknown". */
extern const char *const metrics_method_names[METRICS_METHODS];

/* Counts one answer of method (an index above) with status, which took
 * micros microseconds from its arrival. */
void metrics_answered(node_metrics *m, int method, int status, int64_t micros);

/* A snapshot of m as the status carries it, with the storage it points
 * into: the caller owns it and frees it with metrics_buf_fini. */
typedef struct metrics_buf {
	Profile__V1__MethodStats stats[METRICS_METHODS];
	Profile__V1__MethodStats *stats_ptrs[METRICS_METHODS];
	Profile__V1__MethodStats__Answers answers[METRICS_METHODS][METRICS_STATUSES];
	Profile__V1__MethodStats__Answers *answer_ptrs[METRICS_METHODS][METRICS_STATUSES];
	uint64_t buckets[METRICS_METHODS][METRICS_BUCKETS + 1];
	double bounds[METRICS_BUCKETS];
} metrics_buf;

/* Fills b from m and points reply's methods and latency_bounds into it. */
void metrics_fill(const node_metrics *m, metrics_buf *b, Profile__V1__StatusReply *reply);

#endif
