"""Overload: a flood of creates from 1,500 connections (30 source
addresses) against one node with small bounds. Past a bound the answer is an
immediate 503 with Retry-After, never a wait that ends in 504; a health check
and a read of an existing profile are answered within a second (90th
percentile, from a process of their own) all along;
the gateway and the core stay under a fixed memory bound. Prints the RSS of
both before, at the peak and after."""
import asyncio
import collections
import multiprocessing
import os
import re
import resource
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import StackTest, build_sanitizer, main, promised_failure

CONNECTIONS = 1500
SOURCES = 30
SECONDS = 8
RSS_BOUND_MIB = 256  # per process: the bound docs/reliability.md documents


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


async def flood_one(port, source, k, stop_at, tally):
    reader = writer = None
    i = 0
    while time.monotonic() < stop_at:
        try:
            if writer is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((source, 0))
                sock.setblocking(False)
                await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
                reader, writer = await asyncio.open_connection(sock=sock)
            body = b'{"username":"flood","email":"f%d.%d.%s@mail.com"}' % (k, i, source.encode())
            i += 1
            t0 = time.monotonic()
            writer.write(b"POST /api/profile HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))
            payload = await asyncio.wait_for(reader.readexactly(length), 10)
            took = time.monotonic() - t0
            status = int(head[9:12])
            tally["status"][status] += 1
            tally["slowest"][status] = max(tally["slowest"][status], took)
            tally["took"][status].append(took)
            if status == 503:
                if not re.search(rb"Retry-After: 1\r\n", head, re.I) or b'"UNAVAILABLE"' not in payload:
                    tally["odd"].append(head + payload)
                who = re.search(rb'"message":"(\w+) overloaded', payload)
                tally["refused by"][who.group(1).decode() if who else "other"] += 1
                await asyncio.sleep(0.1)
            elif status != 201:
                tally["odd"].append(head + payload)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, AttributeError) as e:
            tally["status"]["error"] += 1
            tally["odd"].append(repr(e))
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.1)
    if writer is not None:
        writer.close()


async def flood(port, tally):
    stop_at = time.monotonic() + SECONDS
    await asyncio.gather(*(flood_one(port, "127.0.3.%d" % (1 + k % SOURCES), k, stop_at, tally)
                           for k in range(CONNECTIONS)))


def probe(stack, read_path, stop, out):
    """A health check and a read, one after the other, every 0.2 s until
    told to stop; sends back (path, status or error, seconds) for each."""
    probes = []
    while not stop.is_set():
        for path in ("/healthz", read_path):
            t0 = time.monotonic()
            try:
                r = stack.request("GET", path, timeout=5)
                probes.append((path, r.status, time.monotonic() - t0))
            except OSError as e:
                probes.append((path, repr(e), time.monotonic() - t0))
        time.sleep(0.2)
    out.send(probes)


