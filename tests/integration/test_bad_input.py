"""Bad input through the gateway gets a clear error and changes nothing;
nothing a client sends crashes the gateway or the core. Cases are data:
rest_cases.json."""
import json
import os
import socket

from harness import StackTest, main

CASES = os.path.join(os.path.dirname(__file__), "rest_cases.json")


class BadInput(StackTest):
    def setUp(self):
        super().setUp()
        self.profile = self.stack.create("bob", "bob@mail.com")
        self.log = self.stack.records()

    def assert_nothing_changed(self):
        s = self.stack
        r = s.request("GET", "/api/profile/" + self.profile["uid"])
        self.assertEqual((r.status, r.json), (200, self.profile))
        self.assertEqual(s.records(), self.log, "a bad request wrote to Kafka")
        for name, p in s.procs():
            self.assertTrue(p.alive(), name + " died")

    def test_cases(self):
        with open(CASES) as f:
            cases = json.load(f)["cases"]
        for c in cases:
            with self.subTest(c["name"]):
                body = bytes.fromhex(c["body_hex"]) if "body_hex" in c else c.get("body")
                path = c["path"].replace("{uid}", self.profile["uid"])
                r = self.stack.request(c["method"], path, body, headers=c.get("headers"))
                self.assertEqual(r.status, c["status"], r)
                self.assertEqual(r.headers.get("content-type"), "application/json")
                self.assertEqual(r.json["error"]["code"], c["code"], r)
                self.assertTrue(r.json["error"]["message"], "an error says why")
                if "allow" in c:
                    self.assertEqual(r.headers.get("allow"), c["allow"])
        self.assert_nothing_changed()

    def test_body_over_64_kib_is_413(self):
        body = '{"username": "bob", "email": "bob@mail.com", "pad": "%s"}' % ("x" * (64 * 1024))
        r = self.stack.request("POST", "/api/profile", body)
        self.assertEqual((r.status, r.json["error"]["code"]), (413, "PAYLOAD_TOO_LARGE"))
        # Exactly at the limit is accepted.
        head = '{"username": "bob", "email": "big@mail.com"}'
        body = head + " " * (64 * 1024 - len(head))
        r = self.stack.request("POST", "/api/profile", body)
        self.assertEqual(r.status, 201, r)

    def test_chunked_body_is_read(self):
        conn = socket.create_connection(("127.0.0.1", self.stack.port), timeout=10)
        body = b'{"username": "chunky", "email": "chunky@mail.com"}'
        req = (b"POST /api/profile HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
               b"%x\r\n%s\r\n" % (10, body[:10]) + b"%x\r\n%s\r\n" % (len(body) - 10, body[10:]) + b"0\r\n\r\n")
        conn.sendall(req)
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        conn.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 201"), data[:200])

    def test_garbage_and_abuse_do_not_crash_anything(self):
        s = self.stack
        abuse = [
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/9.9\r\n\r\n",
            b"\x00\x01\x02\x03" * 100,
            b"GET /api/profile/" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n",
            b"POST /api/profile HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"user",  # then hang up
            b"POST /api/profile HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"GET /api/search?email=%zz%00@x.com HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        for raw in abuse:
            # Whatever the answer (an error status, a closed connection, or
            # silence until the connection timeout), the processes live on.
            conn = socket.create_connection(("127.0.0.1", s.port), timeout=2)
            try:
                conn.sendall(raw)
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            finally:
                conn.close()
        self.assertEqual(s.request("GET", "/healthz").status, 200)
        self.assert_nothing_changed()


if __name__ == "__main__":
    main()
