/* retry.c: the raw call of libprofile-client with its retry rules
 * (client_internal.h): one attempt per call, sent to the address route.c
 * picks, tried again on the next address after "not executed", with
 * backoff, inside the deadline. */
#include <stdlib.h>

#include "client_impl.h"

#define SEND_TIMEOUT_MS 1000 /* to give up on an address and try the next */
#define READ_TRY_MIN_MS 300  /* the shortest try of a read (see try_budget) */
#define RETRY_MIN_MS 20      /* no retry with less time left than this */
#define BACKOFF_FIRST_MS 10
#define BACKOFF_MAX_MS 250

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
	int idx = a->tries == 1 ? client_stale_copy(a->c, a->req) : -1;

	return idx >= 0 && (size_t)idx != a->idx ? (size_t)idx : client_pick(a->c, a->idx + 1);
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
	a->idx = client_first_address(c, req);
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
