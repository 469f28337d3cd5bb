/* http.c: libmicrohttpd glue (http.h).
 *
 * Life of a request (one `exchange`):
 *   1st access call: allocate the exchange; return (queueing an answer on
 *     the first call would turn keep-alive off).
 *   body calls: append up to API_BODY_MAX; beyond it, keep reading but drop.
 *   last call: api_prepare; answer now, or start the RPC and suspend.
 *   RPC completion (nng thread): api_finish, then resume.
 *   call after resume: queue the answer.
 *   completion notice: free the exchange.
 */
#include "http.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "log.h"

enum { X_READING, X_WAITING, X_READY };

/* How much past the longest call a stop waits for answers to be sent. */
#define CLOSE_SLACK_MS 1000
/* How long a stop waits for connections accepted before it to send their
 * request (one not yet read is neither waiting nor answered). */
#define CLOSE_READ_GRACE_MS 500

typedef struct exchange {
	struct http_server *srv;
	struct MHD_Connection *conn;
	int state;
	char *body;
	size_t len;
	int too_large;
	int suspended; /* was suspended: counted in srv->suspended until completed */
	int head;      /* a HEAD request */
	int64_t arrived_us;
	char id[WIRE_LOG_ID_MAX + 1]; /* X-Request-Id: the client's, or one made here */
	api_request ar;
} exchange;

struct http_server {
	struct MHD_Daemon *d;
	profile_client *client;
	http_config cfg;
	api_context api;
	int suspended;  /* atomic: exchanges suspended and not yet completed */
	int closing;    /* atomic: new connections are refused */
	int waiting[2]; /* atomic: reads [0] and writes [1] waiting for a core */
	gateway_metrics metrics;
	uint32_t boot;     /* random, names this process in the request ids it makes */
	uint64_t next_id;  /* atomic: request ids made so far */
};

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Queues x's answer. A malloc'd body is handed to libmicrohttpd, which
 * frees it once sent: no copy. */
