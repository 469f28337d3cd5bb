"""Hostile HTTP clients against the gateway, over real sockets: oversized
headers (431) and URIs (414), connections that send nothing (closed after
--connection-timeout), slow clients, a cap on connections per source
address, thousands of idle connections, pipelining and garbage. Through all
of it the gateway stays up and keeps answering others quickly."""
import os
import random
import re
import resource
import socket
import time

from harness import StackTest, main, wait_for

TIMEOUT_S = 2  # --connection-timeout below
PER_SOURCE = 50  # --max-connections-per-source below


def connect(port, source="127.0.0.1"):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.bind((source, 0))
    c.settimeout(10)
    c.connect(("127.0.0.1", port))
    return c


def read_all(c, limit=10.0, closes=False):
    """Everything the server sends until it closes (or limit seconds).
    closes: the server must close within limit (a hang fails, rather than
    reading as a close that sent nothing)."""
    out, end = b"", time.monotonic() + limit
    c.settimeout(0.5)
    while time.monotonic() < end:
        try:
            d = c.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not d:
            break
        out += d
    else:
        assert not closes, "no close within %.1f s (received %r)" % (limit, out[:200])
    return out


class HostileHttp(StackTest):
    partitions = 2
    gateway_args = ("--connection-timeout", str(TIMEOUT_S), "--max-connections-per-source", str(PER_SOURCE))

    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
        super().setUp()
        self.p = self.stack.create("hostile", "hostile@mail.com")
        self.opened = []

    def tearDown(self):
        for c in self.opened:
            c.close()
        super().tearDown()

    def quick(self, what):
        """Others are served quickly: a health check and a read, from a
        source no test here crowds."""
        for path, want in (("/healthz", 200), ("/api/profile/" + self.p["uid"], 200)):
            t0 = time.monotonic()
            c = connect(self.stack.port, "127.0.0.254")
            c.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
            head = read_all(c, 5)
            c.close()
            took = time.monotonic() - t0
            self.assertTrue(head.startswith(b"HTTP/1.1 %d" % want), "%s: %r" % (what, head[:200]))
            self.assertLess(took, 1.0, "%s: %s took %.2f s" % (what, path, took))

    def test_oversized_header_431_and_uri_414(self):
        for data, want in (
                (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n", b"431"),
                (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
                 + b"\r\n", b"431"),
                (b"GET /api/profile/" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414")):
            c = connect(self.stack.port)
            c.sendall(data)
            out = read_all(c)
            c.close()
            self.assertTrue(out.startswith(b"HTTP/1.1 " + want + b" "), out[:200])
        self.quick("after oversized requests")

    def test_a_connection_that_sends_nothing_is_closed(self):
        for first in (b"", b"GET /healthz HTTP/1.1\r\nHost"):  # nothing; half a request
            c = connect(self.stack.port)
            self.opened.append(c)
            c.sendall(first)
            t0 = time.monotonic()
            self.assertEqual(read_all(c, TIMEOUT_S + 8, closes=True), b"")
            took = time.monotonic() - t0
            self.assertGreater(took, TIMEOUT_S - 0.5)
            self.assertLess(took, TIMEOUT_S + 4)

    def test_slow_clients_do_not_hold_up_others(self):
        slow = [connect(self.stack.port, "127.0.0.%d" % (10 + i % 4)) for i in range(40)]
        self.opened += slow
        for c in slow:
            c.sendall(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(3):  # a header byte now and then: never idle, never done
            for c in slow:
                c.sendall(b"X")
            self.quick("with 40 slow clients")
            time.sleep(0.5)

    def test_connections_per_source_are_capped(self):
        held = [connect(self.stack.port, "127.0.0.2") for _ in range(PER_SOURCE)]
        self.opened += held
        for c in held:  # each is served, and kept open
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"200 OK", c.recv(4096))
        extra = connect(self.stack.port, "127.0.0.2")
        self.opened.append(extra)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(read_all(extra, 3, closes=True), b"", "one more than the cap was served")
        self.quick("with one source at its cap")
        for c in held:
            c.close()
        self.opened = [extra]

        def served_again():
            c = connect(self.stack.port, "127.0.0.2")
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            ok = read_all(c, 3).startswith(b"HTTP/1.1 200")
            c.close()
            return ok
        wait_for(served_again, 10, "the source served again")

    def test_thousands_of_idle_connections(self):
        for i in range(2000):
            c = connect(self.stack.port, "127.0.1.%d" % (1 + i // PER_SOURCE))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.opened.append(c)
        self.quick("with 2,000 keep-alive connections open")
        for c in self.opened[:100]:
            self.assertIn(b"200 OK", c.recv(4096))

    def test_pipelined_requests_are_answered_in_order(self):
        c = connect(self.stack.port)
        self.opened.append(c)
        uid = self.p["uid"].encode()
        c.sendall(b"GET /api/profile/" + uid + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /api/profile/nope HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = read_all(c)
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
        self.assertEqual(statuses, [b"200", b"400", b"200"], out[:500])
        self.assertLess(out.index(uid), out.index(b"HTTP/1.1 400"))

    def test_garbage_is_refused_and_changes_nothing(self):
        rnd = random.Random(7)
        inputs = [b"\x00\x01\x02 garbage\r\n\r\n", b"GET\r\n\r\n", b"HELLO / HTTP/9.9\r\n\r\n",
                  b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                  b"POST /api/profile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]
        inputs += [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 2000))) for _ in range(30)]
        for data in inputs:
            c = connect(self.stack.port)
            try:
                c.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            out = read_all(c, TIMEOUT_S + 4, closes=True)  # an answer (4xx) or a close, never a hang
            c.close()
            # 4xx, or 505 for a version it does not speak; never another 5xx.
            self.assertTrue(out == b"" or re.match(rb"HTTP/1\.1 (4\d\d|505) ", out), out[:200])
        self.assertTrue(self.stack.gateway.alive())
        self.quick("after garbage")
        r = self.stack.request("GET", "/api/profile/" + self.p["uid"])
        self.assertEqual((r.status, r.json), (200, self.p))


if __name__ == "__main__":
    main()
