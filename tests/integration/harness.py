"""Integration test harness: starts the real processes (local Kafka broker,
core nodes, gateway) on free loopback ports, talks to them over real sockets,
and always stops everything it started.

Waits are for events (a file appearing, /readyz answering 200), bounded by a
timeout; there are no fixed sleeps.
"""
import atexit
import collections
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

BUILD = os.environ.get("PROFILE_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# The local broker's groups need a session of at least ~3.5 s; empty fetches
# are held for fetch.wait.max.ms (see the README).
LOCAL_KAFKA_OPTS = [
    "--consumer", "fetch.wait.max.ms=1",
    "--consumer", "session.timeout.ms=4000",
    "--consumer", "heartbeat.interval.ms=300",
    "--kafka", "reconnect.backoff.max.ms=1000",
]

_live = []  # every process started, for the exit hook

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")


def _stop_leftovers():
    for p in _live:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_stop_leftovers)


def _port_window():
    """Ports to listen on: below the kernel's ephemeral range, which the
    outgoing connections of every process here draw from (a port taken from
    that range could be used by one of them before our server binds it)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    top = min(low, 32768)
    return (top // 2, top) if top > 4096 else (1024, top)


_rng = random.SystemRandom()  # parallel tests must not draw the same ports
_given = set()  # ports handed out by this process: a server may not have bound its own yet


def build_sanitizer():
    """The sanitizers the build under test was made with ("" for none).
    Memory figures mean little under AddressSanitizer (it keeps freed memory
    in quarantine), so tests judge memory only without one; its own leak
    check judges leaks there."""
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("PROFILE_SANITIZER:"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


def free_port_run(count=1):
    """A port p such that p .. p+count-1 are all free now, outside the
    ephemeral range (scripts/run.sh gives node i the port RPC_PORT+i-1)."""
    lo, hi = _port_window()
    for _ in range(500):
        base = _rng.randrange(lo, hi - count)
        if any(base + k in _given for k in range(count)):
            continue
        socks = []
        try:
            for k in range(count):
                sk = socket.socket()
                socks.append(sk)
                sk.bind(("127.0.0.1", base + k))
            _given.update(range(base, base + count))
            return base
        except OSError:
            continue
        finally:
            for sk in socks:
                sk.close()
    raise AssertionError("no %d consecutive free ports" % count)


def free_port():
    return free_port_run(1)


def listen_queue(port):
    """Connections in the accept queue of the loopback listener on port
    (its rx_queue in /proc/net/tcp), or None when nothing listens there."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return int(queues.split(":")[1], 16)
    return None


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


class Proc:
    def __init__(self, name, argv, log_dir):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(log_dir, name + ".log")
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        _live.append(self.p)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the process and waits; returns its exit code."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("%s did not exit within %d s of signal %d" % (self.name, timeout, sig))
        self.log.close()
        return self.p.returncode

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def journal_records(data_dir, topic="profiles", fences=False, tokens=False):
    """Every record the local broker journaled for topic, in log order per
    partition: (partition, offset, key, value or None for a tombstone), and
    the record's fence token (-1 when none) when tokens. Fence records (key
    "fence") only when fences. The journal holds exactly what Kafka stored
    (see tests/broker/broker.c)."""
    out = []
    journal = os.path.join(data_dir, "kafka", "journal")
    for name in sorted(os.listdir(journal)):
        m = re.match(re.escape(topic) + r"-(\d+)\.log$", name)
        if not m:
            continue
        with open(os.path.join(journal, name), "rb") as f:
            data = f.read()
        pos = 0
        while pos + 4 <= len(data):
            (length,) = struct.unpack_from("<I", data, pos)
            rec = data[pos + 4:pos + 4 + length]
            (offset,) = struct.unpack_from("<q", rec, 0)
            (klen,) = struct.unpack_from("<i", rec, 8)
            key = rec[12:12 + max(klen, 0)]
            (vlen,) = struct.unpack_from("<i", rec, 12 + max(klen, 0))
            at = 16 + max(klen, 0)
            val = rec[at:at + vlen] if vlen >= 0 else None
            token = journal_token(rec[at + max(vlen, 0):len(rec) - 4])
            pos += 4 + length
            key = key.decode("utf-8", "replace")
            if key == "fence" and not fences:
                continue
            out.append((int(m.group(1)), offset, key, val) + ((token,) if tokens else ()))
    return out


