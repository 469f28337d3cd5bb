/* test_partition.c: the partition table (core/partition.c): a partition is
 * restoring until its store reaches the log end seen at assignment, reads
 * are refused meanwhile (never answered from a store that is behind), and
 * waiters are woken when it becomes active, when an offset is applied, or,
 * with UNAVAILABLE, when it is revoked; a cancelled waiter is never woken.
 * Writing: a claimed partition asks for its earlier writers to be fenced
 * and is writable once its store has read up to the log end seen then; a
 * release (or a revoke) tells the node to stop writing; a committed write
 * waits for its store, and the commit marker after this node's own
 * transaction does not keep the next from being applied on acknowledgement. Stalls: a gap between the watch's ticks as long as the
 * limit stops every read until a poll of the group after the settle time,
 * and so does a watch that has not ticked for that long.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "partition.h"
#include "stall.h"

static const char *uid = "74292b21-0fbb-4f1d-a18f-fa80f947fa5d";

typedef struct waiter {
	partition_waiter w; /* first */
	int woken, status;
} waiter;

static void
on_wake(partition_waiter *w, int status)
{
	((waiter *)w)->woken++;
	((waiter *)w)->status = status;
}

/* Feeds tombstones at offsets from..to (tombstones of absent uids apply as
 * nothing, but move the store's position like any record). */
static void
feed(partitions *t, int32_t p, int64_t from, int64_t to)
{
	store_record recs[16];
	size_t n = 0;

	for (int64_t o = from; o <= to; o++)
		recs[n++] = (store_record){o, uid, 36, NULL, 0};
	CHECK_INT(partitions_on_records(t, p, recs, n), CHANGELOG_CONTINUE);
}

static int
readable(partitions *t, int32_t p)
{
	store *s;
	int rc = partitions_read_begin(t, p, -1, &s);

	if (rc == PROFILE_OK)
		partitions_read_end(t, p);
	return rc;
}

static void
test_restoring_until_the_log_end_then_active(partitions *t)
{
	waiter active = {0}, applied = {0};

	/* Not assigned: nothing is served, nothing waits. */
	CHECK_INT(readable(t, 0), PROFILE_UNAVAILABLE);
	CHECK_INT(partitions_wait(t, 0, -1, &active.w, on_wake), PROFILE_UNAVAILABLE);
	CHECK_INT(partitions_owned(t, 0), 0);

	/* Assigned with an empty store and 3 records in the log: restoring. */
	CHECK_INT(partitions_on_assigned(t, 0, 0, 3), CHANGELOG_OFFSET_BEGINNING);
	CHECK_INT(partitions_owned(t, 0), 1);
	CHECK_INT(readable(t, 0), PROFILE_ABORTED);
	CHECK_INT(partitions_wait(t, 0, -1, &active.w, on_wake), PROFILE_ABORTED);
	feed(t, 0, 0, 1);
	CHECK_INT(active.woken, 0);
	CHECK_INT(readable(t, 0), PROFILE_ABORTED);
	feed(t, 0, 2, 2);
	CHECK_INT(active.woken, 1);
	CHECK_INT(active.status, PROFILE_OK);
	CHECK_INT(readable(t, 0), PROFILE_OK);

	/* Read-your-writes: a wait for offset 5 ends when 5 is applied. */
	CHECK_INT(partitions_wait(t, 0, 2, &applied.w, on_wake), PROFILE_OK); /* already */
	CHECK_INT(partitions_wait(t, 0, 5, &applied.w, on_wake), PROFILE_ABORTED);
	feed(t, 0, 3, 4);
	CHECK_INT(applied.woken, 0);
	feed(t, 0, 5, 5);
	CHECK_INT(applied.woken, 1);
	CHECK_INT(applied.status, PROFILE_OK);
}

static void
test_an_empty_log_is_active_at_once(partitions *t)
{
	CHECK_INT(partitions_on_assigned(t, 1, 0, 0), CHANGELOG_OFFSET_BEGINNING);
	CHECK_INT(readable(t, 1), PROFILE_OK);
	partitions_on_revoked(t, 1, 0);
}

