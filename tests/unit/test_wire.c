/* test_wire.c: the shared wire rules (proto/wire.c). */
#include "check.h"
#include "wire.h"

/* Kafka's murmur2 and default partitioner agree with Java's for Kafka's own
 * test vectors, so keys land where Java clients and Kafka Streams expect. */
static void
test_murmur2_matches_kafka(void)
{
	CHECK_INT(wire_murmur2("21", 2), -973932308);
	CHECK_INT(wire_murmur2("foobar", 6), -790332482);
	CHECK_INT(wire_murmur2("abc", 3), 479470107);
	CHECK_INT(wire_partition("a", 1, 6), 4);
	CHECK_INT(wire_partition("foo", 3, 6), 2);
	CHECK_INT(wire_partition("123e4567-e89b-12d3-a456-426614174000", 36, 6), 2);
}

/* The status enum of the C code and the protobuf enum are the same list. */
static void
test_status_names_mirror_proto(void)
{
	const ProtobufCEnumDescriptor *d = &profile__v1__status__descriptor;

	CHECK_INT(d->n_values, PROFILE_UNAVAILABLE + 1);
	for (unsigned i = 0; i < d->n_values; i++) {
		CHECK_INT(d->values[i].value, (int)i);
		CHECK_STR(profile_status_name((int)i), d->values[i].name);
	}
	CHECK_STR(profile_status_name(-1), "UNKNOWN");
	CHECK_STR(profile_status_name(99), "UNKNOWN");
}

static int
ok(int rc)
{
	return rc == PROFILE_OK;
}

static void
test_uid_rules(void)
{
	const char *why = NULL;

	CHECK(ok(wire_check_uid("74292b21-0fbb-4f1d-a18f-fa80f947fa5d", &why)));
	CHECK(ok(wire_check_uid("74292B21-0FBB-4F1D-A18F-FA80F947FA5D", &why)));
	CHECK(!ok(wire_check_uid("74292b21-0fbb-4f1d-a18f-fa80f947fa5", &why)));
	CHECK(!ok(wire_check_uid("74292b21-0fbb-4f1d-a18f-fa80f947fa5dd", &why)));
	CHECK(!ok(wire_check_uid("74292b21x0fbb-4f1d-a18f-fa80f947fa5d", &why)));
	CHECK(!ok(wire_check_uid("g4292b21-0fbb-4f1d-a18f-fa80f947fa5d", &why)));
	CHECK(!ok(wire_check_uid("", &why)));
	CHECK(!ok(wire_check_uid(NULL, &why)));
	CHECK(why != NULL && strstr(why, "UUID") != NULL);
}

static void
test_username_rules(void)
{
	const char *why = NULL;
	char long_name[80];

	CHECK(ok(wire_check_username("bob", &why)));
	CHECK(ok(wire_check_username("Zoë Ådahl", &why)));
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	CHECK(ok(wire_check_username(long_name, &why)));
	long_name[64] = 'a';
	long_name[65] = '\0';
	CHECK(!ok(wire_check_username(long_name, &why)));
	/* 64 two-byte characters are 64 characters, not 128. */
	{
		char wide[140] = "";
		for (int i = 0; i < 64; i++)
			strcat(wide, "é");
		CHECK(ok(wire_check_username(wide, &why)));
		strcat(wide, "é");
		CHECK(!ok(wire_check_username(wide, &why)));
	}
	CHECK(!ok(wire_check_username("", &why)));
	CHECK(!ok(wire_check_username(NULL, &why)));
	CHECK(!ok(wire_check_username("bo\nb", &why)));
	CHECK(!ok(wire_check_username("bo\tb", &why)));
	CHECK(!ok(wire_check_username("bo\x7f", &why)));
	CHECK(!ok(wire_check_username("bo\xc2\x85", &why))); /* U+0085, a C1 control */
	CHECK(!ok(wire_check_username("bo\xff", &why)));     /* not UTF-8 */
}

static void
test_email_rules(void)
{
	const char *why = NULL;
	char big[300];

	CHECK(ok(wire_check_email("bob1@mail.com", &why)));
	CHECK(ok(wire_check_email("Bob.Smith+tag@sub.mail.example", &why)));
	CHECK(!ok(wire_check_email("bob1mail.com", &why)));
	CHECK(!ok(wire_check_email("@mail.com", &why)));
	CHECK(!ok(wire_check_email("bob@mail", &why)));
	CHECK(!ok(wire_check_email("bob@.com", &why)));
	CHECK(!ok(wire_check_email("bob@mail.", &why)));
	CHECK(!ok(wire_check_email("bob@mail..com", &why)));
	CHECK(!ok(wire_check_email("bob@x@mail.com", &why)));
	CHECK(!ok(wire_check_email("bob smith@mail.com", &why)));
	CHECK(!ok(wire_check_email("", &why)));
	memset(big, 'a', sizeof big);
	strcpy(big + 254 - 9, "@mail.com"); /* exactly 254 bytes */
	CHECK_INT(strlen(big), 254);
	CHECK(ok(wire_check_email(big, &why)));
	memset(big, 'a', sizeof big);
	strcpy(big + 255 - 9, "@mail.com");
	CHECK(!ok(wire_check_email(big, &why)));
}

