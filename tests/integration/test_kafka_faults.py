"""Kafka outages and faults, injected while it runs into librdkafka's mock
cluster (tests/broker/, its --control interface) or by stopping its process.
These tests keep the mock, as a fault tool: a real broker cannot be made to
refuse every connection while keeping its partitions' leadership, add
round-trip time, or fail the next N produce or fetch requests with a chosen
error code on cue (a real broker's own outages are in test_failures and
test_kafka_cluster). What they check: reads are served from
the stores throughout; a write is answered within its deadline, 503 only
when it surely never reaches the log; no write answered 503 ever appears
later; writes succeed again within seconds of recovery; a fatal error of the
idempotent producer is recovered without losing or duplicating an
acknowledged write."""
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from harness import SESSION_MS, CreateLoad, StackTest, main, promised_failure, wait_for

DEADLINE_S = 2.0  # the gateway's --timeout-ms below


class KafkaFaults(StackTest):
    """Outages shorter than the group session (here 30 s, against real
    Kafka 45 s by default): the node keeps its partitions throughout."""
    partitions = 4
    broker = "mock"
    gateway_args = ("--timeout-ms", "2000")
    core_args = {1: ("--consumer", "session.timeout.ms=30000")}

    def setUp(self):
        super().setUp()
        s = self.stack
        self.made = [s.create("k%d" % i, "k%d@mail.com" % i) for i in range(6)]

    def write(self, uid, name):
        t0 = time.monotonic()
        r = self.stack.request("PUT", "/api/profile/" + uid, {"username": name}, timeout=15)
        return r, time.monotonic() - t0

    def outage(self, start, end, what):
        """Runs reads and writes while Kafka is away (start() .. end()),
        checks every promise, and returns the names answered 503."""
        s = self.stack
        refused, unknown = [], []
        start()
        try:
            time.sleep(0.5)
            for i, p in enumerate(self.made):
                r = s.request("GET", "/api/profile/" + p["uid"], timeout=5)
                self.assertEqual(r.status, 200, "read during %s: %r" % (what, r))
                r = s.request("GET", "/api/search?email=" + p["email"], timeout=5)
                self.assertEqual(r.status, 200, "search during %s: %r" % (what, r))
                # Two writes to one uid: the first is handed to Kafka, the
                # second waits behind it in the uid's queue.
                names = ["%s-%d-first" % (what, i), "%s-%d-second" % (what, i)]
                with ThreadPoolExecutor(2) as ex:
                    first = ex.submit(self.write, p["uid"], names[0])
                    time.sleep(0.2)
                    second = ex.submit(self.write, p["uid"], names[1])
                    answers = [first.result(), second.result()]
                for name, (r, took) in zip(names, answers):
                    self.assertTrue(promised_failure(r, write=True), "write during %s: %r" % (what, r))
                    self.assertLess(took, DEADLINE_S + 1.0, "write during %s answered after %.1f s" % (what, took))
                    (refused if r.status == 503 else unknown).append(name)
        finally:
            end()
        # Writes succeed again within seconds of recovery.
        t0 = time.monotonic()
        r = wait_for(lambda: (lambda r: r if r.status == 200 else None)(
            self.write(self.made[0]["uid"], what + "-after")[0]), 30, "a write after the %s" % what)
        print("%s: %d writes refused (503), %d unknown (504); a write succeeded %.1f s after recovery"
              % (what, len(refused), len(unknown), time.monotonic() - t0))
        self.assertGreater(len(refused), 0, "no write was refused: the check below would prove nothing")
        return refused

    def assert_never_logged(self, refused):
        self.stack.stop_service()
        names = set(refused)
        logged = [v for _, _, _, v in self.stack.records() if v is not None]
        found = [n for n in names if any(n.encode() in v for v in logged)]
        self.assertEqual(found, [], "writes answered 503 reached the log")

    def test_all_brokers_down_then_up(self):
        s = self.stack
        before = node_metric(s, "profile_node_kafka_request_retries_total")
        refused = self.outage(lambda: s.broker_control("down"), lambda: s.broker_control("up"), "down")
        # The requests in flight when the connections dropped were sent
        # again, and the operators' counter says so (librdkafka's statistics
        # come every 5 s).
        wait_for(lambda: node_metric(s, "profile_node_kafka_request_retries_total") > before, 20,
                 "the retried requests counted")
        self.assert_never_logged(refused)

    def test_broker_process_stopped_then_resumed(self):
        s = self.stack
        refused = self.outage(lambda: os.kill(s.broker.p.pid, signal.SIGSTOP),
                              lambda: os.kill(s.broker.p.pid, signal.SIGCONT), "sigstop")
        self.assert_never_logged(refused)

    def test_latency_and_retriable_errors_only_slow_writes_down(self):
        s = self.stack
        s.broker_control("rtt 200")
        uid = self.made[1]["uid"]
        r, took = self.write(uid, "slow")
        self.assertEqual(r.status, 200, r)
        self.assertGreater(took, 0.2)  # the latency is real
        self.assertEqual(s.request("GET", "/api/profile/" + uid).json["username"], "slow")
        s.broker_control("rtt 0")
        # Errors the producer and consumer retry on their own.
        s.broker_control("error produce NOT_LEADER_FOR_PARTITION 3")
        s.broker_control("error fetch REQUEST_TIMED_OUT 3")
        for i in range(5):
            r, _ = self.write(uid, "retried-%d" % i)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(s.request("GET", "/api/profile/" + uid).json["version"], 7)

    def test_fatal_producer_error_is_recovered_without_loss_or_duplicates(self):
        s = self.stack
        with CreateLoad(s, threads=3, prefix="fatal", timeout=10) as load:
            wait_for(lambda: len(load.acked) >= 30, 30, "creates before the fault")
            s.broker_control("error produce OUT_OF_ORDER_SEQUENCE_NUMBER 1")
            n = len(load.acked)
            wait_for(lambda: len(load.acked) >= n + 60, 30, "creates after the fault")
        self.assertEqual(load.odd, [], load.statuses)
        with open(s.cores[1].log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        self.assertIn("the producer hit a fatal error", log)
        self.assertIn("a new producer took over", log)
        self.assertGreaterEqual(node_metric(s, "profile_node_produce_errors_total"), 1)
        self.assertEqual(node_metric(s, "profile_node_producer_restarts_total"), 1)
        for p in load.acked:
            r = s.request("GET", "/api/profile/" + p["uid"])
            self.assertEqual((r.status, r.json), (200, p))
        s.stop_service()
        emails = [v for _, _, _, v in s.records() if v is not None]
        for p in load.acked:
            self.assertEqual(sum(p["email"].encode() in v for v in emails), 1, p)


def node_metric(stack, name):
    """node1's value of one of its /metrics series."""
    text = stack.request("GET", "/metrics").body
    m = re.search(r'^%s\{node="node1"\} (\d+)$' % name, text, re.M)
    return int(m.group(1)) if m else -1


class LongOutage(StackTest):
    """Kafka away longer than the group session (6 s here; the broker, a real
    one, stopped with SIGSTOP): the node gives its partitions up, since it
    cannot know whether another node took them. Reads then answer 503 until
    Kafka is back, and /readyz 503; then every profile reads again and
    writes go through."""
    partitions = 2
    broker = "own"

    def test_reads_answer_503_past_the_session_until_kafka_is_back(self):
        s = self.stack
        made = [s.create("n%d" % i, "n%d@mail.com" % i) for i in range(6)]
        os.kill(s.broker.p.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: re.search(r"partition \d+ lost", s.cores[1].tail(200)),
                     SESSION_MS / 1000 + 20, "the node to give its partitions up")
            for p in made:
                r = s.request("GET", "/api/profile/" + p["uid"], timeout=10)
                self.assertTrue(r.status == 503 and promised_failure(r, write=False), r)
            self.assertEqual(s.request("GET", "/readyz", timeout=5).status, 503)
        finally:
            os.kill(s.broker.p.pid, signal.SIGCONT)
        s.wait_ready(timeout=60)
        for p in made:
            r = s.served("/api/profile/" + p["uid"])
            self.assertEqual((r.status, r.json), (200, p))
        r = s.request("PUT", "/api/profile/" + made[0]["uid"], {"username": "back"})
        self.assertEqual(r.status, 200, r)


class LostReads(StackTest):
    """As LongOutage, with --lost-read-ms: reads past the session are still
    answered from the stores the node held."""
    partitions = 2
    broker = "own"
    core_args = {1: ("--lost-read-ms", "60000")}

    def test_lost_read_ms_keeps_reads_answered_past_the_session(self):
        s = self.stack
        made = [s.create("l%d" % i, "l%d@mail.com" % i) for i in range(6)]
        os.kill(s.broker.p.pid, signal.SIGSTOP)
        try:
            # past the session: the partitions are lost
            wait_for(lambda: "its store answers reads for 60000 ms more" in s.cores[1].tail(200),
                     SESSION_MS / 1000 + 20, "the node to give its partitions up")
            for p in made:
                r = s.request("GET", "/api/profile/" + p["uid"], timeout=5)
                self.assertEqual((r.status, r.json), (200, p))
        finally:
            os.kill(s.broker.p.pid, signal.SIGCONT)
        s.wait_ready(timeout=60)
        r = s.request("PUT", "/api/profile/" + made[0]["uid"], {"username": "back"})
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    main()
