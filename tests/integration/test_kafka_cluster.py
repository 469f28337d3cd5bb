"""The production topology, for real: three Apache Kafka brokers in KRaft
mode (each broker and controller), replication factor 3 and
min.insync.replicas 2, as docker-compose.yml deploys it, under two core
nodes. Under a steady load of creates: one Kafka broker killed (kill -9)
and started again, then the active controller paused (SIGSTOP) past its
session and resumed. The service keeps answering throughout, every answer
is a 201 or a promised failure (503 not executed, 504 outcome unknown), and
no acknowledged write is lost: each is read back through the service and
found in the topic."""
import collections
import os
import re
import signal
import sys
import time

from harness import CreateLoad, Stack, StackTest, main, wait_for

PARTITIONS = 6


def leader(stack):
    """The KafkaBroker that leads the metadata quorum: the active controller."""
    newest = None
    for k in stack.kafkas:
        with open(os.path.join(k.dir, "server.log"), errors="replace") as f:
            for m in re.finditer(r"\[RaftManager id=(\d+)\] Completed transition to Leader\(.*?epoch=(\d+)",
                                 f.read()):
                if newest is None or int(m.group(2)) > newest[0]:
                    newest = (int(m.group(2)), int(m.group(1)))
    assert newest, "no controller has led yet"
    return stack.kafkas[newest[1] - 1]


class KafkaCluster(StackTest):
    nodes = 2
    partitions = PARTITIONS

    def setUp(self):
        self.stack = Stack(nodes=self.nodes, partitions=self.partitions, kafka_nodes=3)
        try:
            self.stack.start()
        except BaseException:
            sys.stderr.write(self.stack.logs())
            self.stack.destroy()
            raise

    def under_load(self, fault, heal, what, seconds=12):
        """Creates while fault() holds for about `seconds`, then heal();
        returns the load, after writes flow again."""
        s = self.stack
        with CreateLoad(s, prefix=what[:4]) as load:
            wait_for(lambda: len(load.acked) >= 50, 60, "50 acknowledged creates before the %s" % what)
            fault()
            t0 = time.monotonic()
            try:
                n = sum(load.statuses.values())
                wait_for(lambda: sum(load.statuses.values()) >= n + 20, 60, "answers during the %s" % what)
                time.sleep(max(0, seconds - (time.monotonic() - t0)))
            finally:
                heal()
            n = len(load.acked)
            wait_for(lambda: len(load.acked) >= n + 50, 90, "creates acknowledged after the %s" % what)
        print("%s: %s" % (what, dict(load.statuses)), flush=True)
        self.assertEqual(load.odd, [], load.statuses)
        self.assertEqual(set(load.statuses) - {201, 503, 504}, set(), load.statuses)
        return load

    def assert_kept(self, acked):
        s = self.stack
        for p in acked:
            r = s.request("GET", "/api/profile/" + p["uid"])
            self.assertEqual((r.status, r.json), (200, p))
        logged = collections.Counter(k for _, _, k, v in s.records() if v is not None)
        self.assertEqual([p["uid"] for p in acked if logged[p["uid"]] != 1], [], "acknowledged, not in the topic once")

    def test_the_topic_is_replicated_three_times(self):
        from test_compaction import settings
        s = self.stack
        got = settings(s.bootstrap, s.topic)
        self.assertEqual((got["replication"], got["min.insync.replicas"], got["cleanup.policy"]), ("3", "2", "compact"))

    def test_a_broker_killed_then_the_controller_paused_loses_no_acknowledged_write(self):
        s = self.stack
        victim = s.kafkas[1]
        killed = self.under_load(lambda: victim.proc.p.kill(), victim.start, "kill -9 of a Kafka broker")
        self.assertGreater(killed.statuses[201], 100)
        wait_for(lambda: all(k.alive() for k in s.kafkas), 30, "the broker back")
        ctl = leader(s)
        paused = self.under_load(lambda: os.kill(ctl.proc.p.pid, signal.SIGSTOP),
                                 lambda: os.kill(ctl.proc.p.pid, signal.SIGCONT), "SIGSTOP of the active controller")
        self.assertNotEqual(leader(s), ctl, "another controller took over while it was paused")
        s.wait_ready(90)
        self.assert_kept(killed.acked + paused.acked)


if __name__ == "__main__":
    main()
