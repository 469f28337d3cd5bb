/* write.h: the write path of a core node, behind create, update and delete.
 *
 * The owner of partition(uid) serializes writes per uid (a second write to
 * a uid waits for the first), validates against its caught-up store
 * (existence, expected version), produces the profile's whole new state (or
 * a tombstone) stamped with the partition's fence (fence.h), and answers
 * only once its own store has applied that offset (read-your-writes). A
 * write that never started by its deadline answers UNAVAILABLE (not
 * executed); one already in Kafka answers DEADLINE_EXCEEDED and still
 * finishes before the next write to its uid. A write a newer owner fenced
 * answers UNAVAILABLE; one whose fate this node cannot tell (it lost the
 * partition meanwhile) DEADLINE_EXCEEDED.
 */
#ifndef PROFILE_WRITE_H
#define PROFILE_WRITE_H

#include <stdint.h>

#include "reply.h"
#include "service_node.h"

/* Starts the write req (owned; a create, update or delete this node must
 * serve) of partition p, queued on key: the uid, or for a create with an
 * Idempotency-Key a 36-character name of the key (the create draws its uid
 * in p when it runs). Answers exactly once through done. */
void write_begin(service *svc, Profile__V1__Request *req, const char *key, int32_t p, int64_t deadline,
                 reply_fn done, void *arg);

/* Appends again the current state (or a tombstone) of every uid of p whose
 * newest record was fenced (store_fenced), through the per-uid queues, so
 * that the last record of every key in the log is its true state. For the
 * partition table's restate hook (arg = the service). */
void write_restate(service *svc, int32_t p);

/* Makes a random (version 4) UUID in canonical lowercase form; out has room
 * for WIRE_UID_LEN + 1 bytes. */
void write_new_uid(char *out);

#endif
