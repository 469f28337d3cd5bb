/* kafka.h: what every librdkafka client of a core node shares.
 *
 * The changelog (the profiles topic) and the membership (profiles.members)
 * each own their own handles; this module gives both the same
 * configuration path (bootstrap list, client id, logging, "key=value"
 * properties), the same topic look-up and creation, and the one table that
 * maps rd_kafka errors to profile statuses. Only those two modules include
 * it: rd_kafka types and codes go no further.
 */
#ifndef PROFILE_KAFKA_H
#define PROFILE_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "profile/status.h"

/* The profile status for an rd_kafka error (PROFILE_OK for none). */
int kafka_status(rd_kafka_resp_err_t err);

/* A new configuration with bootstrap.servers, client.id and this process's
 * logging set, or NULL (message logged). The caller owns it (it passes to
 * rd_kafka_new, or rd_kafka_conf_destroy). */
rd_kafka_conf_t *kafka_conf_new(const char *brokers, const char *client_id);

/* Sets each "key=value" of opts (NULL-terminated, or NULL) on conf.
 * PROFILE_OK, or PROFILE_INVALID_ARGUMENT at the first bad one (logged). */
int kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *opts);

/* The partition count of topic: 0 when the topic does not exist, -1 when no
 * broker answered within timeout_ms. Never triggers a broker's auto-create. */
int32_t kafka_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms);

/* The partition count of topic, as kafka_topic_partitions, after creating
 * it when it does not exist: log-compacted (min.compaction.lag.ms one day),
 * `partitions` partitions, the broker's default replication factor; the
 * outcome is logged. The topic is waited for (about 10 s at most) until
 * every partition has a leader. Brokers without CreateTopics (the
 * mock) never answer: the request gives up after a few seconds. */
int32_t kafka_topic_ensure(rd_kafka_t *rk, const char *topic, int32_t partitions, int timeout_ms);

#endif