static enum MHD_Result
queue(exchange *x)
{
	api_response *r = &x->ar.resp;
	struct MHD_Response *resp =
	    r->body    ? MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE)
	    : r->fixed ? MHD_create_response_from_buffer(r->fixed_len, (void *)r->fixed, MHD_RESPMEM_PERSISTENT)
	               : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;
	char retry[16];

	if (resp == NULL)
		return MHD_NO; /* r->body is still ours: api_request_fini frees it */
	if (r->body || r->fixed)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        r->content_type ? r->content_type : "application/json");
	r->body = NULL;
	MHD_add_response_header(resp, "X-Request-Id", x->id);
	if (r->location[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
	if (r->position[0])
		MHD_add_response_header(resp, "X-Profile-Position", r->position);
	if (r->stale) {
		char n[24];
		snprintf(n, sizeof n, "%u", (unsigned)r->age_s);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_AGE, n);
		snprintf(n, sizeof n, "%lld", (long long)r->lag);
		MHD_add_response_header(resp, "X-Profile-Lag", n);
	}
	if (r->etag[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
	if (r->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	if (r->www_authenticate)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_authenticate);
	if (r->retry_after > 0) {
		snprintf(retry, sizeof retry, "%d", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	ok = MHD_queue_response(x->conn, (unsigned)r->http, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* The request's id: the client's X-Request-Id when it is one (visible
 * ASCII, up to 128), else one made here. */
static void
name_request(http_server *srv, exchange *x)
{
	const char *given = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, "X-Request-Id");
	const char *why;

	if (given != NULL && wire_check_log_id(given, &why) == PROFILE_OK)
		snprintf(x->id, sizeof x->id, "%s", given);
	else
		snprintf(x->id, sizeof x->id, "%08x-%llx", (unsigned)srv->boot,
		         (unsigned long long)__atomic_add_fetch(&srv->next_id, 1, __ATOMIC_RELAXED));
}

/* client_raw_fn: runs on an nng thread. */
static void
on_reply(void *arg, int status, Profile__V1__Response *resp)
{
	exchange *x = arg;

	api_finish(&x->ar, status, resp);
	if (resp)
		profile__v1__response__free_unpacked(resp, NULL);
	__atomic_sub_fetch(&x->srv->waiting[x->ar.write != CLIENT_READ], 1, __ATOMIC_ACQ_REL);
	x->state = X_READY;
	MHD_resume_connection(x->conn);
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
          const char *upload, size_t *upload_size, void **con_cls)
{
	http_server *srv = cls;
	exchange *x = *con_cls;
	api_input in;
	int rc, kind;

	(void)version;
	if (x == NULL) {
		if ((x = calloc(1, sizeof *x)) == NULL)
			return MHD_NO;
		x->srv = srv;
		x->conn = conn;
		x->arrived_us = mono_us();
		x->head = strcmp(method, "HEAD") == 0;
		*con_cls = x;
		return MHD_YES;
	}
	if (x->state == X_READY)
		return queue(x);
	if (x->state == X_WAITING)
		return MHD_YES; /* spurious call while suspended */
	if (*upload_size > 0) {
		if (!x->too_large && x->len + *upload_size <= API_BODY_MAX) {
			char *grown = realloc(x->body, x->len + *upload_size + 1);
			if (grown == NULL)
				return MHD_NO;
			memcpy(grown + x->len, upload, *upload_size);
			x->body = grown;
			x->len += *upload_size;
			x->body[x->len] = '\0';
		} else {
			x->too_large = 1;
		}
		*upload_size = 0;
		return MHD_YES;
	}

	name_request(srv, x);
	in = (api_input){.method = method,
	                 .path = url,
	                 .email = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "email"),
	                 .if_match = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH),
	                 .idem_key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key"),
	                 .if_none_match =
	                     MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH),
	                 .content_type =
	                     MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
	                 .min_position = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Profile-Min-Position"),
	                 .cache_control =
	                     MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CACHE_CONTROL),
	                 .authorization =
	                     MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
	                 .log_id = x->id,
	                 .body = x->body,
	                 .body_len = x->len,
	                 .body_too_large = x->too_large};
	api_prepare(&x->ar, &srv->api, &in);
	if (x->ar.kind == API_ANSWER) {
		x->state = X_READY;
		return queue(x);
	}
	/* At the bound a 503 now, not a wait in a queue. Reads and writes are
	 * bounded apart, so that a flood of one leaves room for the other. */
	kind = x->ar.write != CLIENT_READ;
	if (__atomic_add_fetch(&srv->waiting[kind], 1, __ATOMIC_ACQ_REL) > (int)srv->cfg.max_waiting &&
	    srv->cfg.max_waiting > 0) {
		__atomic_sub_fetch(&srv->waiting[kind], 1, __ATOMIC_ACQ_REL);
		gateway_metrics_refused(&srv->metrics);
		api_refuse(&x->ar, "gateway overloaded: too many requests waiting for a core; retry later");
		x->state = X_READY;
		return queue(x);
	}
	x->state = X_WAITING;
	x->suspended = 1;
	__atomic_add_fetch(&srv->suspended, 1, __ATOMIC_ACQ_REL);
	MHD_suspend_connection(conn);
	rc = client_call(srv->client, &x->ar.req,
	                 x->ar.deadline_ms && x->ar.deadline_ms < srv->cfg.call_timeout_ms
	                     ? x->ar.deadline_ms
	                     : srv->cfg.call_timeout_ms,
	                 x->ar.write, on_reply, x);
	if (rc != PROFILE_OK) {
		/* Never sent: answer from here. */
		api_finish(&x->ar, rc, NULL);
		__atomic_sub_fetch(&srv->waiting[kind], 1, __ATOMIC_ACQ_REL);
		x->state = X_READY;
		MHD_resume_connection(conn);
	}
	return MHD_YES;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	exchange *x = *con_cls;

	(void)cls;
	(void)conn;
	if (x == NULL)
		return;
	if (x->state == X_READY) {
		int64_t took = mono_us() - x->arrived_us;
		const char *method, *path;

		gateway_metrics_count(&x->srv->metrics, x->ar.route, x->head, x->ar.resp.http, took);
		api_route_label(x->ar.route, &method, &path);
		log_debug("http %s %s %d %.3f ms id=%s%s", x->head ? "HEAD" : method, path, x->ar.resp.http,
		          (double)took / 1000.0, x->id, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (not sent)");
	}
	if (x->suspended)
		__atomic_sub_fetch(&x->srv->suspended, 1, __ATOMIC_ACQ_REL);
	api_request_fini(&x->ar);
	free(x->body);
	free(x);
	*con_cls = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("http: %s", msg);
}

/* Closes a new connection at once while the server is closing. */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	http_server *srv = cls;

	(void)addr;
	(void)addrlen;
	return __atomic_load_n(&srv->closing, __ATOMIC_ACQUIRE) ? MHD_NO : MHD_YES;
}

int
http_server_open(http_server **out, const http_config *cfg, profile_client *client)
{
	struct sockaddr_in sa;
	http_server *srv;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(cfg->port);
	if (inet_pton(AF_INET, cfg->address, &sa.sin_addr) != 1)
		return PROFILE_INVALID_ARGUMENT;
	if ((srv = calloc(1, sizeof *srv)) == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	srv->client = client;
	srv->cfg = *cfg;
	srv->api.cores = cfg->cores;
	srv->api.n_cores = cfg->n_cores;
	srv->api.metrics = &srv->metrics;
	srv->api.tokens = cfg->tokens;
	srv->api.protect_operations = cfg->protect_operations;
	srv->api.waiting = srv->waiting;
	if (getrandom(&srv->boot, sizeof srv->boot, 0) != sizeof srv->boot)
		srv->boot = (uint32_t)wire_now_ms() ^ (uint32_t)getpid();
	/* The certificate options come last: without HTTPS the list ends
	 * where they would start. */
	srv->d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	        (cfg->https_cert ? MHD_USE_TLS : 0),
	    cfg->port, on_accept, srv, on_access, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads ? cfg->threads : 2),
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
	    cfg->max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_per_source,
	    cfg->https_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cfg->https_cert, MHD_OPTION_HTTPS_MEM_KEY,
	    cfg->https_key, MHD_OPTION_END);
	if (srv->d == NULL) {
		free(srv);
		return PROFILE_UNAVAILABLE;
	}
	*out = srv;
	return PROFILE_OK;
}

