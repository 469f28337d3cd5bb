/* peers.c: the other nodes (peers.h): who owns a partition, one channel per
 * peer, forwarding and scatter-gather.
 */
#include "peers.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "log.h"

/* ---- owners and channels ----------------------------------------------- */

#define FORWARD_SEND_TIMEOUT_MS 1000
#define CONNECT_GRACE_MS 3000

typedef struct peer {
	struct peer *next;
	char *address;
	call_channel *ch;
	int64_t opened; /* monotonic ms */
} peer;

struct peers {
	members *m;
	char *self;
	const call_tls *tls; /* the node's, for tls+tcp:// peers; borrowed */
	pthread_mutex_t mu;
	peer *peers;
};

int
peers_new(peers **out, members *m, const char *self, const call_tls *tls)
{
	peers *r = calloc(1, sizeof *r);

	if (r == NULL || (r->self = strdup(self)) == NULL) {
		free(r);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	r->m = m;
	r->tls = tls;
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return PROFILE_OK;
}

void
peers_free(peers *r)
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
peers_owner(peers *r, int32_t p, char *address, size_t size, int *is_self)
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
channel_for(peers *r, const char *address, int *young)
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
		    call_channel_open(&p->ch, addrs, 1, 0, r->tls) != PROFILE_OK) {
			log_warn("peers: cannot open a channel to %s", address);
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

/* The channel a call to address may use, with hops set on req and the
 * time the node gets to take it; NULL when the peer cannot be used now. */
static call_channel *
channel_usable(peers *r, const char *address, Profile__V1__Request *req, uint32_t *send_timeout_ms)
{
	int young = 0;
	call_channel *ch = channel_for(r, address, &young);

	if (ch == NULL)
		return NULL;
	/* A peer that is connected but let a call time out unanswered is hung:
	 * do not pile more on it (nothing is executed; the caller may retry). */
	if (call_channel_connected(ch) > 0 && !call_channel_usable(ch))
		return NULL;
	req->hops = 1;
	/* An owner that takes nothing within a second (down, or not yet
	 * reconnected) fails the call with UNAVAILABLE: not executed, so the
	 * caller may retry elsewhere while the group moves its partitions. A
	 * channel made moments ago gets longer: it may still be connecting. */
	*send_timeout_ms = young ? CONNECT_GRACE_MS : FORWARD_SEND_TIMEOUT_MS;
	return ch;
}

int
peers_send(peers *r, const char *address, Profile__V1__Request *req, uint32_t deadline_ms, int write,
           client_raw_fn done, void *arg)
{
	uint32_t send_timeout;
	call_channel *ch = channel_usable(r, address, req, &send_timeout);

	if (ch == NULL)
		return PROFILE_UNAVAILABLE;
	return call_start(ch, req, deadline_ms, send_timeout, write, done, arg);
}

int
peers_ready(peers *r)
{
	return r->m == NULL || members_ready(r->m);
}

int
peers_snapshot(peers *r, member_node **nodes, size_t *n, int *owner)
{
	if (r->m == NULL) {
		*nodes = NULL;
		*n = 0;
		return PROFILE_NOT_FOUND;
	}
	return members_snapshot(r->m, nodes, n, owner);
}

/* ---- forwarding -------------------------------------------------------- */

typedef struct forward {
	Profile__V1__Request *req;
	uint64_t id;
	reply_fn done;
	void *arg;
} forward;

/* The owner's answer, relayed as it came (only its request id changes). */
static void
forwarded(void *arg, int status, nng_msg *msg)
{
	forward *f = arg;

	if (status == PROFILE_OK) {
		status = reply_relay(f->done, f->arg, f->id, nng_msg_body(msg), nng_msg_len(msg));
		nng_msg_free(msg);
	}
	if (status != PROFILE_OK)
		reply_status(f->done, f->arg, f->id, status,
		             status == PROFILE_UNAVAILABLE          ? "the partition's owner could not be reached"
		             : status == PROFILE_DEADLINE_EXCEEDED ? "no answer from the partition's owner in time"
		             : status == PROFILE_INTERNAL          ? "the partition's owner sent a malformed answer"
		                                                   : "out of memory");
	profile__v1__request__free_unpacked(f->req, NULL);
	free(f);
}

void
peers_forward(peers *r, int32_t p, Profile__V1__Request *req, uint32_t budget_ms, int write, reply_fn done,
              void *arg)
{
	char address[MEMBERS_ADDR_MAX];
	uint64_t id = req->request_id;
	uint32_t send_timeout;
	call_channel *ch;
	int self = 0, rc;
	forward *f;

	rc = peers_owner(r, p, address, sizeof address, &self);
	if (rc != PROFILE_OK || self) {
		/* No owner known, or the table still names us for a partition we
		 * no longer hold: nothing was executed. */
		reply_status(done, arg, id, PROFILE_UNAVAILABLE, "no node serves this partition right now");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	if ((f = malloc(sizeof *f)) == NULL) {
		reply_status(done, arg, id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	*f = (forward){req, id, done, arg};
	ch = channel_usable(r, address, req, &send_timeout);
	rc = ch ? call_start_bytes(ch, req, budget_ms, send_timeout, write, forwarded, f) : PROFILE_UNAVAILABLE;
	if (rc != PROFILE_OK)
		forwarded(f, rc == PROFILE_RESOURCE_EXHAUSTED ? rc : PROFILE_UNAVAILABLE, NULL);
}

/* ---- scatter-gather ---------------------------------------------------- */

typedef struct gather {
	pthread_mutex_t mu;
	size_t n, pending;
	int *status;
	Profile__V1__Response **resp;
	peers_gather_fn fn;
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
peers_gather(peers *r, const char *const *addresses, Profile__V1__Request *const *reqs, size_t n,
             uint32_t budget_ms, peers_gather_fn fn, void *arg)
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
			if ((rc = peers_send(r, addresses[i], reqs[i], budget_ms, 0, gathered, s)) !=
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
