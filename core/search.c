/* search.c: search by email (search.h): the node's own partitions from
 * their email indexes, the rest scattered to their owners, and the parts
 * merged most recently updated first. A result is never silently partial.
 */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "read.h"

static int
cmp_recent(const void *a, const void *b)
{
	const Profile__V1__Profile *x = *(Profile__V1__Profile *const *)a;
	const Profile__V1__Profile *y = *(Profile__V1__Profile *const *)b;

	if (x->updated_at != y->updated_at)
		return x->updated_at < y->updated_at ? 1 : -1;
	return strcmp(x->uid, y->uid);
}

typedef struct search_ctx {
	reply_fn done;
	void *arg;
	uint64_t id;
	Profile__V1__Profile **found; /* this node's part */
	size_t n;
	size_t nodes;
	char (*addresses)[MEMBERS_ADDR_MAX];
	const char **addr_ptrs;
	Profile__V1__Request *reqs;
	Profile__V1__Request **req_ptrs;
	Profile__V1__SearchRequest *sreqs;
	int32_t *parts; /* storage for every node's partition list */
} search_ctx;

static void
free_profiles(Profile__V1__Profile **found, size_t n)
{
	for (size_t i = 0; i < n; i++)
		profile__v1__profile__free_unpacked(found[i], NULL);
	free(found);
}

static void
search_ctx_free(search_ctx *c)
{
	free_profiles(c->found, c->n);
	free(c->addresses);
	free(c->addr_ptrs);
	free(c->reqs);
	free(c->req_ptrs);
	free(c->sreqs);
	free(c->parts);
	free(c);
}

/* Answers a search with the profiles of every part, most recent first
 * (stale: how stale the copies read were, or NULL). */
static void
search_reply(reply_fn done, void *arg, uint64_t id, Profile__V1__Profile **found, size_t n,
             Profile__V1__Staleness *stale)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	Profile__V1__SearchReply sr = PROFILE__V1__SEARCH_REPLY__INIT;

	r.staleness = stale;

	if (n > 1)
		qsort(found, n, sizeof *found, cmp_recent);
	sr.n_profiles = n;
	sr.profiles = found;
	r.request_id = id;
	r.body_case = PROFILE__V1__RESPONSE__BODY_SEARCH;
	r.search = &sr;
	done(arg, &r);
}

static void
search_gathered(void *arg, size_t n, const int *status, Profile__V1__Response *const *resp)
{
	search_ctx *c = arg;
	Profile__V1__Profile **all;
	size_t total = c->n;

	/* Never a silent partial result: one missing part fails the search. */
	for (size_t i = 0; i < n; i++) {
		if (status[i] == PROFILE_OK && resp[i]->status == PROFILE__V1__STATUS__UNAVAILABLE) {
			/* The part's own reason (restoring, a position not reached). */
			reply_status(c->done, c->arg, c->id, PROFILE_UNAVAILABLE, resp[i]->message);
			search_ctx_free(c);
			return;
		}
		if (status[i] != PROFILE_OK || resp[i]->status != PROFILE__V1__STATUS__OK ||
		    resp[i]->body_case != PROFILE__V1__RESPONSE__BODY_SEARCH) {
			reply_status(
			    c->done, c->arg, c->id, PROFILE_UNAVAILABLE,
			    "a node holding part of the data did not answer; no partial result is given");
			search_ctx_free(c);
			return;
		}
		total += resp[i]->search->n_profiles;
	}
	if ((all = malloc((total ? total : 1) * sizeof *all)) == NULL) {
		reply_status(c->done, c->arg, c->id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		search_ctx_free(c);
		return;
	}
	total = 0;
	for (size_t i = 0; i < c->n; i++)
		all[total++] = c->found[i];
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < resp[i]->search->n_profiles; k++)
			all[total++] = resp[i]->search->profiles[k];
	search_reply(c->done, c->arg, c->id, all, total, NULL);
	free(all);
	search_ctx_free(c);
}

/* Gives each node's request its list of partitions: the entries of
 * c->parts[0..nr) that node owns, contiguous in one array. */
