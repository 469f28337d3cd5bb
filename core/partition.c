/* partition.c: ownership, restore state and waiters per partition
 * (partition.h); the writing side is in fencing.c.
 *
 * Locks: each partition has a mutex for its state and waiter list, and a
 * rwlock that readers hold while they use its store, so that revocation
 * (which closes the store) waits for them. Waiters are woken after both are
 * released.
 */
#include "partition_impl.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "wire.h"

int
partitions_new(partitions **out, const char *dir, const char *tune, int32_t count)
{
	partitions *t;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		log_error("store: cannot create %s: %s", dir, strerror(errno));
		return PROFILE_INTERNAL;
	}
	if ((t = calloc(1, sizeof *t)) == NULL ||
	    (t->parts = calloc((size_t)count, sizeof *t->parts)) == NULL) {
		free(t);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	t->dir = strdup(dir);
	t->tune = strdup(tune ? tune : "");
	if (t->dir == NULL || t->tune == NULL) {
		free(t->dir);
		free(t->tune);
		free(t->parts);
		free(t);
		return PROFILE_RESOURCE_EXHAUSTED;
	}
	t->count = count;
	for (int32_t i = 0; i < count; i++) {
		pthread_mutex_init(&t->parts[i].mu, NULL);
		pthread_rwlock_init(&t->parts[i].rw, NULL);
		t->parts[i].applied = -1;
		t->parts[i].hi = -1;
		t->parts[i].fenced_end = -1;
		t->parts[i].own_last = -1;
	}
	t->fencing = 1;
	t->keep_damaged = 3;
	t->lost_read_ms = 0;
	*out = t;
	return PROFILE_OK;
}

void
partitions_free(partitions *t)
{
	if (t == NULL)
		return;
	for (int32_t i = 0; i < t->count; i++) {
		store_close(t->parts[i].st);
		pthread_mutex_destroy(&t->parts[i].mu);
		pthread_rwlock_destroy(&t->parts[i].rw);
	}
	free(t->parts);
	free(t->dir);
	free(t->tune);
	free(t);
}

void
partitions_set_keep_damaged(partitions *t, int keep)
{
	t->keep_damaged = keep < 0 ? 0 : keep;
}

void
partitions_set_lost_read_ms(partitions *t, int ms)
{
	t->lost_read_ms = ms < 0 ? 0 : ms;
}

/* Closes the store p kept after losing it (expired_only: only once its
 * time is up). */
void
pt_release_held(partitions *t, int32_t p, int expired_only)
{
	part *pt = &t->parts[p];
	int due;

	pthread_mutex_lock(&pt->mu);
	due = pt->held && (!expired_only || wire_mono_ms() >= pt->held_until);
	pthread_mutex_unlock(&pt->mu);
	if (!due)
		return;
	pthread_rwlock_wrlock(&pt->rw);
	pthread_mutex_lock(&pt->mu);
	if (pt->held && (!expired_only || wire_mono_ms() >= pt->held_until)) {
		pt->held = 0;
		store_close(pt->st);
		pt->st = NULL;
		if (expired_only)
			log_info("partition %d: no longer answering reads from the store kept since it was lost",
			         (int)p);
	}
	pthread_mutex_unlock(&pt->mu);
	pthread_rwlock_unlock(&pt->rw);
}

int32_t
partitions_count(const partitions *t)
{
	return t->count;
}

/* Under pt->mu: the status w is woken with, or -1 while it must wait. */
static int
ready(const partitions *t, const part *pt, const partition_waiter *w)
{
	if (pt->failed && w->offset < 0)
		return PROFILE_UNAVAILABLE; /* cannot read or write here now */
	if (w->offset == PARTITION_WRITABLE)
		return pt_writable(t, pt) ? PROFILE_OK : -1;
	if (!pt->active)
		return -1;
	if (w->offset == PARTITION_ACTIVE)
		return PROFILE_OK;
	return pt->applied < w->offset ? -1 : PROFILE_OK;
}

/* The status a waiter gets when p is revoked: a write waits to be applied
 * only once its transaction committed, so it is in the log for good, and
 * the next owner reads it before it writes. */
static int
revoked_status(const partition_waiter *w)
{
	return w->write ? PROFILE_OK : PROFILE_UNAVAILABLE;
}

/* Takes, under pt->mu, the waiters to wake, each with its status set: all
 * when p is revoked (how: REVOKED or LOST), else those that are ready.
 * Writers waiting to write are taken, with UNAVAILABLE, when p is not
 * claimed. */
