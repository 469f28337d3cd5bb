/* pending.c: the live calls, per-uid write queues and the deadline sweeper
 * (pending.h). */
#include "pending.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"

#define KEY_BUCKETS 4096
#define SWEEP_INTERVAL_MS 20

typedef struct pending_key {
	struct pending_key *next;
	char uid[WIRE_UID_LEN + 1];
	pending_call *head; /* the running write; the rest wait behind it */
	pending_call *tail;
} pending_key;

struct pending {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pending_call live; /* list head (sentinel) */
	pending_key *keys[KEY_BUCKETS];
	pthread_t sweeper;
	void (*tick)(void *arg); /* under mu */
	void *tick_arg;
	int tick_every_ms;
	int64_t tick_last;
	int stopping;
};

/* ---- the live list and the per-uid queues ------------------------------ */

void
pending_lock(pending *pd)
{
	pthread_mutex_lock(&pd->mu);
}

void
pending_unlock(pending *pd)
{
	pthread_mutex_unlock(&pd->mu);
}

void
pending_add(pending *pd, pending_call *c)
{
	c->replied = 0;
	c->queued = 0;
	c->qnext = NULL;
	c->key = NULL;
	pthread_mutex_lock(&pd->mu);
	c->next = pd->live.next;
	c->prev = &pd->live;
	pd->live.next->prev = c;
	pd->live.next = c;
	pthread_mutex_unlock(&pd->mu);
}

static pending_key **
key_find(pending *pd, const char *uid)
{
	pending_key **kp = &pd->keys[(uint32_t)wire_murmur2(uid, WIRE_UID_LEN) % KEY_BUCKETS];

	while (*kp && memcmp((*kp)->uid, uid, WIRE_UID_LEN) != 0)
		kp = &(*kp)->next;
	return kp;
}

int
pending_enter(pending *pd, pending_call *c, const char *uid)
{
	pending_key **kp, *k;
	int run = 1;

	pthread_mutex_lock(&pd->mu);
	kp = key_find(pd, uid);
	if ((k = *kp) == NULL) {
		if ((k = calloc(1, sizeof *k)) == NULL) {
			pthread_mutex_unlock(&pd->mu);
			return -1;
		}
		memcpy(k->uid, uid, WIRE_UID_LEN);
		*kp = k;
		k->head = k->tail = c;
	} else {
		k->tail->qnext = c;
		k->tail = c;
		c->queued = 1;
		run = 0;
	}
	c->key = k;
	pthread_mutex_unlock(&pd->mu);
	return run;
}

pending_call *
pending_leave_locked(pending *pd, pending_call *c)
{
	pending_key *k = c->key, **kp;
	pending_call *next = NULL;

	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->prev = c->next = c;
	if (k == NULL)
		return NULL;
	if (k->head == c) {
		k->head = next = c->qnext;
		if (next == NULL)
			k->tail = NULL;
		else
			next->queued = 0; /* handed on: the sweeper no longer takes it as queued */
	} else {
		pending_call *q = k->head;
		while (q && q->qnext != c)
			q = q->qnext;
		if (q) {
			q->qnext = c->qnext;
			if (k->tail == c)
				k->tail = q;
		}
	}
	if (k->head == NULL) {
		kp = key_find(pd, k->uid);
		*kp = k->next;
		free(k);
	}
	c->key = NULL;
	c->qnext = NULL;
	return next;
}

pending_call *
pending_leave(pending *pd, pending_call *c)
{
	pending_call *next;

	pthread_mutex_lock(&pd->mu);
	next = pending_leave_locked(pd, c);
	pthread_mutex_unlock(&pd->mu);
	return next;
}

int
pending_claim_reply(pending *pd, pending_call *c)
{
	int first;

	pthread_mutex_lock(&pd->mu);
	first = !c->replied;
	c->replied = 1;
	pthread_mutex_unlock(&pd->mu);
	return first;
}

/* ---- the sweeper ------------------------------------------------------- */

/* One decision of a sweep, carried out after the lock is released. */
typedef struct expiry {
	pending_call *taken; /* or NULL: answer only */
	pending_answer answer;
} expiry;

/* Expires every call whose deadline passed (every call, with all). Each
 * call decides under the lock (its ops->expire); what it asks for is done
 * after unlocking, on what the sweep then owns or on copies. */