static void
test_revocation_wakes_waiters_unavailable_and_cancel_silences_one(partitions *t)
{
	waiter kept = {0}, cancelled = {0};

	CHECK_INT(partitions_wait(t, 0, 100, &kept.w, on_wake), PROFILE_ABORTED);
	CHECK_INT(partitions_wait(t, 0, 100, &cancelled.w, on_wake), PROFILE_ABORTED);
	CHECK_INT(partitions_cancel(t, 0, &cancelled.w), 1);
	partitions_on_revoked(t, 0, 0);
	CHECK_INT(kept.woken, 1);
	CHECK_INT(kept.status, PROFILE_UNAVAILABLE);
	CHECK_INT(cancelled.woken, 0);
	CHECK_INT(partitions_owned(t, 0), 0);
	CHECK_INT(readable(t, 0), PROFILE_UNAVAILABLE);
}

static void
test_a_partition_that_comes_back_resumes_from_its_store(partitions *t)
{
	partition_info info[2];

	/* Its file kept offset 5; the log grew to 8: resume at 5 (verified),
	 * restoring until 7 is applied. */
	CHECK_INT(partitions_on_assigned(t, 0, 0, 8), 5);
	CHECK_INT(readable(t, 0), PROFILE_ABORTED);
	feed(t, 0, 5, 7);
	CHECK_INT(readable(t, 0), PROFILE_OK);
	partitions_info(t, NULL, info);
	CHECK_INT(info[0].applied, 7);
	CHECK_INT(info[0].replayed, 2); /* 6 and 7: the record at 5 only verified */
	CHECK_INT(info[0].lag, 0);
	CHECK_INT(info[0].active, 1);
	partitions_on_revoked(t, 0, 0);
}

/* ---- writing and fencing ------------------------------------------------ */

static int fence_asked;
static uint64_t fence_gen;
static int released;

static void
on_need_fence(void *arg, int32_t p, uint64_t gen)
{
	(void)arg;
	(void)p;
	fence_asked++;
	fence_gen = gen;
}

static void
on_release(void *arg, int32_t p)
{
	(void)arg;
	(void)p;
	released++;
}

static void
test_writable_once_earlier_writers_are_fenced_and_read(partitions *t)
{
	partition_hooks h = {.need_fence = on_need_fence, .release = on_release};
	waiter writer = {0}, stale_gen = {0};

	partitions_set_hooks(t, &h, 1);
	CHECK_INT(partitions_on_assigned(t, 1, 0, 0), CHANGELOG_OFFSET_BEGINNING); /* active at once */
	CHECK_INT(partitions_writable(t, 1), PROFILE_UNAVAILABLE);                 /* not claimed */
	CHECK_INT(partitions_wait(t, 1, PARTITION_WRITABLE, &writer.w, on_wake), PROFILE_UNAVAILABLE);
	fence_asked = 0;
	partitions_claim(t, 1, 1);
	CHECK_INT(fence_asked, 1); /* claimed and active: fencing is asked for, once */
	partitions_tick(t);
	CHECK_INT(fence_asked, 1);
	CHECK_INT(partitions_wait(t, 1, PARTITION_WRITABLE, &writer.w, on_wake), PROFILE_ABORTED);
	partitions_fence_written(t, 1, fence_gen + 1, 3); /* another claim's: ignored */
	CHECK_INT(partitions_writable(t, 1), PROFILE_UNAVAILABLE);
	partitions_fence_written(t, 1, fence_gen, 3); /* the log ended at 3 then... */
	CHECK_INT(writer.woken, 0);                   /* ...and the store has not read it */
	feed(t, 1, 0, 1);
	CHECK_INT(writer.woken, 0);
	/* Offset 2 is a commit marker the consumer never hands over: the end
	 * of the partition tells that everything before 3 was read. */
	partitions_on_caught_up(t, 1, 3);
	CHECK_INT(writer.woken, 1);
	CHECK_INT(writer.status, PROFILE_OK);
	CHECK_INT(partitions_writable(t, 1), PROFILE_OK);

	/* A failed fencing is asked for again by the tick; a release tells the
	 * node, and the writers waiting. */
	released = 0;
	partitions_claim(t, 1, 0);
	CHECK_INT(released, 1);
	partitions_claim(t, 1, 1);
	CHECK_INT(fence_asked, 2);
	partitions_fence_written(t, 1, fence_gen, -1);
	partitions_tick(t);
	CHECK_INT(fence_asked, 3);
	CHECK_INT(partitions_wait(t, 1, PARTITION_WRITABLE, &stale_gen.w, on_wake), PROFILE_ABORTED);
	partitions_claim(t, 1, 0); /* released: the writer is told */
	CHECK_INT(released, 2);
	CHECK_INT(stale_gen.woken, 1);
	CHECK_INT(stale_gen.status, PROFILE_UNAVAILABLE);
}

