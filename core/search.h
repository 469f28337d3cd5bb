/* search.h: the Search method of a core node.
 *
 * An exact match on the lower-cased email, from each partition's email
 * index; across nodes a scatter-gather over the owners of the partitions
 * this node does not serve (a request forwarded here is answered from this
 * node's partitions only). Answers every match, most recently updated
 * first; fails UNAVAILABLE rather than answer partially when an owner does
 * not answer.
 */
#ifndef PROFILE_SEARCH_H
#define PROFILE_SEARCH_H

#include <stdint.h>

#include "reply.h"
#include "service.h"

/* Takes req (freed here) and answers exactly once through done. */
void search_run(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg);

#endif