def journal_token(headers):
    """The profile-fence token in a journaled record's headers, or -1."""
    if len(headers) < 4:
        return -1
    (n,) = struct.unpack_from("<I", headers, 0)
    pos = 4
    for _ in range(n):
        (nl,) = struct.unpack_from("<I", headers, pos)
        name = headers[pos + 4:pos + 4 + nl]
        (vl,) = struct.unpack_from("<i", headers, pos + 4 + nl)
        value = headers[pos + 8 + nl:pos + 8 + nl + max(vl, 0)]
        pos += 8 + nl + max(vl, 0)
        if name == b"profile-fence" and len(value) == 8:
            return struct.unpack(">q", value)[0]
    return -1


def terminate(named, bound):
    """SIGTERM to every live (name, Proc) at once, then a wait of at most
    bound seconds; SIGKILL for what is left. Returns what went wrong."""
    problems = []
    live = [(n, p) for n, p in named if p.alive()]
    for _, p in live:
        p.p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + bound
    for name, p in live:
        try:
            code = p.p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.p.kill()
            p.p.wait()
            problems.append("%s did not exit within %d s of SIGTERM" % (name, bound))
            continue
        finally:
            p.log.close()
        if code != 0:
            problems.append("%s exited with %d after SIGTERM:\n%s" % (name, code, p.tail(15)))
    return problems


def http_request(port, method, path, body=None, headers=None, timeout=10, ca=None):
    """One HTTP request to 127.0.0.1:port on a new connection (HTTPS to
    localhost, trusting only the CA file ca, when given). A dict or list
    body is sent as JSON (Content-Type: application/json unless headers say
    otherwise)."""
    if ca:
        conn = http.client.HTTPSConnection("localhost", port, timeout=timeout,
                                           context=ssl.create_default_context(cafile=ca))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read().decode("utf-8", "replace")
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:200])


