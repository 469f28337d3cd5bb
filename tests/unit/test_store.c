/* test_store.c: the partition store (core/store.c). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kclangc.h>

#include "check.h"
#include "store.h"

static const char *uid_a = "74292b21-0fbb-4f1d-a18f-fa80f947fa5d";
static const char *uid_b = "0f0e0d0c-0b0a-4908-8706-050403020100";

/* A packed ProfileEvent, in buf (static: one at a time). */
static size_t
event(uint8_t *buf, const char *uid, const char *username, const char *email, uint64_t version,
      int64_t updated)
{
	Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
	Profile__V1__ProfileEvent ev = PROFILE__V1__PROFILE_EVENT__INIT;

	p.uid = (char *)uid;
	p.username = (char *)username;
	p.email = (char *)email;
	p.version = version;
	p.created_at = 1000;
	p.updated_at = updated;
	ev.type = version == 1 ? PROFILE__V1__EVENT_TYPE__CREATED : PROFILE__V1__EVENT_TYPE__UPDATED;
	ev.profile = &p;
	return profile__v1__profile_event__pack(&ev, buf);
}

static store_record
rec(int64_t offset, const char *uid, const uint8_t *value, size_t len)
{
	store_record r = {offset, uid, 36, value, len};
	return r;
}

static size_t
search(store *s, const char *email_key, Profile__V1__Profile ***found)
{
	size_t n = 0;

	*found = NULL;
	CHECK_INT(store_search(s, email_key, found, &n), PROFILE_OK);
	return n;
}

static void
free_found(Profile__V1__Profile **found, size_t n)
{
	for (size_t i = 0; i < n; i++)
		profile__v1__profile__free_unpacked(found[i], NULL);
	free(found);
}

/* Create, update (email change moves the index), delete. */
static void
test_apply_keeps_profile_and_email_index(const char *dir)
{
	uint8_t v1[512], v2[512];
	size_t l1 = event(v1, uid_a, "bob", "Bob1@Mail.com", 1, 1000);
	size_t l2 = event(v2, uid_a, "bob", "bob2@mail.com", 2, 2000);
	Profile__V1__Profile *p = NULL, **found;
	store_record recs[2];
	store *s;
	size_t n;

	CHECK_INT(store_open(&s, dir, 0, NULL, NULL, 0), PROFILE_OK);
	recs[0] = rec(0, uid_a, v1, l1);
	CHECK_INT(store_apply(s, recs, 1), PROFILE_OK);
	CHECK_INT(store_get(s, uid_a, &p), PROFILE_OK);
	CHECK_STR(p->email, "Bob1@Mail.com");
	CHECK_INT(p->version, 1);
	profile__v1__profile__free_unpacked(p, NULL);
	n = search(s, "bob1@mail.com", &found);
	CHECK_INT(n, 1);
	free_found(found, n);

	recs[0] = rec(1, uid_a, v2, l2);
	CHECK_INT(store_apply(s, recs, 1), PROFILE_OK);
	n = search(s, "bob1@mail.com", &found);
	CHECK_INT(n, 0);
	free_found(found, n);
	n = search(s, "bob2@mail.com", &found);
	CHECK_INT(n, 1);
	if (n == 1)
		CHECK_INT(found[0]->version, 2);
	free_found(found, n);

	recs[0] = rec(2, uid_a, NULL, 0); /* tombstone */
	CHECK_INT(store_apply(s, recs, 1), PROFILE_OK);
	CHECK_INT(store_get(s, uid_a, &p), PROFILE_NOT_FOUND);
	n = search(s, "bob2@mail.com", &found);
	CHECK_INT(n, 0);
	free_found(found, n);
	store_close(s);
}

/* Two profiles may share an email; both are found. */
static void
test_search_finds_every_holder_of_an_email(const char *dir)
{
	uint8_t va[512], vb[512];
	size_t la = event(va, uid_a, "a", "same@mail.com", 1, 1000);
	size_t lb = event(vb, uid_b, "b", "SAME@mail.com", 1, 2000);
	store_record recs[2];
	Profile__V1__Profile **found;
	store *s;
	size_t n;

	CHECK_INT(store_open(&s, dir, 1, NULL, NULL, 0), PROFILE_OK);
	recs[0] = rec(0, uid_a, va, la);
	recs[1] = rec(1, uid_b, vb, lb);
	CHECK_INT(store_apply(s, recs, 2), PROFILE_OK);
	n = search(s, "same@mail.com", &found);
	CHECK_INT(n, 2);
	free_found(found, n);
	store_close(s);
}

