/* lease.c: the read lease's renewal (stall.h). Every tick the group
 * consumer commits the offsets its stores have applied, for the partitions
 * it is assigned: an OffsetCommit that carries its member id and
 * generation, which the coordinator accepts only from a current member of
 * the group, and which restarts that member's session when it does. Each
 * accepted commit renews the lease from the moment it was sent. The same
 * commits keep the group's committed offsets following the stores (for
 * monitoring: the stores stay the truth).
 */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <time.h>

#include "changelog_impl.h"
#include "log.h"

#define LEASE_OUTSTANDING 2 /* commits in flight at most */

/* The applied offsets of the assigned partitions, or NULL when there are
 * none (nothing to read from yet, nothing to renew). */
static rd_kafka_topic_partition_list_t *
applied_offsets(changelog *cl)
{
	rd_kafka_topic_partition_list_t *mine = NULL, *l;

	if (rd_kafka_assignment(cl->consumer, &mine) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return NULL;
	l = rd_kafka_topic_partition_list_new(mine->cnt > 0 ? mine->cnt : 1);
	for (int i = 0; i < mine->cnt; i++) {
		int32_t p = mine->elems[i].partition;
		int64_t next = p >= 0 && p < cl->partitions ? __atomic_load_n(&cl->applied_next[p], __ATOMIC_ACQUIRE) : -1;

		if (next >= 0)
			rd_kafka_topic_partition_list_add(l, cl->topic, p)->offset = next;
	}
	rd_kafka_topic_partition_list_destroy(mine);
	if (l->cnt == 0) {
		rd_kafka_topic_partition_list_destroy(l);
		return NULL;
	}
	return l;
}

/* A commit's answer: 1 when every offset was accepted. */
static int
accepted(rd_kafka_event_t *ev)
{
	const rd_kafka_topic_partition_list_t *l = rd_kafka_event_topic_partition_list(ev);

	if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_OFFSET_COMMIT || rd_kafka_event_error(ev) || l == NULL)
		return 0;
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
			return 0;
	return 1;
}

void *
lease_main(void *arg)
{
	changelog *cl = arg;
	rd_kafka_queue_t *q = rd_kafka_queue_new(cl->consumer);
	int outstanding = 0, lapsed = 0, assigned = 0;

	while (!__atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE)) {
		int64_t now = stall_now_ms(), until;
		rd_kafka_topic_partition_list_t *l;
		rd_kafka_event_t *ev;

		l = applied_offsets(cl);
		assigned = l != NULL;
		/* The send time rides along as the commit's opaque. */
		if (l && outstanding < LEASE_OUTSTANDING &&
		    rd_kafka_commit_queue(cl->consumer, l, q, NULL, (void *)(intptr_t)now) == RD_KAFKA_RESP_ERR_NO_ERROR)
			outstanding++;
		if (l)
			rd_kafka_topic_partition_list_destroy(l);
		/* Answers until the next tick: sooner while the lease has lapsed. */
		until = now + (stall_leased(cl->stall, now) ? cl->lease_tick_ms : STALL_TICK_MS);
		while ((now = stall_now_ms()) < until && !__atomic_load_n(&cl->stopping, __ATOMIC_ACQUIRE)) {
			if ((ev = rd_kafka_queue_poll(q, (int)(until - now < 100 ? until - now : 100))) == NULL)
				continue;
			if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT) {
				outstanding--;
				if (accepted(ev))
					stall_renewed(cl->stall, (int64_t)(intptr_t)rd_kafka_event_opaque(ev));
			}
			rd_kafka_event_destroy(ev);
		}
		/* Told once it lapses while it mattered (a lease granted, partitions
		 * to read), and once it runs again. */
		if (assigned && __atomic_load_n(&cl->stall->lease_until, __ATOMIC_ACQUIRE) != 0 &&
		    (stall_leased(cl->stall, stall_now_ms()) == 0) != lapsed) {
			lapsed = !lapsed;
			if (lapsed)
				log_warn("kafka: the group coordinator has not accepted this node's commits for %lld ms: "
				         "reads of its partitions stop until it does (read lease)",
				         (long long)cl->stall->lease_ms);
			else
				log_info("kafka: the group coordinator accepts this node's commits again; reads resume");
		}
	}
	rd_kafka_queue_destroy(q);
	return NULL;
}
