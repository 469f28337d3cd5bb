/* rpc.c: nng REP server (rpc.h), and the one table of methods.
 *
 * Each worker owns a REP context and one aio and cycles RECV -> (method)
 * -> SEND -> RECV. A method may answer inside the receive callback or
 * later from another thread; either way the reply goes out with
 * nng_ctx_send on the worker's own aio, which is idle meanwhile.
 */
#include "rpc.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bounded.h"
#include "cluster.h"
#include "log.h"
#include "metrics.h"
#include "profiles.h"
#include "search.h"

enum { W_RECV, W_SERVE, W_SEND };

typedef struct worker {
	struct rpc_server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	int state;
	rpc_call call;      /* the request in service */
	int64_t arrived_us; /* monotonic, when it arrived */
} worker;

struct rpc_server {
	nng_socket sock;
	service *svc;
	worker *workers;
	int n;
	int draining;         /* atomic */
	int64_t last_request; /* atomic, monotonic ms */
	/* Held (read) while a request is handed to svc; taken (write) once to
	 * mark svc detached, after which no request reaches it and no answer
	 * touches it (rpc_server_detach). */
	pthread_rwlock_t gate;
	int detached; /* atomic */
};

/* ---- the methods ------------------------------------------------------- */

static int
check_create(const Profile__V1__Request *req, const char **why)
{
	const char *idem = req->create->idempotency_key;
	int rc = wire_check_username(req->create->username, why);

	if (rc == PROFILE_OK)
		rc = wire_check_email(req->create->email, why);
	if (rc == PROFILE_OK && idem[0] != '\0')
		rc = wire_check_idem_key(idem, why);
	return rc;
}

static int
check_get(const Profile__V1__Request *req, const char **why)
{
	return wire_check_uid(req->get->uid, why);
}

static int
check_update(const Profile__V1__Request *req, const char **why)
{
	const Profile__V1__UpdateRequest *u = req->update;
	int rc;

	if ((rc = wire_check_uid(u->uid, why)) != PROFILE_OK)
		return rc;
	if (!u->username_set_case && !u->email_set_case) {
		*why = "an update must set username or email";
		return PROFILE_INVALID_ARGUMENT;
	}
	if (u->username_set_case && (rc = wire_check_username(u->username, why)) != PROFILE_OK)
		return rc;
	return u->email_set_case ? wire_check_email(u->email, why) : PROFILE_OK;
}

static int
check_delete(const Profile__V1__Request *req, const char **why)
{
	return wire_check_uid(req->delete_->uid, why);
}

static int
check_search(const Profile__V1__Request *req, const char **why)
{
	return wire_check_email(req->search->email, why);
}

static int
check_nothing(const Profile__V1__Request *req, const char **why)
{
	(void)req;
	(void)why;
	return PROFILE_OK;
}

/* Every method a node serves: the request body that names it, the check of
 * its arguments (PROFILE_OK, or INVALID_ARGUMENT and why), what runs it. */
static const struct method {
	Profile__V1__Request__BodyCase body;
	int (*check)(const Profile__V1__Request *req, const char **why);
	service_run_fn run;
} methods[METRICS_METHODS - 1] = { /* in metrics_method_names' order */
    {PROFILE__V1__REQUEST__BODY_CREATE, check_create, profiles_create},
    {PROFILE__V1__REQUEST__BODY_GET, check_get, profiles_get},
    {PROFILE__V1__REQUEST__BODY_UPDATE, check_update, profiles_change},
    {PROFILE__V1__REQUEST__BODY_DELETE, check_delete, profiles_change},
    {PROFILE__V1__REQUEST__BODY_SEARCH, check_search, search_run},
    {PROFILE__V1__REQUEST__BODY_STATUS, check_nothing, cluster_status},
    {PROFILE__V1__REQUEST__BODY_CLUSTER, check_nothing, cluster_view},
};

/* The index of req's method, METRICS_METHODS - 1 when it has none. */
static int
method_for(const Profile__V1__Request *req)
{
	int i = 0;

	while (i < METRICS_METHODS - 1 && methods[i].body != req->body_case)
		i++;
	return i;
}

