/* call.c: nng REQ channel with a pool of contexts (call.h).
 *
 * A slot is a REQ context and its aio. Slots are made on demand, reused
 * through a free list, and freed only when the channel closes, so an aio is
 * never freed from its own callback. Each call runs SEND -> RECV -> done.
 */
#include "call.h"
#include "tls.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { S_IDLE, S_SEND, S_RECV };

typedef struct slot {
	struct slot *next_free;
	struct slot *next_all;
	call_channel *ch;
	nng_ctx ctx;
	nng_aio *aio;
	int state;
	int write;
	int64_t deadline;
	int64_t sent;       /* monotonic ms: when the request left */
	int64_t expires;    /* monotonic ms: when the pending send or receive times out */
	int64_t cool_until; /* on the cooling list: not reused before this */
	call_done_fn done;
	call_bytes_fn bytes_done; /* instead of done: the answer stays encoded */
	void *arg;
} slot;

struct call_channel {
	nng_socket sock;
	pthread_mutex_t mu;
	pthread_cond_t idle;
	slot *free;
	slot *cool_head, *cool_tail; /* released near their timeout: FIFO */
	slot *all;
	int slots, busy, max;
	uint64_t next_id;
	int closing;
	int pipes;             /* live connections, kept by pipe events */
	int64_t suspect_until; /* monotonic ms: a call timed out unanswered */
};

/* A node that let a call wait SUSPECT_AFTER_MS or more and time out without
 * answering (hung, or stopped) is avoided for SUSPECT_MS by callers that have
 * somewhere else to go; any answer from it clears this at once. Nodes answer
 * before a caller's deadline (UNAVAILABLE when they cannot serve), so such a
 * timeout means the node itself is stuck; shorter waits say too little. */
#define SUSPECT_AFTER_MS 1000
#define SUSPECT_MS 3000

/* nng's codes, mapped once for the open path. */
static int
call_status(int rv)
{
	switch (rv) {
	case 0:
		return PROFILE_OK;
	case NNG_ENOMEM:
		return PROFILE_RESOURCE_EXHAUSTED;
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EINVAL:
		return PROFILE_INVALID_ARGUMENT;
	default:
		return PROFILE_UNAVAILABLE;
	}
}

/* nng 1.5.2's timer takes a context's cancellation and runs it outside its
 * lock, so when an answer arrives just as the timeout fires, the late
 * cancellation can run after the context was handed to the next call and
 * cancel that call's send (REQ's receive cancellation also cancels a
 * pending send; races of this kind were fixed after 1.5.2). A context that
 * finished within SLOT_COOL_MARGIN_MS of its timeout is therefore left idle
 * for SLOT_COOL_MS before it is used again; idle, a late cancellation finds
 * nothing to cancel. Answers well before their timeout, the common case,
 * are reused at once. */
#define SLOT_COOL_MARGIN_MS 5
#define SLOT_COOL_MS 100

static void
slot_release(slot *s)
{
	call_channel *ch = s->ch;
	int64_t now = wire_mono_ms();

	pthread_mutex_lock(&ch->mu);
	s->state = S_IDLE;
	s->next_free = NULL;
	if (now + SLOT_COOL_MARGIN_MS >= s->expires) {
		s->cool_until = now + SLOT_COOL_MS;
		if (ch->cool_tail)
			ch->cool_tail->next_free = s;
		else
			ch->cool_head = s;
		ch->cool_tail = s;
	} else {
		s->next_free = ch->free;
		ch->free = s;
	}
	if (--ch->busy == 0)
		pthread_cond_broadcast(&ch->idle);
	pthread_mutex_unlock(&ch->mu);
}

static void
slot_finish(slot *s, int status, Profile__V1__Response *resp)
{
	call_done_fn done = s->done;
	call_bytes_fn bytes_done = s->bytes_done;
	void *arg = s->arg;

	/* The slot is reusable before the callback runs, so a callback that
	 * starts another call finds one free. */
	slot_release(s);
	if (bytes_done)
		bytes_done(arg, status, NULL);
	else
		done(arg, status, resp);
}

/* A node answered: that clears a suspicion, unless it says it is going
 * away. Written only when it changes: every answer passes here, on any of
 * nng's threads. */
static void
answered(call_channel *ch, int draining)
{
	if (draining)
		__atomic_store_n(&ch->suspect_until, wire_mono_ms() + SUSPECT_MS, __ATOMIC_RELAXED);
	else if (__atomic_load_n(&ch->suspect_until, __ATOMIC_RELAXED) != 0)
		__atomic_store_n(&ch->suspect_until, 0, __ATOMIC_RELAXED);
}

/* An answer to a call_start_bytes: checked field by field (not decoded) and
 * handed over as it came. */
