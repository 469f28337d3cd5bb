/* service_node.h: the node context, as the operation modules share it (internal to
 * core/: service.c owns its lifecycle; profiles.c, search.c and cluster.c
 * read it).
 */
#ifndef PROFILE_SERVICE_NODE_H
#define PROFILE_SERVICE_NODE_H

#include <stdint.h>

#include "changelog.h"
#include "metrics.h"
#include "partition.h"
#include "peers.h"
#include "pending.h"
#include "service.h"

struct service {
	service_config cfg;
	partitions *t;
	changelog *cl;
	pending *pd;
	peers *peers;   /* NULL: a node alone */
	uint8_t *owned; /* per partition, atomic: the group assigned it here (it takes the writes) */
	int in_group;   /* atomic: the group has assigned this node at least once */
	uint64_t requests, forwards; /* atomics, for the status */
	uint32_t writes;             /* atomic: write operations alive (write.c) */
	node_metrics metrics;        /* answers by method (rpc.c) */
	/* Standbys (cfg.standbys > 0), consumer thread only: the partitions
	 * this node is a standby of, and until when each is still followed. */
	uint8_t *standby;
	int64_t *follow_until;
	int64_t standby_at; /* monotonic ms: when standby[] was last worked out */
};

/* Whether the group assigned p to this node (it takes p's writes). */
int node_owns(service *svc, int32_t p);

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

/* The changelog handler's follows callback (arg: the service): a standby
 * follows what it owns, what it is a standby of, and either for a while
 * after (FOLLOW_GRACE_MS), so that writes in flight finish. */
int service_follows(void *arg, int32_t p);

/* Hands req (owned) to the owner of p, once: or answers UNAVAILABLE when
 * it was forwarded already, or this node is alone (a node must not answer
 * for a partition it lost). deadline: this node's (monotonic ms). */
void node_forward(service *svc, int32_t p, Profile__V1__Request *req, int64_t deadline, int write,
                  reply_fn done, void *arg);

/* A read run here. *part comes in as the partition the request was routed
 * by (-1: none, a search), so the read need not hash its key again; it goes
 * out as the partition that is restoring when the read returns
 * PROFILE_ABORTED (nothing was answered). Otherwise the read answered
 * through done, or will (a scattered search). req is borrowed. */
/* The least offset of p a read of req must see (its min_positions), or -1. */
int64_t node_min_position(const Profile__V1__Request *req, int32_t p);

typedef int (*node_read_fn)(service *svc, const Profile__V1__Request *req, int64_t deadline, reply_fn done,
                            void *arg, int32_t *part);

/* Runs read on req (owned) now, or once the partition it waits for is
 * active: a read of a restoring partition waits within its deadline, then
 * answers UNAVAILABLE (never NOT_FOUND from a store that is not caught up).
 * p: the partition req was routed by, or -1. */
void node_read(service *svc, node_read_fn read, Profile__V1__Request *req, int32_t p, int64_t deadline,
               reply_fn done, void *arg);

#endif
