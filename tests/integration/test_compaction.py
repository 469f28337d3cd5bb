"""Compaction, on a real Kafka broker: the topic the cores create has the
settings docs/deploying.md recommends; and on a topic whose cleaner acts at once
(small segments, no compaction lag, tombstones kept one second), after many
versions of the same profiles and some deletes, Kafka's log cleaner removes
every superseded record and every tombstone (read from outside with kcat),
and a node started with an empty store restores exactly the latest state of
every profile, with deleted profiles still deleted: no part of the service
needs a record the cleaner may remove."""
import collections
import os
import subprocess
import time

from harness import BUILD, Stack, StackTest, java_partition, main, wait_for

# The cleaner acts on closed segments only: segments roll after 100 ms (on
# the next record), any dirt is worth cleaning, a record may be cleaned at
# once, a tombstone lives one second past the cleaning of its segment.
EAGER = ["cleanup.policy=compact", "segment.ms=100", "min.cleanable.dirty.ratio=0.01", "min.compaction.lag.ms=0",
         "delete.retention.ms=1000"]
VERSIONS = 6


def kafka_topic(*args):
    r = subprocess.run([os.path.join(BUILD, "tests", "kafka_topic")] + list(args), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def settings(bootstrap, topic):
    out = kafka_topic(bootstrap, "describe", topic)
    return dict(line.split("=", 1) if "=" in line else line.split(" ", 1) for line in out.splitlines())


def kcat_records(bootstrap, topic):
    """key -> [value size, ...] of every record in the topic, as kcat (a
    consumer that knows nothing of this project) reads it; -1 is a tombstone."""
    r = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                        "-f", "%k %S\\n"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = collections.defaultdict(list)
    for line in r.stdout.splitlines():
        key, size = line.rsplit(" ", 1)
        out[key].append(int(size))
    return out


class TopicSettings(StackTest):
    partitions = 5

    def test_the_cores_create_compacted_topics(self):
        """The topics a core creates when they are missing: profiles with
        --partitions partitions, the members topic with one, both compacted,
        with the broker's replication factor and a compaction lag of a day."""
        s = self.stack
        profiles, members = settings(s.bootstrap, s.topic), settings(s.bootstrap, s.members_topic)
        self.assertEqual((profiles["partitions"], profiles["cleanup.policy"]), ("5", "compact"))
        self.assertEqual(profiles["min.compaction.lag.ms"], "86400000")
        self.assertEqual(profiles["replication"], "1")  # the broker's default.replication.factor
        self.assertEqual((members["partitions"], members["cleanup.policy"]), ("1", "compact"))


class Compaction(StackTest):
    partitions = 2

    def setUp(self):
        # The stack's topic made first, eager to be cleaned: the cores find
        # it and keep its settings.
        self.stack = Stack(nodes=1, partitions=self.partitions)
        try:
            self.stack.start_broker()
            kafka_topic(self.stack.bootstrap, "create", self.stack.topic, str(self.partitions), *EAGER)
            self.stack.start()
        except BaseException:
            self.stack.destroy()
            raise

    def test_the_cleaner_removes_superseded_records_and_a_new_store_restores_the_latest(self):
        s = self.stack
        self.assertEqual(settings(s.bootstrap, s.topic)["min.compaction.lag.ms"], "0")
        made = [s.create("c%d" % i, "c%d@mail.com" % i) for i in range(30)]
        latest = {}
        for v in range(2, VERSIONS + 1):
            for p in made:
                r = s.request("PUT", "/api/profile/" + p["uid"], {"username": "c-v%d" % v})
                self.assertEqual((r.status, r.json["version"]), (200, v), r)
                latest[p["uid"]] = r.json
        deleted = made[::3]
        for p in deleted:
            self.assertEqual(s.request("DELETE", "/api/profile/" + p["uid"]).status, 204)
            del latest[p["uid"]]

        # Other writes keep rolling every partition's segments, so that the
        # cleaner can reach the last of ours (it never cleans the segment
        # being written), until only the newest record of each profile is
        # left and no deleted profile has any, its tombstone included.
        fillers = {}
        while len(fillers) < self.partitions:
            f = s.create("filler", "filler%d@mail.com" % len(fillers))
            fillers.setdefault(java_partition(f["uid"], self.partitions), f)
        ours = {p["uid"] for p in made}
        seen = {}

        def cleaned():
            for f in fillers.values():
                r = s.request("PUT", "/api/profile/" + f["uid"], {"username": "f%d" % time.monotonic_ns()})
                self.assertEqual(r.status, 200, r)
            recs = seen["last"] = kcat_records(s.bootstrap, s.topic)
            return recs if all(len(recs.get(u, [])) == 1 for u in latest) and \
                not any(p["uid"] in recs for p in deleted) else None
        try:
            recs = wait_for(cleaned, 150, "the log cleaner to remove superseded records and tombstones")
        except AssertionError:
            left = {k: v for k, v in seen["last"].items() if k in ours and (k not in latest or len(v) != 1)}
            raise AssertionError("not cleaned after 150 s: %d of our profiles with more than their latest "
                                 "record, e.g. %r" % (len(left), sorted(left.items())[:3]))
        self.assertTrue(all(recs[u][0] > 0 for u in latest), "a live profile's record is its state")
        self.assertEqual({k for k in recs if k in ours}, set(latest))

        # A node with an empty store restores exactly the latest state.
        s.stop_service()
        s.start_core(1, data_name="empty-store")
        s.start_gateway()
        s.wait_ready()
        self.assertGreater(sum(p["replayed"] for p in s.cluster()["partitions"]), 0)
        for uid, want in latest.items():
            r = s.request("GET", "/api/profile/" + uid)
            self.assertEqual((r.status, r.json), (200, want))
            r = s.request("GET", "/api/search?email=" + want["email"])
            self.assertEqual((r.status, r.json["uid"]), (200, uid))
        for p in deleted:
            self.assertEqual(s.request("GET", "/api/profile/" + p["uid"]).status, 404)
            self.assertEqual(s.request("GET", "/api/search?email=" + p["email"]).status, 404)


if __name__ == "__main__":
    main()
