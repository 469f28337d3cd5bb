/* profiles.h: the Create, Get, Update and Delete methods of a core node.
 *
 * A write is served by the owner of partition(uid) through the write path
 * (write.h); a create by a node that owns some partition (it draws a uid in
 * one of them), a create with an Idempotency-Key by the owner of the key's
 * partition. A node that does not own the partition forwards the request
 * once to the owner. A get reads the owner's store, waiting for a restoring
 * partition within its deadline.
 *
 * Each method takes the request (freed here) and answers exactly once
 * through done, maybe before it returns.
 */
#ifndef PROFILE_PROFILES_H
#define PROFILE_PROFILES_H

#include <stdint.h>

#include "reply.h"
#include "service.h"

void profiles_create(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg);
void profiles_get(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg);
/* Update and delete. */
void profiles_change(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg);

#endif
