/* remote.h: calls that leave this node: forwarding a request to the owner of
 * its partition, and gathering answers from several nodes at once (the
 * scatter-gather behind search and the cluster view). Built on router.h;
 * every call carries the caller's remaining deadline.
 */
#ifndef PROFILE_REMOTE_H
#define PROFILE_REMOTE_H

#include "router.h"
#include "service.h"

/* Sends req (owned: freed when done) to the owner of partition p and hands
 * its answer to done, with req's request id. An owner that cannot be found
 * or reached gives UNAVAILABLE (not executed); a write whose answer is lost
 * gives DEADLINE_EXCEEDED (it may have been applied). */
void remote_forward(router *r, int32_t p, Profile__V1__Request *req, uint32_t budget_ms, int write,
                    service_done_fn done, void *arg);

/* Receives the answers of remote_gather: status[i] and resp[i] for the
 * i-th request (resp[i] NULL unless status[i] is PROFILE_OK; borrowed: freed
 * after the callback). */
typedef void (*remote_gather_fn)(void *arg, size_t n, const int *status, Profile__V1__Response *const *resp);

/* Sends reqs[i] to addresses[i] for i < n, all at once (reqs and
 * addresses borrowed until fn runs), and calls fn once when every one is
 * answered or failed. PROFILE_OK, or PROFILE_RESOURCE_EXHAUSTED (fn not
 * called). */
int remote_gather(router *r, const char *const *addresses, Profile__V1__Request *const *reqs, size_t n,
                  uint32_t budget_ms, remote_gather_fn fn, void *arg);

#endif
