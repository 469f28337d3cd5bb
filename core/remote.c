/* remote.c: forwarding and scatter-gather (remote.h). */
#include "remote.h"

#include <pthread.h>
#include <stdlib.h>

/* ---- forwarding -------------------------------------------------------- */

typedef struct forward {
	Profile__V1__Request *req;
	uint64_t id;
	service_done_fn done;
	void *arg;
} forward;

static void
forwarded(void *arg, int status, Profile__V1__Response *resp)
{
	forward *f = arg;

	if (status == PROFILE_OK) {
		resp->request_id = f->id;
		f->done(f->arg, resp);
		profile__v1__response__free_unpacked(resp, NULL);
	} else {
		service_answer(f->done, f->arg, f->id, status,
		               status == PROFILE_UNAVAILABLE
		                   ? "the partition's owner could not be reached"
		                   : "no answer from the partition's owner in time");
	}
	profile__v1__request__free_unpacked(f->req, NULL);
	free(f);
}

void
remote_forward(router *r, int32_t p, Profile__V1__Request *req, uint32_t budget_ms, int write,
               service_done_fn done, void *arg)
{
	char address[MEMBERS_ADDR_MAX];
	uint64_t id = req->request_id;
	int self = 0, rc;
	forward *f;

	rc = router_owner(r, p, address, sizeof address, &self);
	if (rc != PROFILE_OK || self) {
		/* No owner known, or the table still names us for a partition we
		 * no longer hold: nothing was executed. */
		service_answer(done, arg, id, PROFILE_UNAVAILABLE, "no node serves this partition right now");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	if ((f = malloc(sizeof *f)) == NULL) {
		service_answer(done, arg, id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	*f = (forward){req, id, done, arg};
	if ((rc = router_send(r, address, req, budget_ms, write, forwarded, f)) != PROFILE_OK)
		forwarded(f, rc == PROFILE_RESOURCE_EXHAUSTED ? rc : PROFILE_UNAVAILABLE, NULL);
}

/* ---- scatter-gather ---------------------------------------------------- */

typedef struct gather {
	pthread_mutex_t mu;
	size_t n, pending;
	int *status;
	Profile__V1__Response **resp;
	remote_gather_fn fn;
	void *arg;
} gather;

typedef struct gather_slot {
	gather *g;
	size_t i;
} gather_slot;

static void
gather_done(gather *g)
{
	g->fn(g->arg, g->n, g->status, g->resp);
	for (size_t i = 0; i < g->n; i++)
		if (g->resp[i])
			profile__v1__response__free_unpacked(g->resp[i], NULL);
	pthread_mutex_destroy(&g->mu);
	free(g->status);
	free(g->resp);
	free(g);
}

static void
gathered(void *arg, int status, Profile__V1__Response *resp)
{
	gather_slot *s = arg;
	gather *g = s->g;
	int last;

	pthread_mutex_lock(&g->mu);
	g->status[s->i] = status;
	g->resp[s->i] = resp;
	last = --g->pending == 0;
	pthread_mutex_unlock(&g->mu);
	free(s);
	if (last)
		gather_done(g);
}

int
remote_gather(router *r, const char *const *addresses, Profile__V1__Request *const *reqs, size_t n,
              uint32_t budget_ms, remote_gather_fn fn, void *arg)
{
	gather *g = calloc(1, sizeof *g);
	int last;

	if (g == NULL || (g->status = calloc(n + 1, sizeof *g->status)) == NULL ||
	    (g->resp = calloc(n + 1, sizeof *g->resp)) == NULL) {
		if (g)
			free(g->status);
		free(g);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	pthread_mutex_init(&g->mu, NULL);
	g->n = n;
	g->pending = n + 1; /* +1: held until every send has started */
	g->fn = fn;
	g->arg = arg;
	for (size_t i = 0; i < n; i++) {
		gather_slot *s = malloc(sizeof *s);
		int rc = PROFILE_RESOURCE_EXHAUSTED;

		if (s != NULL) {
			*s = (gather_slot){g, i};
			if ((rc = router_send(r, addresses[i], reqs[i], budget_ms, 0, gathered, s)) !=
			    PROFILE_OK)
				free(s);
		}
		if (rc != PROFILE_OK) {
			/* Never sent. The hold below keeps this from being the last. */
			pthread_mutex_lock(&g->mu);
			g->status[i] = PROFILE_UNAVAILABLE;
			g->pending--;
			pthread_mutex_unlock(&g->mu);
		}
	}
	pthread_mutex_lock(&g->mu);
	last = --g->pending == 0;
	pthread_mutex_unlock(&g->mu);
	if (last)
		gather_done(g);
	return PROFILE_OK;
}
