/* blocking.c: the blocking calls of libprofile-client (profile/client.h):
 * each starts its asynchronous twin and waits for it on a condition
 * variable, then hands over its result and its message. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "client_impl.h"

typedef struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int status;
	void *result;
	char message[CLIENT_MESSAGE_MAX];
} waiter;

static void
wake(void *arg, int status, void *result)
{
	waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->status = status;
	w->result = result;
	snprintf(w->message, sizeof w->message, "%s", profile_last_message());
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void
waiter_init(waiter *w)
{
	memset(w, 0, sizeof *w);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

/* Waits for the call started with status rc; returns its status and, on
 * PROFILE_OK, its result in *result (freed with free_fn when not wanted). */
static int
wait_for(waiter *w, int rc, void **result)
{
	if (rc == PROFILE_OK) {
		pthread_mutex_lock(&w->mu);
		while (!w->done)
			pthread_cond_wait(&w->cv, &w->mu);
		pthread_mutex_unlock(&w->mu);
		rc = w->status;
		client_set_message(w->message);
		*result = w->result;
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	return rc;
}

/* Waits for the call, then hands its profile to *out (or frees it when out
 * is NULL). */
static int
finish_profile(waiter *w, int started, profile_info **out)
{
	void *r = NULL;
	int rc = wait_for(w, started, &r);

	if (rc == PROFILE_OK) {
		if (out)
			*out = r;
		else
			profile_free(r);
	}
	return rc;
}

int
profile_create(profile_client *c, const char *username, const char *email, uint32_t deadline_ms,
               profile_info **out)
{
	waiter w;

	waiter_init(&w);
	return finish_profile(&w, profile_create_async(c, username, email, deadline_ms, wake, &w), out);
}

int
profile_create_idempotent(profile_client *c, const char *username, const char *email,
                          const char *idempotency_key, uint32_t deadline_ms, profile_info **out)
{
	waiter w;

	waiter_init(&w);
	return finish_profile(
	    &w, profile_create_idempotent_async(c, username, email, idempotency_key, deadline_ms, wake, &w),
	    out);
}

int
profile_get(profile_client *c, const char *uid, uint32_t deadline_ms, profile_info **out)
{
	waiter w;

	waiter_init(&w);
	return finish_profile(&w, profile_get_async(c, uid, deadline_ms, wake, &w), out);
}

int
profile_get_with(profile_client *c, const char *uid, const profile_read_options *ro, uint32_t deadline_ms,
                 profile_info **out)
{
	waiter w;

	waiter_init(&w);
	return finish_profile(&w, profile_get_with_async(c, uid, ro, deadline_ms, wake, &w), out);
}

int
profile_update(profile_client *c, const char *uid, const char *username, const char *email,
               uint64_t expected_version, uint32_t deadline_ms, profile_info **out)
{
	waiter w;

	waiter_init(&w);
	return finish_profile(
	    &w, profile_update_async(c, uid, username, email, expected_version, deadline_ms, wake, &w), out);
}

int
profile_delete_at(profile_client *c, const char *uid, uint64_t expected_version, uint32_t deadline_ms,
                  char *position)
{
	waiter w;
	void *r = NULL;
	int rc;

	waiter_init(&w);
	rc = wait_for(&w, profile_delete_at_async(c, uid, expected_version, deadline_ms, wake, &w), &r);
	if (rc == PROFILE_OK && position)
		snprintf(position, PROFILE_POSITION_SIZE, "%s", ((profile_info *)r)->position);
	profile_free(r);
	return rc;
}

int
profile_delete(profile_client *c, const char *uid, uint64_t expected_version, uint32_t deadline_ms)
{
	waiter w;
	void *r = NULL;

	waiter_init(&w);
	return wait_for(&w, profile_delete_async(c, uid, expected_version, deadline_ms, wake, &w), &r);
}

int
profile_search(profile_client *c, const char *email, uint32_t deadline_ms, profile_list **out)
{
	return profile_search_with(c, email, NULL, deadline_ms, out);
}

int
profile_search_with(profile_client *c, const char *email, const profile_read_options *ro, uint32_t deadline_ms,
                    profile_list **out)
{
	waiter w;
	void *r = NULL;
	int rc;

	waiter_init(&w);
	rc = wait_for(&w, profile_search_with_async(c, email, ro, deadline_ms, wake, &w), &r);
	if (rc == PROFILE_OK) {
		if (out)
			*out = r;
		else
			profile_list_free(r);
	}
	return rc;
}
