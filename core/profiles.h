/* profiles.h: the Create, Get, Update and Delete methods of a core node.
 *
 * Writes follow the design's write path: the owner of partition(uid)
 * serializes writes per uid (a second write to a uid waits for the first),
 * validates against its caught-up store (existence, expected version),
 * produces the profile's whole new state (or a tombstone) and answers only
 * once its own store has applied that offset (read-your-writes). A write
 * that never started by its deadline answers UNAVAILABLE (not executed);
 * one already in Kafka answers DEADLINE_EXCEEDED and still finishes before
 * the next write to its uid. A node that does not own the partition
 * forwards the request once to the owner.
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

/* The changelog's delivery callback (arg = the service; opaque = the write
 * given to changelog_produce). */
void profiles_on_delivered(void *svc, void *opaque, int status, int32_t p, int64_t offset);

/* Makes a random (version 4) UUID in canonical lowercase form; out has room
 * for WIRE_UID_LEN + 1 bytes. */
void profiles_new_uid(char *out);

#endif
