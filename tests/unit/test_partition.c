/* test_partition.c: the partition table (core/partition.c): a partition is
 * restoring until its store reaches the log end seen at assignment, reads
 * are refused meanwhile (never answered from a store that is behind), and
 * waiters are woken when it becomes active, when an offset is applied, or,
 * with UNAVAILABLE, when it is revoked; a cancelled waiter is never woken.
 */
#include <stdlib.h>

#include "check.h"
#include "partition.h"

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
	int rc = partitions_read_begin(t, p, &s);

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
	partitions_on_revoked(t, 1);
}

static void
test_revocation_wakes_waiters_unavailable_and_cancel_silences_one(partitions *t)
{
	waiter kept = {0}, cancelled = {0};

	CHECK_INT(partitions_wait(t, 0, 100, &kept.w, on_wake), PROFILE_ABORTED);
	CHECK_INT(partitions_wait(t, 0, 100, &cancelled.w, on_wake), PROFILE_ABORTED);
	CHECK_INT(partitions_cancel(t, 0, &cancelled.w), 1);
	partitions_on_revoked(t, 0);
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
	partitions_on_revoked(t, 0);
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
	partitions_free(t);
	partitions_free(NULL);
	{
		char cmd[64];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return check_done("test_partition");
}
