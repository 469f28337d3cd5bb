/* fuzz_store.c: anything on the topic, applied to a partition store. Any
 * Kafka client can write to `profiles`; a record that is not ours must be
 * skipped, never crash the core or corrupt what it holds. The input is a
 * sequence of records: [key length][key][value length or 255 = tombstone]
 * [value]. libFuzzer target. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static store *s;
	static int64_t offset;
	store_record recs[64];
	size_t n = 0, pos = 0;
	int64_t off;
	uint64_t fp;

	if (s == NULL) {
		char dir[] = "/tmp/fuzz_store.XXXXXX";
		if (mkdtemp(dir) == NULL || store_open(&s, dir, 0, "#bnum=1024", NULL, 0) != PROFILE_OK)
			abort();
	}
	while (pos + 2 <= size && n < 64) {
		size_t klen = data[pos], vlen;
		store_record *r = &recs[n];

		if (pos + 1 + klen + 1 > size)
			break;
		r->key = (const char *)data + pos + 1;
		r->key_len = klen;
		pos += 1 + klen;
		vlen = data[pos++];
		if (vlen == 255) {
			r->value = NULL;
			r->value_len = 0;
		} else {
			if (pos + vlen > size)
				break;
			r->value = data + pos;
			r->value_len = vlen;
			pos += vlen;
		}
		r->offset = offset++;
		n++;
	}
	if (n > 0) {
		if (store_apply(s, recs, n) != PROFILE_OK)
			abort(); /* foreign records are skipped, never an error */
		store_position(s, &off, &fp);
		if (off != offset - 1)
			abort(); /* the position always covers what was applied */
	}
	return 0;
}