static unsigned
open_connections(http_server *srv)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return info != NULL ? info->num_connections : 0;
}

void
http_server_close(http_server *srv)
{
	struct timespec pause = {0, 10 * 1000000L};
	int64_t now, grace, end;
	int left;

	if (srv == NULL)
		return;
	/* libmicrohttpd aborts the process when it is stopped with a connection
	 * suspended: let every call in flight complete (within its deadline)
	 * and its answer be sent first. New connections are refused meanwhile
	 * by on_accept, not by MHD_quiesce_daemon: with epoll and a thread pool
	 * (0.9.75), quiescing races with the polling threads over the listening
	 * socket and aborts the process now and then (tests/unit/test_http.c). */
	__atomic_store_n(&srv->closing, 1, __ATOMIC_RELEASE);
	now = wire_mono_ms();
	grace = now + CLOSE_READ_GRACE_MS;
	end = now + srv->cfg.call_timeout_ms + CLOSE_SLACK_MS;
	while (now < end && (__atomic_load_n(&srv->suspended, __ATOMIC_ACQUIRE) > 0 ||
	                     (now < grace && open_connections(srv) > 0))) {
		nanosleep(&pause, NULL);
		now = wire_mono_ms();
	}
	if ((left = __atomic_load_n(&srv->suspended, __ATOMIC_ACQUIRE)) > 0) {
		/* Cannot happen while calls keep their deadlines; stopping now
		 * would abort, so the daemon is left to the process exit. */
		log_warn("%d request(s) still unanswered at shutdown; not waiting longer", left);
		return;
	}
	MHD_stop_daemon(srv->d);
	free(srv);
}
