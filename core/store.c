/* store.c: owns the Kyoto Cabinet handles (see store.h).
 *
 * Layout inside one database:
 *   "P" + uid          -> ProfileEvent bytes (the newest full state)
 *   "E" + email key    -> n * 36 bytes of uids (order of arrival)
 *   "\0pos"            -> int64 offset (big-endian) + uint64 fingerprint
 *                        (stores of 0.1.0 add 8 bytes, and may hold a
 *                        "\0fenced" list: both are ignored)
 *   "I" + Idempotency-Key -> uid (36 bytes), request hash and created_at
 *                        (both int64 big-endian): the create the key made
 * The "\0" prefix keeps these keys apart from any profile or email.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <kclangc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* No memory map (msiz=0): through a map, a full disk or an I/O error is a
 * SIGBUS that kills the process; through read and write it is an error
 * the partition reports and recovers from. */
#define STORE_DEFAULT_TUNE "#bnum=262144#msiz=0#opts=l"

static const char pos_key[] = "\0pos";
#define POS_KEY_LEN 4
#define POS_LEN 16
#define POS_LEN_0_1_0 24
static const char fenced_key_0_1_0[] = "\0fenced";
#define FENCED_KEY_LEN 7

struct store {
	KCDB *db;
	int32_t partition;
	int64_t offset; /* last applied, -1 = none; written by the apply thread */
	uint64_t fingerprint;
};

/* Kyoto Cabinet's error codes, mapped to ours in one place. */
static int
store_status(KCDB *db)
{
	switch (kcdbecode(db)) {
	case KCESUCCESS:
		return PROFILE_OK;
	case KCENOREC:
		return PROFILE_NOT_FOUND;
	default:
		return PROFILE_INTERNAL;
	}
}

static void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

