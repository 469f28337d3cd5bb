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
 * forwards the request once to the owner. Every record carries the fence
 * of the partition's owner (fence.h): a write that a newer owner fenced
 * answers UNAVAILABLE (not executed), and one whose fate this node cannot
 * tell (it lost the partition meanwhile) DEADLINE_EXCEEDED.
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

/* Appends again the current state (or a tombstone) of every uid of p whose
 * newest record was fenced (store_fenced), through the per-uid queues, so
 * that the last record of every key in the log is its true state. For the
 * partition table's restate hook. */
void profiles_restate(service *svc, int32_t p);

/* Makes a random (version 4) UUID in canonical lowercase form; out has room
 * for WIRE_UID_LEN + 1 bytes. */
void profiles_new_uid(char *out);

#endif