static int
search_assign(service *svc, search_ctx *c, size_t nr)
{
	int32_t *sorted = malloc(nr * sizeof *sorted);
	size_t at = 0;
	int self;

	if (sorted == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	for (size_t k = 0; k < c->nodes; k++) {
		c->sreqs[k].partitions = sorted + at;
		for (size_t i = 0; i < nr; i++) {
			char addr[MEMBERS_ADDR_MAX];
			if (peers_owner(svc->peers, c->parts[i], addr, sizeof addr, &self) == PROFILE_OK &&
			    strcmp(addr, c->addresses[k]) == 0)
				sorted[at++] = c->parts[i];
		}
		c->sreqs[k].n_partitions = (size_t)(sorted + at - c->sreqs[k].partitions);
	}
	free(c->parts);
	c->parts = sorted;
	return PROFILE_OK;
}

/* Scatters the search of remote[0..nr) to their owners; takes found. */
static void
search_scatter(service *svc, const Profile__V1__Request *req, reply_fn done, void *arg, int64_t deadline,
               Profile__V1__Profile **found, size_t n, const int32_t *remote, size_t nr)
{
	search_ctx *c = calloc(1, sizeof *c);
	int64_t left = deadline - wire_mono_ms();
	int self;

	if (c == NULL || (c->addresses = calloc(nr, sizeof *c->addresses)) == NULL ||
	    (c->addr_ptrs = calloc(nr, sizeof *c->addr_ptrs)) == NULL ||
	    (c->reqs = calloc(nr, sizeof *c->reqs)) == NULL ||
	    (c->req_ptrs = calloc(nr, sizeof *c->req_ptrs)) == NULL ||
	    (c->sreqs = calloc(nr, sizeof *c->sreqs)) == NULL ||
	    (c->parts = calloc(nr, sizeof *c->parts)) == NULL) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		if (c)
			search_ctx_free(c);
		free_profiles(found, n);
		return;
	}
	c->done = done;
	c->arg = arg;
	c->id = req->request_id;
	c->found = found;
	c->n = n;
	/* Group the partitions by owner: one request per node. */
	for (size_t i = 0; i < nr; i++) {
		char addr[MEMBERS_ADDR_MAX];
		size_t k;

		if (peers_owner(svc->peers, remote[i], addr, sizeof addr, &self) != PROFILE_OK || self) {
			const char *held = self ? partitions_held_back(svc->t) : NULL;

			reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE,
			             held ? held : "no node serves a partition right now");
			search_ctx_free(c);
			return;
		}
		for (k = 0; k < c->nodes && strcmp(c->addresses[k], addr) != 0; k++)
			;
		if (k == c->nodes) {
			snprintf(c->addresses[k], sizeof c->addresses[k], "%s", addr);
			c->addr_ptrs[k] = c->addresses[k];
			profile__v1__request__init(&c->reqs[k]);
			profile__v1__search_request__init(&c->sreqs[k]);
			c->sreqs[k].email = req->search->email;
			c->reqs[k].log_id = req->log_id;
			c->reqs[k].n_min_positions = req->n_min_positions; /* borrowed: sent at once */
			c->reqs[k].min_positions = req->min_positions;
			c->reqs[k].body_case = PROFILE__V1__REQUEST__BODY_SEARCH;
			c->reqs[k].search = &c->sreqs[k];
			c->req_ptrs[k] = &c->reqs[k];
			c->nodes++;
		}
		c->parts[i] = remote[i];
	}
	if (search_assign(svc, c, nr) != PROFILE_OK) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		search_ctx_free(c);
		return;
	}
	__atomic_fetch_add(&svc->forwards, c->nodes, __ATOMIC_RELAXED);
	if (peers_gather(svc->peers, c->addr_ptrs, c->req_ptrs, c->nodes, left > 0 ? (uint32_t)left : 1,
	                 search_gathered, c) != PROFILE_OK) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		search_ctx_free(c);
	}
}

/* node_read_fn: the search, over this node's partitions and, unless the
 * request was forwarded here, scattered to the owners of the rest. */
static int
search_read(service *svc, const Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg,
            int32_t *part)
{
	const Profile__V1__SearchRequest *sq = req->search;
	int32_t count = partitions_count(svc->t);
	size_t np = sq->n_partitions ? sq->n_partitions : (size_t)count, nr = 0, n = 0;
	int32_t *remote = calloc(np, sizeof *remote);
	Profile__V1__Profile **found = NULL;
	Profile__V1__Staleness stale, worst, *worst_p = NULL;
	char key[WIRE_EMAIL_MAX + 1];
	int rc = PROFILE_OK;
	store *st;

	if (remote == NULL) {
		reply_status(done, arg, req->request_id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	wire_email_key(sq->email, key);
	for (size_t i = 0; i < np && rc == PROFILE_OK; i++) {
		int32_t p = sq->n_partitions ? sq->partitions[i] : (int32_t)i;

		if (p < 0 || p >= count) {
			rc = PROFILE_INVALID_ARGUMENT;
		} else if (!node_reads_here(svc, req, p)) {
			rc = PROFILE_UNAVAILABLE; /* its owner answers for it */
		} else if ((rc = partitions_read_begin(svc->t, p, node_min_position(req, p), &st)) == PROFILE_OK) {
			rc = store_search(st, key, &found, &n);
			partitions_read_end(svc->t, p);
			if (node_staleness(svc, req, p, &stale)) { /* the stalest copy read */
				if (worst_p == NULL)
					worst = stale;
				worst.age_s = stale.age_s > worst.age_s ? stale.age_s : worst.age_s;
				worst.lag = stale.lag > worst.lag ? stale.lag : worst.lag;
				worst_p = &worst;
			}
		}
		if (rc == PROFILE_ABORTED) {
			*part = p;
		} else if (rc == PROFILE_UNAVAILABLE && req->hops == 0 && svc->peers) {
			remote[nr++] = p; /* not served here: ask its owner */
			rc = PROFILE_OK;
		}
	}
	if (rc == PROFILE_OK && nr > 0) {
		search_scatter(svc, req, done, arg, deadline, found, n, remote, nr);
		free(remote);
		return PROFILE_OK;
	}
	free(remote);
	if (rc == PROFILE_OK)
		search_reply(done, arg, req->request_id, found, n, worst_p);
	else if (rc == PROFILE_INVALID_ARGUMENT || rc == PROFILE_INTERNAL)
		reply_status(done, arg, req->request_id, rc,
		             rc == PROFILE_INTERNAL ? "store read failed" : "no such partition");
	else if (rc != PROFILE_ABORTED)
		reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE,
		             rc == PROFILE_FAILED_PRECONDITION
		                 ? "a partition store is unavailable on this node; retry later"
		                 : "a partition is not served by this node");
	free_profiles(found, n);
	return rc;
}

void
search_run(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg)
{
	node_read(svc, search_read, req, -1, deadline, done, arg);
}
