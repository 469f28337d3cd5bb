/* fence_kafka.h: the fence token of a record as librdkafka hands it over
 * (fence.h), for the programs that read the topic with librdkafka. */
#ifndef PROFILE_FENCE_KAFKA_H
#define PROFILE_FENCE_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "fence.h"

/* The token m carries in its FENCE_HEADER, or -1. */
static inline int64_t
fence_token_of(rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs;
	const void *v;
	size_t len;

	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    rd_kafka_header_get_last(hdrs, FENCE_HEADER, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return -1;
	return fence_token(v, len);
}

#endif