partition_waiter *
pt_take_waiters(const partitions *t, part *pt, int how)
{
	partition_waiter *wake = NULL, **pp = &pt->waiters;

	while (*pp) {
		partition_waiter *w = *pp;
		int st = how != KEPT ? revoked_status(w) : ready(t, pt, w);

		if (st < 0 && w->offset == PARTITION_WRITABLE && !pt->claimed)
			st = PROFILE_UNAVAILABLE;
		if (st >= 0) {
			*pp = w->next;
			w->queued = 0;
			w->status = st;
			w->next = wake;
			wake = w;
		} else {
			pp = &w->next;
		}
	}
	return wake;
}

void
pt_wake_all(partition_waiter *w)
{
	while (w) {
		partition_waiter *next = w->next;
		w->wake(w, w->status);
		w = next;
	}
}

/* Under pt->mu: a store opened again after failing has worked (applied a
 * batch, or caught up with nothing to apply). */
static void
store_works(part *pt, int32_t p)
{
	if (!pt->recovering)
		return;
	log_info("partition %d: store works again after %.1f s", (int)p,
	         (double)(wire_mono_ms() - pt->failed_since) / 1000.0);
	pt->recovering = 0;
	pt->retry_ms = 0;
	pt->problem[0] = '\0';
}

/* Records replayed by partitions that became active since the last trim
 * (atomic). Past TRIM_AFTER, once no partition is restoring, the memory the
 * restore's buffers held goes back to the system (glibc keeps freed memory
 * otherwise: a restored node held 58 MiB at 2M profiles instead of what it
 * needs to serve). */
#define TRIM_AFTER 10000
static uint64_t trim_replayed;

static void
trim_after_restore(partitions *t)
{
	if (__atomic_load_n(&trim_replayed, __ATOMIC_ACQUIRE) < TRIM_AFTER)
		return;
	for (int32_t p = 0; p < t->count; p++) {
		part *pt = &t->parts[p];
		int restoring;

		pthread_mutex_lock(&pt->mu);
		restoring = pt->owned && !pt->active && !pt->failed;
		pthread_mutex_unlock(&pt->mu);
		if (restoring)
			return;
	}
	__atomic_store_n(&trim_replayed, 0, __ATOMIC_RELEASE);
	malloc_trim(0);
}

/* Under pt->mu: the partition becomes active once the store reached the
 * restore target. */
static void
maybe_activate(part *pt, int32_t p)
{
	if (pt->active || !pt->owned || pt->failed || !pt->target_known || pt->applied < pt->target)
		return;
	store_works(pt, p); /* also when it had nothing to apply */
	pt->active = 1;
	if (pt->replayed > 0)
		__atomic_add_fetch(&pt->restores, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&trim_replayed, pt->replayed, __ATOMIC_RELEASE);
	log_info("partition %d active: replayed %llu records, applied up to offset %lld", (int)p,
	         (unsigned long long)pt->replayed, (long long)pt->applied);
	if (pt->rebuild_start > 0) {
		log_info("partition %d: store rebuilt from the log in %.1f s (%llu records)", (int)p,
		         (double)(wire_mono_ms() - pt->rebuild_start) / 1000.0,
		         (unsigned long long)pt->replayed);
		pt->rebuild_start = 0;
	}
}

/* Moves p's store file aside (it is `what`, because `why`) and opens a
 * new, empty one. */
static int
rebuild_store(partitions *t, int32_t p, store **st, const char *what, const char *why, char *problem,
              size_t len)
{
	char moved[4300];
	int rc;

	store_close(*st);
	*st = NULL;
	if ((rc = store_set_aside(t->dir, p, t->keep_damaged, moved, sizeof moved)) != PROFILE_OK) {
		snprintf(problem, len, "store %s (%s) and cannot be moved aside", what, why);
		return rc;
	}
	log_warn("partition %d: store %s (%s): moved aside to %s; rebuilding it from the log", (int)p, what,
	         why, moved);
	if ((rc = store_open(st, t->dir, p, t->tune, problem, len)) != PROFILE_OK)
		return rc;
	t->parts[p].rebuild_start = wire_mono_ms();
	return PROFILE_OK;
}

/* Opens p's store, checked against the log's watermarks lo..hi (-1:
 * unknown); one that is damaged or does not fit the log is set aside and
 * a new one rebuilt. PROFILE_OK and *st, or the reason in problem. */
