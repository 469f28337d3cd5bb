/* record.h: one record of the `profiles` log, as the consumer hands it to
 * the stores. Neutral ground between the changelog (which reads records) and
 * the store (which applies them), so neither includes the other for it. */
#ifndef PROFILE_RECORD_H
#define PROFILE_RECORD_H

#include <stddef.h>
#include <stdint.h>

/* Borrowed views into the consumer's message: valid during the call that
 * hands them over. value == NULL is a tombstone (the profile was deleted). */
typedef struct store_record {
	int64_t offset;
	const char *key;
	size_t key_len;
	const void *value;
	size_t value_len;
} store_record;

/* Positions a consumer of records may ask for: the start of the log, or
 * "go on from where you are". Any other value is an offset. */
#define CHANGELOG_OFFSET_BEGINNING (-2)
#define CHANGELOG_CONTINUE (-1)

#endif
