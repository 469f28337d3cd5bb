/* partition.c: ownership, restore state and waiters per partition
 * (partition.h).
 *
 * Locks: each partition has a mutex for its state and waiter list, and a
 * rwlock that readers hold while they use its store, so that revocation
 * (which closes the store) waits for them. Waiters are woken after both are
 * released.
 */
#include "partition.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

typedef struct part {
	pthread_mutex_t mu;
	pthread_rwlock_t rw; /* read: store in use; write: store opened/closed */
	store *st;
	int owned;
	int active;
	int64_t applied;  /* last applied offset, -1 = none */
	int64_t target;   /* restoring until applied >= target */
	int target_known; /* else: until the consumer reports the end */
	int64_t hi;       /* log end last seen, -1 = unknown */
	uint64_t replayed;
	int verify; /* first record must be the one at `applied` */
	uint64_t fingerprint;
	partition_waiter *waiters;
} part;

struct partitions {
	char *dir;
	char *tune;
	int32_t count;
	part *parts;
};

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
	}
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

int32_t
partitions_count(const partitions *t)
{
	return t->count;
}

static int
satisfied(const part *pt, const partition_waiter *w)
{
	return pt->active && (w->offset < 0 || pt->applied >= w->offset);
}

/* Takes, under pt->mu, the waiters to wake: all when revoked, else those
 * whose condition holds. */
static partition_waiter *
take_waiters(part *pt, int all)
{
	partition_waiter *wake = NULL, **pp = &pt->waiters;

	while (*pp) {
		partition_waiter *w = *pp;
		if (all || satisfied(pt, w)) {
			*pp = w->next;
			w->queued = 0;
			w->next = wake;
			wake = w;
		} else {
			pp = &w->next;
		}
	}
	return wake;
}

static void
wake_all(partition_waiter *w, int status)
{
	while (w) {
		partition_waiter *next = w->next;
		w->wake(w, status);
		w = next;
	}
}

/* Under pt->mu: the partition becomes active once the store reached the
 * restore target. */
static void
maybe_activate(part *pt, int32_t p)
{
	if (pt->active || !pt->owned || !pt->target_known || pt->applied < pt->target)
		return;
	pt->active = 1;
	log_info("partition %d active: replayed %llu records, applied up to offset %lld", (int)p,
	         (unsigned long long)pt->replayed, (long long)pt->applied);
}

int64_t
partitions_on_assigned(void *arg, int32_t p, int64_t lo, int64_t hi)
{
	partitions *t = arg;
	part *pt;
	store *st;
	int64_t off, start;
	uint64_t fp;
	const char *why = NULL;

	if (p < 0 || p >= t->count)
		return CHANGELOG_OFFSET_BEGINNING;
	pt = &t->parts[p];
	if (store_open(&st, t->dir, p, t->tune) != PROFILE_OK) {
		/* Without a store the partition stays restoring: reads answer
		 * UNAVAILABLE rather than anything wrong. */
		log_error("partition %d: store unavailable", (int)p);
		return CHANGELOG_OFFSET_BEGINNING;
	}
	store_position(st, &off, &fp);
	if (off >= 0 && hi >= 0 && off >= hi)
		why = "its stored offset is past the end of the log";
	else if (off >= 0 && lo > off + 1)
		why = "records after its stored offset are no longer in the log";
	if (why != NULL) {
		log_warn("partition %d: rebuilding the store from the log: %s (stored %lld, log %lld..%lld)",
		         (int)p, why, (long long)off, (long long)lo, (long long)hi);
		if (store_clear(st) == PROFILE_OK)
			off = -1;
	}
	start = off >= 0 ? off : CHANGELOG_OFFSET_BEGINNING;

	pthread_rwlock_wrlock(&pt->rw);
	pthread_mutex_lock(&pt->mu);
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
	log_info("partition %d assigned: store at offset %lld, log end %lld", (int)p, (long long)off,
	         (long long)hi);
	if (hi >= 0 && off >= hi - 1) {
		pt->target = off;
		maybe_activate(pt, p);
	}
	pthread_mutex_unlock(&pt->mu);
	pthread_rwlock_unlock(&pt->rw);
	return start;
}

void
partitions_on_revoked(void *arg, int32_t p)
{
	partitions *t = arg;
	partition_waiter *w;
	part *pt;

	if (p < 0 || p >= t->count)
		return;
	pt = &t->parts[p];
	pthread_rwlock_wrlock(&pt->rw);
	pthread_mutex_lock(&pt->mu);
	pt->owned = 0;
	pt->active = 0;
	w = take_waiters(pt, 1);
	store_close(pt->st);
	pt->st = NULL;
	pthread_mutex_unlock(&pt->mu);
	pthread_rwlock_unlock(&pt->rw);
	log_info("partition %d revoked (store kept on disk)", (int)p);
	wake_all(w, PROFILE_UNAVAILABLE);
}