static void
slot_finish_bytes(slot *s, nng_msg *msg)
{
	const uint8_t *b = nng_msg_body(msg);
	size_t len = nng_msg_len(msg), at = 0;
	call_bytes_fn done = s->bytes_done;
	void *arg = s->arg;
	int draining = 0, rc;
	wire_field f;

	while ((rc = wire_field_next(b, len, &at, &f)) > 0)
		if (f.number == WIRE_RESPONSE_DRAINING && f.type == 0)
			draining = f.varint != 0;
	answered(s->ch, draining);
	slot_release(s);
	if (rc < 0) {
		nng_msg_free(msg);
		done(arg, PROFILE_INTERNAL, NULL);
	} else {
		done(arg, PROFILE_OK, msg);
	}
}

static void
slot_cb(void *arg)
{
	slot *s = arg;
	int rv = nng_aio_result(s->aio);
	int64_t left;
	nng_msg *msg;
	Profile__V1__Response *resp;

	if (s->state == S_SEND) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			/* Never handed to a node: nothing ran. */
			slot_finish(s, rv == NNG_ENOMEM ? PROFILE_RESOURCE_EXHAUSTED : PROFILE_UNAVAILABLE,
			            NULL);
			return;
		}
		s->sent = wire_mono_ms();
		left = s->deadline - s->sent;
		s->state = S_RECV;
		s->expires = s->sent + (left > 0 ? left : 1);
		nng_aio_set_timeout(s->aio, left > 0 ? (nng_duration)left : 1);
		nng_ctx_recv(s->ctx, s->aio);
		return;
	}
	if (rv != 0) {
		/* A read changed nothing, answered or not: safe to repeat, so
		 * not executed. A write may have run: outcome unknown. */
		int status = s->write ? PROFILE_DEADLINE_EXCEEDED : PROFILE_UNAVAILABLE;
		int64_t now = wire_mono_ms();
		if (rv == NNG_ETIMEDOUT && now - s->sent >= SUSPECT_AFTER_MS)
			__atomic_store_n(&s->ch->suspect_until, now + SUSPECT_MS, __ATOMIC_RELAXED);
		slot_finish(s, rv == NNG_ENOMEM ? PROFILE_RESOURCE_EXHAUSTED : status, NULL);
		return;
	}
	msg = nng_aio_get_msg(s->aio);
	if (s->bytes_done)
		return slot_finish_bytes(s, msg);
	resp = profile__v1__response__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
	nng_msg_free(msg);
	/* An answer clears a suspicion, unless it says the node is going away. */
	answered(s->ch, resp && resp->draining);
	slot_finish(s, resp ? PROFILE_OK : PROFILE_INTERNAL, resp);
}

static void
on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	call_channel *ch = arg;

	(void)p;
	__atomic_add_fetch(&ch->pipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1, __ATOMIC_RELAXED);
	if (ev == NNG_PIPE_EV_ADD_POST) /* a new connection: perhaps a restarted node */
		__atomic_store_n(&ch->suspect_until, 0, __ATOMIC_RELAXED);
}

int
call_channel_connected(call_channel *ch)
{
	return __atomic_load_n(&ch->pipes, __ATOMIC_RELAXED);
}

int
call_channel_usable(call_channel *ch)
{
	return call_channel_connected(ch) > 0 &&
	       __atomic_load_n(&ch->suspect_until, __ATOMIC_RELAXED) <= wire_mono_ms();
}