/* Checks req (owned) and hands it to its method, or answers why not. */
static void
dispatch(service *svc, Profile__V1__Request *req, int method, reply_fn done, void *arg)
{
	const struct method *m = method < METRICS_METHODS - 1 ? &methods[method] : NULL;
	const char *why = NULL;
	int rc;

	if (m == NULL)
		service_reject(svc, req, PROFILE_UNIMPLEMENTED, "request has no known method", done, arg);
	else if (req->log_id[0] != '\0' && wire_check_log_id(req->log_id, &why) != PROFILE_OK)
		service_reject(svc, req, PROFILE_INVALID_ARGUMENT, why, done, arg);
	else if ((rc = m->check(req, &why)) != PROFILE_OK)
		service_reject(svc, req, rc, why, done, arg);
	else
		service_call(svc, m->run, req, done, arg);
}

void
rpc_handle(service *svc, int draining, const void *buf, size_t len, rpc_call *call, reply_fn done,
           void *arg)
{
	Profile__V1__Request *req;
	const char *why;

	call->method = METRICS_METHODS - 1;
	snprintf(call->log_id, sizeof call->log_id, "-");
	if (len > WIRE_MESSAGE_MAX) {
		reply_status(done, arg, 0, PROFILE_INVALID_ARGUMENT, "request too large");
		return;
	}
	if ((req = profile__v1__request__unpack(NULL, len, buf)) == NULL) {
		reply_status(done, arg, 0, PROFILE_INVALID_ARGUMENT, "malformed request");
		return;
	}
	call->method = method_for(req);
	if (wire_check_log_id(req->log_id, &why) == PROFILE_OK)
		snprintf(call->log_id, sizeof call->log_id, "%s", req->log_id);
	if (draining) {
		reply_status(done, arg, req->request_id, PROFILE_UNAVAILABLE, "node is shutting down");
		profile__v1__request__free_unpacked(req, NULL);
		return;
	}
	dispatch(svc, req, call->method, done, arg);
}

/* ---- the server -------------------------------------------------------- */

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* nng's codes, mapped once. */
static int
rpc_status(int rv)
{
	switch (rv) {
	case 0:
		return PROFILE_OK;
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EINVAL:
		return PROFILE_INVALID_ARGUMENT;
	case NNG_ENOMEM:
		return PROFILE_RESOURCE_EXHAUSTED;
	case NNG_ETIMEDOUT:
		return PROFILE_DEADLINE_EXCEEDED;
	default:
		return PROFILE_UNAVAILABLE;
	}
}

static void
worker_recv(worker *w)
{
	w->state = W_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

/* reply_fn: encodes and sends the answer. */
static void
worker_reply(void *arg, const Profile__V1__Response *given)
{
	worker *w = arg;
	Profile__V1__Response resp = *given;
	int64_t took;
	size_t len;
	nng_msg *msg;

	/* While shutting down, every answer tells the caller to go elsewhere. */
	resp.draining = __atomic_load_n(&w->srv->draining, __ATOMIC_RELAXED);
	len = profile__v1__response__get_packed_size(&resp);
	took = mono_us() - w->arrived_us;
	if (!__atomic_load_n(&w->srv->detached, __ATOMIC_ACQUIRE))
		metrics_answered(service_metrics(w->srv->svc), w->call.method, (int)resp.status, took);
	log_debug("rpc %s %s %.3f ms id=%s", metrics_method_names[w->call.method],
	          profile_status_name((int)resp.status), (double)took / 1000.0, w->call.log_id);

	if (nng_msg_alloc(&msg, len) != 0) {
		/* Nothing can be sent: the caller's deadline will tell it. */
		log_error("rpc: out of memory for a %zu-byte reply", len);
		worker_recv(w);
		return;
	}
	profile__v1__response__pack(&resp, nng_msg_body(msg));
	w->state = W_SEND;
	nng_aio_set_msg(w->aio, msg);
	nng_ctx_send(w->ctx, w->aio);
}

static void
worker_cb(void *arg)
{
	worker *w = arg;
	int rv = nng_aio_result(w->aio);
	nng_msg *msg;

	switch (w->state) {
	case W_RECV:
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		if (rv != 0) {
			worker_recv(w);
			return;
		}
		msg = nng_aio_get_msg(w->aio);
		__atomic_store_n(&w->srv->last_request, wire_mono_ms(), __ATOMIC_RELAXED);
		w->state = W_SERVE;
		w->arrived_us = mono_us();
		/* A detached service is never reached: the request is answered as
		 * while draining, by this layer alone. */
		pthread_rwlock_rdlock(&w->srv->gate);
		rpc_handle(w->srv->svc,
		           __atomic_load_n(&w->srv->draining, __ATOMIC_RELAXED) ||
		               __atomic_load_n(&w->srv->detached, __ATOMIC_ACQUIRE),
		           nng_msg_body(msg), nng_msg_len(msg), &w->call, worker_reply, w);
		pthread_rwlock_unlock(&w->srv->gate);
		nng_msg_free(msg);
		return;
	case W_SEND:
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(w->aio));
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				return;
		}
		worker_recv(w);
		return;
	default:
		log_error("rpc: completion in state %d", w->state);
	}
}

