/* cluster.c: what a node says about itself and about the cluster
 * (cluster.h): its status (the partitions it serves, their state, lag and
 * replay counts, its counters) and the cluster view, built from the members
 * table and every member's status asked for at once.
 */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service_node.h"

/* The cluster view gives each member this long to report its status; one
 * that does not is shown unreachable (a hung node must not stall the view). */
#define STATUS_TIMEOUT_MS 500

/* A node's status, with the storage its pointers point into. */
typedef struct status_buf {
	Profile__V1__StatusReply reply;
	partition_info *info;
	int64_t *log_end;
	Profile__V1__PartitionState *ps;
	Profile__V1__PartitionState **pps;
	int32_t *owned;
	metrics_buf metrics;
} status_buf;

static void
status_buf_fini(status_buf *b)
{
	free(b->info);
	free(b->log_end);
	free(b->ps);
	free(b->pps);
	free(b->owned);
}

static int
status_build(service *svc, status_buf *b, int with_metrics)
{
	int32_t n = partitions_count(svc->t), served = 0, owned = 0;

	memset(b, 0, sizeof *b);
	profile__v1__status_reply__init(&b->reply);
	b->info = calloc((size_t)n, sizeof *b->info);
	b->ps = calloc((size_t)n, sizeof *b->ps);
	b->pps = calloc((size_t)n, sizeof *b->pps);
	b->owned = calloc((size_t)n, sizeof *b->owned);
	if (!b->info || !b->ps || !b->pps || !b->owned) {
		status_buf_fini(b);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	if ((b->log_end = calloc((size_t)n, sizeof *b->log_end)) == NULL) {
		status_buf_fini(b);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	for (int32_t p = 0; p < n; p++)
		b->log_end[p] = svc->cl ? changelog_high_watermark(svc->cl, p) : -1;
	partitions_info(svc->t, b->log_end, b->info);
	for (int32_t p = 0; p < n; p++) {
		if (__atomic_load_n(&svc->owned[p], __ATOMIC_RELAXED))
			b->owned[owned++] = p;
		if (!b->info[p].owned)
			continue;
		profile__v1__partition_state__init(&b->ps[served]);
		b->ps[served].partition = p;
		b->ps[served].state = b->info[p].failed || b->info[p].held_back
		                          ? PROFILE__V1__PARTITION_STATE__STATE__UNAVAILABLE
		                      : b->info[p].active ? PROFILE__V1__PARTITION_STATE__STATE__ACTIVE
		                                          : PROFILE__V1__PARTITION_STATE__STATE__RESTORING;
		b->ps[served].problem = b->info[p].problem;
		b->ps[served].lag = b->info[p].lag;
		b->ps[served].applied_offset = b->info[p].applied;
		b->ps[served].replayed = b->info[p].replayed;
		b->ps[served].store_bytes = b->info[p].store_bytes;
		b->ps[served].store_records = b->info[p].store_records;
		b->pps[served] = &b->ps[served];
		served++;
	}
	b->reply.node_id = (char *)svc->cfg.node_id;
	b->reply.address = (char *)svc->cfg.address;
	b->reply.partition_count = n;
	b->reply.n_partitions = (size_t)served;
	b->reply.partitions = b->pps;
	b->reply.n_owned = (size_t)owned;
	b->reply.owned = b->owned;
	b->reply.state_mode = svc->cfg.replicated ? "replicated" : "partitioned";
	b->reply.requests = __atomic_load_n(&svc->requests, __ATOMIC_RELAXED);
	b->reply.forwards = __atomic_load_n(&svc->forwards, __ATOMIC_RELAXED);
	b->reply.in_group = __atomic_load_n(&svc->in_group, __ATOMIC_RELAXED);
	if (!with_metrics)
		return PROFILE_OK; /* the cluster view and routing need none of what follows */
	metrics_fill(&svc->metrics, &b->metrics, &b->reply);
	b->reply.restores = partitions_restores(svc->t);
	b->reply.applied_on_ack = partitions_applied_on_ack(svc->t);
	store_applied_totals(&b->reply.store_transactions, &b->reply.store_records);
	if (svc->cl) {
		changelog_stats cs;
		changelog_counters(svc->cl, &cs);
		b->reply.rebalances = cs.rebalances;
		b->reply.produce_errors = cs.produce_errors;
		b->reply.request_retries = cs.request_retries;
		b->reply.producer_restarts = cs.producer_restarts;
	}
	return PROFILE_OK;
}

void
cluster_status(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	uint64_t id = req->request_id;
	int with_metrics = req->status->with_metrics;
	status_buf b;

	(void)deadline;
	profile__v1__request__free_unpacked(req, NULL);
	if (status_build(svc, &b, with_metrics) != PROFILE_OK) {
		reply_status(done, arg, id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	r.request_id = id;
	r.body_case = PROFILE__V1__RESPONSE__BODY_STATUS_REPLY;
	r.status_reply = &b.reply;
	done(arg, &r);
	status_buf_fini(&b);
}

typedef struct cluster_ctx {
	service *svc;
	reply_fn done;
	void *arg;
	uint64_t id;
	int with_status; /* each node's whole status in the view */
	member_node *nodes; /* from the members table */
	size_t n_nodes;
	int *owner;    /* per partition: index into nodes, or -1 */
	size_t *asked; /* remote request i went to nodes[asked[i]] */
	const char **addrs;
	Profile__V1__Request *reqs;
	Profile__V1__Request **req_ptrs;
	Profile__V1__StatusRequest sreq;
	status_buf self; /* this node's own status */
	int self_index;
} cluster_ctx;

static void
cluster_ctx_free(cluster_ctx *c)
{
	free(c->nodes);
	free(c->owner);
	free(c->asked);
	free(c->addrs);
	free(c->reqs);
	free(c->req_ptrs);
	status_buf_fini(&c->self);
	free(c);
}

/* Builds the cluster view from the table and every node's status. */
static void
cluster_gathered(void *arg, size_t n, const int *status, Profile__V1__Response *const *resp)
{
	cluster_ctx *c = arg;
	int32_t count = partitions_count(c->svc->t);
	const Profile__V1__StatusReply **st = calloc(c->n_nodes + 1, sizeof *st);
	Profile__V1__ClusterNode *cn = calloc(c->n_nodes + 1, sizeof *cn);
	Profile__V1__ClusterNode **cnp = calloc(c->n_nodes + 1, sizeof *cnp);
	Profile__V1__ClusterPartition *cp = calloc((size_t)count, sizeof *cp);
	Profile__V1__ClusterPartition **cpp = calloc((size_t)count, sizeof *cpp);
	int32_t *owned = calloc((size_t)count + 1, sizeof *owned);
	size_t nrep = 0, at_rep = 0;
	Profile__V1__ClusterReplica *rep = NULL, **reps = NULL;
	Profile__V1__ClusterReply cr = PROFILE__V1__CLUSTER_REPLY__INIT;
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	size_t at = 0;

	if (!st || !cn || !cnp || !cp || !cpp || !owned) {
		reply_status(c->done, c->arg, c->id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	if (c->self_index >= 0)
		st[c->self_index] = &c->self.reply;
	for (size_t i = 0; i < n; i++)
		if (status[i] == PROFILE_OK && resp[i]->status == PROFILE__V1__STATUS__OK &&
		    resp[i]->body_case == PROFILE__V1__RESPONSE__BODY_STATUS_REPLY)
			st[c->asked[i]] = resp[i]->status_reply;
	for (size_t k = 0; k < c->n_nodes; k++)
		nrep += st[k] ? st[k]->n_partitions : 0;
	if ((rep = calloc(nrep + 1, sizeof *rep)) == NULL || (reps = calloc(nrep + 1, sizeof *reps)) == NULL) {
		reply_status(c->done, c->arg, c->id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	for (size_t k = 0; k < c->n_nodes; k++) {
		profile__v1__cluster_node__init(&cn[k]);
		cn[k].node_id = c->nodes[k].id;
		cn[k].address = c->nodes[k].address;
		cn[k].reachable = st[k] != NULL;
		cn[k].requests = st[k] ? st[k]->requests : 0;
		cn[k].forwards = st[k] ? st[k]->forwards : 0;
		if (c->with_status)
			cn[k].status = (Profile__V1__StatusReply *)st[k];
		cn[k].partitions = owned + at;
		for (int32_t p = 0; p < count; p++)
			if (c->owner[p] == (int)k)
				owned[at++] = p;
		cn[k].n_partitions = (size_t)(owned + at - cn[k].partitions);
		cnp[k] = &cn[k];
	}
	for (int32_t p = 0; p < count; p++) {
		const Profile__V1__StatusReply *o = c->owner[p] >= 0 ? st[c->owner[p]] : NULL;

		profile__v1__cluster_partition__init(&cp[p]);
		cp[p].partition = p;
		cp[p].owner = c->owner[p] >= 0 ? c->nodes[c->owner[p]].id : "";
		cp[p].applied_offset = -1;
		for (size_t i = 0; o && i < o->n_partitions; i++)
			if (o->partitions[i]->partition == p) {
				cp[p].state = o->partitions[i]->state;
				cp[p].lag = o->partitions[i]->lag;
				cp[p].applied_offset = o->partitions[i]->applied_offset;
				cp[p].replayed = o->partitions[i]->replayed;
				cp[p].problem = o->partitions[i]->problem;
			}
		/* Every node serving p, owner or not. */
		cp[p].replicas = reps + at_rep;
		for (size_t k = 0; k < c->n_nodes; k++)
			for (size_t i = 0; st[k] && i < st[k]->n_partitions; i++)
				if (st[k]->partitions[i]->partition == p && at_rep < nrep) {
					profile__v1__cluster_replica__init(&rep[at_rep]);
					rep[at_rep].node_id = c->nodes[k].id;
					rep[at_rep].state = st[k]->partitions[i]->state;
					rep[at_rep].applied_offset = st[k]->partitions[i]->applied_offset;
					rep[at_rep].lag = st[k]->partitions[i]->lag;
					reps[at_rep] = &rep[at_rep];
					at_rep++;
				}
		cp[p].n_replicas = (size_t)(reps + at_rep - cp[p].replicas);
		cpp[p] = &cp[p];
	}
	cr.partition_count = count;
	cr.n_nodes = c->n_nodes;
	cr.nodes = cnp;
	cr.n_partitions = (size_t)count;
	cr.partitions = cpp;
	r.request_id = c->id;
	r.body_case = PROFILE__V1__RESPONSE__BODY_CLUSTER;
	r.cluster = &cr;
	c->done(c->arg, &r);
out:
	free(st);
	free(cn);
	free(cnp);
	free(cp);
	free(cpp);
	free(owned);
	free(rep);
	free(reps);
	cluster_ctx_free(c);
}

/* Fills c->nodes and c->owner from the members table, or with this node
 * alone when there is none. PROFILE_UNAVAILABLE while the table lags. */
static int
cluster_members(service *svc, cluster_ctx *c, int32_t count)
{
	if (svc->peers != NULL &&
	    peers_snapshot(svc->peers, &c->nodes, &c->n_nodes, c->owner) == PROFILE_OK && c->n_nodes == 0)
		return PROFILE_UNAVAILABLE; /* in a group, yet no member known */
	if (svc->peers == NULL || c->nodes == NULL) {
		/* Alone: this node is the whole cluster. */
		free(c->nodes);
		if ((c->nodes = calloc(1, sizeof *c->nodes)) == NULL)
			return PROFILE_RESOURCE_EXHAUSTED;
		c->n_nodes = 1;
		for (int32_t p = 0; p < count; p++)
			c->owner[p] = -1;
		snprintf(c->nodes[0].id, sizeof c->nodes[0].id, "%s", svc->cfg.node_id);
		snprintf(c->nodes[0].address, sizeof c->nodes[0].address, "%s", svc->cfg.address);
		for (size_t i = 0; i < c->self.reply.n_owned; i++)
			c->owner[c->self.reply.owned[i]] = 0;
	}
	return PROFILE_OK;
}

/* Builds one Status request per other live member; returns how many. */
static size_t
cluster_requests(service *svc, cluster_ctx *c, uint32_t hops)
{
	size_t nr = 0;

	profile__v1__status_request__init(&c->sreq);
	c->sreq.with_metrics = c->with_status;
	for (size_t k = 0; k < c->n_nodes; k++) {
		if (strcmp(c->nodes[k].id, svc->cfg.node_id) == 0) {
			c->self_index = (int)k;
			continue;
		}
		if (c->nodes[k].leaving || hops > 0)
			continue;
		profile__v1__request__init(&c->reqs[nr]);
		c->reqs[nr].body_case = PROFILE__V1__REQUEST__BODY_STATUS;
		c->reqs[nr].status = &c->sreq;
		c->req_ptrs[nr] = &c->reqs[nr];
		c->addrs[nr] = c->nodes[k].address;
		c->asked[nr] = k;
		nr++;
	}
	return nr;
}

void
cluster_view(service *svc, Profile__V1__Request *req, int64_t deadline, reply_fn done, void *arg)
{
	int32_t count = partitions_count(svc->t);
	cluster_ctx *c = calloc(1, sizeof *c);
	int64_t left = deadline - wire_mono_ms();
	uint64_t id = req->request_id;
	uint32_t hops = req->hops;
	int with_status = req->cluster->with_status;
	size_t nr;
	int rc;

	profile__v1__request__free_unpacked(req, NULL);
	if (svc->peers && !peers_ready(svc->peers)) {
		free(c);
		reply_status(done, arg, id, PROFILE_UNAVAILABLE, "this node has not read the membership yet");
		return;
	}
	if (c == NULL || (c->owner = calloc((size_t)count, sizeof *c->owner)) == NULL ||
	    status_build(svc, &c->self, with_status) != PROFILE_OK) {
		reply_status(done, arg, id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		if (c) {
			free(c->owner);
			free(c);
		}
		return;
	}
	c->svc = svc;
	c->done = done;
	c->arg = arg;
	c->id = id;
	c->with_status = with_status;
	c->self_index = -1;
	if ((rc = cluster_members(svc, c, count)) != PROFILE_OK) {
		reply_status(done, arg, id, rc,
		             rc == PROFILE_UNAVAILABLE ? "this node has not read the membership yet"
		                                       : "out of memory");
		cluster_ctx_free(c);
		return;
	}
	c->asked = calloc(c->n_nodes + 1, sizeof *c->asked);
	c->addrs = calloc(c->n_nodes + 1, sizeof *c->addrs);
	c->reqs = calloc(c->n_nodes + 1, sizeof *c->reqs);
	c->req_ptrs = calloc(c->n_nodes + 1, sizeof *c->req_ptrs);
	if (!c->asked || !c->addrs || !c->reqs || !c->req_ptrs) {
		reply_status(done, arg, id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		cluster_ctx_free(c);
		return;
	}
	if ((nr = cluster_requests(svc, c, hops)) == 0) {
		cluster_gathered(c, 0, NULL, NULL);
		return;
	}
	if (left > STATUS_TIMEOUT_MS)
		left = STATUS_TIMEOUT_MS;
	if (peers_gather(svc->peers, c->addrs, c->req_ptrs, nr, left > 0 ? (uint32_t)left : 1,
	                 cluster_gathered, c) != PROFILE_OK) {
		reply_status(done, arg, id, PROFILE_RESOURCE_EXHAUSTED, "out of memory");
		cluster_ctx_free(c);
	}
}