static void
test_own_transactions_apply_on_acknowledgement(partitions *t)
{
	store_record first[] = {{3, uid, 36, NULL, 0}, {4, uid, 36, NULL, 0}};
	store_record next = {6, uid, 36, NULL, 0}, foreign = {9, uid, 36, NULL, 0};
	waiter w = {0};
	partition_info info[2];

	partitions_claim(t, 1, 1);
	partitions_fence_written(t, 1, fence_gen, 3); /* read up to 2 already */
	CHECK_INT(partitions_writable(t, 1), PROFILE_OK);
	/* A transaction committed at 3 and 4 (its marker at 5), then one at 6:
	 * both applied from their acknowledgements. */
	CHECK_INT(partitions_wait_applied(t, 1, 6, &w.w, on_wake), PROFILE_ABORTED);
	partitions_on_acked(t, 1, first, 2);
	partitions_on_acked(t, 1, &next, 1);
	CHECK_INT(w.woken, 1);
	CHECK_INT(w.status, PROFILE_OK);
	partitions_info(t, NULL, info);
	CHECK_INT(info[1].applied, 6);
	/* Past the one marker, a gap is not this node's to skip: the
	 * consumer reads it. */
	partitions_on_acked(t, 1, &foreign, 1);
	partitions_info(t, NULL, info);
	CHECK_INT(info[1].applied, 6);
}

/* A committed write waiting for its store is answered OK when the
 * partition moves: it is in the log for good. */
static void
test_a_revoke_keeps_committed_writes(partitions *t)
{
	waiter landed = {0}, lost = {0};

	CHECK_INT(partitions_wait_applied(t, 1, 9, &landed.w, on_wake), PROFILE_ABORTED);
	partitions_on_revoked(t, 1, 0);
	CHECK_INT(landed.woken, 1);
	CHECK_INT(landed.status, PROFILE_OK);
	CHECK_INT(partitions_on_assigned(t, 1, 0, 7), 6);
	feed(t, 1, 6, 6); /* verified: the record it stored last */
	CHECK_INT(partitions_wait_applied(t, 1, 9, &lost.w, on_wake), PROFILE_ABORTED);
	partitions_on_revoked(t, 1, 1);
	CHECK_INT(lost.woken, 1);
	CHECK_INT(lost.status, PROFILE_OK);
	CHECK_INT(partitions_wait_applied(t, 1, 9, &lost.w, on_wake), PROFILE_OK); /* not followed */
}

/* A store that cannot be opened (here a directory stands where its file
 * goes) leaves the partition unavailable, not restoring: reads are refused
 * as such, records are not applied, and partitions_on_idle opens it again
 * once it can, from where the consumer must resume. */
