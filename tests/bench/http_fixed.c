/* http_fixed.c: the HTTP baselines of the benchmark. libmicrohttpd with the
 * gateway's settings (epoll, 2 threads), answering every request with the
 * same 154-byte JSON body: what the HTTP layer costs with no work behind it.
 * With RELAY_URL, the bare relay: each request's URL goes as an nng request
 * to the REP at RELAY_URL (bench-nng-echo server), the connection suspended
 * meanwhile as the gateway does, and the echo's arrival answers the fixed
 * body: HTTP -> nng -> HTTP with no JSON and no protobuf, the ceiling of
 * the gateway's architecture on the machine.
 * usage: bench-http-fixed PORT [RELAY_URL] */
#include <microhttpd.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] =
    "{\"uid\":\"74292b21-0fbb-4f1d-a18f-fa80f947fa5d\",\"username\":\"bob\",\"email\":\"bob1@mail.com\","
    "\"version\":1,\"created_at\":1795774567267,\"updated_at\":1795774567267}";

/* A relayed request: an nng context and aio, reused through a free list. */
typedef struct relay {
	struct relay *next;
	struct MHD_Connection *conn;
	nng_ctx ctx;
	nng_aio *aio;
	int receiving, done;
} relay;

static int relaying;
static nng_socket sock;
static relay *free_list;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void
relay_cb(void *arg)
{
	relay *r = arg;

	if (nng_aio_result(r->aio) == 0 && !r->receiving) {
		r->receiving = 1;
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	if (nng_aio_result(r->aio) == 0)
		nng_msg_free(nng_aio_get_msg(r->aio));
	else if (!r->receiving)
		nng_msg_free(nng_aio_get_msg(r->aio));
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	MHD_resume_connection(r->conn);
}

static relay *
relay_get(void)
{
	relay *r;

	pthread_mutex_lock(&mu);
	if ((r = free_list) != NULL)
		free_list = r->next;
	pthread_mutex_unlock(&mu);
	if (r == NULL && (r = calloc(1, sizeof *r)) != NULL &&
	    (nng_ctx_open(&r->ctx, sock) != 0 || nng_aio_alloc(&r->aio, relay_cb, r) != 0))
		abort();
	return r;
}

static void
relay_put(relay *r)
{
	pthread_mutex_lock(&mu);
	r->next = free_list;
	free_list = r;
	pthread_mutex_unlock(&mu);
}

static enum MHD_Result
answer(struct MHD_Connection *conn)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;

	MHD_add_response_header(r, "Content-Type", "application/json");
	ok = MHD_queue_response(conn, 200, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
          const char *upload, size_t *upload_size, void **con_cls)
{
	static int first;
	relay *r = *con_cls;
	nng_msg *m;

	(void)cls, (void)method, (void)version, (void)upload, (void)upload_size;
	if (r == NULL && *con_cls == NULL) { /* as the gateway: answer on the second call (keep-alive) */
		*con_cls = &first;
		return MHD_YES;
	}
	if (!relaying)
		return answer(conn);
	if (*con_cls == &first) { /* the request is in: relay it */
		if ((r = relay_get()) == NULL || nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, url, strlen(url)) != 0)
			return MHD_NO;
		r->conn = conn;
		r->receiving = r->done = 0;
		*con_cls = r;
		MHD_suspend_connection(conn);
		nng_aio_set_msg(r->aio, m);
		nng_ctx_send(r->ctx, r->aio);
		return MHD_YES;
	}
	if (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE))
		return MHD_YES;
	*con_cls = NULL; /* the next request on this connection starts over */
	relay_put(r);
	return answer(conn);
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	sigset_t s;
	int sig;

	if (argc != 2 && argc != 3)
		return 2;
	if (argc == 3) {
		relaying = 1;
		if (nng_req0_open(&sock) != 0 || nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE) ||
		    nng_dial(sock, argv[2], NULL, NNG_FLAG_NONBLOCK) != 0) {
			fprintf(stderr, "bench-http-fixed: cannot reach %s\n", argv[2]);
			return 1;
		}
	}
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	sigaddset(&s, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | (relaying ? MHD_ALLOW_SUSPEND_RESUME : 0),
	                     (uint16_t)atoi(argv[1]), NULL, NULL, on_access, NULL, MHD_OPTION_THREAD_POOL_SIZE, 2u,
	                     MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
	if (d == NULL)
		return 1;
	sigwait(&s, &sig);
	MHD_stop_daemon(d);
	return 0;
}
