/* wire.c: shared rules about the wire formats (see wire.h). */
#include "wire.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every status's protocol name and its sentence, in one table indexed by
 * the status (gRPC's numbering). */
static const struct {
	const char *name;
	const char *message;
} statuses[] = {
    {"OK", "success"},
    {"CANCELLED", "the call was cancelled"},
    {"UNKNOWN", "unknown error"},
    {"INVALID_ARGUMENT", "invalid argument"},
    {"DEADLINE_EXCEEDED", "no answer within the deadline (a write may have been applied)"},
    {"NOT_FOUND", "no such profile"},
    {"ALREADY_EXISTS", "the profile already exists"},
    {"PERMISSION_DENIED", "permission denied"},
    {"RESOURCE_EXHAUSTED", "too many calls in flight, or out of memory"},
    {"FAILED_PRECONDITION", "the profile's version is not the one expected"},
    {"ABORTED", "aborted by a conflict"},
    {"OUT_OF_RANGE", "out of range"},
    {"UNIMPLEMENTED", "not implemented by the service"},
    {"INTERNAL", "internal error, or a malformed answer"},
    {"UNAVAILABLE", "the service is unavailable (nothing was executed; retry later)"},
};

#define NSTATUSES ((int)(sizeof statuses / sizeof statuses[0]))

const char *
profile_status_name(int status)
{
	return status >= 0 && status < NSTATUSES ? statuses[status].name : "UNKNOWN";
}

const char *
profile_strerror(int status)
{
	return status >= 0 && status < NSTATUSES ? statuses[status].message : "unknown error";
}

int32_t
wire_murmur2(const void *key, size_t len)
{
	/* Same arithmetic as org.apache.kafka.common.utils.Utils.murmur2:
	 * little-endian 4-byte words, unsigned 32-bit wrap-around. */
	const uint8_t *data = key;
	const uint32_t m = 0x5bd1e995;
	const int r = 24;
	uint32_t h = 0x9747b28c ^ (uint32_t)len;
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
		             (uint32_t)data[i + 3] << 24;
		k *= m;
		k ^= k >> r;
		k *= m;
		h *= m;
		h ^= k;
	}
	switch (len - i) {
	case 3:
		h ^= (uint32_t)data[i + 2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)data[i + 1] << 8;
		/* fall through */
	case 1:
		h ^= data[i];
		h *= m;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return (int32_t)h;
}

int32_t
wire_partition(const char *key, size_t len, int32_t count)
{
	return (int32_t)(((uint32_t)wire_murmur2(key, len) & 0x7fffffff) % (uint32_t)count);
}

int
wire_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + n >= len)
			return 0; /* truncated sequence */
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* Overlong three- and four-byte forms, surrogates, > U+10FFFF. */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
		    cp > 0x10ffff)
			return 0;
		i += n + 1;
	}
	return 1;
}

static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int
wire_check_uid(const char *s, const char **why)
{
	if (s == NULL || strlen(s) != WIRE_UID_LEN)
		goto bad;
	for (int i = 0; i < WIRE_UID_LEN; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !is_hex(s[i]))
			goto bad;
	}
	return PROFILE_OK;
bad:
	*why = "uid must be a UUID (8-4-4-4-12 hexadecimal digits)";
	return PROFILE_INVALID_ARGUMENT;
}

int
wire_check_username(const char *s, const char **why)
{
	size_t len, chars = 0;

	if (s == NULL || *s == '\0') {
		*why = "username must not be empty";
		return PROFILE_INVALID_ARGUMENT;
	}
	len = strlen(s);
	if (!wire_utf8_valid(s, len)) {
		*why = "username must be valid UTF-8";
		return PROFILE_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* C0 controls, DEL, and C1 controls (U+0080..U+009F = C2 80..9F). */
		if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] < 0xa0)) {
			*why = "username must not contain control characters";
			return PROFILE_INVALID_ARGUMENT;
		}
		if ((c & 0xc0) != 0x80)
			chars++;
	}
	if (chars > WIRE_USERNAME_MAX) {
		*why = "username must be at most 64 characters";
		return PROFILE_INVALID_ARGUMENT;
	}
	return PROFILE_OK;
}

int
wire_check_email(const char *s, const char **why)
{
	const char *at, *dot;
	size_t len;

	if (s == NULL || *s == '\0') {
		*why = "email must not be empty";
		return PROFILE_INVALID_ARGUMENT;
	}
	len = strlen(s);
	if (len > WIRE_EMAIL_MAX) {
		*why = "email must be at most 254 bytes";
		return PROFILE_INVALID_ARGUMENT;
	}
	if (!wire_utf8_valid(s, len)) {
		*why = "email must be valid UTF-8";
		return PROFILE_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f) {
			*why = "email must not contain spaces or control characters";
			return PROFILE_INVALID_ARGUMENT;
		}
	}
	at = strchr(s, '@');
	if (at == NULL || at == s || strchr(at + 1, '@') != NULL) {
		*why = "email must be local@domain";
		return PROFILE_INVALID_ARGUMENT;
	}
	dot = strchr(at + 1, '.');
	if (dot == NULL || dot == at + 1 || s[len - 1] == '.' || strstr(at + 1, "..") != NULL) {
		*why = "email domain must contain a dot between non-empty labels";
		return PROFILE_INVALID_ARGUMENT;
	}
	return PROFILE_OK;
}