class Overload(StackTest):
    partitions = 4
    # Small enough that the flood passes it on any host: one Python process
    # keeps only some dozens of writes in flight when the node is fast.
    core_args = {1: ("--max-writes", "8")}
    gateway_args = ("--max-waiting", "1000")

    def test_a_write_flood_gets_fast_refusals_and_leaves_reads_and_memory_alone(self):
        s = self.stack
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))
        p = s.create("steady", "steady@mail.com")
        procs = {"gateway": s.gateway.p.pid, "core": s.cores[1].p.pid}
        rss = {n: {"before": rss_mib(pid), "peak": 0.0} for n, pid in procs.items()}
        stop = threading.Event()

        def sample_rss():
            while not stop.is_set():
                for n, pid in procs.items():
                    rss[n]["peak"] = max(rss[n]["peak"], rss_mib(pid))
                time.sleep(0.2)

        # The probes run in a process of their own: in this one, the event
        # loop driving 1,500 connections would delay them by its own lag.
        ctx = multiprocessing.get_context("fork")
        probes_out, probes_in = ctx.Pipe(duplex=False)
        prober_stop = ctx.Event()
        prober_proc = ctx.Process(target=probe, args=(s, "/api/profile/" + p["uid"], prober_stop, probes_in))
        prober_proc.start()
        sampler = threading.Thread(target=sample_rss)
        sampler.start()
        tally = {"status": collections.Counter(), "slowest": collections.defaultdict(float), "odd": [],
                 "refused by": collections.Counter(), "took": collections.defaultdict(list)}
        try:
            asyncio.run(flood(s.port, tally))
        finally:
            stop.set()
            prober_stop.set()
            sampler.join()
            probes = probes_out.recv()
            prober_proc.join()
        time.sleep(2)
        for n, pid in procs.items():
            rss[n]["after"] = rss_mib(pid)
        refusals = sorted(tally["took"][503])
        p90 = refusals[len(refusals) * 9 // 10] if refusals else 0.0
        print("flood: %s; slowest answer by status: %s; 503 p50 %.3f s, p90 %.3f s; 503 from: %s" % (
            dict(tally["status"]), dict(tally["slowest"]), refusals[len(refusals) // 2] if refusals else 0.0, p90,
            dict(tally["refused by"])))
        print("probes: %d, p90 %.3f s, slowest %.3f s" % (
            len(probes), sorted(t for _, _, t in probes)[len(probes) * 9 // 10], max(t for _, _, t in probes)))
        for n in procs:
            print("%s RSS MiB: before %.1f, peak %.1f, after %.1f" % (n, rss[n]["before"], rss[n]["peak"],
                                                                    rss[n]["after"]))

        self.assertEqual(tally["odd"][:5], [])
        self.assertGreater(tally["status"][201], 0)
        self.assertGreater(tally["status"][503], 0, "the flood never reached a bound")
        # The core's own bound (--max-writes), not only the gateway's.
        self.assertGreater(tally["refused by"]["node"], 0, dict(tally["refused by"]))
        self.assertEqual(tally["status"][504], 0)
        # A refusal that waited in a queue would take up to the 5 s deadline.
        # The times include this one Python process's own lag with 1,500
        # connections (up to 2 s under a sanitizer), so the bound is on the
        # 90th percentile, and the slowest stays well under the deadline.
        self.assertLess(p90, 1.5, "refusals waited in a queue")
        self.assertLess(tally["slowest"][503], 3.5, "a refusal waited in a queue")
        self.assertTrue(all(st == 200 for _, st, _ in probes), [x for x in probes if x[1] != 200][:5])
        # A read queued behind the writes would wait for the 5 s deadline.
        # Two cores shared with the flood, the broker and, in CI, another
        # test: the bound is on the 90th percentile, and the slowest stays
        # well under the deadline.
        took = sorted(t for _, _, t in probes)
        self.assertLess(took[len(took) * 9 // 10], 1.0, "reads waited behind the writes")
        self.assertLess(took[-1], 2.5, "a read waited behind the writes")
        if not build_sanitizer():
            for n in procs:
                self.assertLess(rss[n]["peak"], RSS_BOUND_MIB, n)
        self.assertTrue(s.gateway.alive() and s.cores[1].alive())


class GatewayBounds(StackTest):
    """The gateway's own bounds, each reached on purpose: past
    --max-waiting a request is refused with 503 at once (writes and reads
    counted apart), and past --max-connections a new connection waits,
    unanswered, until one of those open closes."""
    partitions = 2
    gateway_args = ("--max-waiting", "4", "--max-connections", "16")

    def test_past_max_waiting_a_write_is_refused_at_once_and_reads_keep_their_room(self):
        s = self.stack
        p = s.create("bound", "bound@mail.com")
        path = "/api/profile/" + p["uid"]
        os.kill(s.cores[1].p.pid, signal.SIGSTOP)  # what the gateway sends waits for it
        try:
            with ThreadPoolExecutor(5) as ex:
                held = [ex.submit(s.request, "PUT", path, {"username": "held%d" % i}, None, 15) for i in range(4)]
                time.sleep(0.3)
                read = ex.submit(s.request, "GET", path, None, None, 15)
                t0 = time.monotonic()
                refused = s.request("PUT", path, {"username": "refused"}, timeout=15)
                took = time.monotonic() - t0
                answers = [f.result() for f in held] + [read.result()]
        finally:
            os.kill(s.cores[1].p.pid, signal.SIGCONT)
        self.assertTrue(refused.status == 503 and promised_failure(refused, write=True), refused)
        self.assertIn("gateway overloaded", refused.json["error"]["message"])
        self.assertLess(took, 2.5, "the refusal waited in a queue (the deadline is 5 s)")
        # The four held writes and the read waited for the core: answered
        # as the documentation promises, and the read not by the bound.
        for r in answers:
            self.assertTrue(promised_failure(r, write=r is not answers[-1]), r)
        self.assertNotIn("overloaded", answers[-1].json["error"]["message"])
        s.wait_ready(60)
        self.assertNotEqual(s.served(path).json["username"], "refused")
        self.assertEqual(s.request("PUT", path, {"username": "after"}).status, 200)

    def test_past_max_connections_a_connection_waits_until_one_closes(self):
        s = self.stack
        idle = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(16)]
        try:
            time.sleep(0.5)  # every one of them accepted
            with socket.create_connection(("127.0.0.1", s.port), timeout=2) as extra:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                with self.assertRaises(TimeoutError, msg="a connection past --max-connections was answered"):
                    extra.recv(4096)  # not accepted: it waits in the kernel's listen queue
                idle.pop().close()
                extra.settimeout(10)
                self.assertTrue(extra.recv(4096).startswith(b"HTTP/1.1 200"))
        finally:
            for c in idle:
                c.close()


class ProducerQueue(StackTest):
    """librdkafka's queue bounded to one record per producer: creates in
    parallel that share a transaction find it full, and are refused (503,
    the transaction aborted, so never in the log; 504 where the deadline
    passed first); the rest are created and kept."""
    partitions = 2
    core_args = {1: ("--producer", "queue.buffering.max.messages=1")}
    gateway_args = ("--timeout-ms", "1000")

    def test_a_full_producer_queue_refuses_writes_and_loses_nothing(self):
        s = self.stack
        emails = ["q%d@mail.com" % i for i in range(200)]
        with ThreadPoolExecutor(16) as ex:
            answers = list(ex.map(lambda e: s.request("POST", "/api/profile", {"username": "q", "email": e},
                                                      timeout=15), emails))
        self.assertEqual([r for r in answers if r.status != 201 and not promised_failure(r, write=True)], [])
        with open(s.cores[1].log_path, encoding="utf-8", errors="replace") as f:
            self.assertIn("Queue full", f.read(), "the queue's bound was never reached")
        acked = [r.json for r in answers if r.status == 201]
        refused = [e for e, r in zip(emails, answers) if r.status == 503]
        print("creates with a producer queue of one: %d created, %d refused, %d unknown (504)" % (
            len(acked), len(refused), sum(r.status == 504 for r in answers)))
        for p in acked:
            self.assertEqual(s.request("GET", "/api/profile/" + p["uid"]).json, p)
        s.stop_service()
        logged = b"".join(v for _, _, _, v in s.records() if v is not None)
        self.assertEqual([e for e in refused if e.encode() in logged], [], "a refused create reached the log")
        self.assertEqual([p["email"] for p in acked if p["email"].encode() not in logged], [])


if __name__ == "__main__":
    main()
