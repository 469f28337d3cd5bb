"""Integration test harness: starts the real processes (an Apache Kafka
broker, core nodes, gateway) on free loopback ports, talks to them over real
sockets, and always stops everything it started.

Kafka: every stack runs on a real Apache Kafka broker (scripts/kafka.sh).
Under ctest, one broker is shared by the whole run (tests/tools/
shared_kafka.py, a ctest fixture) and each stack takes its own topics and
consumer group on it; a stack that kills, stops or restarts Kafka starts its
own broker (broker="own"). librdkafka's mock cluster (tests/broker/) is a
fault tool only, for the faults a real broker cannot produce on cue (chosen
error codes, added round-trip time): broker="mock".

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

import netns

BUILD = os.environ.get("PROFILE_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

KAFKA_SCRIPT = os.path.join(SOURCE, "scripts", "kafka.sh")

# The group session the tests give the cores on real Kafka: a stock broker's
# group.min.session.timeout.ms (6 s) is the shortest it accepts.
SESSION_MS = 6000
KAFKA_OPTS = [
    "--consumer", "session.timeout.ms=%d" % SESSION_MS,
    "--consumer", "heartbeat.interval.ms=500",
    "--kafka", "reconnect.backoff.max.ms=1000",
]
# The mock holds an empty fetch for all of fetch.wait.max.ms (new data does
# not wake it) and needs a session of at least ~3.5 s.
MOCK_KAFKA_OPTS = [
    "--consumer", "fetch.wait.max.ms=1",
    "--consumer", "session.timeout.ms=4000",
    "--consumer", "heartbeat.interval.ms=300",
    "--kafka", "reconnect.backoff.max.ms=1000",
]
# A JVM ends with 128+15 when SIGTERM runs its shutdown hooks: Kafka's clean stop.
JVM_SIGTERM = 143

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
        self.stopped = False  # by a signal of the test's: its exit was judged then
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        _live.append(self.p)

    def alive(self):
        return self.p.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=30, check=True):
        """Signals the process and waits; returns its exit code. A stop by
        SIGTERM or SIGINT must be clean (exit 0, or a JVM's 143 for Kafka):
        a crash on the way out fails the test unless check=False."""
        if self.stopped:
            return self.p.returncode  # judged when the test stopped it (a kill -9, say)
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                raise AssertionError("%s did not exit within %d s of signal %d" % (self.name, timeout, sig))
            self.stopped = True
        self.log.close()
        code = self.p.returncode
        if check and sig in (signal.SIGTERM, signal.SIGINT) and not clean_exit(self.name, code):
            raise AssertionError("%s exited with %d after signal %d:\n%s" % (self.name, code, sig, self.tail(15)))
        return code

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""


def topic_records(bootstrap, topic="profiles"):
    """Every record Kafka holds in topic, read by a plain read_committed
    consumer to the end of each partition (tests/tools/kafka_records.c), in
    log order per partition: (partition, offset, key, value or None for a
    tombstone). Offsets are Kafka's: not contiguous (compaction, transaction
    markers)."""
    argv = [os.path.join(BUILD, "tests", "kafka_records"), bootstrap, topic]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "kafka_records: %s" % r.stderr
    out = []
    for line in r.stdout.splitlines():
        part, offset, key, value = line.split(" ")
        key = bytes.fromhex(key).decode("utf-8", "replace") if key != "-" else ""
        val = bytes.fromhex(value) if value != "-" else None
        out.append((int(part), int(offset), key, val))
    return out


class KafkaBroker:
    """One Apache Kafka node (scripts/kafka.sh run) with its data in dir and
    its log in dir/server.log; the ports stay the same across restarts, so
    the cores' bootstrap list stays right. The process is the JVM itself:
    signals (SIGKILL, SIGSTOP) reach the broker."""

    def __init__(self, dir, log_dir, name="kafka", node_id=1, port=None, cport=None, voters=None,
                 cluster_id=None, replication=1, min_isr=1, heap="384m", extra=()):
        self.dir, self.log_dir, self.name = dir, log_dir, name
        self.port = port or free_port()
        self.cport = cport or free_port()
        self.node_id = node_id
        self.voters = voters
        self.cluster_id = cluster_id
        self.replication, self.min_isr, self.heap = replication, min_isr, heap
        self.extra = list(extra)
        self.proc = None
        self.ready_ms = None
        self.host = "127.0.0.1"  # the address it advertises

    @property
    def bootstrap(self):
        return "%s:%d" % (self.host, self.port)

    def start(self, wait=True):
        argv = [KAFKA_SCRIPT, "run", self.dir, "--port", str(self.port), "--controller-port", str(self.cport),
                "--node-id", str(self.node_id), "--replication", str(self.replication),
                "--min-isr", str(self.min_isr), "--heap", self.heap]
        if self.voters:
            argv += ["--voters", self.voters]
        if self.cluster_id:
            argv += ["--cluster-id", self.cluster_id]
        for kv in self.extra:
            argv += ["--set", kv]
        if self.proc is not None:
            self.proc.log.close()  # the process that ran before, gone
        self.proc = Proc(self.name, argv, self.log_dir)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=90):
        r = subprocess.run([KAFKA_SCRIPT, "wait", self.dir, str(timeout), str(self.proc.p.pid)],
                           capture_output=True, text=True, timeout=timeout + 10)
        assert r.returncode == 0 and self.proc.alive(), "%s did not start: %s\n%s" % (
            self.name, r.stderr, self.proc.tail())
        self.ready_ms = int(r.stdout.strip())

    def alive(self):
        return self.proc is not None and self.proc.alive()


def shared_kafka():
    """The bootstrap list of the broker this test run shares (the ctest
    fixture's, PROFILE_KAFKA_SHARED names its folder), or None."""
    folder = os.environ.get("PROFILE_KAFKA_SHARED")
    if not folder:
        return None
    try:
        with open(os.path.join(folder, "bootstrap")) as f:
            bootstrap = f.read().strip()
        with open(os.path.join(folder, "pid")) as f:
            os.kill(int(f.read().strip()), 0)
    except (OSError, ValueError):
        return None
    return bootstrap or None


def clean_exit(name, code):
    """Whether exit code is a clean stop of the process called name."""
    return code == 0 or (name.startswith("kafka") and code == JVM_SIGTERM)


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
        if not clean_exit(name, code):
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
    """A Kafka broker, `nodes` core nodes and a gateway, in their own data dir.

    broker: "shared" (the run's shared broker when there is one, else one of
    its own), "own" (a broker of its own in DATA/kafka, which the test may
    kill, stop or restart), or "mock" (librdkafka's mock cluster, for its
    fault controls only). On a shared broker the stack's topics and group
    carry a name of its own; on a broker of its own they are the defaults."""

    def __init__(self, nodes=1, partitions=12, data=None, tls=False, broker="shared", kafka_nodes=1, net=False):
        self.data = data or tempfile.mkdtemp(prefix="profile-it-")
        # net: every core node in a network namespace of its own, Kafka on
        # an address of its own (tests/integration/netns.py), so that a test
        # can cut the network between them; root only, a broker of its own.
        assert not net or broker == "own", "network cuts need a broker of the stack's own"
        self.net = netns.Net() if net else None
        self.relay = None  # the delaying relay in front of Kafka, on a net stack
        # tls: every hop over TLS, with certificates (scripts/tls-certs.sh)
        # in DATA/tls: the cores serve tls+tcp://, the gateway HTTPS.
        self.tls = os.path.join(self.data, "tls") if tls else None
        if tls:
            subprocess.run([os.path.join(SOURCE, "scripts", "tls-certs.sh"), self.tls, "gateway", "client"]
                           + ["node%d" % i for i in range(1, nodes + 1)], check=True, timeout=120)
        self.own_data = data is None
        self.partitions = partitions
        assert broker in ("shared", "own", "mock"), broker
        # kafka_nodes=3: a cluster of its own, as docker-compose.yml deploys
        # it (replication factor 3, min.insync.replicas 2).
        self.kafka_nodes = kafka_nodes
        if kafka_nodes > 1:
            broker = "own"
        self.kafkas = []  # every KafkaBroker of a cluster of its own
        self.shared = shared_kafka() if broker == "shared" else None
        self.mode = "own" if broker == "shared" and self.shared is None else broker
        self.kafka = None  # KafkaBroker, when the stack runs one
        self.broker = None  # its Proc (the mock's, or the Kafka node's)
        if self.shared:
            tag = uuid.uuid4().hex[:10]
            self.topic, self.members_topic, self.group = "profiles-" + tag, "profiles-%s.members" % tag, \
                "profiled-" + tag
        else:
            self.topic, self.members_topic, self.group = "profiles", "profiles.members", "profiled"
        self.kafka_opts = MOCK_KAFKA_OPTS if self.mode == "mock" else KAFKA_OPTS
        self.cores = {}
        self.core_addr = {}
        self.gateway = None
        self.port = None
        self.nodes = nodes
        self.bootstrap = self.shared
        self.extra = []  # per-node gateways
        self.state = "partitioned"
        self.gateway_args = []  # more flags for the main gateway
        self.core_args = {}  # node -> more flags for that core node

    # ---- processes -----------------------------------------------------
    def start_broker(self):
        """Starts (or starts again, on the same ports and data) the stack's
        broker; on a shared broker, or one already running, only names it.
        Returns the bootstrap."""
        if self.mode == "shared" or (self.broker is not None and self.broker.alive()):
            return self.bootstrap
        if self.mode == "mock":
            return self._start_mock()
        if self.kafka_nodes > 1:
            return self._start_cluster()
        if self.kafka is None:
            self.kafka = KafkaBroker(os.path.join(self.data, "kafka"), self.data)
            if self.net:
                # Every client, the broker's own included, reaches it at the
                # net's Kafka address through a delaying relay
                # (tests/chaos/relay.py; no delay until slow_kafka).
                self.relay_at = "%s:%d" % (self.net.kafka, free_port())
                self.kafka.extra += ["advertised.listeners=PLAINTEXT://" + self.relay_at]
        if self.net and not (self.relay and self.relay.alive()):
            self.relay = Proc("relay", [sys.executable, os.path.join(SOURCE, "tests", "chaos", "relay.py"),
                                        self.relay_at, "127.0.0.1:%d" % self.kafka.port,
                                        os.path.join(self.data, "kafka-delay-ms")], self.data)
        self.kafka.start()
        self.broker = self.kafka.proc
        self.bootstrap = self.relay_at if self.net else self.kafka.bootstrap
        return self.bootstrap

    def slow_kafka(self, ms):
        """Every byte to and from Kafka late by ms (net stacks only)."""
        with open(os.path.join(self.data, "kafka-delay-ms"), "w") as f:
            f.write("%d\n" % ms)

    def _start_cluster(self):
        if not self.kafkas:
            n = self.kafka_nodes
            ports = [(free_port(), free_port()) for _ in range(n)]
            voters = ",".join("%d@127.0.0.1:%d" % (i + 1, c) for i, (_, c) in enumerate(ports))
            cluster = subprocess.run([KAFKA_SCRIPT, "cluster-id"], capture_output=True, text=True,
                                     check=True).stdout.strip()
            self.kafkas = [KafkaBroker(os.path.join(self.data, "kafka%d" % (i + 1)), self.data, "kafka%d" % (i + 1),
                                       node_id=i + 1, port=p, cport=c, voters=voters, cluster_id=cluster,
                                       replication=n, min_isr=2) for i, (p, c) in enumerate(ports)]
        for k in self.kafkas:  # a quorum needs a majority up before any is ready
            if not k.alive():
                k.start(wait=False)
        for k in self.kafkas:
            k.wait_ready()
        self.bootstrap = ",".join(k.bootstrap for k in self.kafkas)
        return self.bootstrap

    def _start_mock(self):
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
        """Sends a fault to the running mock broker (its --control: down,
        up, rtt MS, error produce|fetch CODE [COUNT], clear); returns its
        answer, which must be ok."""
        assert self.mode == "mock", "fault controls are the mock broker's"
        r = subprocess.run([os.path.join(BUILD, "tests", "profile-kafka-broker"), "--data",
                            os.path.join(self.data, "kafka"), "--control", command],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0 and r.stdout.startswith("ok"), (command, r.stdout, r.stderr)
        return r.stdout.strip()

    def records(self):
        """Every record of the stack's profiles topic (topic_records)."""
        return topic_records(self.bootstrap, self.topic)

    def kafka_args(self):
        """The flags that put a core on this stack's Kafka, topics and group."""
        return ["--brokers", self.bootstrap, "--topic", self.topic, "--members-topic", self.members_topic,
                "--group", self.group] + self.kafka_opts

    def start_core(self, i=1, data_name=None, extra=()):
        if i not in self.core_addr:
            self.core_addr[i] = "%s://%s:%d" % ("tls+tcp" if self.tls else "tcp",
                                                self.net.addr(i) if self.net else "127.0.0.1", free_port())
        name = data_name or "core%d" % i
        if self.tls:
            extra = self.tls_args("node%d" % i) + list(extra)
        self.cores[i] = Proc(name, (self.net.prefix(i) if self.net else []) + [os.path.join(BUILD, "profiled"),
                                    "--listen", self.core_addr[i],
                                    "--data", os.path.join(self.data, name),
                                    "--node-id", "node%d" % i,
                                    "--partitions", str(self.partitions),
                                    "--state", self.state]
                             + self.kafka_args() + list(self.core_args.get(i, ())) + list(extra)
                             + (["--allow-plaintext"] if self.net else []), self.data)
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
                assert p.alive(), "%s exited (status %s):\n%s" % (name, p.p.returncode, p.tail())
            return self._answers("/readyz", want=200)
        wait_for(ready, timeout, "/readyz to answer 200")

    def procs(self):
        out = [(k.name, k.proc) for k in self.kafkas if k.proc]
        if self.broker:
            out.append((self.broker.name, self.broker))
        if self.relay:
            out.append(("relay", self.relay))
        out += [("core%d" % i, p) for i, p in sorted(self.cores.items())]
        if self.gateway:
            out.append(("gateway", self.gateway))
        out += [(g.proc.name, g.proc) for g in self.extra]
        return out

    def stop_service(self):
        """Stops the gateways and the cores (SIGTERM, each must exit 0),
        leaving Kafka running so that the topic can be read afterwards.
        Returns the exit codes."""
        codes = {}
        for g in self.extra:
            codes[g.proc.name] = g.proc.stop()
        if self.gateway:
            codes["gateway"] = self.gateway.stop()
        for i, p in sorted(self.cores.items()):
            codes["core%d" % i] = p.stop()
        return codes

    def stop(self):
        """Stops everything in the order that loses nothing, Kafka last when
        the stack runs its own; each must stop cleanly (Proc.stop). Returns
        the exit codes (a JVM's 143 for SIGTERM reads as 0)."""
        codes = self.stop_service()
        if self.broker:
            code = self.broker.stop()
            codes["broker"] = 0 if clean_exit(self.broker.name, code) else code
        for k in self.kafkas:
            codes[k.name] = 0 if clean_exit(k.name, k.proc.stop()) else k.proc.returncode
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
            broker = [(n, p) for n, p in self.procs() if p is self.broker or n.startswith("kafka") or n == "relay"]
            for group in (gateways, cores, broker):
                problems += terminate(group, bound)
            problems += ["sanitizer: " + r for r in self.sanitizer_reports()]
            if problems:
                raise AssertionError("teardown:\n" + "\n".join(problems))
        finally:
            if self.net:
                self.net.close()
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

    def served(self, path, timeout=60):
        """A GET asked again while it answers a promised 503 (a partition
        restoring or moving): the first other answer."""
        end = time.monotonic() + timeout
        while True:
            r = self.request("GET", path)
            if not promised_failure(r, write=False) or time.monotonic() > end:
                return r
            time.sleep(0.1)

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


def bulk_load(stack, count):
    """count created profiles produced straight into the stack's topic
    (tests/bench/bulk_load.c), keyed and partitioned as the core does; the
    topic is made first, as a core would make it. Returns a sample of
    (uid, email) spread over the set."""
    tool = os.path.join(BUILD, "tests", "bench-bulk-load")
    r = subprocess.run([tool, stack.bootstrap, stack.topic, str(stack.partitions), str(count)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return [tuple(line.split(" ")) for line in r.stdout.splitlines()[:-1]]


def promised_failure(r, write):
    """Whether r is a failure the documentation promises for an outage: 503 with
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
    broker = "shared"  # or "own" to kill/stop/restart Kafka, "mock" for its fault controls
    gateway_args = ()  # more flags for the main gateway
    core_args = {}  # node -> more flags for that core node
    # Every request of stack.request (HEAD aside) through a proxy that checks
    # it and its answer against the OpenAPI description (ContractProxy).
    contract = False

    def setUp(self):
        self.stack = Stack(nodes=self.nodes, partitions=self.partitions, broker=self.broker)
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
