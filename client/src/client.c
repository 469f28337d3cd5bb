/* client.c: libprofile-client (profile/client.h).
 *
 * Layers: the public calls check their arguments and build a Request (an
 * `op` owns it and its strings); client_call sends it through one channel
 * per address (call.c), retrying UNAVAILABLE on the next address with
 * backoff inside the deadline; the blocking calls wait on the asynchronous
 * ones.
 */
#include <nng/nng.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call.h"
#include "client_internal.h"

#define DEFAULT_DEADLINE_MS 5000
#define SEND_TIMEOUT_MS 1000 /* to give up on an address and try the next */
#define READ_TRY_MIN_MS 300  /* the shortest try of a read (see try_budget) */
#define RETRY_MIN_MS 20      /* no retry with less time left than this */
#define BACKOFF_FIRST_MS 10
#define BACKOFF_MAX_MS 250
#define ROUTE_MAX_PARTITIONS 4096
#define ROUTE_REFRESH_MS 2000

struct profile_client {
	call_channel **ch;
	size_t n;
	uint32_t deadline_ms;
	unsigned next; /* round-robin start */
	/* Owner routing (with more than one address): the partition -> address
	 * table from the cluster view, refreshed in the background, so that a
	 * request for a uid goes straight to its owner (no forward). */
	int32_t route_count;                 /* 0: no table yet */
	int16_t route[ROUTE_MAX_PARTITIONS]; /* index into ch, or -1 */
	/* Per partition, the freshest active copy that is not the owner's (the
	 * least lag in the cluster view): where a read that accepts a stale
	 * answer goes when the owner did not take it. Index into ch, or -1. */
	int16_t fresh[ROUTE_MAX_PARTITIONS];
	char **addrs;
	nng_aio *route_timer;
	int closing;
	int attempts; /* atomic: calls alive, in flight or sleeping before a retry */
	Profile__V1__Request route_req;
	Profile__V1__ClusterRequest route_body;
};

static __thread char last_message[256];

static int route_start(profile_client *c, const char *const *addrs);

static void
set_message(const char *m)
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
		set_message("a tls+tcp:// address needs tls_ca_file, tls_cert_file and tls_key_file");
		return PROFILE_INVALID_ARGUMENT;
	}
	if ((rc = call_tls_load(out, opts->tls_ca_file, opts->tls_cert_file, opts->tls_key_file, err,
	                        sizeof err)) != PROFILE_OK)
		set_message(err);
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
	if (n > 1 && route_start(c, addrs) != PROFILE_OK) {
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

/* ---- owner routing ----------------------------------------------------- */

static size_t pick(profile_client *c, size_t from);

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

static int
route_start(profile_client *c, const char *const *addrs)
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

static int stale_copy(profile_client *c, const Profile__V1__Request *req);

/* The address to try first for req: the owner of its uid (or of a keyed
 * create's key) when known and connected, else the next connected one. */
static size_t
first_address(profile_client *c, const Profile__V1__Request *req)
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
		if ((idx = (int16_t)stale_copy(c, req)) >= 0)
			return (size_t)idx; /* the owner is unreachable: its freshest copy */
	}
	return pick(c, rr);
}

/* A get that accepts a stale answer, after its first try: the freshest
 * other copy of its partition, when known and connected; else -1. */
static int
stale_copy(profile_client *c, const Profile__V1__Request *req)
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

/* ---- the raw call, with retries ---------------------------------------- */

typedef struct attempt {
	profile_client *c;
	Profile__V1__Request *req;
	int64_t deadline; /* monotonic ms */
	uint32_t total;   /* the whole deadline, ms */
	int mode;         /* CLIENT_READ, CLIENT_WRITE, CLIENT_IDEMPOTENT */
	int maybe_run;    /* a try may have run: never end "not executed" */
	size_t idx;       /* address in use */
	unsigned tries;
	nng_aio *sleep;
	client_raw_fn done;
	void *arg;
} attempt;

static void attempt_send(attempt *a);

/* Where a retry goes: for a get that accepts a stale answer, the freshest
 * other copy of its partition (after the owner's try), else the next
 * address. */
static size_t
next_address(attempt *a)
{
	int idx = a->tries == 1 ? stale_copy(a->c, a->req) : -1;

	return idx >= 0 && (size_t)idx != a->idx ? (size_t)idx : pick(a->c, a->idx + 1);
}