class Stack:
    """A broker, `nodes` core nodes and a gateway, in their own data dir."""

    def __init__(self, nodes=1, partitions=12, data=None, tls=False):
        self.data = data or tempfile.mkdtemp(prefix="profile-it-")
        # tls: every hop over TLS, with certificates (scripts/tls-certs.sh)
        # in DATA/tls: the cores serve tls+tcp://, the gateway HTTPS.
        self.tls = os.path.join(self.data, "tls") if tls else None
        if tls:
            subprocess.run([os.path.join(SOURCE, "scripts", "tls-certs.sh"), self.tls, "gateway", "client"]
                           + ["node%d" % i for i in range(1, nodes + 1)], check=True, timeout=120)
        self.own_data = data is None
        self.partitions = partitions
        self.broker = None
        self.cores = {}
        self.core_addr = {}
        self.gateway = None
        self.port = None
        self.nodes = nodes
        self.bootstrap = None
        self.extra = []  # per-node gateways
        self.state = "partitioned"
        self.gateway_args = []  # more flags for the main gateway
        self.core_args = {}  # node -> more flags for that core node

    # ---- processes -----------------------------------------------------
    def start_broker(self):
        path = os.path.join(self.data, "kafka", "bootstrap")
        if os.path.exists(path):
            os.unlink(path)
        self.broker = Proc("broker", [os.path.join(BUILD, "tests", "profile-kafka-broker"),
                                      "--data", os.path.join(self.data, "kafka"),
                                      "--partitions", str(self.partitions)], self.data)
        wait_for(lambda: os.path.exists(path) or not self.broker.alive(), 30, "the broker's bootstrap file")
        assert self.broker.alive(), self.broker.tail()
        with open(path) as f:
            self.bootstrap = f.readline().strip()
        return self.bootstrap

    def broker_control(self, command):
        """Sends a fault to the running local broker (its --control: down,
        up, rtt MS, error produce|fetch CODE [COUNT], clear); returns its
        answer, which must be ok."""
        r = subprocess.run([os.path.join(BUILD, "tests", "profile-kafka-broker"), "--data",
                            os.path.join(self.data, "kafka"), "--control", command],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0 and r.stdout.startswith("ok"), (command, r.stdout, r.stderr)
        return r.stdout.strip()

    def start_core(self, i=1, data_name=None, extra=()):
        if i not in self.core_addr:
            self.core_addr[i] = "%s://127.0.0.1:%d" % ("tls+tcp" if self.tls else "tcp", free_port())
        name = data_name or "core%d" % i
        if self.tls:
            extra = self.tls_args("node%d" % i) + list(extra)
        self.cores[i] = Proc(name, [os.path.join(BUILD, "profiled"),
                                    "--listen", self.core_addr[i],
                                    "--brokers", self.bootstrap,
                                    "--data", os.path.join(self.data, name),
                                    "--node-id", "node%d" % i,
                                    "--partitions", str(self.partitions),
                                    "--state", self.state]
                             + LOCAL_KAFKA_OPTS + list(self.core_args.get(i, ())) + list(extra), self.data)
        return self.cores[i]

    def start_gateway(self):
        if self.port is None:
            self.port = free_port()
        argv = [os.path.join(BUILD, "profile-gateway"), "--address", "127.0.0.1",
                "--port", str(self.port)]
        for i in sorted(self.core_addr):
            argv += ["--core", self.core_addr[i]]
        if self.tls:
            argv += self.tls_args("gateway") + ["--https-cert", self.tls + "/gateway.crt",
                                                "--https-key", self.tls + "/gateway.key"]
        self.gateway = Proc("gateway", argv + list(self.gateway_args), self.data)
        wait_for(lambda: self._answers("/healthz") or not self.gateway.alive(), 20, "the gateway")
        assert self.gateway.alive(), self.gateway.tail()

    def tls_args(self, name):
        """The --tls-ca/--tls-cert/--tls-key flags of certificate name."""
        return ["--tls-ca", self.tls + "/ca.crt", "--tls-cert", "%s/%s.crt" % (self.tls, name),
                "--tls-key", "%s/%s.key" % (self.tls, name)]

    def node_gateway(self, i, args=()):
        """A second gateway that talks to core node i only: a way to put a
        request to one particular node over REST. args: more flags."""
        gw = NodeGateway(self, i, args)
        self.extra.append(gw)
        return gw

    def extra_gateway(self, cores, args=()):
        """Another gateway, given the core addresses cores."""
        gw = NodeGateway(self, 0, args, cores)
        self.extra.append(gw)
        return gw

    def start(self):
        self.start_broker()
        for i in range(1, self.nodes + 1):
            self.start_core(i)
        self.start_gateway()
        self.wait_ready()
        return self

    def wait_ready(self, timeout=60):
        def ready():
            for name, p in self.procs():
                assert p.alive(), "%s exited:\n%s" % (name, p.tail())
            return self._answers("/readyz", want=200)
        wait_for(ready, timeout, "/readyz to answer 200")

    def procs(self):
        out = []
        if self.broker:
            out.append(("broker", self.broker))
        out += [("core%d" % i, p) for i, p in sorted(self.cores.items())]
        if self.gateway:
            out.append(("gateway", self.gateway))
        out += [(g.proc.name, g.proc) for g in self.extra]
        return out

    def stop(self):
        """Stops everything in the order that loses nothing; returns exit codes."""
        codes = {}
        for g in self.extra:
            g.proc.stop()
        if self.gateway:
            codes["gateway"] = self.gateway.stop()
        for i, p in sorted(self.cores.items()):
            codes["core%d" % i] = p.stop()
        if self.broker:
            codes["broker"] = self.broker.stop()
        return codes

    def sanitizer_reports(self):
        """Sanitizer findings in any process log of this stack (a build with
        -DPROFILE_SANITIZER): a test fails on them even if all else passed."""
        found = []
        for name in sorted(os.listdir(self.data)) if os.path.isdir(self.data) else []:
            if not name.endswith(".log"):
                continue
            with open(os.path.join(self.data, name), "rb") as f:
                text = f.read().decode("utf-8", "replace")
            for marker in SANITIZER_MARKERS:
                i = text.find(marker)
                if i >= 0:
                    found.append("%s: %s" % (name, text[i:i + 1500]))
                    break
        return found

    def destroy(self, bound=30):
        """Stops what still runs with SIGTERM (SIGKILL only past bound
        seconds), in the order that loses nothing: gateways, then every core
        at once, then the broker. So every process's shutdown path, and under
        a sanitizer build its leak check, runs in every test. Fails when a
        process needed SIGKILL, exited non-zero, or reported a sanitizer
        finding."""
        problems = []
        try:
            gateways = [(n, p) for n, p in self.procs() if n.startswith("gateway")]
            cores = [(n, p) for n, p in self.procs() if n.startswith("core")]
            broker = [(n, p) for n, p in self.procs() if n == "broker"]
            for group in (gateways, cores, broker):
                problems += terminate(group, bound)
            problems += ["sanitizer: " + r for r in self.sanitizer_reports()]
            if problems:
                raise AssertionError("teardown:\n" + "\n".join(problems))
        finally:
            if self.own_data:
                shutil.rmtree(self.data, ignore_errors=True)

    def logs(self):
        return "\n".join("---- %s ----\n%s" % (n, p.tail()) for n, p in self.procs())

    # ---- HTTP ----------------------------------------------------------
    def _answers(self, path, want=None):
        try:
            r = self.request("GET", path, timeout=2)
            return r.status == want if want else True
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, timeout=10):
        return http_request(self.port, method, path, body, headers, timeout,
                            self.tls + "/ca.crt" if self.tls else None)

    def create(self, username, email):
        r = self.request("POST", "/api/profile", {"username": username, "email": email})
        assert r.status == 201, r
        return r.json

    def cluster(self):
        """The cluster view; a 503 (a node still reading the membership)
        is asked again for a few seconds."""
        r = wait_for(lambda: (lambda r: r if r.status != 503 else None)(self.request("GET", "/api/cluster")), 10,
                     "the cluster view")
        assert r.status == 200, r
        return r.json

    def replayed(self):
        return sum(p["replayed"] for p in self.cluster()["partitions"])

    def applied_offsets(self):
        return {p["partition"]: p["applied_offset"] for p in self.cluster()["partitions"]}


