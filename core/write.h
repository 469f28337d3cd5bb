/* write.h: the write path of a core node, behind create, update and delete.
 *
 * The owner of partition(uid) serializes writes per uid (a second write to
 * a uid waits for the first), validates against its caught-up store
 * (existence, expected version), produces the profile's whole new state (or
 * a tombstone) in the partition's next transaction, and answers only once
 * the transaction committed and its own store has applied that offset
 * (read-your-writes). A write that never started by its deadline answers
 * UNAVAILABLE (not executed); one already in Kafka answers
 * DEADLINE_EXCEEDED and still finishes before the next write to its uid. A
 * write whose transaction was aborted (a newer owner fenced it) answers
 * UNAVAILABLE; one whose commit's outcome is unknown DEADLINE_EXCEEDED.
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

/* Makes a random (version 4) UUID in canonical lowercase form; out has room
 * for WIRE_UID_LEN + 1 bytes. */
void write_new_uid(char *out);

#endif
