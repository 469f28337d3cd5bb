/* record.h: one record of the `profiles` log, as the consumer hands it to
 * the stores. Neutral ground between the changelog (which reads records) and
 * the store (which applies them), so neither includes the other for it. */
#ifndef PROFILE_RECORD_H
#define PROFILE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "fence.h"

/* Borrowed views into the consumer's message: valid during the call that
 * hands them over. value == NULL is a tombstone (the profile was deleted).
 * fence: the token the writer held (its FENCE_HEADER, fence.h), -1 when
 * the record has none. */
typedef struct store_record {
	int64_t offset;
	const char *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	int64_t fence;
} store_record;

/* Positions a consumer of records may ask for: the start of the log, or
 * "go on from where you are". Any other value is an offset. */
#define CHANGELOG_OFFSET_BEGINNING (-2)
#define CHANGELOG_CONTINUE (-1)

/* 1 when r is a fence record (fence.h). */
static inline int
record_is_fence(const store_record *r)
{
	return fence_is_record(r->key, r->key_len);
}

/* 1 when r, read while the partition's fence is `fence`, is a write of a
 * node that had lost the partition: no store applies it. */
static inline int
record_fenced(const store_record *r, int64_t fence)
{
	return !record_is_fence(r) && fence_rejects(r->fence, fence);
}

/* The partition's fence after r. */
static inline int64_t
record_fence_after(const store_record *r, int64_t fence)
{
	return fence_after(record_is_fence(r), r->offset, r->fence, fence);
}

#endif