static int
open_store(partitions *t, int32_t p, int64_t lo, int64_t hi, store **st, char *problem, size_t len)
{
	char why[160], misfit[200];
	int64_t off;
	uint64_t fp;
	int rc;

	*st = NULL;
	t->parts[p].rebuild_start = 0;
	rc = store_open(st, t->dir, p, t->tune, why, sizeof why);
	if (rc == PROFILE_FAILED_PRECONDITION)
		rc = rebuild_store(t, p, st, "damaged", why, problem, len);
	else if (rc != PROFILE_OK)
		snprintf(problem, len, "store cannot be opened: %s", why);
	if (rc != PROFILE_OK)
		return rc;
	store_position(*st, &off, &fp);
	misfit[0] = '\0';
	if (off >= 0 && hi >= 0 && off >= hi)
		snprintf(misfit, sizeof misfit, "its offset %lld is past the end of the log (%lld)",
		         (long long)off, (long long)hi);
	else if (off >= 0 && lo > off + 1)
		snprintf(misfit, sizeof misfit,
		         "records after its offset %lld are no longer in the log (which starts at %lld)",
		         (long long)off, (long long)lo);
	if (misfit[0] != '\0')
		return rebuild_store(t, p, st, "does not fit the log", misfit, problem, len);
	return PROFILE_OK;
}

/* Under both locks: st becomes p's store (NULL: it failed, for `problem`),
 * restoring up to hi. The offset to consume p from. */
static int64_t
install_store(part *pt, int32_t p, store *st, int64_t hi, const char *problem)
{
	int64_t off = -1;
	uint64_t fp = 0;

	if (st != NULL)
		store_position(st, &off, &fp);
	pt->st = st;
	pt->owned = 1;
	pt->active = 0;
	pt->applied = off;
	pt->verify = off >= 0;
	pt->fingerprint = fp;
	pt->hi = hi;
	pt->target = hi - 1;
	pt->target_known = hi >= 0;
	pt->replayed = 0;
	if (st == NULL) {
		if (!pt->failed && !pt->recovering)
			pt->failed_since = wire_mono_ms();
		pt->failed = 1;
		pt->recovering = 0;
		pt->retry_ms = pt->retry_ms ? pt->retry_ms : STORE_RETRY_MS;
		pt->retry_at = wire_mono_ms() + pt->retry_ms;
		snprintf(pt->problem, sizeof pt->problem, "%s", problem);
	} else {
		/* Recovered once a batch applies (partitions_on_records). */
		pt->recovering = pt->failed;
		pt->failed = 0;
	}
	if (st != NULL && hi >= 0 && off >= hi - 1) {
		pt->target = off;
		maybe_activate(pt, p);
	}
	return off >= 0 ? off : CHANGELOG_OFFSET_BEGINNING;
}

int64_t
partitions_on_assigned(void *arg, int32_t p, int64_t lo, int64_t hi)
{
	partitions *t = arg;
	char problem[200] = "";
	part *pt;
	store *st;
	int64_t start;
	asks a;

	if (p < 0 || p >= t->count)
		return CHANGELOG_OFFSET_BEGINNING;
	pt = &t->parts[p];
	pt_release_held(t, p, 0);
	if (open_store(t, p, lo, hi, &st, problem, sizeof problem) != PROFILE_OK)
		log_error("partition %d: unavailable until its store can be used: %s", (int)p, problem);

	pthread_rwlock_wrlock(&pt->rw);
	pthread_mutex_lock(&pt->mu);
	pt->lo = lo;
	pt->failed = 0;
	pt->recovering = 0;
	pt->retry_ms = 0;
	pt->fenced_end = -1;
	pt->own_last = -1;
	start = install_store(pt, p, st, hi, problem);
	pt->fence_asked = 0;
	log_info("partition %d assigned: store at offset %lld, log end %lld", (int)p, (long long)pt->applied,
	         (long long)hi);
	a = pt_asks_for(t, pt);
	pthread_mutex_unlock(&pt->mu);
	pthread_rwlock_unlock(&pt->rw);
	pt_ask(t, p, a);
	return start;
}

