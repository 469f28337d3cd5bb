/* client_impl.h: the handle of libprofile-client and what its files share
 * (internal to client/src: client.c the handle and results, route.c owner
 * routing, retry.c the call with retries, calls.c the public calls,
 * blocking.c the blocking calls). */
#ifndef PROFILE_CLIENT_IMPL_H
#define PROFILE_CLIENT_IMPL_H

#include <nng/nng.h>

#include "call.h"
#include "client_internal.h"

#define DEFAULT_DEADLINE_MS 5000
#define ROUTE_MAX_PARTITIONS 4096
#define CLIENT_MESSAGE_MAX 256 /* profile_last_message, terminator included */

struct profile_client {
	call_channel **ch;
	size_t n;
	uint32_t deadline_ms;
	unsigned next; /* round-robin start */
	/* Owner routing (with more than one address): the partition -> address
	 * table from the cluster view, refreshed in the background, so that a
	 * request for a uid goes straight to its owner (no forward). */
	int32_t route_count;                 /* 0: no table yet */
	int16_t route[ROUTE_MAX_PARTITIONS]; /* index into ch, or -1 */
	/* Per partition, the freshest active copy that is not the owner's (the
	 * least lag in the cluster view): where a read that accepts a stale
	 * answer goes when the owner did not take it. Index into ch, or -1. */
	int16_t fresh[ROUTE_MAX_PARTITIONS];
	char **addrs;
	nng_aio *route_timer;
	int closing;
	int attempts; /* atomic: calls alive, in flight or sleeping before a retry */
	Profile__V1__Request route_req;
	Profile__V1__ClusterRequest route_body;
};

/* Sets this thread's profile_last_message (NULL: empty). */
void client_set_message(const char *m);

/* route.c: starts refreshing the routing table (handles of more than one
 * address); PROFILE_OK or PROFILE_RESOURCE_EXHAUSTED. */
int client_route_start(profile_client *c, const char *const *addrs);

/* route.c: the address to try first for req: the owner of its uid (or of a
 * keyed create's key) when known and connected, else the next connected
 * one. */
size_t client_first_address(profile_client *c, const Profile__V1__Request *req);

/* route.c: a get that accepts a stale answer: the freshest other copy of its
 * partition, when known and connected; else -1. */
int client_stale_copy(profile_client *c, const Profile__V1__Request *req);

/* route.c: the next address from `from` on with a live connection to a node
 * that answers (from itself, modulo, when none has). */
size_t client_pick(profile_client *c, size_t from);

#endif
