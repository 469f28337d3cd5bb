/* call.h: the caller side of the profile protocol (internal).
 *
 * A channel is one nng REQ socket dialed to one or more core nodes, with a
 * pool of REQ contexts so that many calls are in flight at once from any
 * number of threads. Each call sends one Request and completes exactly once,
 * asynchronously, with the Response or a status saying why there is none.
 * REQ's automatic resend is off (a resent create would make two profiles);
 * every call has a deadline instead.
 *
 * This is the engine of libprofile-client; the gateway uses it directly.
 */
#ifndef PROFILE_CALL_H
#define PROFILE_CALL_H

#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>

#include "tls.h"
#include "wire.h"

typedef struct call_channel call_channel;

/* Completion of a call. status is PROFILE_OK when a Response arrived (its
 * own status says how the call went); then resp is a new Response owned by
 * the callback (free with profile__v1__response__free_unpacked). Otherwise
 * resp is NULL and status is:
 *   PROFILE_UNAVAILABLE        no core took the request (nothing executed),
 *                              or a read got no answer (a read is always
 *                              safe to repeat);
 *   PROFILE_DEADLINE_EXCEEDED  a write got no answer within the deadline or
 *                              lost its connection (it may have executed);
 *   PROFILE_INTERNAL           the answer was malformed;
 *   PROFILE_RESOURCE_EXHAUSTED too many calls in flight, or out of memory.
 * Runs on an nng thread: it must not block. */
typedef void (*call_done_fn)(void *arg, int status, Profile__V1__Response *resp);

/* Opens a channel dialing every address in addrs[0..n) (tcp://, ipc://, or
 * tls+tcp:// with tls, which is borrowed: may be NULL otherwise, and freed
 * once this returns). Connections are made in the background and remade
 * after a node restarts. max_in_flight bounds the context pool (0 = 4096).
 * On PROFILE_OK *out is a new channel for call_channel_close;
 * PROFILE_INVALID_ARGUMENT for a bad address (or tls+tcp:// without tls);
 * PROFILE_RESOURCE_EXHAUSTED. */
int call_channel_open(call_channel **out, const char *const *addrs, size_t n, int max_in_flight,
                      const call_tls *tls);

/* Closes the channel. Calls still in flight complete with
 * PROFILE_UNAVAILABLE or PROFILE_DEADLINE_EXCEEDED before it returns.
 * Must not be called from a call_done_fn. NULL is a no-op. */
void call_channel_close(call_channel *ch);

/* Sends req (borrowed: packed before return; request_id and deadline_ms are
 * set here) with a deadline of timeout_ms from now. A request no node has
 * taken within send_timeout_ms (0: the whole deadline) fails then with
 * PROFILE_UNAVAILABLE, so a caller can try another address instead of
 * waiting out the deadline. done is called exactly once, maybe on another
 * thread before call_start returns. Returns PROFILE_OK when the call
 * started; otherwise done is not called and the status says why
 * (PROFILE_RESOURCE_EXHAUSTED, PROFILE_INVALID_ARGUMENT for an oversize
 * request). write: 1 if the request changes state (a lost connection then
 * gives DEADLINE_EXCEEDED, since it may have run). */
int call_start(call_channel *ch, Profile__V1__Request *req, uint32_t timeout_ms, uint32_t send_timeout_ms,
               int write, call_done_fn done, void *arg);

/* Completion of call_start_bytes: as call_done_fn, but with the answer as
 * the node encoded it. status PROFILE_OK: msg is the Response's bytes (its
 * fields checked to be well formed, nothing decoded), owned by the callback
 * (nng_msg_free); otherwise msg is NULL. */
typedef void (*call_bytes_fn)(void *arg, int status, nng_msg *msg);

/* call_start for a caller that passes the answer on without reading it (a
 * forward): done receives the Response undecoded. */
int call_start_bytes(call_channel *ch, Profile__V1__Request *req, uint32_t timeout_ms, uint32_t send_timeout_ms,
                     int write, call_bytes_fn done, void *arg);

/* Number of live connections to nodes right now (0 while a node is down or
 * not yet dialed). */
int call_channel_connected(call_channel *ch);

/* 1 when the channel is connected, none of its calls waited a second or more
 * and timed out unanswered in the last few seconds (a hung node: nodes answer
 * before a caller's deadline), and the node did not answer that it is
 * shutting down; else 0. */
int call_channel_usable(call_channel *ch);

#endif
