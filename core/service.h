/* service.h: the profile operations of a core node.
 *
 * Create, get, update, delete, search and status, on top of the partition
 * table (reads, restore waits) and the changelog (writes). Writes follow the
 * write path of the design: one writer per key (a second write to a uid waits
 * for the first to be applied), validation against the caught-up store,
 * produce the whole new state, then reply only once this node's own store has
 * applied that offset. Every call has a deadline; a sweeper answers
 * DEADLINE_EXCEEDED (or UNAVAILABLE for what never started) when it passes.
 */
#ifndef PROFILE_SERVICE_H
#define PROFILE_SERVICE_H

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
	int replicated; /* state mode: every partition followed here */
} service_config;

/* A service over table t. The changelog is attached later
 * (service_attach), since its handler delivers into the service.
 * PROFILE_OK and *out, or PROFILE_RESOURCE_EXHAUSTED. */
int service_new(service **out, const service_config *cfg, partitions *t);

/* Sets the changelog writes go to. Call once, before service_call. */
void service_attach(service *svc, changelog *cl);

/* Routes requests for partitions this node does not serve through r
 * (forwarding, scatter-gather). Without it the node answers only for
 * itself. Call once, before service_call. */
void service_attach_peers(service *svc, struct peers *r);

/* The group's assignment changed: this node now owns parts[0..n) and takes
 * their writes. (The changelog's rebalanced callback; arg = the service.) */
void service_on_rebalanced(void *svc, const int32_t *parts, size_t n);

/* Answers every call still pending with UNAVAILABLE or DEADLINE_EXCEEDED
 * (never silently), stops the sweeper, frees. Call after the changelog is
 * closed. NULL is a no-op. */
void service_free(service *svc);

/* Handles one request. Takes ownership of req (freed with
 * profile__v1__request__free_unpacked). done is called exactly once, maybe
 * before service_call returns. */
void service_call(service *svc, Profile__V1__Request *req, reply_fn done, void *arg);

/* The changelog's delivery callback (arg = the service). */
void service_on_delivered(void *svc, void *opaque, int status, int32_t p, int64_t offset);

/* Makes a random (version 4) UUID in canonical lowercase form; out has room
 * for WIRE_UID_LEN + 1 bytes. */
void service_new_uid(char *out);

#endif
