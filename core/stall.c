/* stall.c: a stalled process's reads held back (stall.h). */
#include "stall.h"

#include <time.h>

void
stall_init(stall *s, int64_t limit_ms, int64_t settle_ms)
{
	*s = (stall){.limit_ms = limit_ms, .settle_ms = settle_ms};
}

int64_t
stall_tick(stall *s, int64_t now)
{
	int64_t last = __atomic_load_n(&s->tick_at, __ATOMIC_ACQUIRE), gap = now - last;

	/* settle_at before tick_at: a read that sees the fresh tick sees the
	 * stall too. */
	if (last != 0 && gap >= s->limit_ms) {
		__atomic_store_n(&s->settle_at, now + s->settle_ms, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&s->tick_at, now, __ATOMIC_RELEASE);
	return last != 0 && gap >= s->limit_ms ? gap : 0;
}

int
stall_polled(stall *s, int64_t now)
{
	int64_t at = __atomic_load_n(&s->settle_at, __ATOMIC_ACQUIRE);

	/* A newer stall replaces settle_at; then the exchange fails. */
	return at != 0 && now >= at &&
	       __atomic_compare_exchange_n(&s->settle_at, &at, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

int
stall_suspect(const stall *s, int64_t now)
{
	int64_t tick = __atomic_load_n(&s->tick_at, __ATOMIC_ACQUIRE);

	return tick != 0 && (now - tick >= s->limit_ms || __atomic_load_n(&s->settle_at, __ATOMIC_ACQUIRE) != 0);
}

void
stall_lease(stall *s, int64_t lease_ms)
{
	s->lease_ms = lease_ms > 0 ? lease_ms : 0;
}

void
stall_renewed(stall *s, int64_t sent_at)
{
	int64_t until = sent_at + s->lease_ms, was = __atomic_load_n(&s->lease_until, __ATOMIC_ACQUIRE);

	/* Answers may come out of order: a lease only grows. */
	while (until > was &&
	       !__atomic_compare_exchange_n(&s->lease_until, &was, until, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

int
stall_leased(const stall *s, int64_t now)
{
	return s->lease_ms == 0 || now < __atomic_load_n(&s->lease_until, __ATOMIC_ACQUIRE);
}

int64_t
stall_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
