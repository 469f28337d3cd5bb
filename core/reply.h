/* reply.h: how a core operation hands back its one answer.
 *
 * Below every other core module: the RPC server, the operations and the
 * forwarding code all speak this type, so none of them reaches up into
 * another for it.
 */
#ifndef PROFILE_REPLY_H
#define PROFILE_REPLY_H

#include <stdint.h>

#include "wire.h"

/* Receives the single answer to a call. resp (and all it points to) is
 * borrowed: valid only during the callback. Runs on whichever thread
 * completed the call (the caller's, the consumer's, the producer's, the
 * sweeper's or an nng thread); it must not block. An answer relayed from
 * another node (reply_relay) carries its fields, status included, as
 * protobuf-c unknown fields, which packing writes out verbatim: a reply_fn
 * packs resp, it does not read it. */
typedef void (*reply_fn)(void *arg, const Profile__V1__Response *resp);

/* Answers with a status and no body: done(arg, {id, status, msg}). msg is
 * borrowed (NULL: no message). */
void reply_status(reply_fn done, void *arg, uint64_t id, int status, const char *msg);

/* Answers with a Response another node encoded (bytes[0..len), borrowed
 * until return), relayed without decoding it: every field as it came but
 * the request id, which becomes id, and the draining flag, which is the
 * answering node's own to set. PROFILE_OK (done was called),
 * PROFILE_INTERNAL (malformed bytes) or PROFILE_RESOURCE_EXHAUSTED; done is
 * not called then. */
int reply_relay(reply_fn done, void *arg, uint64_t id, const uint8_t *bytes, size_t len);

#endif
