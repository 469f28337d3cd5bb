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
/* The read lease. A stall is one way for a node to lose its partitions
 * without knowing; a network that lets it reach its callers but not Kafka
 * is another. So, when a lease is set (stall_lease), reads of the
 * partitions a node owns are answered only while its lease runs: lease_ms
 * from the moment it sent the last group request that the coordinator
 * accepted as coming from a current member (stall_renewed; lease.c sends
 * one every tick). The coordinator restarts the member's session when it
 * accepts such a request, so the member cannot have been expired, nor its
 * partitions given to another node, before that moment plus the session;
 * a lease shorter than the session leaves a margin for the two clocks'
 * rates and the read in progress.
 */
#ifndef PROFILE_STALL_H
#define PROFILE_STALL_H

#include <stdint.h>

#define STALL_TICK_MS 100

typedef struct stall {
	int64_t limit_ms, settle_ms;
	int64_t tick_at;     /* atomic: the watch's last tick, 0 = not watched */
	int64_t settle_at;   /* atomic: reads resume after a poll from then on, 0 = none */
	int64_t lease_ms;    /* 0: no read lease */
	int64_t lease_until; /* atomic: reads of owned partitions stop then */
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

/* Sets the read lease (before any thread uses s); 0 leaves it off. */
void stall_lease(stall *s, int64_t lease_ms);

/* The coordinator accepted a request this node sent at sent_at. */
void stall_renewed(stall *s, int64_t sent_at);

/* Any thread: 1 while the lease runs (always, with no lease). */
int stall_leased(const stall *s, int64_t now);

int64_t stall_now_ms(void);

#endif
