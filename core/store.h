/* store.h: the materialized state of one `profiles` partition.
 *
 * One Kyoto Cabinet hash database per partition holds, for that partition:
 * every live profile (key "P<uid>", value = the ProfileEvent bytes of its
 * newest record), the email index (key "E<lower-cased email>", value = the
 * uids with that email, 36 bytes each), the Idempotency-Keys of creates
 * (key "I<key>") and the applied position (the offset and a fingerprint of
 * the last record applied). A batch of records, its index changes and the
 * new position are one transaction, so after a crash the data and the
 * position never disagree.
 *
 * Threads: one writer (the changelog's apply thread) and any number of
 * readers at once. Reads may see a batch that is being applied: those records
 * are already durable in Kafka, so that is never a wrong answer.
 */
#ifndef PROFILE_STORE_H
#define PROFILE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "wire.h"

typedef struct store store;

/* Opens (creating if needed) the database of `partition` under dir, as
 * dir/profiles-<partition>.kch, with Kyoto Cabinet tuning parameters `tune`
 * ("#bnum=...#msiz=..."; NULL or "" for the defaults), and reads every
 * record to check it. On success *out is a new handle for store_close.
 * Errors (logged, and said in why when why_len > 0):
 * PROFILE_FAILED_PRECONDITION when the file is damaged (store_set_aside it
 * and open again to rebuild), PROFILE_INTERNAL when it cannot be opened
 * (permissions, I/O, a read-only file system: may pass). */
int store_open(store **out, const char *dir, int32_t partition, const char *tune, char *why,
               size_t why_len);

/* Renames partition's closed file (and its transaction log) to
 * dir/profiles-<partition>.kch.damaged-<UTC time>, said in moved, and
 * removes the oldest such copies beyond `keep`. PROFILE_OK also when there
 * was no file; PROFILE_INTERNAL when it could not be moved (logged). */
int store_set_aside(const char *dir, int32_t partition, int keep, char *moved, size_t moved_len);

/* The last store failure on this thread, as Kyoto Cabinet words it. */
const char *store_error(store *s);

/* Flushes and closes. store_close(NULL) is a no-op. */
void store_close(store *s);

/* The last applied record: *offset (-1 when nothing was applied) and its
 * fingerprint (store_fingerprint of its key and value). */
void store_position(store *s, int64_t *offset, uint64_t *fingerprint);

/* The store file's size in bytes and how many records it holds (profiles,
 * their email and key indexes, its position). */
void store_size(store *s, uint64_t *bytes, uint64_t *records);

/* Fingerprint of a record, stored with the position to recognise the log it
 * came from. */
uint64_t store_fingerprint(const void *key, size_t key_len, const void *value, size_t value_len);

/* Applies n records in order, then records the position of the last one, all
 * in one transaction. Records that are not profile events of this service are
 * skipped (logged) but still advance the position. PROFILE_OK or
 * PROFILE_INTERNAL (nothing applied). */
int store_apply(store *s, const store_record *recs, size_t n);

/* What store_apply committed in this process, over every store: its
 * transactions and the records they applied (their ratio: how many writes
 * share a transaction). */
void store_applied_totals(uint64_t *transactions, uint64_t *records);

/* Looks up a profile. On PROFILE_OK *out is a new Profile for
 * profile__v1__profile__free_unpacked; PROFILE_NOT_FOUND when absent;
 * PROFILE_INTERNAL on a store failure. */
int store_get(store *s, const char *uid, Profile__V1__Profile **out);

/* The create an Idempotency-Key made: PROFILE_OK with its uid (room for
 * WIRE_UID_LEN + 1), request hash and created_at; PROFILE_NOT_FOUND;
 * PROFILE_INTERNAL. Kept once a record carrying the key was applied, also
 * after the profile changed or was deleted. */
int store_idem_get(store *s, const char *idem, char *uid, uint64_t *hash, int64_t *created_at);

/* store_get, and the Idempotency-Key the profile carries (from the create
 * that made it; "" when none; idem has room for WIRE_IDEM_KEY_MAX + 1)
 * with its request hash, from the same read. */
int store_get_idem(store *s, const char *uid, Profile__V1__Profile **out, char *idem, uint64_t *hash);

/* Appends to *list (growing it with realloc; *count updated) every profile
 * whose lower-cased email is email_key. The caller owns the appended
 * profiles. PROFILE_OK (also when none) or PROFILE_INTERNAL. */
int store_search(store *s, const char *email_key, Profile__V1__Profile ***list, size_t *count);

#endif
