/* service.h: a core node's service: the context every method runs in.
 *
 * Holds what the methods share (the partition table, the changelog, the
 * peers, the pending calls and the group's assignment) and serves each
 * request within a deadline: the caller's budget less a margin, so that what
 * cannot be served in time is answered UNAVAILABLE before the caller gives
 * up. The methods are in profiles.h (create, get, update, delete), search.h
 * and cluster.h (status, cluster view); rpc.c's method table picks one.
 */
#ifndef PROFILE_SERVICE_H
#define PROFILE_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "changelog.h"
#include "partition.h"
#include "reply.h"

struct peers;

typedef struct service service;

typedef struct service_config {
	const char *node_id;
	const char *address;          /* RPC address, reported by Status */
	uint32_t default_deadline_ms; /* for requests that carry none */
	uint32_t max_deadline_ms;
	int replicated;      /* state mode: every partition followed here */
	int standbys;        /* partitioned mode: each partition also followed by this many other nodes */
	uint32_t max_writes; /* writes in progress at once; past it a new one is refused at once (0: no cap) */
	/* Fault injection, for the fencing tests only: no fence records and no
	 * tokens (the behaviour without fencing), and a delay between a write's
	 * last check and its hand-over to Kafka. */
	int fault_no_fence;
	uint32_t fault_write_delay_ms;
} service_config;

/* A method: takes req (owned: freed when done with), serves it here or
 * forwards it, and answers exactly once through done, maybe before it
 * returns. deadline: when this node must have answered (monotonic ms). */
typedef void (*service_run_fn)(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done,
                               void *arg);

/* A service over table t (borrowed: outlives the service). The changelog is
 * attached later (service_attach), since its handler delivers into the
 * service. cfg is copied; its strings are borrowed. PROFILE_OK and *out, or
 * PROFILE_RESOURCE_EXHAUSTED. */
int service_new(service **out, const service_config *cfg, partitions *t);

/* Sets the changelog writes go to (borrowed) and starts the periodic
 * partitions_tick. Call once, before the changelog starts. */
void service_attach(service *svc, changelog *cl);

/* partition_hooks.need_fence (arg = the service): takes p's transactional
 * id (changelog_claim), which fences every earlier writer of p, and reports
 * the log end seen then with partitions_fence_written. */
void service_write_fence(void *svc, int32_t p, uint64_t gen);

/* partition_hooks.release (arg = the service): p is no longer written
 * here (changelog_release). */
void service_release(void *svc, int32_t p);

/* Routes requests for partitions this node does not serve through r
 * (borrowed: forwarding, scatter-gather). Without it the node answers only
 * for itself. Call once, before service_call. */
void service_attach_peers(service *svc, struct peers *r);

/* The group's assignment changed: this node now owns parts[0..n) and takes
 * their writes (it claims them in the partition table, and releases the
 * rest). (The changelog's rebalanced callback; arg = the service.) */
void service_on_rebalanced(void *svc, const int32_t *parts, size_t n);

/* Answers every call still pending with UNAVAILABLE or DEADLINE_EXCEEDED
 * (never silently), stops the sweeper, frees. Call after the changelog is
 * closed. NULL is a no-op. */
void service_free(service *svc);

/* Serves req (owned) with run, within the request's deadline (or the
 * configured default, capped by the maximum). The arguments were checked. */
void service_call(service *svc, service_run_fn run, Profile__V1__Request *req, reply_fn done, void *arg);

/* Answers req (owned: freed here) with status and why (borrowed), without
 * running it: a request whose arguments failed their check. Counted like
 * every other request. */
void service_reject(service *svc, Profile__V1__Request *req, int status, const char *why, reply_fn done,
                    void *arg);

/* The node's per-method answer counts (metrics.h), which the RPC server
 * keeps; lives as long as svc. */
struct node_metrics *service_metrics(service *svc);

#endif
