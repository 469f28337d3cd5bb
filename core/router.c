/* router.c: owner lookup and peer channels (router.h). */
#include "router.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "log.h"

#define FORWARD_SEND_TIMEOUT_MS 1000
#define CONNECT_GRACE_MS 3000

typedef struct peer {
	struct peer *next;
	char *address;
	call_channel *ch;
	int64_t opened; /* monotonic ms */
} peer;

struct router {
	members *m;
	char *self;
	pthread_mutex_t mu;
	peer *peers;
};

int
router_new(router **out, members *m, const char *self)
{
	router *r = calloc(1, sizeof *r);

	if (r == NULL || (r->self = strdup(self)) == NULL) {
		free(r);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	r->m = m;
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return PROFILE_OK;
}

void
router_free(router *r)
{
	if (r == NULL)
		return;
	while (r->peers) {
		peer *p = r->peers;
		r->peers = p->next;
		call_channel_close(p->ch);
		free(p->address);
		free(p);
	}
	pthread_mutex_destroy(&r->mu);
	free(r->self);
	free(r);
}

int
router_owner(router *r, int32_t p, char *address, size_t size, int *is_self)
{
	char id[MEMBERS_ID_MAX];
	int rc;

	if (r->m == NULL)
		return PROFILE_NOT_FOUND;
	if ((rc = members_owner(r->m, p, id, sizeof id, address, size)) == PROFILE_OK)
		*is_self = strcmp(id, r->self) == 0;
	return rc;
}

/* The channel to address, made on first use; *young when it was made less
 * than CONNECT_GRACE_MS ago (still connecting, perhaps). */
static call_channel *
channel_for(router *r, const char *address, int *young)
{
	call_channel *ch = NULL;
	peer *p;

	pthread_mutex_lock(&r->mu);
	for (p = r->peers; p; p = p->next)
		if (strcmp(p->address, address) == 0)
			break;
	if (p == NULL && (p = calloc(1, sizeof *p)) != NULL) {
		const char *addrs[1] = {address};
		if ((p->address = strdup(address)) == NULL ||
		    call_channel_open(&p->ch, addrs, 1, 0) != PROFILE_OK) {
			log_warn("router: cannot open a channel to %s", address);
			free(p->address);
			free(p);
			p = NULL;
		} else {
			p->opened = wire_mono_ms();
			p->next = r->peers;
			r->peers = p;
		}
	}
	if (p) {
		ch = p->ch;
		*young = wire_mono_ms() - p->opened < CONNECT_GRACE_MS;
	}
	pthread_mutex_unlock(&r->mu);
	return ch;
}

int
router_send(router *r, const char *address, Profile__V1__Request *req, uint32_t deadline_ms, int write,
            client_raw_fn done, void *arg)
{
	int young = 0;
	call_channel *ch = channel_for(r, address, &young);

	if (ch == NULL)
		return PROFILE_UNAVAILABLE;
	/* A peer that is connected but let a call time out unanswered is hung:
	 * do not pile more on it (nothing is executed; the caller may retry). */
	if (call_channel_connected(ch) > 0 && !call_channel_usable(ch))
		return PROFILE_UNAVAILABLE;
	req->hops = 1;
	/* An owner that takes nothing within a second (down, or not yet
	 * reconnected) fails the call with UNAVAILABLE: not executed, so the
	 * caller may retry elsewhere while the group moves its partitions. A
	 * channel made moments ago gets longer: it may still be connecting. */
	return call_start(ch, req, deadline_ms, young ? CONNECT_GRACE_MS : FORWARD_SEND_TIMEOUT_MS, write,
	                  done, arg);
}

int
router_ready(router *r)
{
	return r->m == NULL || members_ready(r->m);
}

int
router_snapshot(router *r, member_node **nodes, size_t *n, int *owner)
{
	if (r->m == NULL) {
		*nodes = NULL;
		*n = 0;
		return PROFILE_NOT_FOUND;
	}
	return members_snapshot(r->m, nodes, n, owner);
}
