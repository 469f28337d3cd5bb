/* profile/client.h: libprofile-client, the native C client of the profile
 * service.
 *
 * It speaks the service's own protocol (protobuf over nng REQ/REP) straight to
 * the core nodes, with no HTTP in between. One handle is opened on one or
 * more core addresses and may be shared by any number of threads.
 *
 * Conventions:
 *  - Every function returns a profile_status (profile/status.h): PROFILE_OK
 *    or the reason it failed; profile_strerror() says it in words.
 *  - Out-parameters are written only on PROFILE_OK. Results belong to the
 *    caller: free a profile_info with profile_free(), a profile_list with
 *    profile_list_free().
 *  - Every call has a deadline: deadline_ms, or the handle's default when
 *    deadline_ms is 0 (5000 ms unless set otherwise). A call never outlives
 *    its deadline by more than a scheduling delay.
 *  - PROFILE_UNAVAILABLE means "not executed": the library retries it
 *    itself, with backoff, on the next address, while at least a tenth of
 *    the deadline is left; when it still reaches the caller, retrying later
 *    is safe. No other status is ever retried. PROFILE_DEADLINE_EXCEEDED
 *    comes only from writes and means the outcome is unknown (it may have
 *    been applied); such a write was sent once. A read that gets no answer
 *    ends PROFILE_UNAVAILABLE: with several addresses each try of a read
 *    waits at most a third of the deadline before it moves on.
 *  - Arguments are checked before anything is sent: NULL, empty, too long or
 *    malformed values give PROFILE_INVALID_ARGUMENT and send nothing.
 *
 * Link with `pkg-config --cflags --libs profile-client`, or in CMake
 * `find_package(ProfileClient)` and target `profile::client`.
 */
#ifndef PROFILE_CLIENT_H
#define PROFILE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "profile/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An open connection to the service. Opaque; thread-safe. */
typedef struct profile_client profile_client;

/* Room for a uid: 36 characters of a canonical UUID and the NUL. */
#define PROFILE_UID_SIZE 37

/* Room for a position ("<partition>:<offset>") and the NUL. */
#define PROFILE_POSITION_SIZE 32

/* A profile as the service holds it. All strings are NUL-terminated UTF-8
 * owned by the struct (freed with it by profile_free). */
typedef struct profile_info {
	char uid[PROFILE_UID_SIZE]; /* lowercase canonical UUID */
	char *username;
	char *email;
	uint64_t version;   /* 1 on create, +1 per change */
	int64_t created_at; /* Unix milliseconds */
	int64_t updated_at; /* Unix milliseconds */
	/* From a create or update that wrote a record: where it landed, for
	 * profile_read_options.min_positions (read-your-writes on any
	 * replica). "" otherwise. */
	char position[PROFILE_POSITION_SIZE];
	/* From a read that allowed a stale copy (profile_read_options) and was
	 * answered by a replica that does not own the profile: stale is 1,
	 * age_s the seconds its copy may trail the log (0 while it was at the
	 * log end it knew), lag the records it trailed by. 0 otherwise. */
	int stale;
	uint32_t age_s;
	int64_t lag;
} profile_info;

/* How a read may be answered (profile_get_with, profile_search_with). A
 * zeroed struct (or NULL) reads as profile_get and profile_search do. */
typedef struct profile_read_options {
	/* Positions (profile_info.position values, comma-separated) the
	 * answering replica must have applied; it waits for them within the
	 * deadline. NULL or "": none. */
	const char *min_positions;
	/* 1: when the owner cannot answer (failing over, unreachable), a
	 * standby or replica whose copy trails the log by at most max_stale_s
	 * seconds may (HTTP Cache-Control: max-stale). */
	int allow_stale;
	uint32_t max_stale_s;
} profile_read_options;

/* Search results, most recently updated first. The list owns its items
 * (freed with it by profile_list_free). */
typedef struct profile_list {
	size_t count;
	profile_info **items;
} profile_list;

/* Handle settings; zero fields take the defaults. */
typedef struct profile_client_options {
	uint32_t deadline_ms; /* default deadline per call; 0 = 5000 */
	int max_in_flight;    /* calls in flight per address; 0 = 4096 */
	/* Mutual TLS, for "tls+tcp://host:port" addresses (all three needed;
	 * unused otherwise): PEM files of the cluster's CA, which every node's
	 * certificate must be signed by (and name the host dialed), and of this
	 * client's certificate, signed by the same CA, and its unencrypted key.
	 * Read by profile_client_open: the paths are borrowed. */
	const char *tls_ca_file;
	const char *tls_cert_file;
	const char *tls_key_file;
} profile_client_options;

