"""A write is answered once its own node has applied it, and the node
applies its own writes from Kafka's acknowledgement, not only when its
consumer reads them back. Here the nodes' consumers ask Kafka to hold
every fetch until 10 MB have arrived or 4 s have passed
(fetch.min.bytes, fetch.wait.max.ms), so a node that waited for its
consumer would take no write for seconds (its own fence record, which
gates its writes, would wait for a fetch: 503) and answer none within the
1.5 s deadline (504). Each write is answered in time, and read at once
through either node sees it: read-your-writes holds. The nodes' counters
say so too: every write's record was applied from its acknowledgement.
"""
import re

from harness import StackTest, all_active_on, main, wait_for

HOLD = ("--consumer", "fetch.wait.max.ms=4000", "--consumer", "fetch.min.bytes=10000000")
ROUNDS = 8


def counters(stack, name):
    """Every node's value of one of its /metrics counters, summed."""
    text = stack.request("GET", "/metrics").body
    return sum(int(v) for v in re.findall(r'^%s\{node="node\d"\} (\d+)$' % name, text, re.M))


class OwnWrites(StackTest):
    nodes = 2
    partitions = 4
    core_args = {1: HOLD, 2: HOLD}
    gateway_args = ("--timeout-ms", "1500")

    def test_writes_are_answered_without_waiting_for_the_consumer(self):
        s = self.stack
        wait_for(lambda: all_active_on(s, {"node1", "node2"}), 60, "every partition active on the two nodes")
        gws = [s.node_gateway(i, ("--timeout-ms", "1500")) for i in (1, 2)]
        # The members table comes through a consumer that holds its fetches
        # too: each node learns where the other's partitions went up to 4 s
        # late (until then a search through it finds no owner for them).
        for gw in gws:
            wait_for(lambda: all_active_on(gw, {"node1", "node2"}), 60, "each node to know every partition's owner")
        on_ack = counters(s, "profile_node_records_applied_on_ack_total")
        for i in range(ROUNDS):
            w, r = gws[i % 2], gws[(i + 1) % 2]
            made = w.request("POST", "/api/profile", {"username": "own%d" % i, "email": "own%d@mail.com" % i})
            self.assertEqual(made.status, 201, made)
            uid = made.json["uid"]
            for gw in (w, r):
                got = gw.request("GET", "/api/profile/" + uid)
                self.assertEqual((got.status, (got.json or {}).get("version")), (200, 1), got)
            up = r.request("PUT", "/api/profile/" + uid, {"username": "own%d-b" % i})
            self.assertEqual((up.status, (up.json or {}).get("version")), (200, 2), up)
            for gw in (w, r):
                got = gw.request("GET", "/api/profile/" + uid)
                self.assertEqual((got.status, (got.json or {}).get("username")), (200, "own%d-b" % i), got)
            found = w.request("GET", "/api/search?email=own%d@mail.com" % i)
            self.assertEqual((found.status, (found.json or {}).get("uid")), (200, uid), found)
            gone = w.request("DELETE", "/api/profile/" + uid)
            self.assertEqual(gone.status, 204, gone)
            self.assertEqual(r.request("GET", "/api/profile/" + uid).status, 404)
        # Three writes a round, each applied from its acknowledgement, and
        # counted among the records the store transactions applied.
        acked = counters(s, "profile_node_records_applied_on_ack_total") - on_ack
        self.assertGreaterEqual(acked, 3 * ROUNDS)
        self.assertGreaterEqual(counters(s, "profile_node_store_records_total"), acked)


if __name__ == "__main__":
    main()