uint64_t
store_fingerprint(const void *key, size_t key_len, const void *value, size_t value_len)
{
	/* FNV-1a over key, a separator that cannot be confused with a byte, and
	 * value; a tombstone hashes differently from an empty value. */
	uint64_t h = 0xcbf29ce484222325ULL;
	const uint8_t *p = key;

	for (size_t i = 0; i < key_len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	h = (h ^ (value ? 0x100 : 0x200)) * 0x100000001b3ULL;
	p = value;
	for (size_t i = 0; value && i < value_len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* The profile in a ProfileEvent, and (idem not NULL) the Idempotency-Key
 * it carries ("" when none; idem has room for WIRE_IDEM_KEY_MAX + 1) with
 * its request hash. */
static Profile__V1__Profile *
decode_event(const void *buf, size_t len, char *idem, uint64_t *hash)
{
	Profile__V1__ProfileEvent *ev = profile__v1__profile_event__unpack(NULL, len, buf);
	Profile__V1__Profile *p;

	if (ev == NULL)
		return NULL;
	p = ev->profile;
	ev->profile = NULL;
	if (idem) {
		snprintf(idem, WIRE_IDEM_KEY_MAX + 1, "%s", ev->idempotency_key);
		*hash = ev->request_hash;
	}
	profile__v1__profile_event__free_unpacked(ev, NULL);
	return p;
}

static Profile__V1__Profile *
decode_profile(const void *buf, size_t len)
{
	return decode_event(buf, len, NULL, NULL);
}

/* What store_check found wrong with one record, or NULL. */
static const char *
record_problem(const char *k, size_t klen, const char *v, size_t vlen)
{
	Profile__V1__Profile *p;
	int ok;

	if (klen == POS_KEY_LEN && memcmp(k, pos_key, POS_KEY_LEN) == 0)
		return vlen == POS_LEN || vlen == POS_LEN_0_1_0 ? NULL : "its position record is malformed";
	if (klen == FENCED_KEY_LEN && memcmp(k, fenced_key_0_1_0, FENCED_KEY_LEN) == 0)
		return NULL;
	switch (klen > 1 ? k[0] : 0) {
	case 'E':
		return vlen > 0 && vlen % WIRE_UID_LEN == 0 ? NULL : "an email index entry is malformed";
	case 'I':
		return vlen == WIRE_UID_LEN + 16 ? NULL : "an Idempotency-Key entry is malformed";
	case 'P':
		if (klen != 1 + WIRE_UID_LEN || (p = decode_event(v, vlen, NULL, NULL)) == NULL)
			return "a profile record does not decode";
		ok = strlen(p->uid) == WIRE_UID_LEN && memcmp(p->uid, k + 1, WIRE_UID_LEN) == 0;
		profile__v1__profile__free_unpacked(p, NULL);
		return ok ? NULL : "a profile record is filed under another uid";
	default:
		return "it holds a key this service never writes";
	}
}

typedef struct check_state {
	const char *problem;
	int64_t records;
} check_state;

static const char *
check_visit(const char *k, size_t klen, const char *v, size_t vlen, size_t *sp, void *opq)
{
	check_state *cs = opq;

	(void)sp;
	cs->records++;
	if (cs->problem == NULL)
		cs->problem = record_problem(k, klen, v, vlen);
	return KCVISNOP;
}

/* Reads every record, so that a damaged file fails here and not in the
 * middle of serving. NULL when sound; else what is wrong, with *damaged 1
 * when the file is (0: it could not be read, which may pass). */
static const char *
store_check(KCDB *db, int *damaged)
{
	check_state cs = {NULL, 0};

	*damaged = 1;
	if (!kcdbiterate(db, check_visit, &cs, 0)) {
		*damaged = kcdbecode(db) == KCEBROKEN;
		return kcdbemsg(db);
	}
	if (cs.problem == NULL && cs.records != kcdbcount(db))
		return "its record count does not match its records";
	return cs.problem;
}

int
store_open(store **out, const char *dir, int32_t partition, const char *tune, char *why, size_t why_len)
{
	char path[4096];
	const char *problem = NULL;
	store *s;
	size_t len;
	char *pos;
	int opened, damaged = 0;

	snprintf(path, sizeof path, "%s/profiles-%d.kch%s%s", dir, (int)partition,
	         tune && *tune ? tune : STORE_DEFAULT_TUNE, tune && *tune && !strstr(tune, "msiz=") ? "#msiz=0" : "");
	if (why_len > 0)
		why[0] = '\0';
	if ((s = calloc(1, sizeof *s)) == NULL || (s->db = kcdbnew()) == NULL) {
		free(s);
		return PROFILE_INTERNAL;
	}
	s->partition = partition;
	if (!(opened = kcdbopen(s->db, path, KCOWRITER | KCOCREATE))) {
		/* A file that is there but is not a sound database: broken, or
		 * not one at all ("invalid magic data"). */
		damaged = kcdbecode(s->db) == KCEBROKEN || kcdbecode(s->db) == KCEINVALID;
		problem = kcdbemsg(s->db);
	} else {
		problem = store_check(s->db, &damaged);
	}
	if (problem != NULL) {
		log_error("store: %s %s: %s", damaged ? "damaged" : "cannot open", path, problem);
		if (why_len > 0)
			snprintf(why, why_len, "%s", problem);
		if (opened)
			kcdbclose(s->db);
		kcdbdel(s->db);
		free(s);
		return damaged ? PROFILE_FAILED_PRECONDITION : PROFILE_INTERNAL;
	}
	s->offset = -1;
	pos = kcdbget(s->db, pos_key, POS_KEY_LEN, &len);
	if (pos != NULL && (len == POS_LEN || len == POS_LEN_0_1_0)) {
		s->offset = (int64_t)get_be64((uint8_t *)pos);
		s->fingerprint = get_be64((uint8_t *)pos + 8);
	}
	kcfree(pos);
	*out = s;
	return PROFILE_OK;
}

void
store_close(store *s)
{
	if (s == NULL)
		return;
	if (!kcdbclose(s->db))
		log_error("store: closing partition %d: %s", (int)s->partition, kcdbemsg(s->db));
	kcdbdel(s->db);
	free(s);
}

void
store_position(store *s, int64_t *offset, uint64_t *fingerprint)
{
	*offset = s->offset;
	*fingerprint = s->fingerprint;
}

void
store_size(store *s, uint64_t *bytes, uint64_t *records)
{
	int64_t b = kcdbsize(s->db), n = kcdbcount(s->db);

	*bytes = b > 0 ? (uint64_t)b : 0;
	*records = n > 0 ? (uint64_t)n : 0;
}

static size_t
make_key(char *buf, char prefix, const char *s, size_t len)
{
	buf[0] = prefix;
	memcpy(buf + 1, s, len);
	return len + 1;
}

/* Adds (add=1) or removes uid from the list of uids at key. */
static int
uid_list_update(KCDB *db, const char *key, size_t klen, const char *uid, int add)
{
	size_t len = 0, found = (size_t)-1;
	char *list = kcdbget(db, key, klen, &len);
	int ok = 1;

	for (size_t i = 0; list && i + WIRE_UID_LEN <= len; i += WIRE_UID_LEN)
		if (memcmp(list + i, uid, WIRE_UID_LEN) == 0)
			found = i;
	if (add && found == (size_t)-1) {
		ok = kcdbappend(db, key, klen, uid, WIRE_UID_LEN);
	} else if (!add && found != (size_t)-1) {
		if (len == WIRE_UID_LEN) {
			ok = kcdbremove(db, key, klen);
		} else {
			memmove(list + found, list + found + WIRE_UID_LEN, len - found - WIRE_UID_LEN);
			ok = kcdbset(db, key, klen, list, len - WIRE_UID_LEN);
		}
	}
	kcfree(list);
	return ok;
}

/* Adds (add=1) or removes uid from the email index entry of email_key. */
static int
index_update(KCDB *db, const char *email_key, const char *uid, int add)
{
	char key[1 + WIRE_EMAIL_MAX];
	size_t klen = make_key(key, 'E', email_key, strlen(email_key));

	return uid_list_update(db, key, klen, uid, add);
}

/* Records the create an Idempotency-Key made. */
static int
idem_put(KCDB *db, const char *idem, const char *uid, uint64_t hash, int64_t created_at)
{
	char key[1 + WIRE_IDEM_KEY_MAX];
	size_t klen = make_key(key, 'I', idem, strlen(idem));
	uint8_t v[WIRE_UID_LEN + 16];

	memcpy(v, uid, WIRE_UID_LEN);
	put_be64(v + WIRE_UID_LEN, hash);
	put_be64(v + WIRE_UID_LEN + 8, (uint64_t)created_at);
	return kcdbset(db, key, klen, (const char *)v, sizeof v);
}

/* Applies one record inside the open transaction. 1 = ok (or skipped),
 * 0 = store failure. */
static int
apply_one(store *s, const store_record *r)
{
	char pkey[1 + WIRE_UID_LEN], old_email[WIRE_EMAIL_MAX + 1], new_email[WIRE_EMAIL_MAX + 1];
	Profile__V1__Profile *next = NULL, *old = NULL;
	const char *why;
	char uid[WIRE_UID_LEN + 1];
	size_t plen, olen;
	char *oldbuf, idem[WIRE_IDEM_KEY_MAX + 1] = "";
	uint64_t hash = 0;
	int ok = 1;

	if (r->key_len != WIRE_UID_LEN) {
		log_warn("store: partition %d offset %lld: key is not a uid, skipped", (int)s->partition,
		         (long long)r->offset);
		return 1;
	}
	memcpy(uid, r->key, WIRE_UID_LEN);
	uid[WIRE_UID_LEN] = '\0';
	if (r->value != NULL) {
		next = decode_event(r->value, r->value_len, idem, &hash);
		if (next == NULL || strcmp(next->uid, uid) != 0 ||
		    wire_check_email(next->email, &why) != PROFILE_OK) {
			log_warn("store: partition %d offset %lld: not a profile event for %s, skipped",
			         (int)s->partition, (long long)r->offset, uid);
			if (next)
				profile__v1__profile__free_unpacked(next, NULL);
			return 1;
		}
	}
	plen = make_key(pkey, 'P', uid, WIRE_UID_LEN);
	oldbuf = kcdbget(s->db, pkey, plen, &olen);
	if (oldbuf != NULL)
		old = decode_profile(oldbuf, olen);
	kcfree(oldbuf);

	if (old != NULL)
		wire_email_key(old->email, old_email);
	if (next != NULL)
		wire_email_key(next->email, new_email);
	if (old != NULL && (next == NULL || strcmp(old_email, new_email) != 0))
		ok = index_update(s->db, old_email, uid, 0);
	if (ok && next != NULL)
		ok = index_update(s->db, new_email, uid, 1);
	if (ok)
		ok = next ? kcdbset(s->db, pkey, plen, r->value, r->value_len)
		          : (kcdbremove(s->db, pkey, plen) || kcdbecode(s->db) == KCENOREC);
	if (ok && next != NULL && idem[0] != '\0')
		ok = idem_put(s->db, idem, uid, hash, next->created_at);

	if (old)
		profile__v1__profile__free_unpacked(old, NULL);
	if (next)
		profile__v1__profile__free_unpacked(next, NULL);
	return ok;
}

static uint64_t applied_transactions, applied_records; /* atomics */

void
store_applied_totals(uint64_t *transactions, uint64_t *records)
{
	*transactions = __atomic_load_n(&applied_transactions, __ATOMIC_RELAXED);
	*records = __atomic_load_n(&applied_records, __ATOMIC_RELAXED);
}

int
store_apply(store *s, const store_record *recs, size_t n)
{
	uint8_t pos[POS_LEN];
	const store_record *last;
	uint64_t fp;

	if (n == 0)
		return PROFILE_OK;
	/* A soft transaction survives a crash of this process (not of the OS);
	 * Kafka keeps the truth, so an OS crash costs only a replay. */
	if (!kcdbbegintran(s->db, 0)) {
		log_error("store: partition %d: begin: %s", (int)s->partition, kcdbemsg(s->db));
		return PROFILE_INTERNAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!apply_one(s, &recs[i])) {
			log_error("store: partition %d offset %lld: %s", (int)s->partition,
			          (long long)recs[i].offset, kcdbemsg(s->db));
			kcdbendtran(s->db, 0);
			return PROFILE_INTERNAL;
		}
	}
	last = &recs[n - 1];
	fp = store_fingerprint(last->key, last->key_len, last->value, last->value_len);
	put_be64(pos, (uint64_t)last->offset);
	put_be64(pos + 8, fp);
	if (!kcdbset(s->db, pos_key, POS_KEY_LEN, (const char *)pos, sizeof pos) || !kcdbendtran(s->db, 1)) {
		log_error("store: partition %d: commit: %s", (int)s->partition, kcdbemsg(s->db));
		kcdbendtran(s->db, 0);
		return PROFILE_INTERNAL;
	}
	__atomic_store_n(&s->offset, last->offset, __ATOMIC_RELEASE);
	s->fingerprint = fp;
	__atomic_add_fetch(&applied_transactions, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&applied_records, n, __ATOMIC_RELAXED);
	return PROFILE_OK;
}

/* Names of set-aside copies of partition's file: "profiles-<p>.kch.damaged-<UTC time>". */
static int
is_set_aside(const char *name, const char *prefix)
{
	size_t n = strlen(name);

	return strncmp(name, prefix, strlen(prefix)) == 0 && !(n > 4 && strcmp(name + n - 4, ".wal") == 0);
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Removes the oldest set-aside copies beyond keep. */
static void
prune_set_aside(const char *dir, const char *prefix, int keep)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, path[4096];
	size_t n = 0;

	while (d && (e = readdir(d)) != NULL) {
		char **grown;

		if (!is_set_aside(e->d_name, prefix) || (grown = realloc(names, (n + 1) * sizeof *names)) == NULL)
			continue;
		names = grown;
		if ((names[n] = strdup(e->d_name)) != NULL)
			n++;
	}
	if (d)
		closedir(d);
	qsort(names, n, sizeof *names, by_name);
	for (size_t i = 0; i < n; i++) {
		if (i + (size_t)keep < n) {
			snprintf(path, sizeof path, "%s/%s", dir, names[i]);
			unlink(path);
			snprintf(path, sizeof path, "%s/%s.wal", dir, names[i]);
			unlink(path);
			log_info("store: removed %s/%s (keeping the newest %d damaged copies)", dir, names[i], keep);
		}
		free(names[i]);
	}
	free(names);
}

int
store_set_aside(const char *dir, int32_t partition, int keep, char *moved, size_t moved_len)
{
	char from[4096], to[4200], prefix[64], stamp[32];
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
	snprintf(prefix, sizeof prefix, "profiles-%d.kch.damaged-", (int)partition);
	snprintf(from, sizeof from, "%s/profiles-%d.kch", dir, (int)partition);
	snprintf(to, sizeof to, "%s/%s%s.%03ldZ", dir, prefix, stamp, now.tv_nsec / 1000000);
	if (rename(from, to) != 0 && errno != ENOENT) {
		log_error("store: cannot move %s aside: %s", from, strerror(errno));
		return PROFILE_INTERNAL;
	}
	snprintf(moved, moved_len, "%s", to);
	strcat(from, ".wal");
	strcat(to, ".wal");
	if (rename(from, to) != 0 && errno != ENOENT) {
		log_error("store: cannot move %s aside: %s", from, strerror(errno));
		return PROFILE_INTERNAL;
	}
	prune_set_aside(dir, prefix, keep < 0 ? 0 : keep);
	return PROFILE_OK;
}

const char *
store_error(store *s)
{
	return kcdbemsg(s->db);
}

int
store_get_idem(store *s, const char *uid, Profile__V1__Profile **out, char *idem, uint64_t *hash)
{
	char key[1 + WIRE_UID_LEN];
	size_t klen = make_key(key, 'P', uid, strlen(uid) < WIRE_UID_LEN ? strlen(uid) : WIRE_UID_LEN);
	size_t len;
	char *buf = kcdbget(s->db, key, klen, &len);
	Profile__V1__Profile *p;

	if (idem) {
		idem[0] = '\0';
		*hash = 0;
	}
	if (buf == NULL)
		return store_status(s->db) == PROFILE_NOT_FOUND ? PROFILE_NOT_FOUND : PROFILE_INTERNAL;
	p = decode_event(buf, len, idem, hash);
	kcfree(buf);
	if (p == NULL)
		return PROFILE_INTERNAL;
	*out = p;
	return PROFILE_OK;
}

int
store_get(store *s, const char *uid, Profile__V1__Profile **out)
{
	return store_get_idem(s, uid, out, NULL, NULL);
}

int
store_idem_get(store *s, const char *idem, char *uid, uint64_t *hash, int64_t *created_at)
{
	char key[1 + WIRE_IDEM_KEY_MAX];
	size_t klen = make_key(key, 'I', idem, strlen(idem)), len;
	char *v = kcdbget(s->db, key, klen, &len);

	if (v == NULL)
		return store_status(s->db) == PROFILE_NOT_FOUND ? PROFILE_NOT_FOUND : PROFILE_INTERNAL;
	if (len != WIRE_UID_LEN + 16) {
		kcfree(v);
		return PROFILE_INTERNAL;
	}
	memcpy(uid, v, WIRE_UID_LEN);
	uid[WIRE_UID_LEN] = '\0';
	*hash = get_be64((uint8_t *)v + WIRE_UID_LEN);
	*created_at = (int64_t)get_be64((uint8_t *)v + WIRE_UID_LEN + 8);
	kcfree(v);
	return PROFILE_OK;
}

int
store_search(store *s, const char *email_key, Profile__V1__Profile ***list, size_t *count)
{
	char key[1 + WIRE_EMAIL_MAX];
	size_t klen = make_key(key, 'E', email_key, strlen(email_key));
	size_t len;
	char *uids = kcdbget(s->db, key, klen, &len);
	int rc = PROFILE_OK;

	if (uids == NULL)
		return store_status(s->db) == PROFILE_NOT_FOUND ? PROFILE_OK : PROFILE_INTERNAL;
	for (size_t i = 0; i + WIRE_UID_LEN <= len; i += WIRE_UID_LEN) {
		char uid[WIRE_UID_LEN + 1];
		Profile__V1__Profile *p, **grown;

		memcpy(uid, uids + i, WIRE_UID_LEN);
		uid[WIRE_UID_LEN] = '\0';
		if (store_get(s, uid, &p) != PROFILE_OK)
			continue; /* index entry of a record being applied right now */
		if ((grown = realloc(*list, (*count + 1) * sizeof *grown)) == NULL) {
			profile__v1__profile__free_unpacked(p, NULL);
			rc = PROFILE_RESOURCE_EXHAUSTED;
			break;
		}
		grown[(*count)++] = p;
		*list = grown;
	}
	kcfree(uids);
	return rc;
}