static void
attempt_finish(attempt *a, int status, Profile__V1__Response *resp)
{
	client_raw_fn done = a->done;
	void *arg = a->arg;
	profile_client *c = a->c;

	/* An idempotent write retried after an unknown outcome: its last try's
	 * "not executed" does not cover the earlier ones. */
	if (a->maybe_run && (status == PROFILE_UNAVAILABLE ||
	                     (status == PROFILE_OK && resp->status == PROFILE__V1__STATUS__UNAVAILABLE))) {
		if (resp)
			profile__v1__response__free_unpacked(resp, NULL);
		resp = NULL;
		status = PROFILE_DEADLINE_EXCEEDED;
	}
	/* The sleep aio may be the one whose callback we are in: reap, not free. */
	if (a->sleep)
		nng_aio_reap(a->sleep);
	free(a);
	done(arg, status, resp);
	__atomic_sub_fetch(&c->attempts, 1, __ATOMIC_RELEASE);
}

static void
on_slept(void *arg)
{
	attempt_send(arg);
}

/* Picks the next address, preferring one with a live connection to a node
 * that answers. */
static size_t
pick(profile_client *c, size_t from)
{
	for (size_t k = 0; k < c->n; k++) {
		size_t i = (from + k) % c->n;
		if (call_channel_usable(c->ch[i]))
			return i;
	}
	return from % c->n;
}

/* How long one try may wait for its answer. A write waits out the whole
 * deadline: it may have run, so it is never sent twice. A read, with other
 * addresses to go to, waits a third of the deadline (at least
 * READ_TRY_MIN_MS), so a hung node costs it one try, not the deadline; so
 * does an idempotent write (a create with an Idempotency-Key), which is
 * safe to send again. The
 * node keeps a margin inside whatever it is given, so a node that cannot
 * serve in time still answers UNAVAILABLE before the try runs out. */
static uint32_t
try_budget(const profile_client *c, uint32_t total_ms, int mode, int64_t left)
{
	uint32_t t = total_ms / 3;

	if (mode != CLIENT_WRITE && c->n > 1) {
		if (t < READ_TRY_MIN_MS)
			t = READ_TRY_MIN_MS;
		if ((int64_t)t < left)
			return t;
	}
	return left > 0 ? (uint32_t)left : 1;
}

static void
on_answer(void *arg, int status, Profile__V1__Response *resp)
{
	attempt *a = arg;
	int unknown = status == PROFILE_DEADLINE_EXCEEDED ||
	              (status == PROFILE_OK && resp->status == PROFILE__V1__STATUS__DEADLINE_EXCEEDED);
	/* An overloaded node asks for a pause, not for the next node at once. */
	int unavailable = status == PROFILE_UNAVAILABLE ||
	                  (status == PROFILE_OK && resp->status == PROFILE__V1__STATUS__UNAVAILABLE &&
	                   !resp->overloaded) ||
	                  (unknown && a->mode == CLIENT_IDEMPOTENT);
	int64_t left = a->deadline - wire_mono_ms();
	unsigned backoff;

	if (unknown)
		a->maybe_run = 1;

	/* A try needs time for a node to answer it, margin included: with less
	 * than a tenth of the deadline left, the answer stands. */
	if (!unavailable || left < (int64_t)(a->total / 10) || left < RETRY_MIN_MS ||
	    __atomic_load_n(&a->c->closing, __ATOMIC_ACQUIRE)) {
		attempt_finish(a, status, resp);
		return;
	}
	/* Not executed: try again, on the next address, after a pause that
	 * grows each time every address has been tried. */
	a->tries++;
	backoff =
	    a->tries < a->c->n ? 0 : BACKOFF_FIRST_MS << ((a->tries / a->c->n) < 5 ? a->tries / a->c->n : 5);
	if (backoff > BACKOFF_MAX_MS)
		backoff = BACKOFF_MAX_MS;
	if ((int64_t)backoff >= left) {
		attempt_finish(a, status, resp);
		return;
	}
	if (resp)
		profile__v1__response__free_unpacked(resp, NULL);
	a->idx = next_address(a);
	if (backoff == 0) {
		attempt_send(a);
		return;
	}
	if (a->sleep == NULL && nng_aio_alloc(&a->sleep, on_slept, a) != 0) {
		attempt_finish(a, PROFILE_UNAVAILABLE, NULL);
		return;
	}
	nng_sleep_aio((nng_duration)backoff, a->sleep);
}

