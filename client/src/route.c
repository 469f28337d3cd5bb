/* route.c: owner routing for libprofile-client (client_impl.h): the
 * partition -> address table from the cluster view, refreshed in the
 * background, and the address each call goes to first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_impl.h"

#define ROUTE_REFRESH_MS 2000

static void on_route_timer(void *arg);

static void
route_rearm(profile_client *c)
{
	if (!__atomic_load_n(&c->closing, __ATOMIC_ACQUIRE))
		nng_sleep_aio(ROUTE_REFRESH_MS, c->route_timer);
}

/* The index of node_id's address among this handle's, or -1. */
static int16_t
address_of(const profile_client *c, const Profile__V1__ClusterReply *cr, const char *node_id)
{
	for (size_t k = 0; k < cr->n_nodes; k++)
		if (strcmp(cr->nodes[k]->node_id, node_id) == 0)
			for (size_t a = 0; a < c->n; a++)
				if (strcmp(c->addrs[a], cr->nodes[k]->address) == 0)
					return (int16_t)a;
	return -1;
}

/* Reads the cluster view into the table: each partition's owner, and its
 * freshest other active copy, as indexes into this handle's addresses (-1
 * when none is one of them). */
static void
on_route_answer(void *arg, int status, Profile__V1__Response *resp)
{
	profile_client *c = arg;

	if (status == PROFILE_OK && resp->status == PROFILE__V1__STATUS__OK &&
	    resp->body_case == PROFILE__V1__RESPONSE__BODY_CLUSTER && resp->cluster->partition_count > 0 &&
	    resp->cluster->partition_count <= ROUTE_MAX_PARTITIONS) {
		const Profile__V1__ClusterReply *cr = resp->cluster;

		for (size_t i = 0; i < cr->n_partitions; i++) {
			const Profile__V1__ClusterPartition *p = cr->partitions[i];
			int16_t fresh = -1;
			int64_t least = INT64_MAX;

			if (p->partition < 0 || p->partition >= cr->partition_count)
				continue;
			__atomic_store_n(&c->route[p->partition], address_of(c, cr, p->owner), __ATOMIC_RELAXED);
			for (size_t r = 0; r < p->n_replicas; r++) {
				const Profile__V1__ClusterReplica *rep = p->replicas[r];
				int16_t at;
				if (strcmp(rep->node_id, p->owner) == 0 || rep->lag >= least ||
				    rep->state != PROFILE__V1__PARTITION_STATE__STATE__ACTIVE ||
				    (at = address_of(c, cr, rep->node_id)) < 0)
					continue;
				fresh = at;
				least = rep->lag;
			}
			__atomic_store_n(&c->fresh[p->partition], fresh, __ATOMIC_RELAXED);
		}
		__atomic_store_n(&c->route_count, cr->partition_count, __ATOMIC_RELEASE);
	}
	if (resp)
		profile__v1__response__free_unpacked(resp, NULL);
	route_rearm(c);
}

static void
on_route_timer(void *arg)
{
	profile_client *c = arg;

	if (nng_aio_result(c->route_timer) != 0 || __atomic_load_n(&c->closing, __ATOMIC_ACQUIRE))
		return;
	if (client_call(c, &c->route_req, 1000, 0, on_route_answer, c) != PROFILE_OK)
		route_rearm(c);
}

int
client_route_start(profile_client *c, const char *const *addrs)
{
	if ((c->addrs = calloc(c->n, sizeof *c->addrs)) == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	for (size_t i = 0; i < c->n; i++)
		if ((c->addrs[i] = strdup(addrs[i])) == NULL)
			return PROFILE_RESOURCE_EXHAUSTED;
	for (int i = 0; i < ROUTE_MAX_PARTITIONS; i++)
		c->route[i] = c->fresh[i] = -1;
	profile__v1__request__init(&c->route_req);
	profile__v1__cluster_request__init(&c->route_body);
	c->route_req.body_case = PROFILE__V1__REQUEST__BODY_CLUSTER;
	c->route_req.cluster = &c->route_body;
	if (nng_aio_alloc(&c->route_timer, on_route_timer, c) != 0)
		return PROFILE_RESOURCE_EXHAUSTED;
	nng_sleep_aio(0, c->route_timer); /* first refresh now */
	return PROFILE_OK;
}

size_t
client_first_address(profile_client *c, const Profile__V1__Request *req)
{
	int32_t count = __atomic_load_n(&c->route_count, __ATOMIC_ACQUIRE);
	const char *uid = NULL;
	size_t rr = __atomic_fetch_add(&c->next, 1, __ATOMIC_RELAXED);

	if (count > 0) {
		switch (req->body_case) {
		case PROFILE__V1__REQUEST__BODY_GET:
			uid = req->get->uid;
			break;
		case PROFILE__V1__REQUEST__BODY_UPDATE:
			uid = req->update->uid;
			break;
		case PROFILE__V1__REQUEST__BODY_DELETE:
			uid = req->delete_->uid;
			break;
		case PROFILE__V1__REQUEST__BODY_CREATE: /* a keyed one lives where its key does */
			if (req->create->idempotency_key[0] != '\0')
				uid = req->create->idempotency_key;
			break;
		default:
			break;
		}
	}
	if (uid && strlen(uid) > 0) {
		int16_t idx =
		    __atomic_load_n(&c->route[wire_partition(uid, strlen(uid), count)], __ATOMIC_RELAXED);
		if (idx >= 0 && (size_t)idx < c->n && call_channel_usable(c->ch[idx]))
			return (size_t)idx;
		if ((idx = (int16_t)client_stale_copy(c, req)) >= 0)
			return (size_t)idx; /* the owner is unreachable: its freshest copy */
	}
	return client_pick(c, rr);
}

int
client_stale_copy(profile_client *c, const Profile__V1__Request *req)
{
	int32_t count = __atomic_load_n(&c->route_count, __ATOMIC_ACQUIRE);
	int16_t idx;

	if (count <= 0 || req->body_case != PROFILE__V1__REQUEST__BODY_GET ||
	    req->stale_set_case != PROFILE__V1__REQUEST__STALE_SET_MAX_STALE_S)
		return -1;
	idx = __atomic_load_n(&c->fresh[wire_partition(req->get->uid, strlen(req->get->uid), count)],
	                      __ATOMIC_RELAXED);
	return idx >= 0 && (size_t)idx < c->n && call_channel_usable(c->ch[idx]) ? idx : -1;
}

size_t
client_pick(profile_client *c, size_t from)
{
	for (size_t k = 0; k < c->n; k++) {
		size_t i = (from + k) % c->n;
		if (call_channel_usable(c->ch[i]))
			return i;
	}
	return from % c->n;
}
