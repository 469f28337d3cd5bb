/* wire.h: rules about the wire formats that every part shares.
 *
 * Input validation (one set of rules, applied by the gateway for early, clear
 * errors and again by the core, which trusts no caller), Kafka's murmur2
 * partitioner (so the C code, Java clients and Kafka Streams agree where a key
 * lives), and small helpers around the generated protobuf-c code.
 */
#ifndef PROFILE_WIRE_H
#define PROFILE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "profile.pb-c.h"
#include "profile/status.h"

#define WIRE_UID_LEN 36            /* canonical UUID text, no terminator */
#define WIRE_USERNAME_MAX 64       /* characters (code points) */
#define WIRE_EMAIL_MAX 254         /* bytes (RFC 5321 path limit) */
#define WIRE_MESSAGE_MAX (1 << 20) /* largest RPC message accepted */
#define WIRE_IDEM_KEY_MAX 255      /* Idempotency-Key, characters */
#define WIRE_LOG_ID_MAX 128        /* a request's log id (X-Request-Id), characters */

/* Field numbers of Response (profile.proto) read or written on encoded
 * answers, which a forwarding node relays without decoding them. */
#define WIRE_RESPONSE_REQUEST_ID 1
#define WIRE_RESPONSE_DRAINING 4

/* Kafka's murmur2 (Java's Utils.murmur2, seed 0x9747b28c). */
int32_t wire_murmur2(const void *key, size_t len);

/* Kafka's default partition for a key: (murmur2 & 0x7fffffff) % count.
 * count must be > 0. */
int32_t wire_partition(const char *key, size_t len, int32_t count);

/* Each validator returns PROFILE_OK, or PROFILE_INVALID_ARGUMENT with *why
 * set to a static sentence naming the rule that failed. s may be NULL. */
int wire_check_uid(const char *s, const char **why); /* UUID, any case */
int wire_check_username(const char *s, const char **why);
int wire_check_email(const char *s, const char **why);
/* An Idempotency-Key: 1 to WIRE_IDEM_KEY_MAX printable ASCII characters
 * (space to tilde). */
int wire_check_idem_key(const char *s, const char **why);
/* A request's log id: 1 to WIRE_LOG_ID_MAX visible ASCII characters (no
 * space, so that a log line stays one word per field). */
int wire_check_log_id(const char *s, const char **why);

/* Reads a list of positions as writes give them ("<partition>:<offset>",
 * comma-separated, blanks around tokens allowed) into out[0..max): PROFILE_OK
 * and *n, or PROFILE_INVALID_ARGUMENT with *why. */
int wire_parse_positions(const char *s, Profile__V1__Position *out, size_t max, size_t *n, const char **why);

/* wire_parse_positions into new arrays, as a Request's min_positions wants
 * them: *items (the positions) and *ptrs (pointers to each), both the
 * caller's to free, *n of them. PROFILE_OK, PROFILE_INVALID_ARGUMENT with
 * *why (nothing left allocated), or PROFILE_RESOURCE_EXHAUSTED. */
int wire_positions_new(const char *s, size_t max, Profile__V1__Position **items, Profile__V1__Position ***ptrs,
                       size_t *n, const char **why);

/* The hash a keyed create is recognised by: FNV-1a (64 bits) of username,
 * a NUL, and email, as given. */
uint64_t wire_request_hash(const char *username, const char *email);

/* 1 when s[0..len) is valid UTF-8 with no NUL and no overlong or surrogate
 * forms, else 0. */
int wire_utf8_valid(const char *s, size_t len);

/* Writes the lower-cased (ASCII) email into out, which has room for
 * WIRE_EMAIL_MAX + 1 bytes; the email must have passed wire_check_email. */
void wire_email_key(const char *email, char *out);

/* One top-level field of an encoded protobuf message, as the scanner
 * below finds it. value points into the scanned buffer: for a varint the
 * varint, for a length-delimited field its length prefix and the bytes
 * after it; len counts all of them (so tag + value is the field exactly as
 * it was encoded). varint holds the decoded value of a varint field. */
typedef struct wire_field {
	uint32_t number;
	int type; /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	const uint8_t *value;
	size_t len;
	uint64_t varint;
} wire_field;

/* Reads the field at buf[*at..len): 1 with *f set and *at moved past it, 0
 * at the end of the buffer, -1 when the bytes are not a well-formed field
 * (truncated, a group, a bad wire type or field number 0). */
int wire_field_next(const uint8_t *buf, size_t len, size_t *at, wire_field *f);

/* Current time, Unix milliseconds (CLOCK_REALTIME). */
int64_t wire_now_ms(void);

/* Monotonic time in milliseconds, for deadlines. */
int64_t wire_mono_ms(void);

#endif
