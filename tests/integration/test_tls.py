"""TLS on every hop. Over `make run TLS=1 TOKENS=1` (scripts/run.sh): HTTPS
works with the CA it made and the token it printed (none is 401), and plain
HTTP is refused; a core node refuses a plain-TCP
caller, a TLS caller without a certificate and one whose certificate another
CA signed (nngcat), and answers one with the client certificate; the
profilectl command it prints works, and so do forwards between nodes over
TLS. Without TLS, neither a core nor the gateway serves plaintext on an
address others can reach unless told to, and a bad TLS file stops either at
start with a message naming it."""
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import unittest

from harness import BUILD, SOURCE, Stack, free_port, java_partition, wait_for, main
from test_make_run import Launch

PROFILED = os.path.join(BUILD, "profiled")
GATEWAY = os.path.join(BUILD, "profile-gateway")
PROFILECTL = os.path.join(BUILD, "profilectl")


def nngcat(url, *tls):
    """One request (not a valid one: the node answers it INVALID_ARGUMENT)
    to url with nngcat and the TLS flags given: (exit code, output)."""
    r = subprocess.run(["nngcat", "--req", "--dial", url, *tls, "--data", "hello", "--recv-timeout", "3",
                        "--send-timeout", "3", "--format", "ascii"],
                       capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout + r.stderr


class SecureRun(unittest.TestCase):
    """One `make run TLS=1` cluster of three nodes for every case."""

    @classmethod
    def setUpClass(cls):
        cls.run_ = Launch(TLS="1", TOKENS="1", RESTART="never")
        cls.tls = os.path.join(cls.run_.data, "tls")
        cls.url = "https://localhost:%d" % cls.run_.port
        try:
            wait_for(lambda: cls._ready(), 120, "the TLS stack to be ready")
        except BaseException:
            print(cls.run_.output())
            cls.run_.close()
            raise
        cls.token = re.search(r"curl -H 'Authorization: Bearer (\w+)' --cacert", cls.run_.output()).group(1)
        cls.rpc = sorted({int(p) for p in re.findall(r"serving on tls\+tcp://127\.0\.0\.1:(\d+)",
                                                     cls.run_.output())})

    @classmethod
    def tearDownClass(cls):
        try:
            cls.run_.stop(unittest.TestCase())
        finally:
            cls.run_.close()

    @classmethod
    def _ready(cls):
        assert cls.run_.run.poll() is None, "run.sh exited early:\n" + cls.run_.output()
        try:
            return cls.https("GET", "/readyz")[0] == 200
        except OSError:
            return False

    @classmethod
    def https(cls, method, path, body=None, context=None, token=True):
        ctx = context or ssl.create_default_context(cafile=os.path.join(cls.tls, "ca.crt"))
        conn = http.client.HTTPSConnection("localhost", cls.run_.port, context=ctx, timeout=10)
        headers = {"Content-Type": "application/json"} if body else {}
        if token and getattr(cls, "token", None):
            headers["Authorization"] = "Bearer " + cls.token
        try:
            conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
            r = conn.getresponse()
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
        finally:
            conn.close()

    def forwards(self, node):
        conn = http.client.HTTPSConnection("localhost", self.run_.port, timeout=10,
                                           context=ssl.create_default_context(
                                               cafile=os.path.join(self.tls, "ca.crt")))
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        m = re.search(r'^profile_node_forwards_total\{node="%s"\} (\d+)' % node, text, re.M)
        self.assertIsNotNone(m, text[:2000])
        return int(m.group(1))

    def test_https_with_the_ca_and_plain_http_refused(self):
        status, made = self.https("POST", "/api/profile", {"username": "tia", "email": "tia@mail.com"})
        self.assertEqual(status, 201, made)
        # The token it printed is what lets a caller in.
        status, denied = self.https("GET", "/api/profile/" + made["uid"], token=False)
        self.assertEqual((status, denied["error"]["code"]), (401, "UNAUTHENTICATED"))
        self.assertEqual(self.https("GET", "/api/profile/" + made["uid"]), (200, made))
        # The certificate is the cluster CA's: a client that trusts only the
        # system's CAs refuses it.
        with self.assertRaises(ssl.SSLCertVerificationError):
            self.https("GET", "/healthz", context=ssl.create_default_context())
        # Plain HTTP gets no HTTP answer on the HTTPS port.
        conn = http.client.HTTPConnection("127.0.0.1", self.run_.port, timeout=5)
        with self.assertRaises((http.client.HTTPException, ConnectionError)):
            conn.request("GET", "/healthz")
            conn.getresponse()
        conn.close()
        self.assertIn("Gateway:         %s/" % self.url, self.run_.output())

    def test_a_core_takes_only_callers_with_a_certificate_from_the_ca(self):
        self.assertEqual(len(self.rpc), 3, self.run_.output())
        url = "tls+tcp://127.0.0.1:%d" % self.rpc[0]
        t = self.tls
        mine = ("--cacert", t + "/ca.crt", "--cert", t + "/client.crt", "--key", t + "/client.key")
        rc, out = nngcat(url, *mine)
        self.assertEqual(rc, 0, out)
        self.assertIn("malformed request", out)  # it was read, decoded and answered
        rc, out = nngcat("tcp://127.0.0.1:%d" % self.rpc[0])
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("malformed", out)
        rc, out = nngcat(url, "--cacert", t + "/ca.crt")
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("malformed", out)
        other = tempfile.mkdtemp(prefix="profile-other-ca-")
        try:
            subprocess.run([os.path.join(SOURCE, "scripts", "tls-certs.sh"), other, "intruder"], check=True,
                           timeout=60)
            rc, out = nngcat(url, "--cacert", t + "/ca.crt", "--cert", other + "/intruder.crt", "--key",
                             other + "/intruder.key")
            self.assertNotEqual(rc, 0, out)
            self.assertNotIn("malformed", out)
        finally:
            shutil.rmtree(other, ignore_errors=True)

    def test_profilectl_as_printed_and_forwards_between_nodes(self):
        out = self.run_.output()
        printed = re.search(r"^  (profilectl .*?) \\\n\s+(--tls-cert .*) get UID$", out, re.M)
        self.assertIsNotNone(printed, out)
        argv = (printed.group(1) + " " + printed.group(2)).split()
        argv[0] = PROFILECTL
        made = []
        for i in range(12):
            status, p = self.https("POST", "/api/profile", {"username": "f%d" % i, "email": "f%d@mail.com" % i})
            self.assertEqual(status, 201, p)
            made.append(p)
        _, view = self.https("GET", "/api/cluster")
        owner = {p["partition"]: p["owner"] for p in view["partitions"]}
        elsewhere = [p for p in made if owner[java_partition(p["uid"], len(owner))] != "node1"]
        self.assertTrue(elsewhere, view)  # three nodes: some profiles are not node1's
        before = self.forwards("node1")
        # argv names node1 only: what node1 does not own, it forwards.
        for p in made:
            r = subprocess.run(argv + ["get", p["uid"]], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["email"], p["email"])
        self.assertGreaterEqual(self.forwards("node1") - before, len(elsewhere))
        # Without its certificate, profilectl says what is missing.
        r = subprocess.run([PROFILECTL, "--core", "tls+tcp://127.0.0.1:%d" % self.rpc[0], "get", made[0]["uid"]],
                           capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("TLS needs a CA certificate file", r.stderr)


class NodeNames(unittest.TestCase):
    def test_a_node_whose_certificate_does_not_name_its_host_is_not_called(self):
        s = Stack(nodes=1, tls=True)
        try:
            # node1's certificate, from the right CA, names another host.
            ext = s.tls + "/elsewhere.ext"
            with open(ext, "w") as f:
                f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
                        "subjectAltName=DNS:elsewhere.example\n")
            subprocess.run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {t}/node1.key && "
                           "openssl req -new -key {t}/node1.key -subj /CN=elsewhere.example | openssl x509 -req "
                           "-CA {t}/ca.crt -CAkey {t}/ca.key -CAcreateserial -days 2 -extfile {e} -out {t}/node1.crt"
                           .format(t=s.tls, e=ext), shell=True, check=True, capture_output=True, timeout=60)
            s.start_broker()
            s.start_core(1)
            wait_for(lambda: "serving on" in open(s.cores[1].log_path).read(), 30, "node1 to listen")
            for addr in (s.core_addr[1], s.core_addr[1].replace("127.0.0.1", "localhost")):
                r = subprocess.run([PROFILECTL, "--timeout", "2", "--core", addr] + s.tls_args("client")
                                   + ["search", "a@mail.com"], capture_output=True, text=True, timeout=30)
                self.assertEqual((r.returncode, r.stderr.split(":")[0]), (1, "UNAVAILABLE"), r.stderr)
        finally:
            s.stop()
            s.destroy()


