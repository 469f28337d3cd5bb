/* peers.h: the other nodes of the cluster, as this node reaches them.
 *
 * Reads the partition -> node table kept by members.c and owns one nng
 * channel per peer address (made on first use, kept until the node stops).
 * Over them it forwards a request for a partition this node does not own to
 * its owner, and gathers answers from several nodes at once (the
 * scatter-gather behind search and the cluster view). A forwarded request
 * carries hops = 1 and is never forwarded again; every call carries the
 * caller's remaining deadline.
 */
#ifndef PROFILE_PEERS_H
#define PROFILE_PEERS_H

#include "client_internal.h"
#include "members.h"
#include "reply.h"
#include "tls.h"

typedef struct peers peers;

/* A peers over the table m (may be NULL: a node alone, nothing routed).
 * self: this node's id. PROFILE_OK or PROFILE_RESOURCE_EXHAUSTED. */
int peers_new(peers **out, members *m, const char *self, const call_tls *tls);

/* Closes every peer channel (calls in flight complete first). NULL is a
 * no-op. */
void peers_free(peers *r);

/* The node that owns p: PROFILE_OK with its address (and *is_self when it
 * is this node), PROFILE_NOT_FOUND when no node claims p. */
int peers_owner(peers *r, int32_t p, char *address, size_t size, int *is_self);

/* Sends req (borrowed until done runs) to the node at address, once, with
 * hops set to 1. done runs exactly once when PROFILE_OK is returned. */
int peers_send(peers *r, const char *address, Profile__V1__Request *req, uint32_t deadline_ms, int write,
               client_raw_fn done, void *arg);

/* 1 once the table has been read up to where the members topic stood when
 * this node started (always 1 without a table). */
int peers_ready(peers *r);

/* The table, for the cluster view (see members_snapshot). */
int peers_snapshot(peers *r, member_node **nodes, size_t *n, int *owner);

/* Sends req (owned: freed when done) to the owner of partition p and hands
 * its answer to done, with req's request id. An owner that cannot be found
 * or reached gives UNAVAILABLE (not executed); a write whose answer is lost
 * gives DEADLINE_EXCEEDED (it may have been applied). */
void peers_forward(peers *r, int32_t p, Profile__V1__Request *req, uint32_t budget_ms, int write,
                   reply_fn done, void *arg);

/* Receives the answers of peers_gather: status[i] and resp[i] for the
 * i-th request (resp[i] NULL unless status[i] is PROFILE_OK; borrowed: freed
 * after the callback). */
typedef void (*peers_gather_fn)(void *arg, size_t n, const int *status, Profile__V1__Response *const *resp);

/* Sends reqs[i] to addresses[i] for i < n, all at once (reqs and
 * addresses borrowed until fn runs), and calls fn once when every one is
 * answered or failed. PROFILE_OK, or PROFILE_RESOURCE_EXHAUSTED (fn not
 * called). */
int peers_gather(peers *r, const char *const *addresses, Profile__V1__Request *const *reqs, size_t n,
                 uint32_t budget_ms, peers_gather_fn fn, void *arg);

#endif
