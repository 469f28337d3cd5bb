/* service_node.h: the node context, as the operation modules share it (internal to
 * core/: service.c owns its lifecycle; profiles.c, search.c, cluster.c and
 * read.c read it).
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

/* The changelog handler's follows callback (arg: the service): a standby
 * follows what it owns, what it is a standby of, and either for a while
 * after (FOLLOW_GRACE_MS), so that writes in flight finish. */
int service_follows(void *arg, int32_t p);

/* Hands req (owned) to the owner of p, once: or answers UNAVAILABLE when
 * it was forwarded already, or this node is alone (a node must not answer
 * for a partition it lost). deadline: this node's (monotonic ms). */
void node_forward(service *svc, int32_t p, Profile__V1__Request *req, int64_t deadline, int write,
                  reply_fn done, void *arg);

#endif