# ---- Kafka's partitioner, and a broker journal made without Kafka ----------

def murmur2(data):
    """Kafka's Java Utils.murmur2, as a signed 32-bit int."""
    m, h = 0x5bd1e995, (0x9747b28c ^ len(data)) & 0xffffffff
    full = len(data) - len(data) % 4
    for i in range(0, full, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    rest = data[full:]
    if len(rest) == 3:
        h ^= rest[2] << 16
    if len(rest) >= 2:
        h ^= rest[1] << 8
    if len(rest) >= 1:
        h ^= rest[0]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return h - (1 << 32) if h >= 1 << 31 else h


def java_partition(key, count):
    return (murmur2(key.encode()) & 0x7fffffff) % count


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    if wire == 0:
        return varint(num << 3) + varint(payload)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def profile_event(uid, username, email, now):
    prof = (field(1, 2, uid.encode()) + field(2, 2, username.encode()) + field(3, 2, email.encode()) +
            field(4, 0, 1) + field(5, 0, now) + field(6, 0, now))
    return field(1, 0, 1) + field(2, 2, prof)


def write_journal(data, partitions, per_partition):
    """A broker journal (tests/broker/broker.c's format) holding
    per_partition created profiles in each partition; returns a few
    (uid, email) of them."""
    journal = os.path.join(data, "kafka", "journal")
    os.makedirs(journal)
    with open(os.path.join(journal, "partitions"), "w") as f:
        f.write("%d\n" % partitions)
    files = [open(os.path.join(journal, "profiles-%d.log" % p), "wb") for p in range(partitions)]
    counts = [0] * partitions
    now = int(time.time() * 1000)
    sample = []
    while min(counts) < per_partition:
        uid = str(uuid.uuid4())
        p = java_partition(uid, partitions)
        if counts[p] >= per_partition:
            continue
        email = "bulk%d.%d@mail.com" % (p, counts[p])
        val = profile_event(uid, "bulk", email, now)
        key = uid.encode()
        body = struct.pack("<qi", counts[p], len(key)) + key + struct.pack("<i", len(val)) + val
        head = struct.pack("<I", len(body) + 4) + body
        h = 2166136261
        for byte in head:
            h = ((h ^ byte) * 16777619) & 0xffffffff
        files[p].write(head + struct.pack("<I", h))
        counts[p] += 1
        if len(sample) < 5:
            sample.append((uid, email))
    for f in files:
        f.close()
    return sample


def promised_failure(r, write):
    """Whether r is a failure the README promises for an outage: 503 with
    Retry-After: 1 and an UNAVAILABLE error body (not executed), or, for a
    write only, 504 with a DEADLINE_EXCEEDED body (outcome unknown)."""
    code = ((r.json or {}).get("error") or {}).get("code") if isinstance(r.json, dict) else None
    if r.status == 503:
        return r.headers.get("retry-after") == "1" and code == "UNAVAILABLE"
    return write and r.status == 504 and code == "DEADLINE_EXCEEDED"


class CreateLoad:
    """Threads that create profiles through the gateway until stopped. The
    acknowledged ones (201) are kept in .acked; every answer is counted in
    .statuses by HTTP status (a connection error or a request that took over
    `timeout` seconds as "error"), and any answer that is neither 201 nor a
    promised failure (promised_failure) is kept in .odd, so tests can assert
    on every outcome. A context manager."""

    def __init__(self, stack, threads=4, prefix="w", timeout=10):
        self.acked = []
        self.statuses = collections.Counter()
        self.odd = []
        self.timeout = timeout
        self._mu = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(stack, prefix, k)) for k in range(threads)]

    def _run(self, stack, prefix, k):
        i = 0
        while not self._stop.is_set():
            try:
                r = stack.request("POST", "/api/profile",
                                  {"username": "%s%d" % (prefix, k), "email": "%s%d.%d@mail.com" % (prefix, k, i)},
                                  timeout=self.timeout)
            except OSError as e:
                r = e
            with self._mu:
                if isinstance(r, Exception):
                    self.statuses["error"] += 1
                    self.odd.append(repr(r))
                else:
                    self.statuses[r.status] += 1
                    if r.status == 201:
                        self.acked.append(r.json)
                    elif not promised_failure(r, write=True):
                        self.odd.append(r)
            i += 1

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()


