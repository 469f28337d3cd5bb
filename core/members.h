/* members.h: who owns which partition, through Kafka.
 *
 * Each node publishes {node id, RPC address, owned partitions} to the
 * compacted, single-partition topic `profiles.members` (key = node id)
 * whenever its assignment changes, and a "leaving" record when it shuts
 * down. Every node reads that topic whole, from the beginning, and keeps the
 * partition -> node table. Log order decides: a later claim on a partition
 * supersedes an earlier one, so no clocks are ever compared. A node that
 * died without a word keeps its claims until the group gives its partitions
 * to others and they publish theirs.
 *
 * Owns its own Kafka producer and reader, and a thread that polls them.
 */
#ifndef PROFILE_MEMBERS_H
#define PROFILE_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

typedef struct members members;

typedef struct members_config {
	const char *brokers;
	const char *topic; /* "profiles.members" */
	const char *node_id;
	const char *address;              /* this node's RPC address */
	int32_t partitions;               /* partitions of the profiles topic */
	const char *const *kafka_opts;    /* librdkafka properties for both clients */
	const char *const *consumer_opts; /* ...and for the reader only */
} members_config;

#define MEMBERS_ID_MAX 256
#define MEMBERS_ADDR_MAX 256

typedef struct member_node {
	char id[MEMBERS_ID_MAX];
	char address[MEMBERS_ADDR_MAX];
	int leaving;
} member_node;

/* Opens the producer and the reader (creating the topic, compacted, when
 * the broker lacks it and can create topics) and starts reading.
 * PROFILE_OK and *out, or PROFILE_UNAVAILABLE / PROFILE_INVALID_ARGUMENT /
 * PROFILE_RESOURCE_EXHAUSTED. With cfg->brokers NULL, the table alone: no
 * Kafka, ready at once, fed only by members_apply (tests and tools).
 * Strings in cfg are copied; kafka_opts and consumer_opts are borrowed
 * until members_open returns. */
int members_open(members **out, const members_config *cfg);

/* Applies one record of the members topic (record[0..len), borrowed; NULL
 * for a tombstone, which changes nothing) at offset, in log order.
 * PROFILE_OK; PROFILE_INVALID_ARGUMENT when it is not a member record (the
 * table is unchanged); PROFILE_RESOURCE_EXHAUSTED. */
int members_apply(members *m, const void *record, size_t len, int64_t offset);

/* Publishes a leaving record, flushes (at most timeout_ms), stops, frees.
 * NULL is a no-op. */
void members_close(members *m, int timeout_ms);

/* Publishes that this node now owns parts[0..n). Asynchronous; nothing for
 * a table alone. */
void members_publish(members *m, const int32_t *parts, size_t n);

/* The owner of partition p per the table: PROFILE_OK with its id and
 * address copied out (either may be NULL), PROFILE_NOT_FOUND when no live
 * node claims it. */
int members_owner(members *m, int32_t p, char *id, size_t id_size, char *address, size_t addr_size);

/* 1 once the reader has caught up with the topic as it was at open. */
int members_ready(members *m);

/* Snapshot of the table: *nodes (malloc'd, n_nodes entries; free()) and
 * owner[p] = index into *nodes or -1, for p < partitions. PROFILE_OK or
 * PROFILE_RESOURCE_EXHAUSTED. */
int members_snapshot(members *m, member_node **nodes, size_t *n_nodes, int *owner);

#endif
