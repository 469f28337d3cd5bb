/* service.c: the node context (service.h, service_node.h): its lifecycle, the
 * group's assignment, the deadline a request is served within, the
 * local-or-forward decision, and the partitions a standby follows. The
 * methods themselves are in profiles.c, search.c and cluster.c, on the read
 * path (read.c) and the write path (write.c); rpc.c dispatches to them.
 */
#include "service_node.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A node answers a request it cannot serve in time this long before the
 * caller's deadline (a tenth of it, within these bounds), so the caller
 * hears UNAVAILABLE ("not executed, retry") instead of timing out itself. */
#define MARGIN_MIN_MS 5
#define MARGIN_MAX_MS 250

/* ---- lifecycle --------------------------------------------------------- */

int
service_new(service **out, const service_config *cfg, partitions *t)
{
	service *svc = calloc(1, sizeof *svc);

	if (svc == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	svc->cfg = *cfg;
	svc->t = t;
	if ((svc->owned = calloc((size_t)partitions_count(t), 1)) == NULL ||
	    (cfg->standbys > 0 && ((svc->standby = calloc((size_t)partitions_count(t), 1)) == NULL ||
	                           (svc->follow_until = calloc((size_t)partitions_count(t), sizeof(int64_t))) == NULL)) ||
	    pending_new(&svc->pd) != PROFILE_OK) {
		free(svc->owned);
		free(svc->standby);
		free(svc->follow_until);
		free(svc);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	*out = svc;
	return PROFILE_OK;
}

/* ---- fencing: the partition table's hooks ------------------------------- */

/* changelog_claim's ready: every earlier writer of p is fenced, and the
 * log ended at `end` then. */
static void
fence_ready(void *arg, int32_t p, uint64_t gen, int64_t end)
{
	service *svc = arg;

	partitions_fence_written(svc->t, p, gen, end);
}

void
service_write_fence(void *arg, int32_t p, uint64_t gen)
{
	service *svc = arg;

	if (changelog_claim(svc->cl, p, gen, fence_ready, svc) != PROFILE_OK)
		partitions_fence_written(svc->t, p, gen, -1);
}

void
service_release(void *arg, int32_t p)
{
	service *svc = arg;

	if (svc->cl)
		changelog_release(svc->cl, p);
}

static void
tick(void *arg)
{
	partitions_tick(((service *)arg)->t);
}

#define TICK_MS 1000

void
service_attach(service *svc, changelog *cl)
{
	svc->cl = cl;
	pending_set_tick(svc->pd, tick, svc, TICK_MS);
}

void
service_attach_peers(service *svc, peers *r)
{
	svc->peers = r;
}

void
service_free(service *svc)
{
	if (svc == NULL)
		return;
	/* What is still pending was in Kafka when the changelog closed: it is
	 * answered, and no callback will come for it any more. */
	pending_free(svc->pd);
	free(svc->owned);
	free(svc->standby);
	free(svc->follow_until);
	free(svc);
}

void
service_on_rebalanced(void *arg, const int32_t *parts, size_t n)
{
	service *svc = arg;
	int32_t count = partitions_count(svc->t);

	for (int32_t p = 0; p < count; p++)
		__atomic_store_n(&svc->owned[p], 0, __ATOMIC_RELAXED);
	for (size_t i = 0; i < n; i++)
		if (parts[i] >= 0 && parts[i] < count)
			__atomic_store_n(&svc->owned[parts[i]], 1, __ATOMIC_RELAXED);
	__atomic_store_n(&svc->in_group, 1, __ATOMIC_RELAXED);
	for (int32_t p = 0; p < count; p++)
		partitions_claim(svc->t, p, __atomic_load_n(&svc->owned[p], __ATOMIC_RELAXED));
}

/* ---- serving a request ------------------------------------------------- */

/* The part of a caller's budget this node may use: all but the margin in
 * which it answers what it could not serve (see MARGIN_MIN_MS). */
static uint32_t
answer_budget(uint32_t budget)
{
	uint32_t m = budget / 10;

	m = m < MARGIN_MIN_MS ? MARGIN_MIN_MS : m > MARGIN_MAX_MS ? MARGIN_MAX_MS : m;
	return budget > m ? budget - m : 1;
}

void
service_call(service *svc, service_run_fn run, Profile__V1__Request *req, reply_fn done, void *arg)
{
	uint32_t budget = req->deadline_ms ? req->deadline_ms : svc->cfg.default_deadline_ms;

	if (budget > svc->cfg.max_deadline_ms)
		budget = svc->cfg.max_deadline_ms;
	__atomic_fetch_add(&svc->requests, 1, __ATOMIC_RELAXED); /* no lock on the hot path */
	run(svc, req, wire_mono_ms() + answer_budget(budget), done, arg);
}

void
service_reject(service *svc, Profile__V1__Request *req, int status, const char *why, reply_fn done, void *arg)
{
	__atomic_fetch_add(&svc->requests, 1, __ATOMIC_RELAXED);
	reply_status(done, arg, req->request_id, status, why);
	profile__v1__request__free_unpacked(req, NULL);
}

int
node_owns(service *svc, int32_t p)
{
	return __atomic_load_n(&svc->owned[p], __ATOMIC_RELAXED);
}

void
node_forward(service *svc, int32_t p, Profile__V1__Request *req, int64_t deadline, int write, reply_fn done,
             void *arg)
{
	int64_t left = deadline - wire_mono_ms();

	if (req->hops > 0 || svc->peers == NULL) {
		reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE,
		             "this node does not own the partition");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	__atomic_fetch_add(&svc->forwards, 1, __ATOMIC_RELAXED);
	peers_forward(svc->peers, p, req, left > 0 ? (uint32_t)left : 1, write, done, arg);
}

/* ---- standbys: the partitions this node follows without owning --------- */

/* A partition no longer owned nor stood by is followed this much longer:
 * past the longest deadline, so writes in flight to it finish first. */
#define FOLLOW_GRACE_MS 65000
#define STANDBY_EVERY_MS 200

static int
cmp_node_id(const void *a, const void *b)
{
	return strcmp(((const member_node *)a)->id, ((const member_node *)b)->id);
}

/* standby[p]: this node is one of the cfg.standbys members after p's owner
 * in the members table, in node id order (every node works out the same). */
static void
standbys_refresh(service *svc)
{
	int32_t count = partitions_count(svc->t);
	int *owner = calloc((size_t)count, sizeof *owner);
	member_node *nodes = NULL, *live = NULL;
	size_t n = 0, m = 0;

	memset(svc->standby, 0, (size_t)count);
	if (owner == NULL || svc->peers == NULL || peers_snapshot(svc->peers, &nodes, &n, owner) != PROFILE_OK ||
	    (live = calloc(n + 1, sizeof *live)) == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!nodes[i].leaving)
			live[m++] = nodes[i];
	qsort(live, m, sizeof *live, cmp_node_id);
	for (int32_t p = 0; p < count; p++) {
		size_t at = 0;
		if (owner[p] < 0)
			continue;
		while (at < m && strcmp(live[at].id, nodes[owner[p]].id) != 0)
			at++;
		for (int k = 1; at < m && k <= svc->cfg.standbys && (size_t)k < m; k++)
			if (strcmp(live[(at + (size_t)k) % m].id, svc->cfg.node_id) == 0)
				svc->standby[p] = 1;
	}
out:
	free(owner);
	free(nodes);
	free(live);
}

int
service_follows(void *arg, int32_t p)
{
	service *svc = arg;
	int64_t now = wire_mono_ms();

	if (svc->standby == NULL)
		return 1;
	if (p == 0 && now >= svc->standby_at) {
		svc->standby_at = now + STANDBY_EVERY_MS;
		standbys_refresh(svc);
	}
	if (node_owns(svc, p) || svc->standby[p])
		svc->follow_until[p] = now + FOLLOW_GRACE_MS;
	return now < svc->follow_until[p];
}

struct node_metrics *
service_metrics(service *svc)
{
	return &svc->metrics;
}