def all_active_on(gateway, owners):
    """True when the cluster view, asked through gateway, shows every
    partition active and owned by one of owners."""
    try:
        r = gateway.request("GET", "/api/cluster", timeout=5)
    except OSError:
        return False
    return r.status == 200 and all(p["state"] == "active" and p["owner"] in owners for p in r.json["partitions"])


class NodeGateway:
    def __init__(self, stack, i, args=(), cores=None):
        self.node = i
        self.tls = None  # plain HTTP (Stack.request reads it)
        self.port = free_port()
        name = "gateway-node%d" % i
        while any(g.proc.name == name for g in stack.extra):
            name += "x"
        argv = [os.path.join(BUILD, "profile-gateway"), "--address", "127.0.0.1", "--port", str(self.port)]
        for c in cores or [stack.core_addr[i]]:
            argv += ["--core", c]
        self.proc = Proc(name, argv + list(args), stack.data)
        wait_for(lambda: self._up() or not self.proc.alive(), 20, "gateway for node %d" % i)

    def _up(self):
        try:
            return self.request("GET", "/healthz", timeout=2).status == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, timeout=10):
        return Stack.request(self, method, path, body, headers, timeout)


class StackTest(unittest.TestCase):
    """A test case with one running stack per test, torn down afterwards."""
    nodes = 1
    partitions = 12

    state = "partitioned"
    gateway_args = ()  # more flags for the main gateway
    core_args = {}  # node -> more flags for that core node
    # Every request of stack.request (HEAD aside) through a proxy that checks
    # it and its answer against the OpenAPI description (ContractProxy).
    contract = False

    def setUp(self):
        self.stack = Stack(nodes=self.nodes, partitions=self.partitions)
        self.stack.state = self.state
        self.stack.gateway_args = list(self.gateway_args)
        self.stack.core_args = dict(self.core_args)
        try:
            self.stack.start()
            if self.contract:
                checked, direct = ContractProxy(self.stack).request, self.stack.request
                self.stack.request = lambda method, *a, **kw: (direct if method == "HEAD" else checked)(
                    method, *a, **kw)
        except BaseException:
            sys.stderr.write(self.stack.logs())
            self.stack.destroy()
            raise

    def tearDown(self):
        failed = any(e for _, e in getattr(self._outcome, "errors", []) if e) or \
            (hasattr(self._outcome, "result") and
             (self._outcome.result.failures or self._outcome.result.errors))
        if failed:
            sys.stderr.write(self.stack.logs())
        self.stack.destroy()


def main():
    unittest.main(verbosity=2)


# ---- the npm tools of tests/tools (make test installs them) ----------------

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools")
OPENAPI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "gateway", "openapi.json")


def npm_tool(name):
    """The path of an npm tool installed under tests/tools, or a failure
    that says how to install it."""
    path = os.path.join(TOOLS, "node_modules", ".bin", name)
    if not os.path.exists(path):
        raise AssertionError("%s is not installed: run `make test` (or `npm ci --prefix tests/tools`)" % name)
    return path


class ContractProxy:
    """Prism in proxy mode in front of a gateway: every request and response
    that passes is checked against the OpenAPI description (spec), and one
    that breaks it is answered with an error and an sl-violations header."""

    def __init__(self, stack, spec=OPENAPI):
        self.port = free_port()
        self.proc = Proc("prism", [npm_tool("prism"), "proxy", spec, "http://127.0.0.1:%d" % stack.port,
                                   "-h", "127.0.0.1", "-p", str(self.port), "--errors"], stack.data)
        stack.extra.append(self)
        wait_for(self._up, 60, "the contract proxy to listen")

    def _up(self):
        if not self.proc.alive():
            raise AssertionError("prism exited: " + self.proc.tail())
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, timeout=10):
        """As Stack.request, through the proxy; fails on any violation."""
        resp = http_request(self.port, method, path, body, headers, timeout)
        if "sl-violations" in resp.headers:
            raise AssertionError("%s %s breaks the OpenAPI description: %s\n%s" %
                                 (method, path, resp.headers["sl-violations"], resp.body[:500]))
        return resp
