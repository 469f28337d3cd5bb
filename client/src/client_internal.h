/* client_internal.h: the raw call of libprofile-client, for the service's
 * own programs (the gateway, profilectl) that build protocol requests
 * themselves. Not installed. */
#ifndef PROFILE_CLIENT_INTERNAL_H
#define PROFILE_CLIENT_INTERNAL_H

#include "profile/client.h"
#include "wire.h"

/* Completion of client_call: status and resp as for call_done_fn (call.h):
 * status PROFILE_OK with a Response owned by the callback, or a transport
 * status with resp NULL. */
typedef void (*client_raw_fn)(void *arg, int status, Profile__V1__Response *resp);

/* Sends req (borrowed until done runs: it is packed again for each retry)
 * with the handle's retry rules: an UNAVAILABLE answer or transport failure
 * is retried on the next address, with backoff, while the deadline allows.
 * write: 1 when the request changes state. PROFILE_OK when started (done
 * will run once); otherwise done will not run. */
int client_call(profile_client *c, Profile__V1__Request *req, uint32_t deadline_ms, int write,
                client_raw_fn done, void *arg);

/* A new profile_info copied from a protocol Profile, or NULL (out of
 * memory). */
profile_info *client_profile_from(const Profile__V1__Profile *p);

#endif
