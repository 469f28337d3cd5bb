"""Standbys and bounded staleness: with --standbys 1 every partition is
also followed by the member after its owner. Under read load on a node's
profiles, that node is killed (kill -9): reads that accept a stale copy
(Cache-Control: max-stale) keep getting 200 (with Age and X-Profile-Lag)
through the whole failover. Reads without the header behave as before: the
owner's answer or 503 (they are printed, not judged: a standby that takes a
partition over is ready at once, so most of them now bridge the group
session by retrying). The new owner takes over with only the log's tail to
apply. In replicated mode the same holds (every node follows everything)."""
import collections
import signal
import threading
import time

from harness import SESSION_MS, StackTest, all_active_on, java_partition, main, wait_for

NODES = ("node1", "node2", "node3")


class Standbys(StackTest):
    nodes = 3
    partitions = 6
    core_args = {i: ("--standbys", "1") for i in (1, 2, 3)}
    # A deadline well under the group session, so that retrying cannot
    # bridge the failover: only a copy that answers at once can.
    gateway_args = ("--timeout-ms", "1000")
    copies = 2  # replicas per partition: the owner and one standby

    def test_stale_allowed_reads_survive_a_kill(self):
        s = self.stack
        wait_for(lambda: all_active_on(s, set(NODES)), 60, "every partition active")
        wait_for(lambda: all(len(p["replicas"]) >= self.copies and all(r["state"] == "active" for r in p["replicas"])
                             for p in s.cluster()["partitions"]), 60, "every partition's copies active")
        owner = {p["partition"]: p["owner"] for p in s.cluster()["partitions"]}
        made = [s.create("sb%d" % i, "sb%d@mail.com" % i) for i in range(60)]
        victims = [p for p in made if owner[java_partition(p["uid"], self.partitions)] == "node3"]
        self.assertTrue(victims)
        failover, tally, stale_headers, odd = reads_through_a_kill(s, victims, 3)
        share = {k: 100.0 * v[200] / max(1, sum(v.values())) for k, v in tally.items()}
        print("failover %.1f s; reads of the killed node's profiles answered 200: with max-stale %.1f%% %s, "
              "without %.1f%% %s" % (failover, share[True], dict(tally[True]), share[False], dict(tally[False])))
        self.assertEqual(odd[:5], [])
        self.assertEqual(set(tally[True]), {200}, tally[True])
        self.assertTrue(stale_headers, "no stale-allowed read was answered by a standby")
        self.assertTrue(all(a.isdigit() and l.isdigit() for a, l in stale_headers), stale_headers[:5])
        # The standby that took each partition over replayed only the tail.
        for p in s.cluster()["partitions"]:
            if owner[p["partition"]] == "node3":
                self.assertLess(p["replayed"], 60, p)


    def test_stale_reads_go_straight_to_the_freshest_copy(self):
        """With the owner killed, a get that accepts a stale answer goes to
        the freshest other copy the client library knows of (from the
        cluster view), not through a node that would forward it to the dead
        owner: no node forwards anything while the group still counts the
        dead owner in (afterwards the partitions move, and a node may forward
        to a new owner that restores one)."""
        s = self.stack
        # Ready is not balanced: every node owns its share, and every copy is
        # active, before the owners are read (a late rebalance would move
        # them, and reads would then be forwarded for a reason of its own).
        wait_for(lambda: (lambda c: {p["owner"] for p in c["partitions"]} == {"node1", "node2", "node3"} and
                          all(len(p["replicas"]) >= self.copies and all(r["state"] == "active" for r in p["replicas"])
                              for p in c["partitions"]))(s.cluster()), 60, "every node to own active partitions")
        owner = {p["partition"]: p["owner"] for p in s.cluster()["partitions"]}
        made = [s.create("fr%d" % i, "fr%d@mail.com" % i) for i in range(60)]
        victims = [p for p in made if owner[java_partition(p["uid"], self.partitions)] == "node3"]
        time.sleep(3)  # the gateway's table of copies is refreshed every 2 s
        before = {n["id"]: n["forwards"] for n in s.cluster()["nodes"]}
        after = {}

        def in_session():
            owners = {p["owner"] for p in s.cluster()["partitions"]}
            self.assertIn("node3", owners, "the partitions moved before the session ran out")
            after.update({n["id"]: n["forwards"] - before[n["id"]] for n in s.cluster()["nodes"] if n["reachable"]})
        _, tally, _, odd = reads_through_a_kill(s, victims, 3, kinds=(True,), in_session=in_session)
        print("stale-allowed reads through the kill: %s; forwards while the dead owner still owned: %s" %
              (dict(tally[True]), after))
        self.assertTrue(after)
        self.assertEqual(odd[:5], [])
        self.assertEqual(set(tally[True]), {200}, tally[True])
        self.assertEqual(set(after.values()), {0}, after)


class Replicated(Standbys):
    core_args = {}
    state = "replicated"
    copies = 3


def reads_through_a_kill(s, victims, node, kinds=(True, False), in_session=None):
    """Four reader threads on the profiles victims (by default two with
    max-stale=60, two without; kinds says which kinds) from 1 s before a kill -9 of core node until 1 s after its
    partitions are active on the others; in_session, if given, is called
    three quarters of a group session after the kill (no rebalance can have
    moved a partition yet). Returns the failover time, the statuses per kind
    ({True: stale-allowed, False: default}), the Age and X-Profile-Lag pairs
    seen, and anything odd."""
    others = {"node%d" % i for i in s.cores if i != node}
    tally = {True: collections.Counter(), False: collections.Counter()}
    stale_headers, odd, stop = [], [], threading.Event()

    def reader(stale):
        i = 0
        while not stop.is_set():
            p = victims[i % len(victims)]
            i += 1
            h = {"Cache-Control": "max-stale=60"} if stale else {}
            try:
                r = s.request("GET", "/api/profile/" + p["uid"], headers=h, timeout=10)
            except OSError as e:
                odd.append(repr(e))
                continue
            tally[stale][r.status] += 1
            if r.status == 200 and r.json != p:
                odd.append(r)
            if stale and "age" in r.headers:
                stale_headers.append((r.headers["age"], r.headers.get("x-profile-lag")))
    threads = [threading.Thread(target=reader, args=(kinds[k % len(kinds)],)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        s.cores[node].stop(signal.SIGKILL)
        killed = time.monotonic()
        if in_session:
            time.sleep(0.75 * SESSION_MS / 1000)
            in_session()
        wait_for(lambda: all_active_on(s, others), 60, "the killed node's partitions active elsewhere")
        failover = time.monotonic() - killed
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    return failover, tally, stale_headers, odd


if __name__ == "__main__":
    main()
