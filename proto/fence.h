/* fence.h: the fencing rule of the `profiles` log, for everything that
 * reads it (the core's stores, profilectl watch, any other consumer).
 *
 * A node that takes a partition over appends a fence record to it: key
 * FENCE_KEY, value a protobuf Fence. The fence's offset is that node's
 * token: every record it writes after that carries the token in the header
 * FENCE_HEADER (8 bytes, big-endian). A reader keeps the partition's current
 * fence (the newest fence record, or a newer token seen on a record) and
 * ignores every record whose token is older: the write of a node that lost
 * the partition is never applied, wherever it lands in the log. A record
 * with no token counts as token -1 (valid only before the first fence).
 */
#ifndef PROFILE_FENCE_H
#define PROFILE_FENCE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FENCE_KEY "fence"
#define FENCE_KEY_LEN 5
#define FENCE_HEADER "profile-fence"

/* 1 when a record with this key is a fence record. */
static inline int
fence_is_record(const void *key, size_t key_len)
{
	return key != NULL && key_len == FENCE_KEY_LEN && memcmp(key, FENCE_KEY, FENCE_KEY_LEN) == 0;
}

/* The token in a FENCE_HEADER value, or -1 when it is not one. */
static inline int64_t
fence_token(const void *v, size_t len)
{
	uint64_t t = 0;

	if (v == NULL || len != 8)
		return -1;
	for (size_t i = 0; i < 8; i++)
		t = t << 8 | ((const uint8_t *)v)[i];
	return t > INT64_MAX ? -1 : (int64_t)t;
}

/* Writes token as a FENCE_HEADER value into out[8]. */
static inline void
fence_token_put(uint8_t *out, int64_t token)
{
	for (int i = 7; i >= 0; i--, token >>= 8)
		out[i] = (uint8_t)token;
}

/* 1 when a profile record carrying token, read while the partition's fence
 * is `current`, is a write of a node that had lost the partition. */
static inline int
fence_rejects(int64_t token, int64_t current)
{
	return token < current;
}

/* The partition's fence after a record at offset (a fence record when
 * is_fence, else a profile record carrying token). */
static inline int64_t
fence_after(int is_fence, int64_t offset, int64_t token, int64_t current)
{
	int64_t f = is_fence ? offset : token;

	return f > current ? f : current;
}

#endif
