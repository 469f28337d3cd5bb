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

/* What a call does, for its retries. */
enum {
	CLIENT_READ,      /* changes nothing: always safe to send again */
	CLIENT_WRITE,     /* sent again only when it surely did not run */
	CLIENT_IDEMPOTENT /* a write that is safe to send again (a keyed create) */
};

/* Sends req (borrowed until done runs: it is packed again for each retry)
 * with the handle's retry rules: an UNAVAILABLE answer or transport failure
 * is retried on the next address, with backoff, while the deadline allows;
 * a CLIENT_IDEMPOTENT call also after an unknown outcome, and then never
 * ends UNAVAILABLE (an earlier try may have run). PROFILE_OK when started
 * (done will run once); otherwise done will not run. */
int client_call(profile_client *c, Profile__V1__Request *req, uint32_t deadline_ms, int mode,
                client_raw_fn done, void *arg);

/* A new profile_info copied from a protocol Profile, or NULL (out of
 * memory). */
profile_info *client_profile_from(const Profile__V1__Profile *p);

#endif