/* For update and delete: no expected version (last writer wins). */
#define PROFILE_ANY_VERSION 0

/* ---- handle ---------------------------------------------------------- */

/* Opens a handle on the core nodes at addrs[0..n) ("tcp://host:port",
 * "ipc:///path", or "tls+tcp://host:port" with the TLS options set).
 * Connections are made in the background and remade when a
 * node restarts, so opening succeeds while nodes are down; calls then fail
 * with PROFILE_UNAVAILABLE within their deadline. opts may be NULL.
 * addrs, its strings and opts are borrowed: copied before this returns, so
 * the caller may free them at once. out must not be NULL.
 * On PROFILE_OK, *out is a new handle for profile_client_close; otherwise
 * *out is untouched.
 * Errors: PROFILE_INVALID_ARGUMENT (no address, or one nng cannot parse; a
 * tls+tcp:// address without the TLS files, or one of them unreadable or
 * not valid PEM: profile_last_message says which), PROFILE_RESOURCE_EXHAUSTED. */
PROFILE_API int profile_client_open(profile_client **out, const char *const *addrs, size_t n,
                                    const profile_client_options *opts);

/* Completes every call still in flight (with PROFILE_UNAVAILABLE or
 * PROFILE_DEADLINE_EXCEEDED), then frees the handle. Must not be called
 * from a completion callback, nor while another thread still calls on the
 * handle. NULL is a no-op. */
PROFILE_API void profile_client_close(profile_client *c);

/* Sets the handle's default deadline (ms, > 0) for calls that pass 0. Safe
 * while calls are in flight, from any thread: calls already started keep
 * the deadline they started with. 0 and a NULL handle are ignored. */
PROFILE_API void profile_client_set_deadline(profile_client *c, uint32_t deadline_ms);

/* ---- calls (blocking) -------------------------------------------------- */

/* For every call: c must be an open handle; string arguments are borrowed
 * (read before the call returns); deadline_ms 0 takes the handle's
 * default. On PROFILE_OK, *out receives a new result the caller owns
 * (profile_free, profile_list_free); on failure *out is untouched. out may
 * be NULL only where a call says so. */

/* Creates a profile. username: 1..64 characters, no control characters;
 * email: local@domain with a dot in the domain, at most 254 bytes. On
 * PROFILE_OK *out is the new profile (version 1, uid made by the service),
 * already visible to every later read. */
PROFILE_API int profile_create(profile_client *c, const char *username, const char *email,
                               uint32_t deadline_ms, profile_info **out);

/* profile_create with an idempotency key (as HTTP's Idempotency-Key: 1..255
 * printable ASCII characters; NULL: none). The same key with the same
 * username and email answers with the profile the first call made (its
 * version 1), however often it is repeated, on any node, and after
 * failovers and restarts, instead of making another; with another username
 * or email it is PROFILE_INVALID_ARGUMENT. Because repeating it is safe, the
 * library also retries it after an unknown outcome (a lost answer) within
 * the deadline; PROFILE_DEADLINE_EXCEEDED then means no try got an answer,
 * and calling again with the same key is the way to learn the outcome. */
PROFILE_API int profile_create_idempotent(profile_client *c, const char *username, const char *email,
                                          const char *idempotency_key, uint32_t deadline_ms,
                                          profile_info **out);

/* Looks a profile up by uid. PROFILE_NOT_FOUND when there is none. */
PROFILE_API int profile_get(profile_client *c, const char *uid, uint32_t deadline_ms, profile_info **out);

/* Changes a profile: username and/or email (NULL keeps the current value;
 * at least one must be given). expected_version: PROFILE_ANY_VERSION, or the
 * version the profile must have, else PROFILE_FAILED_PRECONDITION and nothing
 * changes. On PROFILE_OK *out (if out is not NULL) is the whole updated
 * profile. PROFILE_NOT_FOUND when there is none. */
PROFILE_API int profile_update(profile_client *c, const char *uid, const char *username, const char *email,
                               uint64_t expected_version, uint32_t deadline_ms, profile_info **out);

/* Deletes a profile. expected_version as for profile_update.
 * PROFILE_NOT_FOUND when there is none. */
PROFILE_API int profile_delete(profile_client *c, const char *uid, uint64_t expected_version,
                               uint32_t deadline_ms);

/* profile_delete that also gives, on PROFILE_OK, where the delete landed
 * (PROFILE_POSITION_SIZE bytes into position, for profile_get_with's
 * min_positions: a read then sees the profile gone on any replica). */
