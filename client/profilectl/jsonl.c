/* jsonl.c: profilectl's output, one compact JSON object per line.
 *
 * Written by hand so that the client-only build needs nothing beyond nng
 * and protobuf-c. Strings must be valid UTF-8 (checked); they are escaped
 * as RFC 8259 asks: quote, backslash and control characters. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "profilectl.h"
#include "wire.h"

int
jsonl_string(FILE *out, const char *s)
{
	if (!wire_utf8_valid(s, strlen(s)))
		return -1;
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", out);
		else if (*p == '\t')
			fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
	return 0;
}

int
jsonl_profile_fields(FILE *out, const char *uid, const char *username, const char *email, uint64_t version,
                     int64_t created_at, int64_t updated_at, const char *position)
{
	const char *s[] = {uid, username, email};

	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
		if (!wire_utf8_valid(s[i], strlen(s[i])))
			return -1; /* before anything is written */
	fputs("{\"uid\":", out);
	jsonl_string(out, uid);
	fputs(",\"username\":", out);
	jsonl_string(out, username);
	fputs(",\"email\":", out);
	jsonl_string(out, email);
	fprintf(out, ",\"version\":%" PRIu64 ",\"created_at\":%" PRId64 ",\"updated_at\":%" PRId64, version,
	        created_at, updated_at);
	if (position && position[0]) {
		fputs(",\"position\":", out);
		jsonl_string(out, position);
	}
	return 0;
}