int64_t
partitions_on_records(void *arg, int32_t p, const store_record *recs, size_t n)
{
	partitions *t = arg;
	partition_waiter *w;
	part *pt;
	int64_t applied;

	if (p < 0 || p >= t->count || !t->parts[p].owned || t->parts[p].st == NULL)
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
			log_warn("partition %d: rebuilding the store from the log: the record at offset %lld "
			         "is not the one it applied (was the topic recreated?)",
			         (int)p, (long long)applied);
			if (store_clear(pt->st) != PROFILE_OK)
				return CHANGELOG_OFFSET_BEGINNING;
			pthread_mutex_lock(&pt->mu);
			pt->applied = -1;
			pthread_mutex_unlock(&pt->mu);
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
		usleep(100 * 1000); /* a failing disk: retry the same records, slowly */
		return applied + 1;
	}
	pthread_mutex_lock(&pt->mu);
	pt->applied = recs[n - 1].offset;
	if (!pt->active)
		pt->replayed += n;
	maybe_activate(pt, p);
	w = take_waiters(pt, 0);
	pthread_mutex_unlock(&pt->mu);
	wake_all(w, PROFILE_OK);
	return CHANGELOG_CONTINUE;
}

void
partitions_on_caught_up(void *arg, int32_t p, int64_t hi)
{
	partitions *t = arg;
	partition_waiter *w;
	part *pt;

	if (p < 0 || p >= t->count)
		return;
	pt = &t->parts[p];
	pthread_mutex_lock(&pt->mu);
	pt->hi = hi;
	if (pt->owned && !pt->active && pt->applied >= hi - 1 && !pt->verify) {
		/* Reached the end: also covers a target we could not read. */
		pt->target = pt->applied;
		pt->target_known = 1;
		maybe_activate(pt, p);
	}
	w = take_waiters(pt, 0);
	pthread_mutex_unlock(&pt->mu);
	wake_all(w, PROFILE_OK);
}

int
partitions_read_begin(partitions *t, int32_t p, store **s)
{
	part *pt = &t->parts[p];
	int rc;

	pthread_rwlock_rdlock(&pt->rw);
	pthread_mutex_lock(&pt->mu);
	rc = !pt->owned || pt->st == NULL ? PROFILE_UNAVAILABLE : !pt->active ? PROFILE_ABORTED : PROFILE_OK;
	pthread_mutex_unlock(&pt->mu);
	if (rc != PROFILE_OK) {
		pthread_rwlock_unlock(&pt->rw);
		return rc;
	}
	*s = pt->st;
	return PROFILE_OK;
}

void
partitions_read_end(partitions *t, int32_t p)
{
	pthread_rwlock_unlock(&t->parts[p].rw);
}

int
partitions_wait(partitions *t, int32_t p, int64_t offset, partition_waiter *w, partition_wake_fn wake)
{
	part *pt = &t->parts[p];
	int rc;

	w->offset = offset;
	w->wake = wake;
	w->queued = 0;
	pthread_mutex_lock(&pt->mu);
	if (!pt->owned) {
		rc = PROFILE_UNAVAILABLE;
	} else if (satisfied(pt, w)) {
		rc = PROFILE_OK;
	} else {
		w->next = pt->waiters;
		pt->waiters = w;
		w->queued = 1;
		rc = PROFILE_ABORTED;
	}
	pthread_mutex_unlock(&pt->mu);
	return rc;
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

int
partitions_owned(partitions *t, int32_t p)
{
	int owned;

	pthread_mutex_lock(&t->parts[p].mu);
	owned = t->parts[p].owned;
	pthread_mutex_unlock(&t->parts[p].mu);
	return owned;
}

void
partitions_info(partitions *t, const int64_t *log_end, partition_info *info)
{
	for (int32_t p = 0; p < t->count; p++) {
		part *pt = &t->parts[p];
		int64_t hi = log_end ? log_end[p] : -1;

		pthread_mutex_lock(&pt->mu);
		if (hi < pt->hi)
			hi = pt->hi;
		info[p].partition = p;
		info[p].owned = pt->owned;
		info[p].active = pt->active;
		info[p].applied = pt->applied;
		info[p].replayed = pt->replayed;
		info[p].lag = hi >= 0 && hi - 1 > pt->applied ? hi - 1 - pt->applied : 0;
		pthread_mutex_unlock(&pt->mu);
	}
}