static void
attempt_send(attempt *a)
{
	int64_t left = a->deadline - wire_mono_ms();
	int rc;

	if (left <= 0 || __atomic_load_n(&a->c->closing, __ATOMIC_ACQUIRE)) {
		attempt_finish(
		    a, a->tries || a->mode == CLIENT_READ ? PROFILE_UNAVAILABLE : PROFILE_DEADLINE_EXCEEDED,
		    NULL);
		return;
	}
	/* With other addresses to try, do not wait the whole deadline on one
	 * that takes nothing. */
	rc = call_start(a->c->ch[a->idx], a->req, try_budget(a->c, a->total, a->mode, left),
	                a->c->n > 1 ? SEND_TIMEOUT_MS : 0, a->mode != CLIENT_READ, on_answer, a);
	if (rc != PROFILE_OK)
		attempt_finish(a, rc, NULL);
}

int
client_call(profile_client *c, Profile__V1__Request *req, uint32_t deadline_ms, int mode, client_raw_fn done,
            void *arg)
{
	attempt *a;
	int rc;

	if (c == NULL || req == NULL || done == NULL)
		return PROFILE_INVALID_ARGUMENT;
	if ((a = calloc(1, sizeof *a)) == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	if (deadline_ms == 0)
		deadline_ms = __atomic_load_n(&c->deadline_ms, __ATOMIC_RELAXED);
	a->c = c;
	a->req = req;
	a->deadline = wire_mono_ms() + deadline_ms;
	a->total = deadline_ms;
	a->mode = mode;
	a->done = done;
	a->arg = arg;
	a->idx = first_address(c, req);
	__atomic_add_fetch(&c->attempts, 1, __ATOMIC_ACQ_REL);
	/* The first send's failure to start is the caller's to see. */
	rc = call_start(c->ch[a->idx], req, try_budget(c, deadline_ms, mode, deadline_ms),
	                c->n > 1 ? SEND_TIMEOUT_MS : 0, mode != CLIENT_READ, on_answer, a);
	if (rc != PROFILE_OK) {
		free(a);
		__atomic_sub_fetch(&c->attempts, 1, __ATOMIC_RELEASE);
	}
	return rc;
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

/* ---- the public calls -------------------------------------------------- */

/* One public call in flight: the request it owns and where its result goes. */
typedef struct op {
	Profile__V1__Request req;
	union {
		Profile__V1__CreateRequest create;
		Profile__V1__GetRequest get;
		Profile__V1__UpdateRequest update;
		Profile__V1__DeleteRequest del;
		Profile__V1__SearchRequest search;
	} body;
	Profile__V1__Precondition pre;
	char uid[WIRE_UID_LEN + 1];
	char *username, *email, *idem;
	Profile__V1__Position *positions; /* a read's min_positions */
	Profile__V1__Position **position_ptrs;
	int want_position; /* a delete that answers where it landed */
	profile_done_fn done;
	void *arg;
} op;

/* The most positions one read may name. */
#define POSITIONS_MAX 1024

static void
op_free(op *o)
{
	free(o->positions);
	free(o->position_ptrs);
	free(o->username);
	free(o->email);
	free(o->idem);
	free(o);
}

/* What a Response says about how stale the copy read was, into p. */
static void
note_staleness(profile_info *p, const Profile__V1__Response *resp)
{
	if (resp->staleness == NULL)
		return;
	p->stale = 1;
	p->age_s = resp->staleness->age_s;
	p->lag = resp->staleness->lag;
}

/* Turns a Response into the public result of the op's method. */
static int
result_of(const op *o, const Profile__V1__Response *resp, void **result)
{
	profile_list *l;

	*result = NULL;
	switch (o->req.body_case) {
	case PROFILE__V1__REQUEST__BODY_DELETE:
		if (o->want_position) {
			profile_info *gone = calloc(1, sizeof *gone);
			if (gone == NULL)
				return PROFILE_RESOURCE_EXHAUSTED;
			snprintf(gone->uid, sizeof gone->uid, "%s", o->uid);
			if (resp->position)
				snprintf(gone->position, sizeof gone->position, "%d:%lld", (int)resp->position->partition,
				         (long long)resp->position->offset);
			*result = gone;
		}
		return PROFILE_OK;
	case PROFILE__V1__REQUEST__BODY_SEARCH:
		if (resp->body_case != PROFILE__V1__RESPONSE__BODY_SEARCH)
			return PROFILE_INTERNAL;
		if ((l = calloc(1, sizeof *l)) == NULL ||
		    (resp->search->n_profiles &&
		     (l->items = calloc(resp->search->n_profiles, sizeof *l->items)) == NULL)) {
			free(l);
			return PROFILE_RESOURCE_EXHAUSTED;
		}
		for (size_t i = 0; i < resp->search->n_profiles; i++) {
			if ((l->items[i] = client_profile_from(resp->search->profiles[i])) == NULL) {
				profile_list_free(l);
				return PROFILE_RESOURCE_EXHAUSTED;
			}
			note_staleness(l->items[i], resp);
			l->count = i + 1;
		}
		*result = l;
		return PROFILE_OK;
	default:
		if (resp->body_case != PROFILE__V1__RESPONSE__BODY_PROFILE)
			return PROFILE_INTERNAL;
		if ((*result = client_profile_from(resp->profile)) == NULL)
			return PROFILE_RESOURCE_EXHAUSTED;
		note_staleness(*result, resp);
		if (resp->position)
			snprintf(((profile_info *)*result)->position, PROFILE_POSITION_SIZE, "%d:%lld",
			         (int)resp->position->partition, (long long)resp->position->offset);
		return PROFILE_OK;
	}
}

static void
op_answer(void *arg, int status, Profile__V1__Response *resp)
{
	op *o = arg;
	void *result = NULL;

	if (status == PROFILE_OK) {
		status = (int)resp->status;
		set_message(resp->message);
		if (status == PROFILE_OK && (status = result_of(o, resp, &result)) != PROFILE_OK)
			set_message("the service's answer could not be read");
		profile__v1__response__free_unpacked(resp, NULL);
	} else {
		set_message(status == PROFILE_UNAVAILABLE         ? "no core node took the request"
		            : status == PROFILE_DEADLINE_EXCEEDED ? "no answer from the service in time"
		            : status == PROFILE_INTERNAL          ? "malformed answer from the service"
		                                                  : "");
	}
	o->done(o->arg, status, result);
	op_free(o);
}

static op *
op_new(profile_done_fn done, void *arg)
{
	op *o = calloc(1, sizeof *o);

	if (o == NULL)
		return NULL;
	profile__v1__request__init(&o->req);
	o->done = done;
	o->arg = arg;
	return o;
}

static int
op_start(profile_client *c, op *o, uint32_t deadline_ms, int mode)
{
	int rc = client_call(c, &o->req, deadline_ms, mode, op_answer, o);

	if (rc != PROFILE_OK)
		op_free(o);
	return rc;
}

static int
check(int rc, const char *why)
{
	if (rc != PROFILE_OK)
		set_message(why);
	return rc;
}

/* Applies one of wire.h's rules to s; on failure the rule's sentence
 * becomes the thread's last message. */
static int
rule(int (*check_fn)(const char *, const char **), const char *s)
{
	const char *why = NULL;
	int rc = check_fn(s, &why);

	return check(rc, why);
}

static int
check_uid(const char *uid, char *out)
{
	if (rule(wire_check_uid, uid) != PROFILE_OK)
		return PROFILE_INVALID_ARGUMENT;
	for (int i = 0; i <= WIRE_UID_LEN; i++)
		out[i] = (uid[i] >= 'A' && uid[i] <= 'F') ? (char)(uid[i] - 'A' + 'a') : uid[i];
	return PROFILE_OK;
}

static void
set_precondition(op *o, uint64_t expected_version, Profile__V1__Precondition **slot)
{
	if (expected_version == PROFILE_ANY_VERSION)
		return;
	profile__v1__precondition__init(&o->pre);
	o->pre.check_case = PROFILE__V1__PRECONDITION__CHECK_VERSION;
	o->pre.version = expected_version;
	*slot = &o->pre;
}

/* The common start of the calls on one uid: checks the handle, the
 * callback and the uid, and makes the op with the uid in canonical form.
 * NULL with *rc set when a check failed (nothing was sent). */
static op *
op_for_uid(profile_client *c, const char *uid, profile_done_fn done, void *arg, int *rc)
{
	char id[WIRE_UID_LEN + 1];
	op *o;

	set_message("");
	if (c == NULL || done == NULL) {
		*rc = check(PROFILE_INVALID_ARGUMENT, "no handle or no callback");
		return NULL;
	}
	if ((*rc = check_uid(uid, id)) != PROFILE_OK)
		return NULL;
	if ((o = op_new(done, arg)) == NULL) {
		*rc = PROFILE_RESOURCE_EXHAUSTED;
		return NULL;
	}
	memcpy(o->uid, id, sizeof o->uid);
	return o;
}

int
profile_create_idempotent_async(profile_client *c, const char *username, const char *email,
                                const char *idempotency_key, uint32_t deadline_ms, profile_done_fn done,
                                void *arg)
{
	op *o;

	set_message("");
	if (c == NULL || done == NULL)
		return check(PROFILE_INVALID_ARGUMENT, "no handle or no callback");
	if (rule(wire_check_username, username) || rule(wire_check_email, email) ||
	    (idempotency_key && rule(wire_check_idem_key, idempotency_key)))
		return PROFILE_INVALID_ARGUMENT;
	if ((o = op_new(done, arg)) == NULL || (o->username = strdup(username)) == NULL ||
	    (o->email = strdup(email)) == NULL ||
	    (idempotency_key && (o->idem = strdup(idempotency_key)) == NULL)) {
		if (o)
			op_free(o);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	profile__v1__create_request__init(&o->body.create);
	o->body.create.username = o->username;
	o->body.create.email = o->email;
	if (o->idem)
		o->body.create.idempotency_key = o->idem;
	o->req.body_case = PROFILE__V1__REQUEST__BODY_CREATE;
	o->req.create = &o->body.create;
	return op_start(c, o, deadline_ms, o->idem ? CLIENT_IDEMPOTENT : CLIENT_WRITE);
}

int
profile_create_async(profile_client *c, const char *username, const char *email, uint32_t deadline_ms,
                     profile_done_fn done, void *arg)
{
	return profile_create_idempotent_async(c, username, email, NULL, deadline_ms, done, arg);
}

/* A read's options (NULL: none) into o's request. */
static int
set_read_options(op *o, const profile_read_options *ro)
{
	const char *why = NULL;
	const char *min_positions = ro ? ro->min_positions : NULL;
	size_t n = 0;
	int rc;

	if (ro && ro->allow_stale) {
		o->req.stale_set_case = PROFILE__V1__REQUEST__STALE_SET_MAX_STALE_S;
		o->req.max_stale_s = ro->max_stale_s;
	}
	if (min_positions == NULL || min_positions[0] == '\0')
		return PROFILE_OK;
	rc = wire_positions_new(min_positions, POSITIONS_MAX, &o->positions, &o->position_ptrs, &n, &why);
	if (rc != PROFILE_OK)
		return rc == PROFILE_INVALID_ARGUMENT ? check(rc, why) : rc;
	o->req.n_min_positions = n;
	o->req.min_positions = o->position_ptrs;
	return PROFILE_OK;
}

int
profile_get_async(profile_client *c, const char *uid, uint32_t deadline_ms, profile_done_fn done, void *arg)
{
	return profile_get_with_async(c, uid, NULL, deadline_ms, done, arg);
}

int
profile_get_with_async(profile_client *c, const char *uid, const profile_read_options *ro, uint32_t deadline_ms,
                       profile_done_fn done, void *arg)
{
	int rc;
	op *o = op_for_uid(c, uid, done, arg, &rc);

	if (o == NULL)
		return rc;
	if ((rc = set_read_options(o, ro)) != PROFILE_OK) {
		op_free(o);
		return rc;
	}
	profile__v1__get_request__init(&o->body.get);
	o->body.get.uid = o->uid;
	o->req.body_case = PROFILE__V1__REQUEST__BODY_GET;
	o->req.get = &o->body.get;
	return op_start(c, o, deadline_ms, CLIENT_READ);
}

int
profile_update_async(profile_client *c, const char *uid, const char *username, const char *email,
                     uint64_t expected_version, uint32_t deadline_ms, profile_done_fn done, void *arg)
{
	Profile__V1__UpdateRequest *u;
	int rc;
	op *o;

	/* The fields first: nothing is allocated for a call that fails them. */
	set_message("");
	if (username == NULL && email == NULL)
		return check(PROFILE_INVALID_ARGUMENT, "an update must set username or email");
	if ((username && rule(wire_check_username, username)) || (email && rule(wire_check_email, email)))
		return PROFILE_INVALID_ARGUMENT;
	if ((o = op_for_uid(c, uid, done, arg, &rc)) == NULL)
		return rc;
	if ((username && (o->username = strdup(username)) == NULL) ||
	    (email && (o->email = strdup(email)) == NULL)) {
		op_free(o);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	u = &o->body.update;
	profile__v1__update_request__init(u);
	u->uid = o->uid;
	if (o->username) {
		u->username_set_case = PROFILE__V1__UPDATE_REQUEST__USERNAME_SET_USERNAME;
		u->username = o->username;
	}
	if (o->email) {
		u->email_set_case = PROFILE__V1__UPDATE_REQUEST__EMAIL_SET_EMAIL;
		u->email = o->email;
	}
	set_precondition(o, expected_version, &u->precondition);
	o->req.body_case = PROFILE__V1__REQUEST__BODY_UPDATE;
	o->req.update = u;
	return op_start(c, o, deadline_ms, CLIENT_WRITE);
}

static int
delete_start(profile_client *c, const char *uid, uint64_t expected_version, uint32_t deadline_ms,
             int want_position, profile_done_fn done, void *arg)
{
	int rc;
	op *o = op_for_uid(c, uid, done, arg, &rc);

	if (o == NULL)
		return rc;
	o->want_position = want_position;
	profile__v1__delete_request__init(&o->body.del);
	o->body.del.uid = o->uid;
	set_precondition(o, expected_version, &o->body.del.precondition);
	o->req.body_case = PROFILE__V1__REQUEST__BODY_DELETE;
	o->req.delete_ = &o->body.del;
	return op_start(c, o, deadline_ms, CLIENT_WRITE);
}

int
profile_delete_async(profile_client *c, const char *uid, uint64_t expected_version, uint32_t deadline_ms,
                     profile_done_fn done, void *arg)
{
	return delete_start(c, uid, expected_version, deadline_ms, 0, done, arg);
}

int
profile_delete_at_async(profile_client *c, const char *uid, uint64_t expected_version, uint32_t deadline_ms,
                        profile_done_fn done, void *arg)
{
	return delete_start(c, uid, expected_version, deadline_ms, 1, done, arg);
}

int
profile_search_async(profile_client *c, const char *email, uint32_t deadline_ms, profile_done_fn done,
                     void *arg)
{
	return profile_search_with_async(c, email, NULL, deadline_ms, done, arg);
}

int
profile_search_with_async(profile_client *c, const char *email, const profile_read_options *ro,
                          uint32_t deadline_ms, profile_done_fn done, void *arg)
{
	op *o;
	int rc;

	set_message("");
	if (c == NULL || done == NULL)
		return check(PROFILE_INVALID_ARGUMENT, "no handle or no callback");
	if (rule(wire_check_email, email))
		return PROFILE_INVALID_ARGUMENT;
	if ((o = op_new(done, arg)) == NULL || (o->email = strdup(email)) == NULL) {
		if (o)
			op_free(o);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	if ((rc = set_read_options(o, ro)) != PROFILE_OK) {
		op_free(o);
		return rc;
	}
	profile__v1__search_request__init(&o->body.search);
	o->body.search.email = o->email;
	o->req.body_case = PROFILE__V1__REQUEST__BODY_SEARCH;
	o->req.search = &o->body.search;
	return op_start(c, o, deadline_ms, CLIENT_READ);
}

/* ---- blocking calls: an async call and a wait -------------------------- */

typedef struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int status;
	void *result;
	char message[sizeof last_message];
} waiter;

static void
wake(void *arg, int status, void *result)
{
	waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->status = status;
	w->result = result;
	memcpy(w->message, last_message, sizeof w->message);
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
		set_message(w->message);
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