int
rpc_server_open(rpc_server **out, const char *url, int contexts, service *svc, const call_tls *tls)
{
	rpc_server *srv = calloc(1, sizeof *srv);
	int rv;

	if (srv == NULL || (srv->workers = calloc((size_t)contexts, sizeof *srv->workers)) == NULL) {
		free(srv);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	srv->svc = svc;
	pthread_rwlock_init(&srv->gate, NULL);
	if ((rv = nng_rep0_open(&srv->sock)) != 0)
		goto fail;
	for (int i = 0; i < contexts; i++) {
		worker *w = &srv->workers[i];
		w->srv = srv;
		if ((rv = nng_aio_alloc(&w->aio, worker_cb, w)) != 0 ||
		    (rv = nng_ctx_open(&w->ctx, srv->sock)) != 0)
			goto fail;
		srv->n = i + 1;
	}
	if ((rv = call_tls_listen(srv->sock, url, tls)) != 0) {
		log_error("rpc: cannot listen on %s: %s", url, nng_strerror(rv));
		goto fail;
	}
	for (int i = 0; i < contexts; i++)
		worker_recv(&srv->workers[i]);
	*out = srv;
	return PROFILE_OK;
fail:
	nng_close(srv->sock);
	for (int i = 0; i < contexts; i++)
		if (srv->workers[i].aio)
			nng_aio_free(srv->workers[i].aio);
	pthread_rwlock_destroy(&srv->gate);
	free(srv->workers);
	free(srv);
	return rpc_status(rv);
}

void
rpc_server_drain(rpc_server *srv)
{
	if (srv)
		__atomic_store_n(&srv->draining, 1, __ATOMIC_RELAXED);
}

void
rpc_server_detach(rpc_server *srv)
{
	if (srv == NULL)
		return;
	pthread_rwlock_wrlock(&srv->gate);
	__atomic_store_n(&srv->detached, 1, __ATOMIC_RELEASE);
	pthread_rwlock_unlock(&srv->gate);
}

void
rpc_server_quiesce(rpc_server *srv, int quiet_ms, int max_ms)
{
	int64_t end = wire_mono_ms() + max_ms;
	struct timespec pause = {0, 10 * 1000000L};

	if (srv == NULL)
		return;
	while (wire_mono_ms() < end &&
	       wire_mono_ms() - __atomic_load_n(&srv->last_request, __ATOMIC_RELAXED) < quiet_ms)
		nanosleep(&pause, NULL);
}

static void
close_socket(void *arg)
{
	rpc_server *srv = arg;

	for (int i = 0; i < srv->n; i++)
		nng_aio_stop(srv->workers[i].aio);
	nng_close(srv->sock);
}

void
rpc_server_close(rpc_server *srv, int timeout_ms)
{
	if (srv == NULL)
		return;
	/* nng 1.5.2's close can hang: what it holds is then left to the
	 * exiting process. */
	if (!bounded_run(close_socket, srv, timeout_ms, "closing the RPC socket"))
		return;
	for (int i = 0; i < srv->n; i++)
		nng_aio_free(srv->workers[i].aio);
	pthread_rwlock_destroy(&srv->gate);
	free(srv->workers);
	free(srv);
}
