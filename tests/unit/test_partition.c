/* test_partition.c: the partition table (core/partition.c): a partition is
 * restoring until its store reaches the log end seen at assignment, reads
 * are refused meanwhile (never answered from a store that is behind), and
 * waiters are woken when it becomes active, when an offset is applied, or,
 * with UNAVAILABLE, when it is revoked; a cancelled waiter is never woken.
 * Writing: a claimed partition asks for its fence record and is writable
 * once that record is applied; a write is told whether it was applied or
 * fenced by a newer fence, also when the partition was lost first (read on
 * by the tracer). Stalls: a gap between the watch's ticks as long as the
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
		recs[n++] = (store_record){o, uid, 36, NULL, 0, -1};
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
static int64_t trace_from = -1;

static void
on_trace(void *arg, int32_t p, int64_t from)
{
	(void)arg;
	(void)p;
	trace_from = from;
}

static void
on_need_fence(void *arg, int32_t p, uint64_t gen)
{
	(void)arg;
	(void)p;
	fence_asked++;
	fence_gen = gen;
}

/* Feeds one record at offset: a fence record, or a tombstone of uid
 * stamped with token. */
static void
feed_one(partitions *t, int32_t p, int64_t offset, int is_fence, int64_t token)
{
	store_record r = {offset, is_fence ? FENCE_KEY : uid, is_fence ? FENCE_KEY_LEN : 36, NULL, 0, token};

	CHECK_INT(partitions_on_records(t, p, &r, 1), CHANGELOG_CONTINUE);
}

static void
test_writable_once_its_own_fence_is_applied(partitions *t)
{
	partition_hooks h = {.need_fence = on_need_fence, .trace = on_trace};
	waiter writer = {0}, stale_gen = {0};
	int64_t token = 0;

	partitions_set_hooks(t, &h, 1);
	CHECK_INT(partitions_on_assigned(t, 1, 0, 0), CHANGELOG_OFFSET_BEGINNING); /* active at once */
	CHECK_INT(partitions_write_token(t, 1, &token), PROFILE_UNAVAILABLE);      /* not claimed */
	CHECK_INT(partitions_wait(t, 1, PARTITION_WRITABLE, &writer.w, on_wake), PROFILE_UNAVAILABLE);
	fence_asked = 0;
	partitions_claim(t, 1, 1);
	CHECK_INT(fence_asked, 1); /* claimed and active: a fence record is asked for, once */
	partitions_tick(t);
	CHECK_INT(fence_asked, 1);
	CHECK_INT(partitions_wait(t, 1, PARTITION_WRITABLE, &writer.w, on_wake), PROFILE_ABORTED);
	partitions_fence_written(t, 1, fence_gen + 1, 0); /* another claim's: ignored */
	CHECK_INT(partitions_write_token(t, 1, &token), PROFILE_UNAVAILABLE);
	partitions_fence_written(t, 1, fence_gen, 0); /* ours landed at 0... */
	CHECK_INT(writer.woken, 0);                   /* ...but is not applied yet */
	feed_one(t, 1, 0, 1, -1);
	CHECK_INT(writer.woken, 1);
	CHECK_INT(writer.status, PROFILE_OK);
	CHECK_INT(partitions_write_token(t, 1, &token), PROFILE_OK);
	CHECK_INT(token, 0);

	/* A failed fence write is asked for again by the tick. */
	partitions_claim(t, 1, 0);
	partitions_claim(t, 1, 1);
	CHECK_INT(fence_asked, 2);
	partitions_fence_written(t, 1, fence_gen, -1);
	partitions_tick(t);
	CHECK_INT(fence_asked, 3);
	CHECK_INT(partitions_wait(t, 1, PARTITION_WRITABLE, &stale_gen.w, on_wake), PROFILE_ABORTED);
	partitions_claim(t, 1, 0); /* released: the writer is told */
	CHECK_INT(stale_gen.woken, 1);
	CHECK_INT(stale_gen.status, PROFILE_UNAVAILABLE);
}

