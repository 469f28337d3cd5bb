"""The chaos verifier's slow link (tests/chaos/relay.py), measured: started
in front of an echo server on loopback, it passes bytes both ways in order;
a delay written to its file adds that much to each direction of a
connection that stays up, and setting it back to 0 takes it away again."""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos", "relay.py")
DELAY_MS = 300


def echo_server():
    """A loopback echo server on a free port, in a thread; its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=lambda c=conn: [c.sendall(b) for b in iter(lambda: c.recv(65536), b"")],
                             daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def round_trip(conn, payload):
    """Seconds for payload to come back through the relay."""
    t0 = time.monotonic()
    conn.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = conn.recv(65536)
        if not chunk:
            raise AssertionError("the relay closed the connection")
        got += chunk
    took = time.monotonic() - t0
    assert got == payload, "bytes changed or reordered on the way"
    return took


class Relay(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.delay = os.path.join(self.dir.name, "delay")
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, RELAY, "127.0.0.1:%d" % self.port,
                                      "127.0.0.1:%d" % echo_server(), self.delay])
        end = time.monotonic() + 10
        while True:
            try:
                self.conn = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                break
            except OSError:
                self.assertLess(time.monotonic(), end, "the relay did not listen")
                time.sleep(0.05)

    def tearDown(self):
        self.conn.close()
        self.proc.terminate()
        self.assertEqual(self.proc.wait(10), 0)
        self.dir.cleanup()

    def set_delay(self, ms):
        with open(self.delay + ".new", "w") as f:
            f.write(str(ms))
        os.replace(self.delay + ".new", self.delay)
        time.sleep(0.3)  # read every 100 ms

    def test_a_delay_slows_both_directions_of_a_live_connection_and_goes_away(self):
        payload = bytes(range(256)) * 64
        before = round_trip(self.conn, payload)
        self.set_delay(DELAY_MS)
        slow = [round_trip(self.conn, payload) for _ in range(3)]
        self.set_delay(0)
        after = round_trip(self.conn, payload)
        # There and back, each DELAY_MS late: a lower bound, whatever the load.
        self.assertGreaterEqual(min(slow), 2 * DELAY_MS / 1000, slow)
        # The same connection, faster again once the delay is gone.
        self.assertLess(after, min(slow), (after, slow))
        print("round trip through the relay: %.1f ms, %.0f ms with %d ms each way, %.1f ms after"
              % (before * 1000, min(slow) * 1000, DELAY_MS, after * 1000))


if __name__ == "__main__":
    unittest.main(verbosity=2)
