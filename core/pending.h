/* pending.h: the calls a node holds while they wait.
 *
 * A call that cannot be answered at once (a write, a read of a restoring
 * partition) is a pending_call embedded in its operation's own struct. The
 * table keeps every such call on one live list, serializes writes per uid
 * (a second write to a uid waits behind the first), and runs the deadline
 * sweeper. The sweeper knows no operation by name: each call carries an ops
 * table (as nng's protocols do) that says what its deadline means for it.
 *
 * One lock guards the list, the per-uid queues and whatever fields the
 * operations choose to guard with it (pending_lock); a call's ops->expire
 * runs under it, everything else the table calls runs without it.
 */
#ifndef PROFILE_PENDING_H
#define PROFILE_PENDING_H

#include <stdint.h>

#include "reply.h"
#include "wire.h"

typedef struct pending pending;
typedef struct pending_call pending_call;

/* What the sweeper does with a call past its deadline (see expire). */
enum {
	PENDING_SKIP,   /* nothing now (its own path answers it) */
	PENDING_TAKE,   /* the call is the sweeper's: finish runs, and ends it */
	PENDING_ANSWER, /* answer *out now; the call stays and finishes on its own */
};

/* Where and how the sweeper answers for a call it does not take. */
typedef struct pending_answer {
	reply_fn done;
	void *arg;
	uint64_t id;
	int status;
	const char *msg; /* static */
} pending_answer;

typedef struct pending_ops {
	/* Under the table's lock, for a call not yet answered whose deadline
	 * passed (all = 0) or at close (all = 1). Decides, and may change the
	 * call's state (or leave the table: pending_leave_locked), but must not
	 * call out. Returns PENDING_SKIP, PENDING_TAKE (finish will run) or
	 * PENDING_ANSWER (fill *out; the table marks the call answered). */
	int (*expire)(pending_call *c, int all, pending_answer *out);
	/* After the lock is released, for a call expire took. */
	void (*finish)(pending_call *c);
	/* At close, for each call still live after the last sweep (one that
	 * Kafka will never report on now): free it; it was answered. */
	void (*drop)(pending_call *c);
} pending_ops;

/* Embedded in the operation; the fields below ops are the table's. */
struct pending_call {
	const pending_ops *ops;
	int64_t deadline; /* monotonic ms */
	int replied;      /* under the lock: an answer was given */
	int queued;       /* under the lock: waiting behind another write */
	pending_call *prev, *next;
	pending_call *qnext; /* next write to the same uid */
	struct pending_key *key;
};

/* A table with its sweeper running. PROFILE_OK and *out, or
 * PROFILE_RESOURCE_EXHAUSTED (nothing is left allocated). */
int pending_new(pending **out);

/* Stops the sweeper, expires every live call as at its deadline (all = 1),
 * drops what is left, frees. NULL is a no-op. */
void pending_free(pending *pd);

void pending_lock(pending *pd);
void pending_unlock(pending *pd);

/* Adds c (ops and deadline set) to the live list. */
void pending_add(pending *pd, pending_call *c);

/* Puts c in the queue of writes to uid. 1: c runs now (no other write to
 * uid is live); 0: c waits behind another (c->queued is set until
 * pending_leave of the one before it hands it on); -1: out of memory. */
int pending_enter(pending *pd, pending_call *c, const char *uid);

/* Removes c from the live list and from its uid's queue. Returns the write
 * that may run next for that uid, if c was the running one, else NULL. */
pending_call *pending_leave(pending *pd, pending_call *c);

/* The same, with the lock already held (for expire). */
pending_call *pending_leave_locked(pending *pd, pending_call *c);

/* Marks c answered. 1 when it was not yet (the caller answers now); 0 when
 * the sweeper already answered it. */
int pending_claim_reply(pending *pd, pending_call *c);

/* Calls tick(arg) from the sweeper's thread every every_ms (about), with
 * no lock held: the node's periodic chores. */
void pending_set_tick(pending *pd, void (*tick)(void *arg), void *arg, int every_ms);

#endif