static void
test_a_write_after_a_newer_fence_is_fenced(partitions *t)
{
	waiter before = {0}, after = {0}, lost = {0}, lost7 = {0}, late = {0};

	/* Partition 1: our fence at 0 (above). Our writes at 1 and 3; another
	 * node's fence lands at 2, between them. */
	CHECK_INT(partitions_wait_applied(t, 1, 1, 0, &before.w, on_wake), PROFILE_ABORTED);
	CHECK_INT(partitions_wait_applied(t, 1, 3, 0, &after.w, on_wake), PROFILE_ABORTED);
	feed_one(t, 1, 1, 0, 0);
	CHECK_INT(before.woken, 1);
	CHECK_INT(before.status, PROFILE_OK);
	feed_one(t, 1, 2, 1, -1);
	feed_one(t, 1, 3, 0, 0);
	CHECK_INT(after.woken, 1);
	CHECK_INT(after.status, PROFILE_FAILED_PRECONDITION);
	/* Asked again after the fact, the answers stay the same. */
	CHECK_INT(partitions_wait_applied(t, 1, 1, 0, &before.w, on_wake), PROFILE_OK);
	CHECK_INT(partitions_wait_applied(t, 1, 3, 0, &after.w, on_wake), PROFILE_FAILED_PRECONDITION);

	/* Writes still in flight when the partition is lost (5, 7), and one
	 * delivered after (9): the node reads the partition on from where its
	 * store stopped, and each is told its fate there. */
	CHECK_INT(partitions_wait_applied(t, 1, 5, 2, &lost.w, on_wake), PROFILE_ABORTED);
	CHECK_INT(partitions_wait_applied(t, 1, 7, 2, &lost7.w, on_wake), PROFILE_ABORTED);
	trace_from = -1;
	partitions_on_revoked(t, 1, 1);
	CHECK_INT(lost.woken, 0);
	CHECK_INT(trace_from, 4);
	CHECK_INT(partitions_wait_applied(t, 1, 9, 2, &late.w, on_wake), PROFILE_ABORTED);
	{
		store_record recs[] = {
		    {4, uid, 36, NULL, 0, 2},                  /* another of ours */
		    {5, uid, 36, NULL, 0, 2},                  /* ours: before any newer fence */
		    {6, FENCE_KEY, FENCE_KEY_LEN, "n", 1, -1}, /* the next owner's fence */
		    {7, uid, 36, NULL, 0, 2},                  /* ours: after it */
		};
		CHECK_INT(partitions_on_traced(t, 1, recs, 4), 1); /* 9 still waits */
	}
	CHECK_INT(lost.woken, 1);
	CHECK_INT(lost.status, PROFILE_OK);
	CHECK_INT(lost7.woken, 1);
	CHECK_INT(lost7.status, PROFILE_FAILED_PRECONDITION);
	CHECK_INT(late.woken, 0);
	{
		store_record r = {9, uid, 36, NULL, 0, 2};
		CHECK_INT(partitions_on_traced(t, 1, &r, 1), 0);
	}
	CHECK_INT(late.woken, 1);
	CHECK_INT(late.status, PROFILE_FAILED_PRECONDITION);
}

static void
test_an_orderly_revoke_keeps_writes_that_landed(partitions *t)
{
	waiter landed = {0};

	CHECK_INT(partitions_on_assigned(t, 1, 0, 4), 3);
	feed_one(t, 1, 3, 0, 0); /* verified: the record it stored last */
	CHECK_INT(partitions_wait_applied(t, 1, 7, 2, &landed.w, on_wake), PROFILE_ABORTED);
	partitions_on_revoked(t, 1, 0);
	CHECK_INT(landed.woken, 1);
	CHECK_INT(landed.status, PROFILE_OK); /* ahead of the next owner's fence */
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
	CHECK_INT(s.stalls, 1);

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
	test_writable_once_its_own_fence_is_applied(t);
	test_a_write_after_a_newer_fence_is_fenced(t);
	test_an_orderly_revoke_keeps_writes_that_landed(t);
	test_a_stall_stops_reads_until_the_group_is_heard_from(t);
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
