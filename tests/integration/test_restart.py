"""Restarts: a core node restarted (cleanly or by kill -9) keeps every
acknowledged profile and replays only the tail of the log; the whole stack
restarted keeps its data."""
import os
import shutil
import signal
from concurrent.futures import ThreadPoolExecutor

from harness import CreateLoad, Stack, StackTest, main, wait_for


def snapshot(s, uids):
    return {u: s.request("GET", "/api/profile/" + u).json for u in uids}


class CoreRestart(StackTest):
    def test_kill_9_during_writes_keeps_every_acknowledged_create(self):
        s = self.stack
        with CreateLoad(s) as load:
            wait_for(lambda: len(load.acked) >= 100, 60, "100 acknowledged creates")
            s.cores[1].stop(signal.SIGKILL)
            # The gateway keeps answering while its only core is down:
            # 503 (not executed), never a hang or another status.
            n = sum(load.statuses.values())
            wait_for(lambda: load.statuses[503] >= 4 and sum(load.statuses.values()) >= n + 4, 60,
                     "answers while the core is down")
        s.start_core(1)
        s.wait_ready()
        self.assertEqual(load.odd, [], load.statuses)
        self.assertEqual(load.statuses[201], len(load.acked))
        for p in load.acked:
            r = s.request("GET", "/api/profile/" + p["uid"])
            self.assertEqual((r.status, r.json), (200, p))
        # The email index came back with the profiles (one transaction).
        for p in load.acked[::max(1, len(load.acked) // 25)]:
            r = s.request("GET", "/api/search?email=" + p["email"])
            self.assertEqual((r.status, r.json), (200, p))

    def test_restart_replays_only_the_tail(self):
        s = self.stack
        first = [s.create("a%d" % i, "a%d@mail.com" % i) for i in range(40)]
        for p in first[:10]:
            self.assertEqual(s.request("PUT", "/api/profile/" + p["uid"], {"username": "changed"}).status, 200)
        before = snapshot(s, [p["uid"] for p in first])

        # A clean stop is bounded and exits 0; the restart finds its stores
        # at the end of the log and replays nothing.
        self.assertEqual(s.cores[1].stop(signal.SIGTERM, timeout=25), 0)
        s.start_core(1)
        s.wait_ready()
        self.assertEqual(s.replayed(), 0)
        self.assertEqual(snapshot(s, before), before)

        # While node 1's stores sleep, another store directory takes over
        # (replaying the whole log: 50 records) and 15 profiles are added.
        s.cores[1].stop()
        s.start_core(1, data_name="other-core")
        s.wait_ready()
        self.assertEqual(s.replayed(), 50)
        later = [s.create("b%d" % i, "b%d@mail.com" % i) for i in range(15)]
        s.cores[1].stop()

        # Back on the first stores: only those 15 records are replayed.
        s.start_core(1)
        s.wait_ready()
        self.assertEqual(s.replayed(), 15)
        self.assertEqual(snapshot(s, before), before)
        for p in later:
            self.assertEqual(s.request("GET", "/api/profile/" + p["uid"]).json, p)
        r = s.request("GET", "/api/search?email=b7@mail.com")
        self.assertEqual(r.json["uid"], later[7]["uid"])


class LongLog(StackTest):
    """One partition, a few hundred profiles, then a log of about 7 MiB
    behind them (12,000 updates of large profiles: past the 5 MiB after
    which librdkafka's mock cluster silently dropped a partition's oldest
    records); the node's store deleted; it restores every profile from the
    log, the oldest included."""
    partitions = 1

    def test_a_store_rebuilt_from_a_long_log_has_the_oldest_profiles(self):
        s = self.stack
        early = [s.create("early%d" % i, "early%d@mail.com" % i) for i in range(300)]
        big = "\U0001F600" * 64  # 64 code points, 256 bytes
        churn = [s.create("churn", "c%d.%s@mail.com" % (i, "x" * 200)) for i in range(16)]

        def update(p):
            last = None
            for k in range(750):
                r = s.request("PUT", "/api/profile/" + p["uid"], {"username": big[:-1] + chr(0x1F600 + k % 64)})
                assert r.status == 200, r
                last = r.json
            return last
        with ThreadPoolExecutor(16) as pool:
            churn = list(pool.map(update, churn))
        self.assertGreater(sum(len(v or b"") for _, _, _, v in s.records()), 6 * 1024 * 1024)
        self.assertEqual(s.cores[1].stop(), 0)
        shutil.rmtree(os.path.join(s.data, "core1"))
        s.start_core(1)
        s.wait_ready(120)
        self.assertGreaterEqual(s.replayed(), 300 + 16 * 751)
        for p in early + churn:
            r = s.request("GET", "/api/profile/" + p["uid"])
            self.assertEqual((r.status, r.json), (200, p))
        for p in early[::30]:
            r = s.request("GET", "/api/search?email=" + p["email"])
            self.assertEqual((r.status, r.json), (200, p))


class LogGone(StackTest):
    partitions = 4
    broker = "own"  # its log is thrown away

    def restart_on_a_new_log(self, data_name="core1"):
        """Stops everything, throws the broker's log away (as a topic
        recreated), starts a broker and the core on data_name."""
        s = self.stack
        s.stop()
        shutil.rmtree(os.path.join(s.data, "kafka"))
        s.start_broker()
        s.start_core(1, data_name=data_name)
        s.start_gateway()
        s.wait_ready()

    def core_log(self, data_name="core1"):
        with open(os.path.join(self.stack.data, data_name + ".log")) as f:
            return f.read()

    def test_a_store_whose_log_is_gone_is_rebuilt_from_the_log(self):
        """A store is a cache of the log: when the record at its stored
        offset is another one, or its offset is past the end of the log,
        the node says why and rebuilds it from the log; nothing from the
        old log is served."""
        s = self.stack
        old = [s.create("old%d" % i, "old%d@mail.com" % i) for i in range(20)]
        # A new log, written through other stores, longer than the old one
        # in every partition: the record at each stored offset differs.
        self.restart_on_a_new_log("other")
        new = [s.create("new%d" % i, "new%d@mail.com" % i) for i in range(80)]
        s.stop()
        s.start_broker()
        s.start_core(1)
        s.start_gateway()
        s.wait_ready()
        self.assertIn("is not the one it applied: was the topic recreated?", self.core_log())
        for p in new[::8]:
            self.assertEqual(s.request("GET", "/api/profile/" + p["uid"]).json, p)
        for p in old[::4]:
            self.assertEqual(s.request("GET", "/api/profile/" + p["uid"]).status, 404)
            self.assertEqual(s.request("GET", "/api/search?email=" + p["email"]).status, 404)
        # An empty new log: every stored offset is past its end.
        self.restart_on_a_new_log()
        self.assertIn("is past the end of the log", self.core_log())
        for p in new[::8]:
            self.assertEqual(s.request("GET", "/api/profile/" + p["uid"]).status, 404)
        self.assertEqual(s.request("GET", "/api/search?email=new3@mail.com").status, 404)


class StackRestart(StackTest):
    broker = "own"  # stopped and started again with the rest

    def test_whole_stack_restart_keeps_data(self):
        s = self.stack
        made = [s.create("p%d" % i, "p%d@mail.com" % i) for i in range(30)]
        for p in made[:5]:
            self.assertEqual(s.request("PUT", "/api/profile/" + p["uid"], {"email": "moved%s@mail.com" % p["uid"][:8]}).status, 200)
        for p in made[5:10]:
            self.assertEqual(s.request("DELETE", "/api/profile/" + p["uid"]).status, 204)
        uids = [p["uid"] for p in made]
        before = snapshot(s, uids)
        offsets = s.applied_offsets()
        codes = s.stop()
        self.assertEqual(codes, {"gateway": 0, "core1": 0, "broker": 0})

        again = Stack(partitions=s.partitions, data=s.data, broker="own")
        again.own_data = True  # removed with the test
        again.port = s.port
        again.core_addr = dict(s.core_addr)
        self.stack = again
        again.start_broker()
        again.start_core(1)
        again.start_gateway()
        again.wait_ready()
        # Kafka kept the log on disk, so the core's stores match it and
        # nothing is replayed; taking the partitions' transactional ids
        # again adds no record, and the node has read each partition to its
        # end: at least the last record Kafka holds (past it, the commit
        # markers the consumer skips; offsets are not contiguous).
        self.assertEqual(again.replayed(), 0)
        last = {}
        for part, offset, _, _ in again.records():
            last[part] = offset
        self.assertTrue(all(offsets[p] >= o for p, o in last.items()), (offsets, last))
        wait_for(lambda: all(again.applied_offsets()[p] >= o for p, o in offsets.items()), 10,
                 "every partition read to its end")
        self.assertEqual(snapshot(again, uids), before)
        for p in made[5:10]:
            self.assertEqual(again.request("GET", "/api/profile/" + p["uid"]).status, 404)
        self.assertEqual(again.request("GET", "/api/search?email=p20@mail.com").json["uid"], made[20]["uid"])
        # And it still takes writes.
        again.create("after", "after@mail.com")


if __name__ == "__main__":
    main()
