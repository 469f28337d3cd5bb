/* read.h: the read path of a core node, beside the write path (write.h):
 * where a read is answered (the owner, or a copy within the staleness the
 * caller accepts), what it must have applied first (its positions), and the
 * wait of a read for a partition that is restoring or behind a position.
 * get (profiles.c) and search (search.c) run on it.
 */
#ifndef PROFILE_READ_H
#define PROFILE_READ_H

#include <stdint.h>

#include "service_node.h"

/* 1 when a read of p (req: get or search) is answered from this node's copy
 * rather than by p's owner: p is served here and either this node owns it,
 * every copy answers (partitioned without standbys: only the owner holds
 * it; replicated mode: every node), or req accepts a copy as stale as this
 * standby's (max_stale_s). */
int node_reads_here(service *svc, const Profile__V1__Request *req, int32_t p);

/* When a read of p was answered from a copy this node does not own and
 * req accepted a stale copy: fills *st with that copy's staleness and
 * returns st, else NULL. */
Profile__V1__Staleness *node_staleness(service *svc, const Profile__V1__Request *req, int32_t p,
                                       Profile__V1__Staleness *st);

/* The least offset of p a read of req must see (its min_positions), or -1. */
int64_t node_min_position(const Profile__V1__Request *req, int32_t p);

/* A read run here. *part comes in as the partition the request was routed
 * by (-1: none, a search), so the read need not hash its key again; it goes
 * out as the partition that is restoring when the read returns
 * PROFILE_ABORTED (nothing was answered). Otherwise the read answered
 * through done, or will (a scattered search). req is borrowed. */
typedef int (*node_read_fn)(service *svc, const Profile__V1__Request *req, int64_t deadline, reply_fn done,
                            void *arg, int32_t *part);

/* Runs read on req (owned) now, or once the partition it waits for is
 * active: a read of a restoring partition waits within its deadline, then
 * answers UNAVAILABLE (never NOT_FOUND from a store that is not caught up).
 * p: the partition req was routed by, or -1. */
void node_read(service *svc, node_read_fn read, Profile__V1__Request *req, int32_t p, int64_t deadline,
               reply_fn done, void *arg);

#endif