int
call_channel_open(call_channel **out, const char *const *addrs, size_t n, int max_in_flight, const call_tls *tls)
{
	call_channel *ch;
	int rv;

	if (addrs == NULL || n == 0)
		return PROFILE_INVALID_ARGUMENT;
	if ((ch = calloc(1, sizeof *ch)) == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	pthread_mutex_init(&ch->mu, NULL);
	pthread_cond_init(&ch->idle, NULL);
	ch->max = max_in_flight > 0 ? max_in_flight : 4096;
	if ((rv = nng_req0_open(&ch->sock)) != 0) {
		free(ch);
		return call_status(rv);
	}
	/* Off before any context is opened: contexts copy it at open. */
	if ((rv = nng_socket_set_ms(ch->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0)
		goto fail;
	nng_pipe_notify(ch->sock, NNG_PIPE_EV_ADD_POST, on_pipe, ch);
	nng_pipe_notify(ch->sock, NNG_PIPE_EV_REM_POST, on_pipe, ch);
	nng_socket_set_ms(ch->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(ch->sock, NNG_OPT_RECONNMAXT, 1000);
	for (size_t i = 0; i < n; i++)
		if ((rv = call_tls_dial(ch->sock, addrs[i], tls)) != 0)
			goto fail;
	*out = ch;
	return PROFILE_OK;
fail:
	nng_close(ch->sock);
	free(ch);
	return call_status(rv);
}

static slot *
slot_get(call_channel *ch)
{
	slot *s;

	pthread_mutex_lock(&ch->mu);
	/* Slots whose cooling is over are free again. */
	while (ch->cool_head && ch->cool_head->cool_until <= wire_mono_ms()) {
		slot *c = ch->cool_head;
		if ((ch->cool_head = c->next_free) == NULL)
			ch->cool_tail = NULL;
		c->next_free = ch->free;
		ch->free = c;
	}
	if (ch->closing || (ch->free == NULL && ch->slots >= ch->max)) {
		pthread_mutex_unlock(&ch->mu);
		return NULL;
	}
	if ((s = ch->free) != NULL) {
		ch->free = s->next_free;
		ch->busy++;
		pthread_mutex_unlock(&ch->mu);
		return s;
	}
	ch->slots++;
	ch->busy++;
	pthread_mutex_unlock(&ch->mu);

	if ((s = calloc(1, sizeof *s)) == NULL)
		goto fail;
	s->ch = ch;
	if (nng_aio_alloc(&s->aio, slot_cb, s) != 0) {
		free(s);
		goto fail;
	}
	if (nng_ctx_open(&s->ctx, ch->sock) != 0) {
		nng_aio_free(s->aio);
		free(s);
		goto fail;
	}
	pthread_mutex_lock(&ch->mu);
	s->next_all = ch->all;
	ch->all = s;
	pthread_mutex_unlock(&ch->mu);
	return s;
fail:
	pthread_mutex_lock(&ch->mu);
	ch->slots--;
	if (--ch->busy == 0)
		pthread_cond_broadcast(&ch->idle);
	pthread_mutex_unlock(&ch->mu);
	return NULL;
}

static int
call_begin(call_channel *ch, Profile__V1__Request *req, uint32_t timeout_ms, uint32_t send_timeout_ms,
           int write, call_done_fn done, call_bytes_fn bytes_done, void *arg)
{
	size_t len;
	nng_msg *msg;
	slot *s;

	pthread_mutex_lock(&ch->mu);
	req->request_id = ++ch->next_id;
	pthread_mutex_unlock(&ch->mu);
	req->deadline_ms = timeout_ms;
	len = profile__v1__request__get_packed_size(req);
	if (len > WIRE_MESSAGE_MAX)
		return PROFILE_INVALID_ARGUMENT;
	if ((s = slot_get(ch)) == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	if (nng_msg_alloc(&msg, len) != 0) {
		slot_release(s);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	profile__v1__request__pack(req, nng_msg_body(msg));
	s->done = done;
	s->bytes_done = bytes_done;
	s->arg = arg;
	s->write = write;
	s->deadline = wire_mono_ms() + timeout_ms;
	s->state = S_SEND;
	nng_aio_set_msg(s->aio, msg);
	if (send_timeout_ms > timeout_ms || send_timeout_ms == 0)
		send_timeout_ms = timeout_ms;
	s->expires = wire_mono_ms() + (send_timeout_ms > 0 ? send_timeout_ms : 1);
	nng_aio_set_timeout(s->aio, send_timeout_ms > 0 ? (nng_duration)send_timeout_ms : 1);
	nng_ctx_send(s->ctx, s->aio);
	return PROFILE_OK;
}

int
call_start(call_channel *ch, Profile__V1__Request *req, uint32_t timeout_ms, uint32_t send_timeout_ms,
           int write, call_done_fn done, void *arg)
{
	return call_begin(ch, req, timeout_ms, send_timeout_ms, write, done, NULL, arg);
}

int
call_start_bytes(call_channel *ch, Profile__V1__Request *req, uint32_t timeout_ms, uint32_t send_timeout_ms,
                 int write, call_bytes_fn done, void *arg)
{
	return call_begin(ch, req, timeout_ms, send_timeout_ms, write, NULL, done, arg);
}

void
call_channel_close(call_channel *ch)
{
	slot *s, *next;

	if (ch == NULL)
		return;
	pthread_mutex_lock(&ch->mu);
	ch->closing = 1;
	pthread_mutex_unlock(&ch->mu);
	/* Cancelling completes each call in flight through its callback. */
	for (s = ch->all; s; s = s->next_all)
		nng_aio_cancel(s->aio);
	pthread_mutex_lock(&ch->mu);
	while (ch->busy > 0)
		pthread_cond_wait(&ch->idle, &ch->mu);
	pthread_mutex_unlock(&ch->mu);
	for (s = ch->all; s; s = s->next_all)
		nng_aio_stop(s->aio);
	nng_close(ch->sock);
	for (s = ch->all; s; s = next) {
		next = s->next_all;
		nng_aio_free(s->aio);
		free(s);
	}
	pthread_mutex_destroy(&ch->mu);
	pthread_cond_destroy(&ch->idle);
	free(ch);
}