int64_t
partitions_on_idle(void *arg, int32_t p)
{
	partitions *t = arg;
	char problem[200] = "";
	part *pt;
	store *st;
	int64_t start, lo, hi, now = wire_mono_ms();
	int retry;

	if (p < 0 || p >= t->count)
		return CHANGELOG_CONTINUE;
	if (p == 0)
		trim_after_restore(t);
	pt = &t->parts[p];
	pthread_mutex_lock(&pt->mu);
	retry = pt->owned && pt->failed && now >= pt->retry_at;
	lo = pt->lo;
	hi = pt->hi;
	pthread_mutex_unlock(&pt->mu);
	if (!retry)
		return CHANGELOG_CONTINUE;
	/* Open the store again (a failed write may have left the handle
	 * unusable; opening replays its transaction log), checked as at
	 * assignment, and resume from its position. */
	pthread_rwlock_wrlock(&pt->rw);
	pthread_mutex_lock(&pt->mu); /* pt->st is read under either lock */
	st = pt->st;
	pt->st = NULL;
	pthread_mutex_unlock(&pt->mu);
	store_close(st);
	if (open_store(t, p, lo, hi, &st, problem, sizeof problem) != PROFILE_OK) {
		pthread_mutex_lock(&pt->mu);
		pt->retry_ms = pt->retry_ms * 2 > STORE_RETRY_MAX_MS ? STORE_RETRY_MAX_MS : pt->retry_ms * 2;
		install_store(pt, p, NULL, hi, problem);
		pthread_mutex_unlock(&pt->mu);
		pthread_rwlock_unlock(&pt->rw);
		return CHANGELOG_CONTINUE;
	}
	pthread_mutex_lock(&pt->mu);
	start = install_store(pt, p, st, hi, NULL);
	log_info("partition %d: store opened again; applying from offset %lld", (int)p, (long long)pt->applied + 1);
	pthread_rwlock_unlock(&pt->rw);
	pt_settle_unlock(t, pt, p);
	return start;
}

void
partitions_on_revoked(void *arg, int32_t p, int lost)
{
	partitions *t = arg;
	partition_waiter *w;
	part *pt;
	int held, was_active, was_claimed;

	if (p < 0 || p >= t->count)
		return;
	pt = &t->parts[p];
	pthread_rwlock_wrlock(&pt->rw);
	pthread_mutex_lock(&pt->mu);
	was_active = pt->active;
	was_claimed = pt->claimed;
	pt->owned = 0;
	pt->active = 0;
	pt->claimed = 0;
	pt->gen++;
	pt->fenced_end = -1;
	pt->own_last = -1;
	w = pt_take_waiters(t, pt, lost ? LOST : REVOKED);
	/* A store that was serving keeps answering reads for a while after a
	 * loss: as when Kafka is away, and nobody can take p over meanwhile. */
	held = lost && t->lost_read_ms > 0 && pt->st != NULL && was_active && !pt->failed;
	if (held) {
		pt->held = 1;
		pt->held_until = wire_mono_ms() + t->lost_read_ms;
	} else {
		store_close(pt->st);
		pt->st = NULL;
	}
	pthread_mutex_unlock(&pt->mu);
	pthread_rwlock_unlock(&pt->rw);
	if (held)
		log_info("partition %d lost; its store answers reads for %d ms more", (int)p, t->lost_read_ms);
	else
		log_info("partition %d %s (store kept on disk)", (int)p, lost ? "lost" : "revoked");
	pt_wake_all(w);
	if (was_claimed && t->fencing && t->hooks.release)
		t->hooks.release(t->hooks.arg, p);
}

/* The store of p could not apply a batch: p is unavailable until
 * partitions_on_idle finds the store works again. */
static void
store_failed(partitions *t, part *pt, int32_t p)
{
	pthread_mutex_lock(&pt->mu);
	log_error("partition %d: store write failed at offset %lld (%s): the partition is unavailable "
	          "until the store works again; no record is skipped",
	          (int)p, (long long)pt->applied + 1, store_error(pt->st));
	snprintf(pt->problem, sizeof pt->problem, "store write failed: %s", store_error(pt->st));
	if (!pt->recovering) {
		pt->failed_since = wire_mono_ms();
		pt->retry_ms = STORE_RETRY_MS;
	} else {
		pt->retry_ms = pt->retry_ms * 2 > STORE_RETRY_MAX_MS ? STORE_RETRY_MAX_MS : pt->retry_ms * 2;
	}
	pt->failed = 1;
	pt->recovering = 0;
	pt->retry_at = wire_mono_ms() + pt->retry_ms;
	pt->active = 0;
	pt_settle_unlock(t, pt, p);
}

