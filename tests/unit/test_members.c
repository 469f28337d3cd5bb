/* test_members.c: the partition -> node table (core/members.c), fed record
 * by record as the members topic would feed it: a later claim on a
 * partition supersedes an earlier one; a node's new record replaces all its
 * earlier claims; a leaving node owns nothing; a node that moves keeps its
 * claims at its new address; claims outside the topic's partitions and
 * records that are not member records change nothing. */
#include <stdlib.h>

#include "check.h"
#include "members.h"

#define PARTS 4

/* Feeds one member record at offset to m. */
static int
feed(members *m, const char *id, const char *address, const int32_t *parts, size_t n, int leaving, int64_t offset)
{
	Profile__V1__Member mb = PROFILE__V1__MEMBER__INIT;
	uint8_t buf[512];

	mb.node_id = (char *)id;
	mb.address = (char *)address;
	mb.partitions = (int32_t *)parts;
	mb.n_partitions = n;
	mb.leaving = leaving;
	return members_apply(m, buf, profile__v1__member__pack(&mb, buf), offset);
}

/* The owner's id of p, or "-" when none. */
static const char *
owner_of(members *m, int32_t p, char *id, size_t size)
{
	if (members_owner(m, p, id, size, NULL, 0) != PROFILE_OK)
		snprintf(id, size, "-");
	return id;
}

static members *
table(void)
{
	members_config cfg = {.topic = "profiles.members", .node_id = "a", .address = "tcp://a", .partitions = PARTS};
	members *m = NULL;

	CHECK_INT(members_open(&m, &cfg), PROFILE_OK);
	return m;
}

static void
test_later_claim_supersedes_earlier(void)
{
	members *m = table();
	char id[MEMBERS_ID_MAX];

	CHECK(members_ready(m));
	CHECK_STR(owner_of(m, 0, id, sizeof id), "-");
	CHECK_INT(feed(m, "a", "tcp://a", (int32_t[]){0, 1}, 2, 0, 0), PROFILE_OK);
	CHECK_INT(feed(m, "b", "tcp://b", (int32_t[]){1, 2}, 2, 0, 1), PROFILE_OK);
	CHECK_STR(owner_of(m, 0, id, sizeof id), "a");
	CHECK_STR(owner_of(m, 1, id, sizeof id), "b");
	CHECK_STR(owner_of(m, 2, id, sizeof id), "b");
	CHECK_STR(owner_of(m, 3, id, sizeof id), "-");
	members_close(m, 0);
}

static void
test_new_record_replaces_a_nodes_claims(void)
{
	members *m = table();
	char id[MEMBERS_ID_MAX];

	feed(m, "a", "tcp://a", (int32_t[]){0, 1}, 2, 0, 0);
	feed(m, "a", "tcp://a", (int32_t[]){3}, 1, 0, 1);
	CHECK_STR(owner_of(m, 0, id, sizeof id), "-");
	CHECK_STR(owner_of(m, 1, id, sizeof id), "-");
	CHECK_STR(owner_of(m, 3, id, sizeof id), "a");
	members_close(m, 0);
}

static void
test_leaving_node_owns_nothing(void)
{
	members *m = table();
	char id[MEMBERS_ID_MAX];
	member_node *nodes = NULL;
	size_t n = 0;
	int owner[PARTS];

	feed(m, "a", "tcp://a", (int32_t[]){0, 1}, 2, 0, 0);
	feed(m, "b", "tcp://b", (int32_t[]){2, 3}, 2, 0, 1);
	feed(m, "a", "tcp://a", (int32_t[]){0, 1}, 2, 1, 2); /* claims on a leaving record count for nothing */
	CHECK_STR(owner_of(m, 0, id, sizeof id), "-");
	CHECK_STR(owner_of(m, 1, id, sizeof id), "-");
	CHECK_STR(owner_of(m, 2, id, sizeof id), "b");
	CHECK_INT(members_snapshot(m, &nodes, &n, owner), PROFILE_OK);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(nodes[0].id, "a");
		CHECK_INT(nodes[0].leaving, 1);
		CHECK_INT(nodes[1].leaving, 0);
		CHECK_INT(owner[0], -1);
		CHECK_INT(owner[2], 1);
		CHECK_INT(owner[3], 1);
	}
	free(nodes);
	/* It comes back: a new record after leaving counts again. */
	feed(m, "a", "tcp://a", (int32_t[]){0}, 1, 0, 3);
	CHECK_STR(owner_of(m, 0, id, sizeof id), "a");
	members_close(m, 0);
}

static void
test_moved_node_is_found_at_its_new_address(void)
{
	members *m = table();
	char addr[MEMBERS_ADDR_MAX];

	feed(m, "b", "tcp://old:1", (int32_t[]){2}, 1, 0, 0);
	feed(m, "b", "tcp://new:2", (int32_t[]){2}, 1, 0, 1);
	CHECK_INT(members_owner(m, 2, NULL, 0, addr, sizeof addr), PROFILE_OK);
	CHECK_STR(addr, "tcp://new:2");
	members_close(m, 0);
}

static void
test_bad_records_change_nothing(void)
{
	members *m = table();
	char id[MEMBERS_ID_MAX];
	const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x07};

	feed(m, "a", "tcp://a", (int32_t[]){0}, 1, 0, 0);
	CHECK_INT(members_apply(m, garbage, sizeof garbage, 1), PROFILE_INVALID_ARGUMENT);
	CHECK_INT(members_apply(m, NULL, 0, 2), PROFILE_OK); /* a tombstone */
	CHECK_INT(feed(m, "b", "tcp://b", (int32_t[]){-1, PARTS, 1}, 3, 0, 3), PROFILE_OK);
	CHECK_STR(owner_of(m, 0, id, sizeof id), "a");
	CHECK_STR(owner_of(m, 1, id, sizeof id), "b");
	CHECK_INT(members_owner(m, PARTS, id, sizeof id, NULL, 0), PROFILE_NOT_FOUND);
	CHECK_INT(members_owner(m, -1, id, sizeof id, NULL, 0), PROFILE_NOT_FOUND);
	members_close(m, 0);
}

int
main(void)
{
	test_later_claim_supersedes_earlier();
	test_new_record_replaces_a_nodes_claims();
	test_leaving_node_owns_nothing();
	test_moved_node_is_found_at_its_new_address();
	test_bad_records_change_nothing();
	return check_done("test_members");
}