static void
test_a_store_that_cannot_be_opened_is_retried(const char *base)
{
	char dir[256], blocker[300];
	partition_info info;
	partitions *t;

	snprintf(dir, sizeof dir, "%s/failing", base);
	CHECK_INT(partitions_new(&t, dir, NULL, 1), PROFILE_OK);
	snprintf(blocker, sizeof blocker, "%s/profiles-0.kch", dir);
	CHECK_INT(mkdir(blocker, 0755), 0);
	CHECK_INT(partitions_on_assigned(t, 0, 0, 3), CHANGELOG_OFFSET_BEGINNING);
	CHECK_INT(partitions_owned(t, 0), 1);
	CHECK_INT(readable(t, 0), PROFILE_FAILED_PRECONDITION);
	partitions_info(t, NULL, &info);
	CHECK_INT(info.failed, 1);
	CHECK(strstr(info.problem, "store cannot be opened") != NULL);
	feed(t, 0, 0, 2); /* not applied: fed again after recovery */
	partitions_info(t, NULL, &info);
	CHECK_INT(info.applied, -1);
	CHECK_INT(info.active, 0);
	CHECK_INT(partitions_on_idle(t, 0), CHANGELOG_CONTINUE); /* not due yet */

	CHECK_INT(rmdir(blocker), 0);
	usleep(1100 * 1000);
	CHECK_INT(partitions_on_idle(t, 0), CHANGELOG_OFFSET_BEGINNING);
	partitions_info(t, NULL, &info);
	CHECK_INT(info.failed, 0);
	feed(t, 0, 0, 2);
	CHECK_INT(readable(t, 0), PROFILE_OK);
	partitions_free(t);
}

/* With --lost-read-ms, a partition lost while active still answers reads
 * from its store until the time is up (partitions_tick closes it). */
static void
test_a_lost_partition_can_keep_answering_reads(const char *base)
{
	char dir[256];
	partitions *t;

	snprintf(dir, sizeof dir, "%s/held", base);
	CHECK_INT(partitions_new(&t, dir, NULL, 1), PROFILE_OK);
	partitions_set_lost_read_ms(t, 300);
	CHECK_INT(partitions_on_assigned(t, 0, 0, 0), CHANGELOG_OFFSET_BEGINNING);
	CHECK_INT(readable(t, 0), PROFILE_OK);
	partitions_on_revoked(t, 0, 1);
	CHECK_INT(readable(t, 0), PROFILE_OK);
	CHECK_INT(partitions_owned(t, 0), 1);
	usleep(400 * 1000);
	partitions_tick(t);
	CHECK_INT(readable(t, 0), PROFILE_UNAVAILABLE);
	CHECK_INT(partitions_owned(t, 0), 0);
	/* An orderly revoke never keeps it. */
	CHECK_INT(partitions_on_assigned(t, 0, 0, 0), CHANGELOG_OFFSET_BEGINNING);
	partitions_on_revoked(t, 0, 0);
	CHECK_INT(readable(t, 0), PROFILE_UNAVAILABLE);
	partitions_free(t);
}

/* A stall, on made-up clocks; then on the table, whose reads it stops. */
static void
test_a_stall_stops_reads_until_the_group_is_heard_from(partitions *t)
{
	stall s;
	int64_t now;

	stall_init(&s, 5000, 1500);
	CHECK_INT(stall_suspect(&s, 1000000), 0); /* not watched yet */
	CHECK_INT(stall_tick(&s, 1000), 0);
	for (now = 1100; now <= 3000; now += 100)
		CHECK_INT(stall_tick(&s, now), 0);
	now -= 100; /* the last tick */
	CHECK_INT(stall_suspect(&s, now), 0);
	/* Resumed, before the watch ran again: already suspect. */
	CHECK_INT(stall_suspect(&s, now + 4900), 0);
	CHECK_INT(stall_suspect(&s, now + 5000), 1);
	/* The watch runs: a stall of 5 s. */
	now += 5000;
	CHECK_INT(stall_tick(&s, now), 5000);
	CHECK_INT(stall_suspect(&s, now), 1);
	CHECK_INT(stall_polled(&s, now + 1499), 0);
	CHECK_INT(stall_tick(&s, now + 100), 0);
	CHECK_INT(stall_suspect(&s, now + 1499), 1);
	CHECK_INT(stall_polled(&s, now + 1500), 1);
	CHECK_INT(stall_suspect(&s, now + 1500), 0);
	CHECK_INT(stall_polled(&s, now + 1600), 0); /* once */

	/* The table: an active partition is read, then not while stalled. */
	CHECK_INT(partitions_on_assigned(t, 1, 0, 0), CHANGELOG_OFFSET_BEGINNING);
	CHECK_INT(readable(t, 1), PROFILE_OK);
	stall_init(partitions_stall(t), 5000, 1500);
	now = stall_now_ms();
	CHECK_INT(stall_tick(partitions_stall(t), now - 6000), 0);
	CHECK_INT(readable(t, 1), PROFILE_UNAVAILABLE); /* the watch is late */
	CHECK_INT(stall_tick(partitions_stall(t), now) > 0, 1);
	CHECK_INT(readable(t, 1), PROFILE_UNAVAILABLE); /* until heard from */
	CHECK_INT(stall_polled(partitions_stall(t), now + 1500), 1);
	CHECK_INT(readable(t, 1), PROFILE_OK);
	stall_init(partitions_stall(t), 5000, 1500); /* unwatched again */
	partitions_on_revoked(t, 1, 0);
}

