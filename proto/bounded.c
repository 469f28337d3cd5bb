/* bounded.c: a closing step with a time bound (bounded.h). */
#include "bounded.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "deadline.h"
#include "log.h"

typedef struct step {
	void (*fn)(void *arg);
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
} step;

/* Steps that overran: kept reachable until the process exits. */
static step *overran[16];
static int n_overran;

static void *
step_main(void *p)
{
	step *s = p;

	s->fn(s->arg);
	pthread_mutex_lock(&s->mu);
	s->done = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int
bounded_run(void (*fn)(void *arg), void *arg, int timeout_ms, const char *what)
{
	step *s = calloc(1, sizeof *s);
	struct timespec ts;
	pthread_t t;
	int done;

	if (s == NULL) {
		fn(arg);
		return 1;
	}
	s->fn = fn;
	s->arg = arg;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (pthread_create(&t, NULL, step_main, s) != 0) {
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cv);
		free(s);
		fn(arg);
		return 1;
	}
	deadline_after(&ts, CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&s->mu);
	while (!s->done && pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0)
		;
	done = s->done;
	pthread_mutex_unlock(&s->mu);
	if (!done) {
		log_warn("%s did not finish in %d ms; exiting without it", what, timeout_ms);
		pthread_detach(t);
		if (n_overran < (int)(sizeof overran / sizeof overran[0]))
			overran[n_overran++] = s;
		return 0;
	}
	pthread_join(t, NULL);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	return 1;
}
