/* stall.h: whether this process may have stopped running (SIGSTOP, a paused
 * virtual machine, a suspended host) long enough for its Kafka group session
 * to end meanwhile. Then the partitions it still believes it owns may
 * already be another node's, and librdkafka only learns so on its first
 * contact with the group after the stall: until then the node must not
 * answer reads from their stores, which may lack the new owner's writes.
 *
 * A watch thread calls stall_tick every STALL_TICK_MS; a gap of limit_ms or
 * more between two ticks is a stall. Reads are refused from the stall until
 * the thread that polls the group consumer has polled settle_ms after it
 * (by then librdkafka has heard from the group, and a lost assignment has
 * been handed to the rebalance callback), and also whenever the watch has
 * not ticked for limit_ms: a process that has just resumed may serve a read
 * before its watch runs again. The clock is CLOCK_BOOTTIME, which goes on
 * while the host sleeps; every function takes it as `now` (stall_now_ms).
 */
#ifndef PROFILE_STALL_H
#define PROFILE_STALL_H

#include <stdint.h>

#define STALL_TICK_MS 100

typedef struct stall {
	int64_t limit_ms, settle_ms;
	int64_t tick_at;   /* atomic: the watch's last tick, 0 = not watched */
	int64_t settle_at; /* atomic: reads resume after a poll from then on, 0 = none */
} stall;

/* Not watched (stall_suspect is 0) until the first stall_tick. */
void stall_init(stall *s, int64_t limit_ms, int64_t settle_ms);

/* The watch thread. Returns the gap since the last tick when it is a stall
 * (reads stop), else 0. */
int64_t stall_tick(stall *s, int64_t now);

/* The group's poll thread, after each poll: 1 when this ended a stall. */
int stall_polled(stall *s, int64_t now);

/* Any thread: 1 while reads must be refused. */
int stall_suspect(const stall *s, int64_t now);

int64_t stall_now_ms(void);

#endif
