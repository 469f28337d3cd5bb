/* tracer.c: the changelog's reader of partitions this node lost
 * (changelog.h, changelog_trace): from where its store stopped, each record
 * goes to the handler's traced callback until it says it has seen enough.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>

#include "changelog.h"
#include "changelog_impl.h"
#include "fence_kafka.h"

/* Assigns the tracer what is asked of it now, each partition from its next
 * offset. */
static void
trace_assign(changelog *cl)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);

	pthread_mutex_lock(&cl->trace_mu);
	cl->trace_changed = 0;
	for (int32_t p = 0; p < cl->partitions; p++)
		if (cl->trace_from[p] >= 0)
			rd_kafka_topic_partition_list_add(l, cl->topic, p)->offset = cl->trace_from[p];
	pthread_mutex_unlock(&cl->trace_mu);
	rd_kafka_assign(cl->tracer, l->cnt ? l : NULL);
	rd_kafka_topic_partition_list_destroy(l);
}

void *
tracer_main(void *arg)
{
	changelog *cl = arg;

	while (!__atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE)) {
		rd_kafka_message_t *m;

		if (__atomic_load_n(&cl->trace_changed, __ATOMIC_ACQUIRE))
			trace_assign(cl);
		if ((m = rd_kafka_consumer_poll(cl->tracer, 100)) == NULL)
			continue;
		if (m->err == 0 && m->partition >= 0 && m->partition < cl->partitions) {
			store_record r = {m->offset,  m->key, m->key_len,
			                  m->payload, m->len, fence_token_of(m)};
			int more = cl->h.traced(cl->h.arg, m->partition, &r, 1);

			pthread_mutex_lock(&cl->trace_mu);
			if (cl->trace_from[m->partition] >= 0) {
				cl->trace_from[m->partition] = more ? m->offset + 1 : -1;
				if (!more)
					__atomic_store_n(&cl->trace_changed, 1, __ATOMIC_RELEASE);
			}
			pthread_mutex_unlock(&cl->trace_mu);
		}
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

void
changelog_trace(changelog *cl, int32_t p, int64_t from)
{
	if (cl->tracer == NULL || p < 0 || p >= cl->partitions)
		return;
	pthread_mutex_lock(&cl->trace_mu);
	if (cl->trace_from[p] < 0 || from < cl->trace_from[p]) {
		cl->trace_from[p] = from;
		__atomic_store_n(&cl->trace_changed, 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&cl->trace_mu);
}
