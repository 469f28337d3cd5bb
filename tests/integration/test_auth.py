"""Bearer tokens on the REST API (--tokens FILE): with them a request
without a valid token is 401 with WWW-Authenticate, a write with a read
token 403, each with the usual JSON error body; /healthz and /readyz stay
open; the operators' views want a token only with --protect-operations;
no token ever appears in a log line, even at debug level; a bad token file
stops the gateway at start with a clear message and exit 2."""
import os
import subprocess

from harness import BUILD, StackTest, main

READ = "reader-5f0c2a91d7e84b36"
WRITE = "writer-a8e1b4c07d2f9e63"


def bearer(token):
    return {"Authorization": "Bearer " + token}


class Tokens(StackTest):
    def setUp(self):
        path = os.path.join("/tmp", "profile-tokens-%d" % os.getpid())
        with open(path, "w") as f:
            f.write("# who may call\n%s read dashboards\n\n%s write checkout\n" % (READ, WRITE))
        self.token_file = path
        self.gateway_args = ("--tokens", path, "--log-level", "debug")
        super().setUp()

    def tearDown(self):
        super().tearDown()
        os.unlink(self.token_file)

    def test_tokens_and_scopes(self):
        s = self.stack
        for r in (s.request("GET", "/api/search?email=a@mail.com"),
                  s.request("POST", "/api/profile", {"username": "x", "email": "x@mail.com"})):
            self.assertEqual((r.status, r.json["error"]["code"]), (401, "UNAUTHENTICATED"), r)
            self.assertEqual(r.headers["www-authenticate"], 'Bearer realm="profile-service"')
        bad = s.request("GET", "/api/search?email=a@mail.com", headers=bearer("nobody-0000000000000000"))
        self.assertEqual(bad.status, 401)
        self.assertIn('error="invalid_token"', bad.headers["www-authenticate"])
        self.assertEqual(s.request("GET", "/api/search?email=a@mail.com",
                                   headers={"Authorization": "Basic " + READ}).status, 401)
        # A read token reads and may not write.
        denied = s.request("POST", "/api/profile", {"username": "x", "email": "x@mail.com"}, headers=bearer(READ))
        self.assertEqual((denied.status, denied.json["error"]["code"]), (403, "PERMISSION_DENIED"), denied)
        self.assertIn('error="insufficient_scope"', denied.headers["www-authenticate"])
        made = s.request("POST", "/api/profile", {"username": "x", "email": "x@mail.com"}, headers=bearer(WRITE))
        self.assertEqual(made.status, 201, made)
        uid = made.json["uid"]
        self.assertEqual(s.request("GET", "/api/profile/" + uid, headers=bearer(READ)).status, 200)
        self.assertEqual(s.request("GET", "/api/profile/" + uid, headers={"authorization": "bearer " + WRITE}).status,
                         200)
        self.assertEqual(s.request("DELETE", "/api/profile/" + uid, headers=bearer(READ)).status, 403)
        self.assertEqual(s.request("GET", "/api/profile/" + uid, headers=bearer(READ)).status, 200)  # unchanged
        # Open: health, readiness, and (without --protect-operations) the views.
        for path in ("/healthz", "/readyz", "/metrics", "/api/cluster", "/", "/openapi.json"):
            self.assertEqual(s.request("GET", path).status, 200, path)
        # No token in any log line, though every request was logged.
        with open(s.gateway.log_path, errors="replace") as f:
            log = f.read()
        self.assertIn("http POST /api/profile 403", log)
        for token in (READ, WRITE, "nobody-0000000000000000"):
            self.assertNotIn(token, log)

    def test_protect_operations_and_bad_files(self):
        s = self.stack
        gw = s.node_gateway(1, ("--tokens", self.token_file, "--protect-operations"))
        for path in ("/metrics", "/api/cluster", "/", "/openapi.json"):
            self.assertEqual(gw.request("GET", path).status, 401, path)
            self.assertEqual(gw.request("GET", path, headers=bearer(READ)).status, 200, path)
        self.assertEqual(gw.request("GET", "/healthz").status, 200)
        gateway = os.path.join(BUILD, "profile-gateway")
        for content, why in (("short read\n", "16 to 256"), (WRITE + " admin\n", "read or write"), ("# none\n", "no token")):
            with open(self.token_file + ".bad", "w") as f:
                f.write(content)
            p = subprocess.run([gateway, "--core", "tcp://127.0.0.1:1", "--port", "1", "--tokens",
                                self.token_file + ".bad"], capture_output=True, text=True, timeout=10)
            os.unlink(self.token_file + ".bad")
            self.assertEqual(p.returncode, 2, p)
            self.assertIn(why, p.stderr)
            self.assertNotIn(WRITE, p.stderr)
        p = subprocess.run([gateway, "--core", "tcp://127.0.0.1:1", "--protect-operations"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 2, p)


if __name__ == "__main__":
    main()