/* The applied position survives a close and reopen, with its fingerprint. */
static void
test_position_persists_with_data(const char *dir)
{
	uint8_t v[512];
	size_t l = event(v, uid_a, "bob", "bob@mail.com", 1, 1000);
	store_record r = rec(41, uid_a, v, l);
	Profile__V1__Profile *p = NULL;
	int64_t off;
	uint64_t fp;
	store *s;

	CHECK_INT(store_open(&s, dir, 2, NULL, NULL, 0), PROFILE_OK);
	store_position(s, &off, &fp);
	CHECK_INT(off, -1);
	CHECK_INT(store_apply(s, &r, 1), PROFILE_OK);
	store_close(s);

	CHECK_INT(store_open(&s, dir, 2, NULL, NULL, 0), PROFILE_OK);
	store_position(s, &off, &fp);
	CHECK_INT(off, 41);
	CHECK(fp == store_fingerprint(uid_a, 36, v, l));
	CHECK(fp != store_fingerprint(uid_a, 36, NULL, 0));
	CHECK_INT(store_get(s, uid_a, &p), PROFILE_OK);
	if (p)
		profile__v1__profile__free_unpacked(p, NULL);
	store_close(s);
}

/* A store with a few profiles in partition p's file, closed. */
static void
fill(const char *dir, int32_t p, int n)
{
	uint8_t v[512];
	store *s;

	CHECK_INT(store_open(&s, dir, p, NULL, NULL, 0), PROFILE_OK);
	for (int i = 0; i < n; i++) {
		char uid[37];
		snprintf(uid, sizeof uid, "00000000-0000-4000-8000-%012d", i);
		size_t l = event(v, uid, "user", "same@mail.com", 1, 1000 + i);
		store_record r = rec(i, uid, v, l);
		CHECK_INT(store_apply(s, &r, 1), PROFILE_OK);
	}
	store_close(s);
}

static void
file_path(char *buf, size_t len, const char *dir, int32_t p)
{
	snprintf(buf, len, "%s/profiles-%d.kch", dir, (int)p);
}

static void
overwrite(const char *path, long at, size_t n)
{
	FILE *f = fopen(path, "r+b");
	char junk[8192];

	memset(junk, 0x5a, sizeof junk);
	CHECK(f != NULL);
	if (f == NULL)
		return;
	if (at < 0) {
		fseek(f, 0, SEEK_END);
		at += ftell(f);
	}
	fseek(f, at, SEEK_SET);
	CHECK(fwrite(junk, 1, n < sizeof junk ? n : sizeof junk, f) > 0);
	fclose(f);
}

/* Opening `damaged` must say so: FAILED_PRECONDITION, with a reason. */
static void
check_damaged(const char *dir, int32_t p, const char *what)
{
	char why[200] = "";
	store *s = NULL;
	int rc = store_open(&s, dir, p, NULL, why, sizeof why);

	if (rc != PROFILE_FAILED_PRECONDITION)
		fprintf(stderr, "  (%s: store_open answered %d)\n", what, rc);
	CHECK_INT(rc, PROFILE_FAILED_PRECONDITION);
	CHECK(why[0] != '\0');
	if (rc == PROFILE_OK)
		store_close(s);
}

/* Damage a closed store's file in each way an operator (or a crash) might,
 * and store_open tells: it is never served as if sound. */
static void
test_damaged_files_are_recognised(const char *dir)
{
	char path[512];

	fill(dir, 10, 50);
	file_path(path, sizeof path, dir, 10);
	CHECK_INT(truncate(path, 1000), 0);
	check_damaged(dir, 10, "truncated");

	fill(dir, 11, 50);
	file_path(path, sizeof path, dir, 11);
	overwrite(path, 0, 64);
	check_damaged(dir, 11, "garbage in the header");

	/* Garbage over the records (past the bucket array of the default
	 * tuning: 262144 buckets of 4 or 6 bytes, after a 64 KiB-aligned
	 * header region), a few KiB of it. */
	fill(dir, 12, 50);
	file_path(path, sizeof path, dir, 12);
	overwrite(path, -3000, 4096);
	check_damaged(dir, 12, "garbage in the body");
}

