/* cluster.h: the Status and Cluster methods of a core node.
 *
 * Status is this node's own report; Cluster is the view of every member,
 * gathered within a bound so that a hung member is shown unreachable
 * instead of stalling the view. Both take the request (freed here) and
 * answer exactly once through done.
 */
#ifndef PROFILE_CLUSTER_H
#define PROFILE_CLUSTER_H

#include <stdint.h>

#include "reply.h"
#include "service.h"

/* This node's partitions (state, lag, applied offset, replay count), owned
 * set, state mode and counters. */
void cluster_status(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg);

/* The members table and each member's status; a member that does not answer
 * within half a second (or the deadline) is shown unreachable. UNAVAILABLE
 * while this node has not read the membership yet. */
void cluster_view(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg);

#endif
