/* client.c: libprofile-client (profile/client.h): the handle, the last
 * message, and the results.
 *
 * Layers: the public calls (calls.c) check their arguments and build a
 * Request (an `op` owns it and its strings); client_call (retry.c) sends it
 * through one channel per address (call.c), retrying UNAVAILABLE on the next
 * address with backoff inside the deadline, first to the owner route.c
 * knows of; the blocking calls (blocking.c) wait on the asynchronous ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_impl.h"

static __thread char last_message[CLIENT_MESSAGE_MAX];

void
client_set_message(const char *m)
{
	size_t len = m ? strlen(m) : 0;

	if (len >= sizeof last_message)
		len = sizeof last_message - 1;
	memcpy(last_message, m ? m : "", len);
	last_message[len] = '\0';
}

const char *
profile_last_message(void)
{
	return last_message;
}

/* ---- handle ------------------------------------------------------------ */

/* The TLS files of opts, read when an address wants them: PROFILE_OK with
 * *out (NULL when no address is tls+tcp://), or why not in last_message. */
static int
open_tls(call_tls **out, const char *const *addrs, size_t n, const profile_client_options *opts)
{
	char err[256];
	int rc, wanted = 0;

	*out = NULL;
	for (size_t i = 0; i < n; i++)
		wanted |= call_tls_url(addrs[i]);
	if (!wanted)
		return PROFILE_OK;
	if (opts == NULL) {
		client_set_message("a tls+tcp:// address needs tls_ca_file, tls_cert_file and tls_key_file");
		return PROFILE_INVALID_ARGUMENT;
	}
	if ((rc = call_tls_load(out, opts->tls_ca_file, opts->tls_cert_file, opts->tls_key_file, err,
	                        sizeof err)) != PROFILE_OK)
		client_set_message(err);
	return rc;
}

int
profile_client_open(profile_client **out, const char *const *addrs, size_t n,
                    const profile_client_options *opts)
{
	profile_client *c;
	call_tls *tls = NULL;
	int rc = PROFILE_OK;

	if (out == NULL || addrs == NULL || n == 0)
		return PROFILE_INVALID_ARGUMENT;
	for (size_t i = 0; i < n; i++)
		if (addrs[i] == NULL || addrs[i][0] == '\0')
			return PROFILE_INVALID_ARGUMENT;
	if ((c = calloc(1, sizeof *c)) == NULL || (c->ch = calloc(n, sizeof *c->ch)) == NULL) {
		free(c);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	c->deadline_ms = opts && opts->deadline_ms ? opts->deadline_ms : DEFAULT_DEADLINE_MS;
	if ((rc = open_tls(&tls, addrs, n, opts)) != PROFILE_OK) {
		free(c->ch);
		free(c);
		return rc;
	}
	for (size_t i = 0; i < n && rc == PROFILE_OK; i++) {
		rc = call_channel_open(&c->ch[i], &addrs[i], 1, opts ? opts->max_in_flight : 0, tls);
		if (rc == PROFILE_OK)
			c->n = i + 1;
	}
	call_tls_free(tls); /* the dialers keep what they need */
	if (rc != PROFILE_OK) {
		profile_client_close(c);
		return rc;
	}
	if (n > 1 && client_route_start(c, addrs) != PROFILE_OK) {
		profile_client_close(c);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	*out = c;
	return PROFILE_OK;
}

void
profile_client_close(profile_client *c)
{
	if (c == NULL)
		return;
	__atomic_store_n(&c->closing, 1, __ATOMIC_RELEASE);
	if (c->route_timer)
		nng_aio_stop(c->route_timer);
	/* A refresh still in flight completes (cancelled) here, and sees
	 * closing: it does not re-arm the timer. */
	for (size_t i = 0; i < c->n; i++)
		call_channel_close(c->ch[i]);
	/* A call sleeping before a retry wakes, sees closing and ends; none
	 * may outlive the handle it points to. */
	while (__atomic_load_n(&c->attempts, __ATOMIC_ACQUIRE) > 0) {
		struct timespec pause = {0, 1000000L};
		nanosleep(&pause, NULL);
	}
	if (c->route_timer)
		nng_aio_free(c->route_timer);
	for (size_t i = 0; c->addrs && i < c->n; i++)
		free(c->addrs[i]);
	free(c->addrs);
	free(c->ch);
	free(c);
}

void
profile_client_set_deadline(profile_client *c, uint32_t deadline_ms)
{
	if (c && deadline_ms > 0)
		__atomic_store_n(&c->deadline_ms, deadline_ms, __ATOMIC_RELAXED);
}

/* ---- results ----------------------------------------------------------- */

profile_info *
client_profile_from(const Profile__V1__Profile *p)
{
	profile_info *out = calloc(1, sizeof *out);

	if (out == NULL)
		return NULL;
	snprintf(out->uid, sizeof out->uid, "%s", p->uid);
	out->username = strdup(p->username);
	out->email = strdup(p->email);
	out->version = p->version;
	out->created_at = p->created_at;
	out->updated_at = p->updated_at;
	if (out->username == NULL || out->email == NULL) {
		profile_free(out);
		return NULL;
	}
	return out;
}

void
profile_free(profile_info *p)
{
	if (p == NULL)
		return;
	free(p->username);
	free(p->email);
	free(p);
}

void
profile_list_free(profile_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->count; i++)
		profile_free(l->items[i]);
	free(l->items);
	free(l);
}