/* store_set_aside renames the file, keeps only the newest `keep` copies,
 * and a new store opens empty. */
static void
test_set_aside_keeps_a_capped_number(const char *dir)
{
	char moved[4300], first[4300] = "";
	int64_t off;
	uint64_t fp;
	store *s;
	int copies = 0;
	DIR *d;
	struct dirent *e;

	for (int i = 0; i < 4; i++) {
		fill(dir, 13, 3);
		CHECK_INT(store_set_aside(dir, 13, 2, moved, sizeof moved), PROFILE_OK);
		CHECK(access(moved, F_OK) == 0);
		if (i == 0)
			snprintf(first, sizeof first, "%s", moved);
		usleep(2000); /* names differ by the millisecond */
	}
	CHECK(access(first, F_OK) != 0); /* the oldest went */
	d = opendir(dir);
	while (d && (e = readdir(d)) != NULL)
		copies += strncmp(e->d_name, "profiles-13.kch.damaged-", 24) == 0 &&
		          strstr(e->d_name, ".wal") == NULL;
	if (d)
		closedir(d);
	CHECK_INT(copies, 2);
	CHECK_INT(store_open(&s, dir, 13, NULL, NULL, 0), PROFILE_OK);
	store_position(s, &off, &fp);
	CHECK_INT(off, -1);
	store_close(s);
	/* No file to move: nothing to do, and that is fine. */
	CHECK_INT(store_set_aside(dir, 14, 2, moved, sizeof moved), PROFILE_OK);
}

/* A record that is not ours (bad key, bad value, key/uid mismatch) is
 * skipped but still advances the position: the partition never wedges. */
static void
test_foreign_records_are_skipped(const char *dir)
{
	uint8_t v[512];
	size_t l = event(v, uid_b, "b", "b@mail.com", 1, 1000); /* uid_b inside, key uid_a */
	store_record recs[3] = {
	    {0, "short", 5, "x", 1},
	    rec(1, uid_a, (const uint8_t *)"\xff\xff\xff", 3),
	    rec(2, uid_a, v, l),
	};
	Profile__V1__Profile *p = NULL;
	int64_t off;
	uint64_t fp;
	store *s;

	CHECK_INT(store_open(&s, dir, 3, NULL, NULL, 0), PROFILE_OK);
	CHECK_INT(store_apply(s, recs, 3), PROFILE_OK);
	store_position(s, &off, &fp);
	CHECK_INT(off, 2);
	CHECK_INT(store_get(s, uid_a, &p), PROFILE_NOT_FOUND);
	CHECK_INT(store_get(s, uid_b, &p), PROFILE_NOT_FOUND);
	store_close(s);
}

static void
test_open_fails_cleanly_on_a_bad_directory(void)
{
	store *s = NULL;

	CHECK_INT(store_open(&s, "/nonexistent/dir/for/sure", 0, NULL, NULL, 0), PROFILE_INTERNAL);
	CHECK(s == NULL);
	store_close(NULL); /* a no-op */
}

/* A store written by 0.1.0, whose position record also held the
 * partition's fence and which may list fenced uids, opens with its
 * position and data; the list is ignored, and the next batch writes the
 * position as it is now. */
static void
test_a_store_of_0_1_0_opens(const char *dir)
{
	char path[4096];
	uint8_t v1[512], pos[24] = {0};
	size_t l1 = event(v1, uid_a, "a", "a@mail.com", 1, 1000);
	store_record r = rec(0, uid_a, v1, l1);
	Profile__V1__Profile *p = NULL;
	int64_t off;
	uint64_t fp;
	KCDB *db;
	store *s;

	CHECK_INT(store_open(&s, dir, 6, NULL, NULL, 0), PROFILE_OK);
	CHECK_INT(store_apply(s, &r, 1), PROFILE_OK);
	store_position(s, &off, &fp);
	store_close(s);
	/* As 0.1.0 left it: the offset, the fingerprint and a fence of 0. */
	for (int i = 0; i < 8; i++)
		pos[8 + i] = (uint8_t)(fp >> (56 - 8 * i));
	file_path(path, sizeof path, dir, 6);
	db = kcdbnew();
	CHECK(kcdbopen(db, path, KCOWRITER));
	CHECK(kcdbset(db, "\0pos", 4, (const char *)pos, sizeof pos));
	CHECK(kcdbset(db, "\0fenced", 7, uid_b, 36));
	kcdbclose(db);
	kcdbdel(db);

	CHECK_INT(store_open(&s, dir, 6, NULL, NULL, 0), PROFILE_OK);
	store_position(s, &off, &fp);
	CHECK_INT(off, 0);
	CHECK_INT(store_get(s, uid_a, &p), PROFILE_OK);
	if (p)
		profile__v1__profile__free_unpacked(p, NULL);
	r.offset = 1;
	CHECK_INT(store_apply(s, &r, 1), PROFILE_OK);
	store_close(s);
	CHECK_INT(store_open(&s, dir, 6, NULL, NULL, 0), PROFILE_OK);
	store_position(s, &off, &fp);
	CHECK_INT(off, 1);
	store_close(s);
}