PROFILE_API int profile_delete_at(profile_client *c, const char *uid, uint64_t expected_version,
                                  uint32_t deadline_ms, char *position);

/* Finds the profiles whose email equals email, compared case-insensitively.
 * On PROFILE_OK *out is the list (count 0 when none), most recently updated
 * first. */
PROFILE_API int profile_search(profile_client *c, const char *email, uint32_t deadline_ms,
                               profile_list **out);

/* profile_get and profile_search with read options (ro may be NULL): with
 * min_positions, answered only by a replica that has applied them (a write
 * made through any node is then seen, in both state modes;
 * PROFILE_INVALID_ARGUMENT for a malformed list, PROFILE_UNAVAILABLE when
 * no replica reached them in time); with allow_stale, by a standby within
 * max_stale_s when the owner cannot (the profile says so: stale, age_s,
 * lag). */
PROFILE_API int profile_get_with(profile_client *c, const char *uid, const profile_read_options *ro,
                                 uint32_t deadline_ms, profile_info **out);
PROFILE_API int profile_search_with(profile_client *c, const char *email, const profile_read_options *ro,
                                    uint32_t deadline_ms, profile_list **out);

/* ---- calls (asynchronous) ---------------------------------------------- */

/* Completion of an asynchronous call, run exactly once on one of the
 * library's threads; it must not block (starting another asynchronous call
 * is fine). status as the blocking call would return. On PROFILE_OK, result
 * is what the blocking call would put in *out: a profile_info * for create,
 * get and update (release it with profile_free), a profile_list * for
 * search (profile_list_free), NULL for delete; the callback owns it and may
 * keep it past its return. Otherwise result is NULL. */
typedef void (*profile_done_fn)(void *arg, int status, void *result);

/* The asynchronous variants: same arguments and checks as the blocking
 * calls. String arguments are copied before the call returns: the caller
 * may free or reuse them at once. PROFILE_OK means the call started and
 * done will be called (maybe on another thread before this returns); any
 * other status means it did not start (nothing was sent) and done will not
 * be called. done must not be NULL. One thread can keep thousands of calls
 * in flight. */
PROFILE_API int profile_create_async(profile_client *c, const char *username, const char *email,
                                     uint32_t deadline_ms, profile_done_fn done, void *arg);
PROFILE_API int profile_create_idempotent_async(profile_client *c, const char *username, const char *email,
                                                const char *idempotency_key, uint32_t deadline_ms,
                                                profile_done_fn done, void *arg);
PROFILE_API int profile_get_async(profile_client *c, const char *uid, uint32_t deadline_ms,
                                  profile_done_fn done, void *arg);
PROFILE_API int profile_update_async(profile_client *c, const char *uid, const char *username,
                                     const char *email, uint64_t expected_version, uint32_t deadline_ms,
                                     profile_done_fn done, void *arg);
PROFILE_API int profile_delete_async(profile_client *c, const char *uid, uint64_t expected_version,
                                     uint32_t deadline_ms, profile_done_fn done, void *arg);
/* Completes with a profile_info * holding only uid and position (release
 * it with profile_free). */
PROFILE_API int profile_delete_at_async(profile_client *c, const char *uid, uint64_t expected_version,
                                        uint32_t deadline_ms, profile_done_fn done, void *arg);
PROFILE_API int profile_get_with_async(profile_client *c, const char *uid, const profile_read_options *ro,
                                       uint32_t deadline_ms, profile_done_fn done, void *arg);
PROFILE_API int profile_search_with_async(profile_client *c, const char *email, const profile_read_options *ro,
                                          uint32_t deadline_ms, profile_done_fn done, void *arg);
PROFILE_API int profile_search_async(profile_client *c, const char *email, uint32_t deadline_ms,
                                     profile_done_fn done, void *arg);

/* ---- results and errors ------------------------------------------------ */

/* Frees a profile from this library. NULL is a no-op. */
PROFILE_API void profile_free(profile_info *p);

/* Frees a list and every profile in it. NULL is a no-op. */
PROFILE_API void profile_list_free(profile_list *l);

/* The message that came with the last failed call on this thread (e.g.
 * "version is 3, not 2"), or "" when there is none. Valid until the thread's
 * next call; inside a completion callback, it is the message of that call.
 * (profile_status_name() and profile_strerror(), in profile/status.h, give
 * a status's protocol name, e.g. "NOT_FOUND", and its sentence.) */
PROFILE_API const char *profile_last_message(void);

#ifdef __cplusplus
}
#endif

#endif