/* The read lease, on made-up clocks; then on the table: an owned
 * partition is read only while the lease runs. */
static void
test_reads_of_owned_partitions_stop_when_the_lease_runs_out(partitions *t)
{
	stall s;
	int64_t now;

	stall_init(&s, 5000, 1500);
	CHECK_INT(stall_leased(&s, 1000), 1); /* no lease: always */
	stall_lease(&s, 4000);
	CHECK_INT(stall_leased(&s, 1000), 0); /* none granted yet */
	stall_renewed(&s, 1000);
	CHECK_INT(stall_leased(&s, 4999), 1);
	CHECK_INT(stall_leased(&s, 5000), 0);
	stall_renewed(&s, 3000);
	CHECK_INT(stall_leased(&s, 6999), 1);
	stall_renewed(&s, 2000); /* an older commit's answer, late: the lease only grows */
	CHECK_INT(stall_leased(&s, 6999), 1);
	CHECK_INT(stall_leased(&s, 7000), 0);

	CHECK_INT(partitions_on_assigned(t, 1, 0, 0), CHANGELOG_OFFSET_BEGINNING);
	CHECK_INT(readable(t, 1), PROFILE_OK);
	stall_lease(partitions_stall(t), 4000);
	now = stall_now_ms();
	CHECK_INT(readable(t, 1), PROFILE_UNAVAILABLE); /* not granted yet */
	stall_renewed(partitions_stall(t), now);
	CHECK_INT(readable(t, 1), PROFILE_OK);
	stall_init(partitions_stall(t), 5000, 1500);
	stall_lease(partitions_stall(t), 4000);
	stall_renewed(partitions_stall(t), now - 4000); /* sent 4 s ago: run out */
	CHECK_INT(readable(t, 1), PROFILE_UNAVAILABLE);
	stall_init(partitions_stall(t), 5000, 1500); /* no lease again */
	partitions_on_revoked(t, 1, 0);
}

int
main(void)
{
	char dir[] = "/tmp/test_partition.XXXXXX";
	partitions *t;

	if (mkdtemp(dir) == NULL)
		return 1;
	CHECK_INT(partitions_new(&t, dir, NULL, 2), PROFILE_OK);
	test_restoring_until_the_log_end_then_active(t);
	test_an_empty_log_is_active_at_once(t);
	test_revocation_wakes_waiters_unavailable_and_cancel_silences_one(t);
	test_a_partition_that_comes_back_resumes_from_its_store(t);
	test_writable_once_earlier_writers_are_fenced_and_read(t);
	test_own_transactions_apply_on_acknowledgement(t);
	test_a_revoke_keeps_committed_writes(t);
	test_a_stall_stops_reads_until_the_group_is_heard_from(t);
	test_reads_of_owned_partitions_stop_when_the_lease_runs_out(t);
	partitions_free(t);
	test_a_store_that_cannot_be_opened_is_retried(dir);
	test_a_lost_partition_can_keep_answering_reads(dir);
	partitions_free(NULL);
	{
		char cmd[64];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return check_done("test_partition");
}