/* A packed ProfileEvent carrying an Idempotency-Key. */
static size_t
keyed_event(uint8_t *buf, const char *uid, const char *username, uint64_t version, const char *key,
            uint64_t hash)
{
	Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
	Profile__V1__ProfileEvent ev = PROFILE__V1__PROFILE_EVENT__INIT;

	p.uid = (char *)uid;
	p.username = (char *)username;
	p.email = "k@mail.com";
	p.version = version;
	p.created_at = 777;
	p.updated_at = 777 + (int64_t)version;
	ev.type = version == 1 ? PROFILE__V1__EVENT_TYPE__CREATED : PROFILE__V1__EVENT_TYPE__UPDATED;
	ev.profile = &p;
	ev.idempotency_key = (char *)key;
	ev.request_hash = hash;
	return profile__v1__profile_event__pack(&ev, buf);
}

/* The key index: kept from any record carrying a key (a create, or a later
 * record that carries it on after compaction removed the create), and kept
 * after the profile is deleted. */
static void
test_idempotency_keys_are_indexed(const char *dir)
{
	uint8_t v[512];
	size_t l = keyed_event(v, uid_b, "later", 3, "key-b", 42);
	store_record recs[2] = {rec(0, uid_b, v, l), rec(1, uid_b, NULL, 0)};
	char uid[WIRE_UID_LEN + 1], idem[WIRE_IDEM_KEY_MAX + 1];
	uint64_t hash = 0;
	int64_t created = 0;
	Profile__V1__Profile *p = NULL;
	store *s;

	CHECK_INT(store_open(&s, dir, 6, NULL, NULL, 0), PROFILE_OK);
	CHECK_INT(store_idem_get(s, "key-b", uid, &hash, &created), PROFILE_NOT_FOUND);
	CHECK_INT(store_apply(s, recs, 1), PROFILE_OK); /* only a version 3 is left in the log */
	CHECK_INT(store_get_idem(s, uid_b, &p, idem, &hash), PROFILE_OK);
	CHECK_STR(idem, "key-b");
	CHECK_INT(hash, 42);
	if (p)
		CHECK_STR(p->username, "later");
	profile__v1__profile__free_unpacked(p, NULL);
	p = NULL;
	CHECK_INT(store_apply(s, recs + 1, 1), PROFILE_OK); /* deleted */
	CHECK_INT(store_idem_get(s, "key-b", uid, &hash, &created), PROFILE_OK);
	CHECK_STR(uid, uid_b);
	CHECK_INT(hash, 42);
	CHECK_INT(created, 777);
	CHECK_INT(store_get_idem(s, uid_b, &p, idem, &hash), PROFILE_NOT_FOUND);
	store_close(s);
}

int
main(void)
{
	char dir[] = "/tmp/test_store.XXXXXX";
	char cmd[64];

	if (mkdtemp(dir) == NULL)
		return 1;
	test_apply_keeps_profile_and_email_index(dir);
	test_search_finds_every_holder_of_an_email(dir);
	test_position_persists_with_data(dir);
	test_foreign_records_are_skipped(dir);
	test_a_store_of_0_1_0_opens(dir);
	test_idempotency_keys_are_indexed(dir);
	test_open_fails_cleanly_on_a_bad_directory();
	test_damaged_files_are_recognised(dir);
	test_set_aside_keeps_a_capped_number(dir);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_done("test_store");
}
