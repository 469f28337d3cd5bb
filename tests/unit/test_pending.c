/* test_pending.c: the pending-calls table (core/pending.c): writes to one
 * uid run one at a time in arrival order, the sweeper does what each call's
 * ops say when its deadline passes, and closing the table leaves nothing
 * unanswered or unfreed. */
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "pending.h"

typedef struct call {
	pending_call pc; /* first: a pending_call * is a call * */
	int decision;    /* what expire answers */
	int expired, finished, dropped;
	int expired_all;
} call;

static int answers, last_status;
static pending *table; /* the table of the test running */

static void
on_answer(void *arg, const Profile__V1__Response *resp)
{
	(void)arg;
	__atomic_add_fetch(&answers, 1, __ATOMIC_SEQ_CST);
	last_status = (int)resp->status;
}

static int
expire(pending_call *c, int all, pending_answer *out)
{
	call *k = (call *)c;

	k->expired++;
	k->expired_all |= all;
	if (k->decision == PENDING_ANSWER)
		*out = (pending_answer){on_answer, k, 7, PROFILE_DEADLINE_EXCEEDED, "late"};
	return k->decision;
}

/* As an operation does: a taken call ends, and leaves the table. */
static void
finish(pending_call *c)
{
	(void)pending_leave(table, c);
	__atomic_add_fetch(&((call *)c)->finished, 1, __ATOMIC_SEQ_CST);
}

static void
drop(pending_call *c)
{
	((call *)c)->dropped++;
}

static const pending_ops ops = {expire, finish, drop};

static void
call_init(call *k, int64_t deadline, int decision)
{
	memset(k, 0, sizeof *k);
	k->pc.ops = &ops;
	k->pc.deadline = deadline;
	k->decision = decision;
}

/* Waits (bounded) until *v is at least want. */
static int
wait_for(int *v, int want)
{
	struct timespec pause = {0, 5 * 1000000L};

	for (int i = 0; i < 400 && __atomic_load_n(v, __ATOMIC_SEQ_CST) < want; i++)
		nanosleep(&pause, NULL);
	return __atomic_load_n(v, __ATOMIC_SEQ_CST);
}

static void
test_writes_to_one_uid_run_one_at_a_time_in_order(void)
{
	const char *u1 = "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", *u2 = "00000000-0000-4000-8000-000000000000";
	int64_t later = wire_mono_ms() + 60000;
	call a, b, c, d;
	pending *pd;

	CHECK_INT(pending_new(&pd), PROFILE_OK);
	call_init(&a, later, PENDING_SKIP);
	call_init(&b, later, PENDING_SKIP);
	call_init(&c, later, PENDING_SKIP);
	call_init(&d, later, PENDING_SKIP);
	pending_add(pd, &a.pc);
	pending_add(pd, &b.pc);
	pending_add(pd, &c.pc);
	pending_add(pd, &d.pc);
	CHECK_INT(pending_enter(pd, &a.pc, u1), 1);
	CHECK_INT(pending_enter(pd, &b.pc, u1), 0); /* behind a */
	CHECK_INT(pending_enter(pd, &c.pc, u2), 1); /* another uid runs at once */
	CHECK_INT(pending_enter(pd, &d.pc, u1), 0); /* behind b */
	CHECK(b.pc.queued && d.pc.queued && !a.pc.queued);
	/* a ends: b is handed on (no longer queued), d still waits. */
	CHECK(pending_leave(pd, &a.pc) == &b.pc);
	CHECK(!b.pc.queued && d.pc.queued);
	/* A queued write that leaves (its deadline passed) hands nothing on. */
	CHECK(pending_leave(pd, &d.pc) == NULL);
	CHECK(pending_leave(pd, &b.pc) == NULL);
	CHECK(pending_leave(pd, &c.pc) == NULL);
	/* The uid's queue is gone: the next write to it runs at once. */
	pending_add(pd, &a.pc);
	CHECK_INT(pending_enter(pd, &a.pc, u1), 1);
	CHECK(pending_leave(pd, &a.pc) == NULL);
	pending_free(pd);
	CHECK_INT(a.expired + b.expired + c.expired + d.expired, 0);
}

static void
test_the_sweeper_does_what_each_call_decides(void)
{
	int64_t now = wire_mono_ms();
	call answered, taken, skipped, waiting;
	pending *pd;

	answers = 0;
	CHECK_INT(pending_new(&pd), PROFILE_OK);
	table = pd;
	call_init(&answered, now - 1, PENDING_ANSWER);
	call_init(&taken, now - 1, PENDING_TAKE);
	call_init(&skipped, now - 1, PENDING_SKIP);
	call_init(&waiting, now + 60000, PENDING_ANSWER);
	pending_add(pd, &answered.pc);
	pending_add(pd, &taken.pc);
	pending_add(pd, &skipped.pc);
	pending_add(pd, &waiting.pc);
	CHECK_INT(wait_for(&answers, 1), 1);
	CHECK_INT(last_status, PROFILE_DEADLINE_EXCEEDED);
	CHECK_INT(wait_for(&taken.finished, 1), 1);
	/* Answered by the sweeper: marked, so its own path will not answer
	 * again, and not expired twice. */
	CHECK_INT(pending_claim_reply(pd, &answered.pc), 0);
	CHECK_INT(answered.expired, 1);
	/* Skipped calls are asked again at the next sweep. */
	CHECK(wait_for(&skipped.expired, 2) >= 2);
	CHECK_INT(waiting.expired, 0);
	/* A call not answered yet can be claimed once. */
	CHECK_INT(pending_claim_reply(pd, &waiting.pc), 1);
	CHECK_INT(pending_claim_reply(pd, &waiting.pc), 0);
	pending_free(pd);
	CHECK_INT(answers, 1);
	CHECK_INT(taken.finished, 1); /* taken once, gone */
	CHECK_INT(taken.dropped, 0);
}

static void
test_closing_expires_every_call_then_drops_what_is_left(void)
{
	int64_t later = wire_mono_ms() + 60000;
	call left, answered;
	pending *pd;

	answers = 0;
	CHECK_INT(pending_new(&pd), PROFILE_OK);
	call_init(&left, later, PENDING_SKIP);
	call_init(&answered, later, PENDING_ANSWER);
	pending_add(pd, &left.pc);
	pending_add(pd, &answered.pc);
	pending_free(pd);
	/* Both were asked as at their deadline (all = 1); the one that asked
	 * to be answered was; both were then handed back to be freed. */
	CHECK(left.expired_all && answered.expired_all);
	CHECK_INT(answers, 1);
	CHECK_INT(left.dropped, 1);
	CHECK_INT(answered.dropped, 1);
	pending_free(NULL);
}

int
main(void)
{
	test_writes_to_one_uid_run_one_at_a_time_in_order();
	test_the_sweeper_does_what_each_call_decides();
	test_closing_expires_every_call_then_drops_what_is_left();
	return check_done("test_pending");
}