void
wire_email_key(const char *email, char *out)
{
	size_t i = 0;

	for (; email[i] != '\0' && i < WIRE_EMAIL_MAX; i++) {
		char c = email[i];
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[i] = '\0';
}

static int64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
wire_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t
wire_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int
wire_check_idem_key(const char *s, const char **why)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > WIRE_IDEM_KEY_MAX) {
		*why = "Idempotency-Key must be 1 to 255 characters";
		return PROFILE_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
			*why = "Idempotency-Key must be printable ASCII";
			return PROFILE_INVALID_ARGUMENT;
		}
	return PROFILE_OK;
}

int
wire_check_log_id(const char *s, const char **why)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > WIRE_LOG_ID_MAX) {
		*why = "a request id must be 1 to 128 characters";
		return PROFILE_INVALID_ARGUMENT;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7e) {
			*why = "a request id must be visible ASCII (no spaces)";
			return PROFILE_INVALID_ARGUMENT;
		}
	return PROFILE_OK;
}

int
wire_parse_positions(const char *v, Profile__V1__Position *out, size_t max, size_t *n, const char **why)
{
	const char *p = v;

	*n = 0;
	for (;;) {
		unsigned long long part = 0, off = 0;
		int digits;

		while (*p == ' ' || *p == '\t')
			p++;
		for (digits = 0; *p >= '0' && *p <= '9' && digits < 10; digits++)
			part = part * 10 + (unsigned)(*p++ - '0');
		if (digits == 0 || part > INT32_MAX || *p++ != ':')
			goto bad;
		for (digits = 0; *p >= '0' && *p <= '9' && digits < 19; digits++)
			off = off * 10 + (unsigned)(*p++ - '0');
		if (digits == 0 || (*p >= '0' && *p <= '9'))
			goto bad;
		if (*n == max) {
			*why = "too many positions";
			return PROFILE_INVALID_ARGUMENT;
		}
		profile__v1__position__init(&out[*n]);
		out[*n].partition = (int32_t)part;
		out[*n].offset = (int64_t)off;
		(*n)++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return PROFILE_OK;
		if (*p++ != ',')
			goto bad;
	}
bad:
	*why = "positions must be given as writes give them (partition:offset), comma-separated";
	return PROFILE_INVALID_ARGUMENT;
}

int
wire_positions_new(const char *s, size_t max, Profile__V1__Position **items, Profile__V1__Position ***ptrs,
                   size_t *n, const char **why)
{
	Profile__V1__Position *all;
	size_t tokens = 1;
	int rc;

	*items = NULL;
	*ptrs = NULL;
	for (const char *c = s; *c; c++)
		tokens += *c == ',';
	if (tokens < max)
		max = tokens; /* room for as many as there can be */
	if ((all = calloc(max, sizeof *all)) == NULL)
		return PROFILE_RESOURCE_EXHAUSTED;
	if ((rc = wire_parse_positions(s, all, max, n, why)) != PROFILE_OK ||
	    (*ptrs = calloc(*n + 1, sizeof **ptrs)) == NULL) {
		free(all);
		return rc != PROFILE_OK ? rc : PROFILE_RESOURCE_EXHAUSTED;
	}
	for (size_t i = 0; i < *n; i++)
		(*ptrs)[i] = &all[i];
	*items = all;
	return PROFILE_OK;
}

uint64_t
wire_request_hash(const char *username, const char *email)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)username; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h = (h ^ 0) * 0x100000001b3ULL;
	for (const unsigned char *p = (const unsigned char *)email; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return h;
}

/* ---- encoded messages, field by field ---------------------------------- */

/* A base-128 varint at buf[*at..len) (at most 10 bytes): 0, or -1. */
static int
varint_read(const uint8_t *buf, size_t len, size_t *at, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 70 && *at < len; shift += 7) {
		uint8_t b = buf[(*at)++];

		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

int
wire_field_next(const uint8_t *buf, size_t len, size_t *at, wire_field *f)
{
	uint64_t key, n;
	size_t start;

	if (*at >= len)
		return 0;
	if (varint_read(buf, len, at, &key) != 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
		return -1;
	f->number = (uint32_t)(key >> 3);
	f->type = (int)(key & 7);
	f->value = buf + *at;
	f->varint = 0;
	start = *at;
	switch (f->type) {
	case 0:
		if (varint_read(buf, len, at, &f->varint) != 0)
			return -1;
		break;
	case 1:
	case 5:
		n = f->type == 1 ? 8 : 4;
		if (len - *at < n)
			return -1;
		*at += n;
		break;
	case 2:
		if (varint_read(buf, len, at, &n) != 0 || n > len - *at)
			return -1;
		*at += n;
		break;
	default: /* groups (3, 4) are not used by proto3; 6 and 7 do not exist */
		return -1;
	}
	f->len = *at - start;
	return 1;
}