static void
sweep(pending *pd, int all)
{
	int64_t now = wire_mono_ms();
	expiry *ex = NULL;
	size_t n = 0, cap = 0;
	pending_call *c, *next;

	pthread_mutex_lock(&pd->mu);
	for (c = pd->live.next; c != &pd->live; c = next) {
		expiry e = {0};
		int what;

		next = c->next;
		if (c->replied || (!all && c->deadline > now))
			continue;
		if (n == cap) {
			expiry *grown = realloc(ex, (cap = cap ? cap * 2 : 16) * sizeof *ex);
			if (grown == NULL)
				break; /* the next sweep tries again */
			ex = grown;
		}
		what = c->ops->expire(c, all, &e.answer);
		if (what == PENDING_SKIP)
			continue;
		if (what == PENDING_TAKE)
			e.taken = c;
		else
			c->replied = 1; /* answered below, once */
		ex[n++] = e;
	}
	pthread_mutex_unlock(&pd->mu);

	for (size_t i = 0; i < n; i++) {
		if (ex[i].taken)
			ex[i].taken->ops->finish(ex[i].taken);
		else
			reply_status(ex[i].answer.done, ex[i].answer.arg, ex[i].answer.id,
			             ex[i].answer.status, ex[i].answer.msg);
	}
	free(ex);
}

static void *
sweeper_main(void *arg)
{
	pending *pd = arg;
	struct timespec ts;

	pthread_mutex_lock(&pd->mu);
	while (!pd->stopping) {
		deadline_after(&ts, CLOCK_MONOTONIC, SWEEP_INTERVAL_MS);
		pthread_cond_timedwait(&pd->cv, &pd->mu, &ts);
		if (pd->stopping)
			break;
		pthread_mutex_unlock(&pd->mu);
		sweep(pd, 0);
		pthread_mutex_lock(&pd->mu);
		if (pd->tick && wire_mono_ms() - pd->tick_last >= pd->tick_every_ms) {
			void (*tick)(void *) = pd->tick;
			void *tick_arg = pd->tick_arg;

			pd->tick_last = wire_mono_ms();
			pthread_mutex_unlock(&pd->mu);
			tick(tick_arg);
			pthread_mutex_lock(&pd->mu);
		}
	}
	pthread_mutex_unlock(&pd->mu);
	return NULL;
}

void
pending_set_tick(pending *pd, void (*tick)(void *arg), void *arg, int every_ms)
{
	pthread_mutex_lock(&pd->mu);
	pd->tick = tick;
	pd->tick_arg = arg;
	pd->tick_every_ms = every_ms;
	pd->tick_last = wire_mono_ms();
	pthread_mutex_unlock(&pd->mu);
}

/* ---- lifecycle --------------------------------------------------------- */

int
pending_new(pending **out)
{
	pending *pd = calloc(1, sizeof *pd);
	pthread_condattr_t ca;

	if (pd == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	pd->live.next = pd->live.prev = &pd->live;
	pthread_mutex_init(&pd->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pd->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&pd->sweeper, NULL, sweeper_main, pd) != 0) {
		pthread_mutex_destroy(&pd->mu);
		pthread_cond_destroy(&pd->cv);
		free(pd);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	*out = pd;
	return PROFILE_OK;
}

void
pending_free(pending *pd)
{
	if (pd == NULL)
		return;
	pthread_mutex_lock(&pd->mu);
	pd->stopping = 1;
	pthread_cond_signal(&pd->cv);
	pthread_mutex_unlock(&pd->mu);
	pthread_join(pd->sweeper, NULL);
	sweep(pd, 1);
	/* What is left was answered and waits for news that will not come. */
	pthread_mutex_lock(&pd->mu);
	while (pd->live.next != &pd->live) {
		pending_call *c = pd->live.next;
		(void)pending_leave_locked(pd, c);
		pthread_mutex_unlock(&pd->mu);
		c->ops->drop(c);
		pthread_mutex_lock(&pd->mu);
	}
	pthread_mutex_unlock(&pd->mu);
	pthread_mutex_destroy(&pd->mu);
	pthread_cond_destroy(&pd->cv);
	free(pd);
}
