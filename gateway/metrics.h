/* metrics.h: the gateway's /metrics, in Prometheus' text format 0.0.4.
 *
 * The gateway counts its own HTTP answers (gateway_metrics, atomics, any
 * thread) and renders them with every core node's counters, taken from one
 * cluster view that carries each node's status (a `node` label tells them
 * apart). docs/operations.md lists every family.
 */
#ifndef PROFILE_GATEWAY_METRICS_H
#define PROFILE_GATEWAY_METRICS_H

#include <stdint.h>

#include "wire.h"

#define GM_ROUTES 12 /* api.c's routes, then "other" (no route matched) */
#define GM_CODES 19  /* the HTTP statuses the gateway answers, then "other" */
#define GM_BUCKETS 14

typedef struct gateway_metrics {
	uint64_t answers[GM_ROUTES][2][GM_CODES]; /* [route][HEAD?][code] */
	uint64_t buckets[GM_ROUTES][GM_BUCKETS + 1];
	uint64_t micros[GM_ROUTES];
	uint64_t refused; /* turned away at --max-waiting */
} gateway_metrics;

/* Counts one answer: route (api_route index, -1 for none), whether it was
 * a HEAD, its HTTP status and how long it took. */
void gateway_metrics_count(gateway_metrics *m, int route, int head, int http, int64_t micros);

/* Counts one request refused at the waiting bound. */
void gateway_metrics_refused(gateway_metrics *m);

/* The whole exposition: the gateway's counters, the requests waiting now
 * (reads, writes), and each node's from cluster (NULL when no core
 * answered). New malloc'd text, or NULL when out of memory. */
char *gateway_metrics_render(const gateway_metrics *m, const int waiting[2],
                             const Profile__V1__ClusterReply *cluster);

#endif
