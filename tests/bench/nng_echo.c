/* nng_echo.c: the RPC baseline of the benchmark. A bare nng REQ/REP echo,
 * server with N REP contexts like the core's, client with N calls in flight
 * like profilectl bench: what one hop costs with no work behind it.
 * usage: bench-nng-echo server URL [CONTEXTS]
 *        bench-nng-echo canned URL [CONTEXTS]   (answers every request with
 *                           one fixed profile: a core that does no work)
 *        bench-nng-echo client URL CONCURRENCY SECONDS
 * The client prints: ops ops/s p50_ms p99_ms p999_ms */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "profile.pb-c.h"

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct worker {
	nng_ctx ctx;
	nng_aio *aio;
	int sending;
	int64_t start;
} worker;

static nng_socket sock;
static uint8_t canned[512];
static size_t canned_len; /* 0: echo the request */
static int64_t end_us;
static uint32_t *lat;
static size_t lat_n, lat_cap = 1 << 24;
static int live;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void
server_cb(void *arg)
{
	worker *w = arg;

	if (nng_aio_result(w->aio) != 0) {
		if (w->sending)
			nng_msg_free(nng_aio_get_msg(w->aio));
		if (nng_aio_result(w->aio) == NNG_ECLOSED)
			return;
	} else if (!w->sending) {
		w->sending = 1; /* echo the request back, or the canned answer */
		if (canned_len) {
			nng_msg *m = nng_aio_get_msg(w->aio);
			nng_msg_clear(m);
			nng_msg_append(m, canned, canned_len);
		}
		nng_ctx_send(w->ctx, w->aio);
		return;
	}
	w->sending = 0;
	nng_ctx_recv(w->ctx, w->aio);
}

static void
client_send(worker *w)
{
	nng_msg *m;

	nng_msg_alloc(&m, 100);
	memset(nng_msg_body(m), 'x', 100);
	w->sending = 1;
	w->start = now_us();
	nng_aio_set_msg(w->aio, m);
	nng_ctx_send(w->ctx, w->aio);
}

static void
client_cb(void *arg)
{
	worker *w = arg;
	int64_t t;
	size_t i;

	if (nng_aio_result(w->aio) != 0) {
		if (w->sending)
			nng_msg_free(nng_aio_get_msg(w->aio));
		goto retire;
	}
	if (w->sending) {
		w->sending = 0;
		nng_ctx_recv(w->ctx, w->aio);
		return;
	}
	nng_msg_free(nng_aio_get_msg(w->aio));
	t = now_us();
	i = __atomic_fetch_add(&lat_n, 1, __ATOMIC_RELAXED);
	if (i < lat_cap)
		lat[i] = (uint32_t)(t - w->start);
	if (t < end_us) {
		client_send(w);
		return;
	}
retire:
	pthread_mutex_lock(&mu);
	if (--live == 0)
		pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static int
cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int n;
	worker *ws;

	if (argc < 3)
		return 2;
	if (strcmp(argv[1], "canned") == 0) {
		Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
		Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
		p.uid = "74292b21-0fbb-4f1d-a18f-fa80f947fa5d";
		p.username = "bob";
		p.email = "bob1@mail.com";
		p.version = 1;
		p.created_at = p.updated_at = 1795774567267;
		r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
		r.profile = &p;
		canned_len = profile__v1__response__pack(&r, canned);
		argv[1] = "server";
	}
	if (strcmp(argv[1], "server") == 0) {
		sigset_t s;
		int sig;
		n = argc > 3 ? atoi(argv[3]) : 64;
		sigemptyset(&s);
		sigaddset(&s, SIGINT);
		sigaddset(&s, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &s, NULL);
		if (nng_rep0_open(&sock) != 0 || nng_listen(sock, argv[2], NULL, 0) != 0)
			return 1;
		ws = calloc((size_t)n, sizeof *ws);
		for (int i = 0; i < n; i++) {
			nng_aio_alloc(&ws[i].aio, server_cb, &ws[i]);
			nng_ctx_open(&ws[i].ctx, sock);
			nng_ctx_recv(ws[i].ctx, ws[i].aio);
		}
		sigwait(&s, &sig);
		return 0; /* exit without nng_close: it can hang in 1.5.2 */
	}
	if (argc != 5)
		return 2;
	n = atoi(argv[3]);
	lat = malloc(lat_cap * sizeof *lat);
	if (nng_req0_open(&sock) != 0)
		return 1;
	nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (nng_dial(sock, argv[2], NULL, 0) != 0)
		return 1;
	ws = calloc((size_t)n, sizeof *ws);
	for (int i = 0; i < n; i++) {
		nng_aio_alloc(&ws[i].aio, client_cb, &ws[i]);
		nng_ctx_open(&ws[i].ctx, sock);
	}
	{
		int64_t start = now_us();
		end_us = start + (int64_t)(atof(argv[4]) * 1e6);
		live = n;
		for (int i = 0; i < n; i++)
			client_send(&ws[i]);
		pthread_mutex_lock(&mu);
		while (live > 0)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
		{
			size_t k = lat_n < lat_cap ? lat_n : lat_cap;
			double secs = (now_us() - start) / 1e6;
			qsort(lat, k, sizeof *lat, cmp);
			printf("%zu %.0f %.3f %.3f %.3f\n", lat_n, lat_n / secs, k ? lat[k / 2] / 1000.0 : 0,
			       k ? lat[(size_t)(k * 0.99)] / 1000.0 : 0,
			       k ? lat[(size_t)(k * 0.999)] / 1000.0 : 0);
		}
	}
	return 0;
}