class PlaintextRules(unittest.TestCase):
    def start(self, argv, env=None):
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)

    def test_no_plaintext_on_a_reachable_address_unless_allowed(self):
        r = self.start([PROFILED, "--listen", "tcp://0.0.0.0:%d" % free_port(), "--brokers", "127.0.0.1:1"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("plain TCP on an address others can reach", r.stderr)
        r = self.start([GATEWAY, "--address", "0.0.0.0", "--port", str(free_port()), "--core",
                        "tcp://127.0.0.1:1"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--allow-plaintext", r.stderr)
        # Allowed: the gateway serves (on every address).
        port = free_port()
        gw = subprocess.Popen([GATEWAY, "--address", "0.0.0.0", "--port", str(port), "--core", "tcp://127.0.0.1:1",
                               "--allow-plaintext"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            def up():
                assert gw.poll() is None, gw.stderr.read()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                try:
                    c.request("GET", "/healthz")
                    return c.getresponse().status == 200
                except OSError:
                    return False
                finally:
                    c.close()
            wait_for(up, 20, "the gateway with --allow-plaintext")
        finally:
            gw.terminate()
            gw.wait(timeout=30)
        self.assertEqual(gw.returncode, 0)

    def test_a_bad_tls_file_stops_the_start(self):
        d = tempfile.mkdtemp(prefix="profile-tls-bad-")
        try:
            with open(d + "/junk.pem", "w") as f:
                f.write("not a certificate\n")
            r = self.start([PROFILED, "--listen", "tls+tcp://127.0.0.1:%d" % free_port(), "--brokers",
                            "127.0.0.1:1", "--tls-ca", d + "/missing.crt", "--tls-cert", d + "/junk.pem",
                            "--tls-key", d + "/junk.pem"])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(d + "/missing.crt", r.stderr)
            r = self.start([PROFILED, "--listen", "tls+tcp://127.0.0.1:%d" % free_port(), "--brokers",
                            "127.0.0.1:1"])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("TLS needs a CA certificate file", r.stderr)
            r = self.start([GATEWAY, "--port", str(free_port()), "--core", "tcp://127.0.0.1:1", "--https-cert",
                            d + "/junk.pem", "--https-key", d + "/junk.pem"])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("is not a PEM file", r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