static void
test_utf8(void)
{
	CHECK(wire_utf8_valid("plain", 5));
	CHECK(wire_utf8_valid("\xe2\x82\xac", 3));      /* € */
	CHECK(wire_utf8_valid("\xf0\x9f\x98\x80", 4));  /* 😀 */
	CHECK(!wire_utf8_valid("\xc0\xaf", 2));         /* overlong */
	CHECK(!wire_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
	CHECK(!wire_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	CHECK(!wire_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	CHECK(!wire_utf8_valid("\xe2\x82", 2));         /* truncated */
	CHECK(!wire_utf8_valid("a\0b", 3));             /* NUL */
}

static void
test_email_key_lowercases(void)
{
	char key[WIRE_EMAIL_MAX + 1];

	wire_email_key("Bob1@Mail.COM", key);
	CHECK_STR(key, "bob1@mail.com");
}

/* The scanner finds each field of a packed Response as protobuf-c wrote
 * it, and rejects what is not a well-formed field. */
static void
test_fields_of_an_encoded_message(void)
{
	Profile__V1__Response r = PROFILE__V1__RESPONSE__INIT;
	Profile__V1__Profile p = PROFILE__V1__PROFILE__INIT;
	uint8_t buf[256];
	size_t len, at = 0, last = 0, cuts = 0;
	wire_field f;
	uint32_t numbers[8];
	int n = 0, rc;

	r.request_id = 300; /* a two-byte varint */
	r.status = PROFILE__V1__STATUS__NOT_FOUND;
	r.message = "gone";
	r.draining = 1;
	p.uid = "u";
	p.username = "n";
	p.email = "e";
	r.body_case = PROFILE__V1__RESPONSE__BODY_PROFILE;
	r.profile = &p;
	len = profile__v1__response__pack(&r, buf);
	while ((rc = wire_field_next(buf, len, &at, &f)) > 0 && n < 8) {
		numbers[n++] = f.number;
		if (at < len)
			last = at; /* where the next field starts */
		if (f.number == WIRE_RESPONSE_REQUEST_ID)
			CHECK_INT(f.varint, 300);
		if (f.number == WIRE_RESPONSE_DRAINING)
			CHECK_INT(f.varint, 1);
		if (f.number == 3) {
			CHECK_INT(f.type, 2);
			CHECK_INT(f.len, 5); /* the length prefix and "gone" */
			CHECK(memcmp(f.value + 1, "gone", 4) == 0);
		}
	}
	CHECK_INT(rc, 0);
	CHECK_INT(at, len);
	CHECK_INT(n, 5);
	CHECK_INT(numbers[0], 1);
	CHECK_INT(numbers[4], 10);

	/* The field numbers the relay relies on are the schema's. */
	CHECK_INT(protobuf_c_message_descriptor_get_field_by_name(&profile__v1__response__descriptor, "request_id")->id,
	          WIRE_RESPONSE_REQUEST_ID);
	CHECK_INT(protobuf_c_message_descriptor_get_field_by_name(&profile__v1__response__descriptor, "draining")->id,
	          WIRE_RESPONSE_DRAINING);

	/* Truncated anywhere inside the last field, or a wire type that does
	 * not exist, or a group, or field number 0: malformed. */
	for (size_t cut = last + 1; cut < len; cut++, cuts++) {
		at = 0;
		while ((rc = wire_field_next(buf, cut, &at, &f)) > 0)
			;
		CHECK_INT(rc, -1);
	}
	CHECK(cuts >= 8);
	{
		const uint8_t bad[][2] = {{1 << 3 | 7, 0}, {1 << 3 | 3, 0}, {0 << 3 | 0, 1}, {1 << 3 | 0, 0x80}};
		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			at = 0;
			CHECK_INT(wire_field_next(bad[i], 2, &at, &f), -1);
		}
	}
	at = 0;
	CHECK_INT(wire_field_next(buf, 0, &at, &f), 0);
}

int
main(void)
{
	test_murmur2_matches_kafka();
	test_status_names_mirror_proto();
	test_uid_rules();
	test_username_rules();
	test_email_rules();
	test_utf8();
	test_email_key_lowercases();
	test_fields_of_an_encoded_message();
	return check_done("test_wire");
}
