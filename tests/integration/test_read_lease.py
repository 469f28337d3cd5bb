"""The read lease (profiled --read-lease), measured with a network
partition: node 2 is cut from Kafka while its caller still reaches it. It
answers reads of the partitions it owns until its lease runs out, counted
from the last offset commit the group coordinator accepted from it, which
is before its group session can end, and so before node 1 can be given
those partitions, and says why (its error, its partitions `unavailable` in
/api/cluster, /readyz 503). Writes sent to it meanwhile answer 503 or 504 within
their deadline. Root only: each node runs in a network namespace of its
own (netns.py)."""
import threading
import time
import unittest

import netns
from harness import SESSION_MS, Stack, all_active_on, java_partition, main, wait_for


def measure(test, lease_args):
    s = Stack(nodes=2, partitions=4, broker="own", net=True)
    s.core_args = {2: list(lease_args)}
    try:
        s.start()
        wait_for(lambda: all_active_on(s, {"node1", "node2"}) and
                 {p["owner"] for p in s.cluster()["partitions"]} == {"node1", "node2"}, 60, "both nodes to own")
        owner = {p["partition"]: p["owner"] for p in s.cluster()["partitions"]}
        uid = next(u for u in (s.create("l%d" % i, "l%d@mail.com" % i)["uid"] for i in range(50))
                   if owner[java_partition(u, 4)] == "node2")
        part = java_partition(uid, 4)
        gw2, gw1 = s.node_gateway(2), s.node_gateway(1)
        test.assertEqual(gw2.request("GET", "/api/profile/" + uid).status, 200)

        cut = time.monotonic()
        s.net.cut(2, "kafka")
        took = []

        def watch_takeover():  # node 1's view, polled on its own
            while not took and time.monotonic() < cut + 30:
                try:
                    view = gw1.request("GET", "/api/cluster", timeout=5)
                    if view.status == 200 and any(p["partition"] == part and p["owner"] == "node1" and
                                                  p["state"] == "active" for p in view.json["partitions"]):
                        took.append(time.monotonic() - cut)
                except OSError:
                    pass
                time.sleep(0.05)
        said = []
        seen = []
        quick = s.node_gateway(2, ["--timeout-ms", "200"])  # answers well before node 2 gives the partition up

        def watch_said():  # node 2's report of the partition, and why a read of it fails
            while not said and time.monotonic() < cut + 30:
                try:
                    mine = next(p for p in gw2.request("GET", "/api/cluster", timeout=5).json["partitions"]
                                if p["partition"] == part)
                    if not seen or seen[-1][1] != mine["state"]:
                        seen.append((round(time.monotonic() - cut, 2), mine["state"]))
                    # (unknown: node 2's report missed the view's 500 ms, as
                    # under load, or it no longer holds the partition)
                    if mine["state"] not in ("active", "unknown"):
                        said.append((time.monotonic() - cut, mine, gw2.request("GET", "/readyz", timeout=5),
                                     quick.request("GET", "/api/profile/" + uid, timeout=5)))
                except (OSError, KeyError, StopIteration):
                    pass
                time.sleep(0.05)
        watcher = threading.Thread(target=watch_takeover)
        watcher.start()
        said_thread = threading.Thread(target=watch_said)
        said_thread.start()
        # Reads of node 2 back to back: the first not answered 200 tells
        # when it stopped (once stopped, it answers 503 at the deadline).
        stopped = None
        while stopped is None and time.monotonic() < cut + 30:
            t0 = time.monotonic()
            r = gw2.request("GET", "/api/profile/" + uid, timeout=15)
            if r.status != 200:
                test.assertEqual(r.status, 503, r)
                stopped = t0 - cut
        watcher.join()
        said_thread.join()
        test.assertIsNotNone(stopped, "node 2 still answered reads 30 s after the cut")
        test.assertTrue(took, "node 1 did not take the partition over")
        took = took[0]
        # Said so: node 2 reports the partition unavailable, the lease named,
        # which turns /readyz 503, and a read's error names it too.
        test.assertTrue(said, "node 2 never reported the partition unavailable: its states %s" % seen)
        at, mine, ready, read = said[0]
        test.assertEqual((mine["owner"], mine["state"]), ("node2", "unavailable"), mine)
        test.assertIn("read lease has lapsed", mine["problem"], mine)
        test.assertLess(at, took)
        test.assertEqual(ready.status, 503, ready)
        test.assertEqual(read.status, 503, read)
        test.assertIn("read lease has lapsed", read.json["error"]["message"], read)
        # A write sent to the cut-off node: refused or unknown, in time.
        t0 = time.monotonic()
        r = gw2.request("PUT", "/api/profile/" + uid, {"username": "late"}, timeout=15)
        test.assertIn(r.status, (503, 504), r)
        write_s = time.monotonic() - t0
        print("cut from Kafka (%s): reads stopped after %.2f s (reported unavailable at %.2f s), node 1 owned "
              "the partition after %.2f s, a write answered %d in %.2f s (session %.1f s)" %
              (" ".join(lease_args) or "default lease", stopped, at, took, r.status, write_s, SESSION_MS / 1000))
        return stopped, took
    finally:
        if s.net:
            for i in (1, 2):
                s.net.heal(i)
        s.destroy()


@unittest.skipUnless(netns.available(), "network namespaces need root and iproute2")
class ReadLease(unittest.TestCase):
    def test_a_cut_off_node_stops_reading_when_its_lease_runs_out(self):
        stopped, took = measure(self, ["--read-lease", "3000"])
        self.assertLess(stopped, 3.6)  # the lease, and a renewal tick
        self.assertLess(stopped, took)

    def test_the_default_lease_ends_reads_before_the_partitions_move(self):
        stopped, took = measure(self, [])
        # The session less two heartbeats (harness: 500 ms); without a lease
        # librdkafka's own timer stops reads about a session after the cut.
        self.assertLess(stopped, (SESSION_MS - 2 * 500) / 1000 + 0.3)
        self.assertLess(stopped, took)


if __name__ == "__main__":
    main()