int64_t
partitions_on_records(void *arg, int32_t p, const store_record *recs, size_t n)
{
	partitions *t = arg;
	part *pt;
	int64_t applied;

	/* A failed partition takes nothing: on recovery it is fed again from
	 * its store's position. */
	if (p < 0 || p >= t->count || !t->parts[p].owned || t->parts[p].st == NULL || t->parts[p].failed)
		return CHANGELOG_CONTINUE;
	pt = &t->parts[p];
	applied = pt->applied;
	if (pt->verify) {
		/* The first record fed must be the last one applied, unless
		 * compaction removed it (then a later one comes first). */
		pt->verify = 0;
		if (recs[0].offset == applied &&
		    store_fingerprint(recs[0].key, recs[0].key_len, recs[0].value, recs[0].value_len) !=
		        pt->fingerprint) {
			char why[200], problem[200] = "";
			store *st;

			snprintf(why, sizeof why,
			         "the record at its offset %lld is not the one it applied: was the topic recreated?",
			         (long long)applied);
			pthread_rwlock_wrlock(&pt->rw);
			pthread_mutex_lock(&pt->mu); /* pt->st is read under either lock */
			st = pt->st;
			pt->st = NULL;
			pt->active = 0;
			pthread_mutex_unlock(&pt->mu);
			if (rebuild_store(t, p, &st, "does not fit the log", why, problem, sizeof problem) != PROFILE_OK)
				log_error("partition %d: unavailable until its store can be used: %s", (int)p, problem);
			pthread_mutex_lock(&pt->mu);
			install_store(pt, p, st, pt->hi, problem);
			pthread_rwlock_unlock(&pt->rw);
			pt_settle_unlock(t, pt, p);
			return CHANGELOG_OFFSET_BEGINNING;
		}
	}
	/* Records at or before the applied offset were applied already. */
	while (n > 0 && recs[0].offset <= applied) {
		recs++;
		n--;
	}
	if (n == 0)
		return CHANGELOG_CONTINUE;
	if (store_apply(pt->st, recs, n) != PROFILE_OK) {
		store_failed(t, pt, p);
		return CHANGELOG_CONTINUE;
	}
	pthread_mutex_lock(&pt->mu);
	store_works(pt, p);
	pt->applied = recs[n - 1].offset;
	if (pt->applied >= pt->hi - 1)
		pt->fresh_at = wire_mono_ms();
	if (!pt->active)
		pt->replayed += n;
	maybe_activate(pt, p);
	pt_settle_unlock(t, pt, p);
	return CHANGELOG_CONTINUE;
}

void
partitions_on_caught_up(void *arg, int32_t p, int64_t hi)
{
	partitions *t = arg;
	part *pt;

	if (p < 0 || p >= t->count)
		return;
	pt = &t->parts[p];
	pthread_mutex_lock(&pt->mu);
	pt->hi = hi;
	/* The consumer read everything before hi: what it did not hand over
	 * were the markers of transactions (or records of aborted ones). */
	if (pt->owned && pt->st && !pt->failed && !pt->verify && pt->applied < hi - 1)
		pt->applied = hi - 1;
	if (pt->applied >= hi - 1)
		pt->fresh_at = wire_mono_ms();
	if (pt->owned && !pt->active && pt->applied >= hi - 1 && !pt->verify) {
		/* Reached the end: also covers a target we could not read. */
		pt->target = pt->applied;
		pt->target_known = 1;
		maybe_activate(pt, p);
	}
	pt_settle_unlock(t, pt, p);
}

/* Queues w on p, or says why not: the status it would be woken with now,
 * PROFILE_UNAVAILABLE when p is not followed, or PROFILE_ABORTED when
 * queued. */
int
pt_enqueue(partitions *t, int32_t p, partition_waiter *w, partition_wake_fn wake, int not_owned)
{
	part *pt = &t->parts[p];
	int rc;

	w->wake = wake;
	w->queued = 0;
	pthread_mutex_lock(&pt->mu);
	if (!pt->owned) {
		rc = not_owned;
	} else if ((rc = ready(t, pt, w)) < 0) {
		if (w->offset == PARTITION_WRITABLE && !pt->claimed) {
			rc = PROFILE_UNAVAILABLE;
		} else {
			w->next = pt->waiters;
			pt->waiters = w;
			w->queued = 1;
			rc = PROFILE_ABORTED;
		}
	}
	pthread_mutex_unlock(&pt->mu);
	return rc;
}

int
partitions_wait(partitions *t, int32_t p, int64_t offset, partition_waiter *w, partition_wake_fn wake)
{
	w->offset = offset;
	w->write = 0;
	return pt_enqueue(t, p, w, wake, PROFILE_UNAVAILABLE);
}

int
partitions_cancel(partitions *t, int32_t p, partition_waiter *w)
{
	part *pt = &t->parts[p];
	int removed = 0;

	pthread_mutex_lock(&pt->mu);
	if (w->queued) {
		for (partition_waiter **pp = &pt->waiters; *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				w->queued = 0;
				removed = 1;
				break;
			}
	}
	pthread_mutex_unlock(&pt->mu);
	return removed;
}
