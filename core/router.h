/* router.h: where a partition is served, and the channels to other nodes.
 *
 * Reads the partition -> node table kept by members.c and owns one nng
 * channel per peer address (made on first use, kept until the node stops),
 * over which this node forwards requests it does not own and scatters
 * searches. A forwarded request carries hops = 1 and is never forwarded
 * again.
 */
#ifndef PROFILE_ROUTER_H
#define PROFILE_ROUTER_H

#include "client_internal.h"
#include "members.h"

typedef struct router router;

/* A router over the table m (may be NULL: a node alone, nothing routed).
 * self: this node's id. PROFILE_OK or PROFILE_RESOURCE_EXHAUSTED. */
int router_new(router **out, members *m, const char *self);

/* Closes every peer channel (calls in flight complete first). NULL is a
 * no-op. */
void router_free(router *r);

/* The node that owns p: PROFILE_OK with its address (and *is_self when it
 * is this node), PROFILE_NOT_FOUND when no node claims p. */
int router_owner(router *r, int32_t p, char *address, size_t size, int *is_self);

/* Sends req (borrowed until done runs) to the node at address, once, with
 * hops set to 1. done runs exactly once when PROFILE_OK is returned. */
int router_send(router *r, const char *address, Profile__V1__Request *req, uint32_t deadline_ms, int write,
                client_raw_fn done, void *arg);

/* 1 once the table has been read up to where the members topic stood when
 * this node started (always 1 without a table). */
int router_ready(router *r);

/* The table, for the cluster view (see members_snapshot). */
int router_snapshot(router *r, member_node **nodes, size_t *n, int *owner);

#endif
