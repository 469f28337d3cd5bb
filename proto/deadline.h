/* deadline.h: the absolute time a pthread_cond_timedwait waits until. */
#ifndef PROFILE_DEADLINE_H
#define PROFILE_DEADLINE_H

#include <stdint.h>
#include <time.h>

/* *ts = now on `clock` (the condition variable's) plus ms. */
void deadline_after(struct timespec *ts, clockid_t clock, int64_t ms);

#endif
