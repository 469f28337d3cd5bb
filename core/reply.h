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
 * sweeper's or an nng thread); it must not block. */
typedef void (*reply_fn)(void *arg, const Profile__V1__Response *resp);

/* Answers with a status and no body: done(arg, {id, status, msg}). msg is
 * borrowed (NULL: no message). */
void reply_status(reply_fn done, void *arg, uint64_t id, int status, const char *msg);

#endif
