"""make bench: the service measured beside the ceilings of its parts, in one
run on this machine, printed as one table (every row with its baseline from
the same run and the ratio).

A row with a baseline is measured as pairs, baseline then service, run one
after the other BENCH_PAIRS times (default 3): the value and the baseline
printed are the medians, and the ratio is the median of the pairs' own
ratios, with their spread, so that a change is judged on a ratio taken
under the same conditions and not on the host's mood.

Starts one Apache Kafka broker for the run (each stack takes its own topics
and group on it, as under ctest) and its own stacks (core nodes, gateway) on
free loopback ports, loads data with the REST create benchmark, and stops
everything. BENCH_SECONDS sets each load phase's length (default 10)."""
import calendar
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from harness import BUILD, SESSION_MS, Stack, all_active_on, free_port, java_partition, wait_for  # noqa: E402
from test_cluster import topic_partitions  # noqa: E402
from test_standbys import reads_through_a_kill  # noqa: E402
from shared_kafka import start as shared_kafka_start, stop as shared_kafka_stop  # noqa: E402

D = float(os.environ.get("BENCH_SECONDS", "10"))
PAIRS = max(1, int(os.environ.get("BENCH_PAIRS", "3")))
HERE = os.path.dirname(os.path.abspath(__file__))
rows = []


def row(name, value, unit, baseline=None, aim=None, ok=None, note="", ratio=None):
    if ratio is None and baseline:
        ratio = value / baseline
    ratio = "%.0f%%" % (100.0 * ratio) if ratio is not None else ""
    rows.append((name, value, unit, baseline, ratio, aim or "", "" if ok is None else ("yes" if ok else "NO"), note))
    sys.stderr.write("  %-44s %12.2f %s\n" % (name, value, unit))


def paired(name, unit, base_fn, serv_fn, aim=None, ok_fn=None, note_fn=None):
    """A row measured as PAIRS pairs (base_fn() then serv_fn(), each a tuple
    whose first item is the figure): the medians, and the median of the
    pairs' ratios with their spread. ok_fn(serv, base, ratio) judges the aim;
    note_fn(serv, base) describes the median runs. Returns (serv, base)."""
    runs = [(base_fn(), serv_fn()) for _ in range(PAIRS)]
    ratios = sorted(sv[0] / b[0] for b, sv in runs if b[0])
    base = sorted((b for b, _ in runs), key=lambda m: m[0])[len(runs) // 2]
    serv = sorted((sv for _, sv in runs), key=lambda m: m[0])[len(runs) // 2]
    ratio = ratios[len(ratios) // 2] if ratios else None
    note = note_fn(serv, base) if note_fn else ""
    if ratios:
        note += "%sratio over %d pairs %.0f-%.0f%%" % ("; " if note else "", len(runs), 100 * ratios[0],
                                                       100 * ratios[-1])
    row(name, serv[0], unit, base[0], aim, ok_fn(serv, base, ratio) if ok_fn else None, note, ratio)
    return serv, base


def lat(m):
    """p50 and p99 of a measurement (rate, p50, p99, ...), for a note."""
    return "p50 %.2f ms, p99 %.2f ms" % (m[1], m[2])


def ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def wrk(url, script=None, conns=64, env=None):
    cmd = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % max(1, int(D)), "--latency", url]
    if script:
        cmd[1:1] = ["-s", os.path.join(HERE, script)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {}))).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, p50, p99, int(bad.group(1)) if bad else 0


def uids_of(stack, count_at_least):
    return list(wait_for(lambda: (lambda w: w if len(w) >= count_at_least else None)(topic_partitions(stack)),
                         60, "the topic"))


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def rss_anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"RssAnon:\s+(\d+) kB", f.read()).group(1))


def du_kib(path):
    return int(subprocess.run(["du", "-sk", path], capture_output=True, text=True).stdout.split()[0])


def profilectl_bench(core, tls=(), workloads="get,create,mixed", concurrency=32):
    """{workload: [ops, ops/s, p50 ms, p99 ms, p99.9 ms, errors]}."""
    out = subprocess.run([os.path.join(BUILD, "profilectl"), "--core", core, *tls, "bench", "--concurrency",
                          str(concurrency), "--duration", str(D), "--profiles", "2000", "--workloads", workloads],
                         capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("get", "create", "mixed"):
            res[parts[0]] = [float(x) for x in parts[-6:]]
    return res


def native(core, workload, tls=(), concurrency=32):
    """One native workload: (ops/s, p50 ms, p99 ms)."""
    r = profilectl_bench(core, tls, workload, concurrency)[workload]
    return r[1], r[2], r[3]


class Baselines:
    """The processes with no work behind them, each started for one
    measurement and stopped after it."""

    def __init__(self, tmp):
        self.one_uid = os.path.join(tmp, "one-uid.txt")
        write_lines(self.one_uid, ["74292b21-0fbb-4f1d-a18f-fa80f947fa5d"])

    @staticmethod
    def _run(argv, url, measure):
        procs = []
        try:
            for a in argv:
                procs.append(subprocess.Popen(a, stderr=subprocess.DEVNULL))
            wait_for(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", url]).returncode == 0
                     if url else True, 10, "a baseline process")
            return measure()
        finally:
            for p in reversed(procs):
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def fixed(self):
        """HTTP with a fixed body: (req/s, p50, p99)."""
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        return self._run([[os.path.join(BUILD, "tests", "bench-http-fixed"), str(port)]], url + "/",
                         lambda: wrk(url + "/")[:3])

    def _behind_http(self, mode, gateway, build=BUILD):
        nurl, port = "tcp://127.0.0.1:%d" % free_port(), free_port()
        url = "http://127.0.0.1:%d" % port
        front = [os.path.join(build, "profile-gateway"), "--address", "127.0.0.1", "--port", str(port), "--core",
                 nurl] if gateway else [os.path.join(BUILD, "tests", "bench-http-fixed"), str(port), nurl]
        return self._run([[os.path.join(BUILD, "tests", "bench-nng-echo"), mode, nurl, "64"], front],
                         url + "/healthz", lambda: wrk(url, "get.lua", env={"UIDS": self.one_uid})[:3])

    def relay(self):
        """The bare relay: HTTP -> nng echo -> a fixed body (req/s, p50, p99)."""
        return self._behind_http("server", False)

    def canned(self, build=BUILD):
        """The gateway (build's) over a node that answers one canned profile."""
        return self._behind_http("canned", True, build)

    def echo(self):
        """nng REQ/REP echo, 32 in flight: (ops/s, p50, p99)."""
        url = "tcp://127.0.0.1:%d" % free_port()
        bench_echo = os.path.join(BUILD, "tests", "bench-nng-echo")

        def measure():
            time.sleep(0.3)
            e = subprocess.run([bench_echo, "client", url, "32", str(D)], capture_output=True, text=True).stdout
            return tuple(float(x) for x in e.split()[1:4])
        return self._run([[bench_echo, "server", url, "64"]], None, measure)


SIZES = tuple(int(x) for x in os.environ.get("BENCH_SIZES", "100000 2000000").split())


def human(n):
    return "%gM" % (n / 1e6) if n >= 1000000 else "%gk" % (n / 1e3)


def sized_node(n, tmp):
    """A one-node stack (128 partitions) holding n profiles loaded into the
    log before the node started: (stack, {restore, replayed, secs,
    load_rate, uids: a file of 1000 of their uids})."""
    st = Stack(nodes=1, partitions=128)
    st.start_broker()
    out = subprocess.run([os.path.join(BUILD, "tests", "bench-bulk-load"), st.bootstrap, st.topic, "128", str(n)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    uids = os.path.join(tmp, "uids-%d.txt" % n)
    write_lines(uids, [line.split()[0] for line in out[:-1]])
    load_rate = float(out[-1].split()[2])
    st.start_core(1)
    st.start_gateway()
    st.wait_ready(600)
    replayed, secs = restore_of(st.cores[1].log_path)
    return st, {"restore": replayed / secs if secs else 0, "replayed": replayed, "secs": secs,
                "load_rate": load_rate, "uids": uids}


def log_times(path, pattern, since):
    """Wall-clock times of the log lines matching pattern, at or after since."""
    with open(path) as f:
        text = f.read()
    out = []
    for t in re.findall(r"^(\S+Z) " + pattern, text, re.M):
        at = calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float(t[19:23])
        if at >= since:
            out.append(at)
    return out


def restore_of(path):
    """A node's restore in its log: (records replayed, seconds from the first
    partition assigned to the last one active)."""
    stamps = log_times(path, r"profiled info: partition \d+ (?:assigned|active)", 0)
    with open(path) as f:
        replayed = sum(int(x) for x in re.findall(r"active: replayed (\d+) records", f.read()))
    return replayed, max(stamps) - min(stamps) if stamps else 0


def failover(three, gw1, uids, owner):
    """kill -9 of node2 under a writer of one of its profiles: the time to
    every partition active on the others, and what it is made of."""
    victim = next(u for u in uids if owner[java_partition(u, 12)] == "node2")
    wrote = []

    def writer():
        while not wrote:
            try:
                r = gw1.request("PUT", "/api/profile/" + victim, {"username": "after"}, timeout=2)
                if r.status == 200:
                    wrote.append(time.time())
            except OSError:
                pass
            time.sleep(0.02)
    t0 = time.time()
    three.cores[2].stop(signal.SIGKILL)
    w = threading.Thread(target=writer)
    w.start()
    wait_for(lambda: all_active_on(gw1, ("node1", "node3")), 120, "failover")
    fo = time.time() - t0
    w.join(60)
    logs = [three.cores[i].log_path for i in (1, 3)]
    assigned = [t for p in logs for t in log_times(p, r"profiled info: partition \d+ assigned", t0)]
    active = [t for p in logs for t in log_times(p, r"profiled info: partition \d+ active", t0)]
    parts = "detected and reassigned %.1f s, restored %.1f s later, first write to a moved partition at %.1f s" % (
        min(assigned) - t0 if assigned else -1, max(active) - min(assigned) if active and assigned else -1,
        wrote[0] - t0 if wrote else -1)
    return fo, parts


def kafka_rtt(bootstrap, per_transaction=0):
    """Records produced and read back, a round at a time: one idempotent
    record, or (per_transaction N) a transaction of N records read back
    read_committed: (p50 ms, p99 ms, records/s)."""
    args = ["--transactional=%d" % per_transaction] if per_transaction else []
    out = subprocess.run([os.path.join(BUILD, "tests", "bench-kafka-rtt"), bootstrap,
                          "bench.rtt%s" % (".txn%d" % per_transaction if per_transaction else ""), str(D)] + args,
                         capture_output=True, text=True).stdout.split()
    return float(out[1]), float(out[2]), int(out[0]) / D


def main():
    tmp = tempfile.mkdtemp(prefix="profile-bench-")
    sys.stderr.write("make bench: %.0f s per phase, %d pairs per ratio row; machine: %s, %d cores\n" % (
        D, PAIRS, open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip(),
        os.cpu_count()))
    base = Baselines(tmp)
    # One real Kafka broker for the whole run.
    shared = os.path.join(tmp, "kafka")
    if shared_kafka_start(shared) != 0:
        sys.exit("make bench: the Kafka broker did not start")
    os.environ["PROFILE_KAFKA_SHARED"] = shared
    try:
        measure(base, tmp)
    finally:
        shared_kafka_stop(shared)


def measure(base, tmp):

    # ---- the architecture's own ceiling ------------------------------------
    # The bare relay (HTTP -> nng -> a fixed body, no JSON, no protobuf), and
    # the gateway over a node that answers every request with one canned
    # profile (HTTP -> nng -> no work).
    paired("bare relay: HTTP -> nng echo -> fixed body", "req/s", base.fixed, base.relay,
                          note_fn=lambda sv, b: "baseline: HTTP fixed body; %s" % lat(sv))
    paired("gateway over a canned-answer node", "req/s", base.relay, base.canned, ">= 90% of the bare relay",
           lambda sv, b, r: r >= 0.9, lambda sv, b: "baseline: the bare relay; %s" % lat(sv))

    # ---- one node ----------------------------------------------------------
    one = Stack(nodes=1).start()
    three = None
    try:
        rss_empty = rss_anon_kib(one.cores[1].p.pid)
        url1 = "http://127.0.0.1:%d" % one.port
        wrk(url1, "post.lua")
        uids = uids_of(one, 1000)
        uid_file = os.path.join(tmp, "uids1.txt")
        write_lines(uid_file, uids)

        def get1():
            return wrk(url1, "get.lua", env={"UIDS": uid_file})

        def post1():
            return wrk(url1, "post.lua")

        g1, _ = paired("REST GET by uid, 1 node, 64 conns", "req/s", base.fixed, get1,
                       ">= 30% of baseline, >= 15000/s, p99 < 5 ms",
                       lambda sv, b, r: r >= 0.3 and sv[0] >= 15000 and sv[2] < 5,
                       lambda sv, b: "baseline: HTTP fixed body; %s, %d errors" % (lat(sv), sv[3]))
        rps1 = g1[0]
        rps, p50, p99, bad = wrk(url1, "search.lua", conns=16)
        search1 = rps
        row("REST email search, 1 node, 16 conns", rps, "req/s", rps1,
            note="baseline: GET by uid; p50 %.2f ms, p99 %.2f ms" % (p50, p99))
        core1 = one.core_addr[1]
        ng, _ = paired("native GET (profilectl bench), 32 in flight", "ops/s", base.echo,
                       lambda: native(core1, "get"), ">= 70% of baseline, p50 < 0.5 ms, p99 < 3 ms",
                       lambda sv, b, r: r >= 0.7 and sv[1] < 0.5 and sv[2] < 3,
                       lambda sv, b: "baseline: nng echo; p50 %.3f ms, p99 %.3f ms" % (sv[1], sv[2]))
        # The native writes on a fresh log beside the same on this node's
        # log, which the rows above grew (on Kafka, whose index finds any
        # offset at once, they should not differ).
        fresh = Stack(nodes=1).start()
        try:
            c, m = native(fresh.core_addr[1], "create"), native(fresh.core_addr[1], "mixed")
        finally:
            fresh.stop()
            fresh.destroy()
        grown = len(one.records())
        c_grown = native(core1, "create")
        row("native create, 32 in flight, fresh log", c[0], "ops/s", aim=">= 5000", ok=c[0] >= 5000,
            note="p50 %.2f ms, p99 %.2f ms; on this node's log of %d records: %.0f/s, p50 %.2f ms, p99 %.2f ms" % (
                c[1], c[2], grown, c_grown[0], c_grown[1], c_grown[2]))
        post, _ = paired("REST POST create, 1 node, 64 conns", "creates/s", get1, post1,
                         ">= 50% of REST GET, p99 < 20 ms", lambda sv, b, r: r >= 0.5 and sv[2] < 20,
                         lambda sv, b: "baseline: REST GET by uid; %s, %d errors" % (lat(sv), sv[3]))
        paired("one write at a time (native create, 1 in flight): p50", "ms", lambda: kafka_rtt(one.bootstrap),
               lambda: native(core1, "create", concurrency=1)[1:], "<= baseline", lambda sv, b, r: r <= 1.0,
               lambda sv, b: "baseline: produce then consume one record on the same broker, p50 %.2f ms, p99 "
               "%.2f ms; p99 %.2f ms" % (b[0], b[1], sv[1]))
        # What fencing with Kafka's transactions would add to each write:
        # a transaction per record, and per group commit of 100.
        paired("Kafka alone: a one-record transaction, read back read_committed: p50", "ms",
               lambda: kafka_rtt(one.bootstrap), lambda: kafka_rtt(one.bootstrap, 1),
               note_fn=lambda sv, b: "baseline: one idempotent record; p99 %.2f ms against %.2f ms" % (sv[1], b[1]))
        t100 = kafka_rtt(one.bootstrap, 100)
        row("Kafka alone: transactions of 100 records, one at a time", t100[2], "records/s",
            note="p50 %.2f ms, p99 %.2f ms per transaction" % (t100[0], t100[1]))
        m_grown = native(core1, "mixed")
        row("native mixed 90/10 get/update, fresh log", m[0], "ops/s", ng[0], "p99 < 10 ms", m[2] < 10,
            "baseline: native get; p50 %.3f ms, p99 %.3f ms; on this node's log: %.0f/s, p99 %.3f ms" % (
                m[1], m[2], m_grown[0], m_grown[2]))

        # ---- the same node's work over TLS, beside it ------------------------
        sec = Stack(nodes=1, tls=True).start()
        try:
            urls = "https://localhost:%d" % sec.port
            wrk(urls, "post.lua")
            tls_uids = os.path.join(tmp, "uids-tls.txt")
            write_lines(tls_uids, uids_of(sec, 1000))
            paired("REST GET over HTTPS (and TLS to the node)", "req/s", get1,
                   lambda: wrk(urls, "get.lua", env={"UIDS": tls_uids}),
                   note_fn=lambda sv, b: "baseline: REST GET, plain; 64 kept-alive conns; %s, %d errors" % (
                       lat(sv), sv[3]))
            paired("native GET over TLS, 32 in flight", "ops/s", lambda: native(core1, "get"),
                   lambda: native(sec.core_addr[1], "get", sec.tls_args("client")),
                   note_fn=lambda sv, b: "baseline: native GET over tcp; p50 %.3f ms, p99 %.3f ms" % (sv[1], sv[2]))
        finally:
            sec.stop()
            sec.destroy()

        # Memory: the core's anonymous memory grows with what it holds by
        # the slope between empty and loaded; at 1M = empty + slope * 1M.
        n_profiles = len(topic_partitions(one))
        rss = rss_anon_kib(one.cores[1].p.pid)
        store = du_kib(os.path.join(one.data, "core1", "store"))
        slope = (rss - rss_empty) / 1024 / n_profiles
        at_1m = rss_empty / 1024 + slope * 1e6
        row("core RssAnon at 1M profiles (from %d held)" % n_profiles, at_1m, "MiB", rss_empty / 1024,
            "< 64 MiB at 1M", at_1m < 64,
            "baseline: the empty core; %.1f MiB loaded, +%.2f MiB per 100k" % (rss / 1024, slope * 100000))
        raw = n_profiles * (36 + 130) / 1024.0  # key + a typical ProfileEvent
        row("store size per 100k profiles", store / 1024 * 100000 / n_profiles, "MiB", raw / 1024 * 100000 / n_profiles,
            note="baseline: the raw keys and values; %.1f MiB for %d profiles, buckets preallocated" % (
                store / 1024, n_profiles))

        # Restore from the log with no local files, against reading it alone.
        b = subprocess.run([os.path.join(BUILD, "tests", "bench-consume"), one.bootstrap, one.topic],
                           capture_output=True, text=True).stdout.split()
        base_restore = float(b[2])
        one.cores[1].stop()
        one.start_core(1, data_name="core-fresh")
        one.wait_ready(120)
        replayed, secs = restore_of(os.path.join(one.data, "core-fresh.log"))
        row("restore from the log, no local files", replayed / secs if secs else 0, "events/s", base_restore,
            ">= 90% of baseline",
            secs > 0 and replayed / secs >= 0.9 * base_restore,
            "%d events in %.2f s; baseline reads them in %s s" % (replayed, secs, b[1]))
        # The same work without Kafka: the core's apply path over a store.
        d = tempfile.mkdtemp(prefix="bench-store-", dir=tmp)
        a = subprocess.run([os.path.join(BUILD, "tests", "bench-store-apply"), d, "200000"],
                           capture_output=True, text=True).stdout.split()
        row("store apply without Kafka (restore work)", float(a[0]), "events/s", float(a[1]), ">= 200000/s",
            float(a[0]) >= 200000, "one thread, batches of 1024; baseline: plain Kyoto Cabinet sets")
        # Restart on the first stores: only the tail written meanwhile.
        with ThreadPoolExecutor(16) as pool:
            tail = len(list(pool.map(lambda i: one.create("tail%d" % i, "tail%d@bench.example" % i), range(2000))))
        one.cores[1].stop()
        t0 = time.monotonic()
        one.start_core(1)
        one.wait_ready(120)
        restart = time.monotonic() - t0
        replayed_tail = one.replayed()
        one.cores[1].stop()
        t0 = time.monotonic()
        one.start_core(1)  # nothing new to replay this time: the join alone
        one.wait_ready(120)
        join = time.monotonic() - t0
        row("restart with local files: time to ready", restart, "s", join,
            note="baseline: a restart with nothing to replay; replayed %d records (%d were written while it was away)" % (
                replayed_tail, tail))

        # ---- three nodes (the one node kept, idle, for the pairs) ------------
        three = Stack(nodes=3).start()
        url3 = "http://127.0.0.1:%d" % three.port
        rps, p50, p99, bad = wrk(url3, "post.lua")
        uids = uids_of(three, 1000)
        uid_file3 = os.path.join(tmp, "uids3.txt")
        write_lines(uid_file3, uids)
        time.sleep(2.5)  # one refresh of the gateway's owner table
        row("REST POST create, 3 nodes, 64 conns", rps, "creates/s", post[0],
            note="baseline: 1 node; p50 %.2f ms, p99 %.2f ms" % (p50, p99))
        g3, _ = paired("REST GET, 3 nodes (owner routing), 64 conns", "req/s", get1,
                       lambda: wrk(url3, "get.lua", env={"UIDS": uid_file3}), "within 30% of 1 node",
                       lambda sv, b, r: r >= 0.7, lambda sv, b: "baseline: 1 node; %s, %d errors" % (lat(sv), sv[3]))
        owner = {p["partition"]: p["owner"] for p in three.cluster()["partitions"]}
        foreign = [u for u in uids if owner[java_partition(u, 12)] != "node1"]
        f_file = os.path.join(tmp, "foreign.txt")
        write_lines(f_file, foreign)
        gw1 = three.node_gateway(1)
        rps, p50, p99, bad = wrk("http://127.0.0.1:%d" % gw1.port, "get.lua", env={"UIDS": f_file})
        row("REST GET forwarded (non-owner node), 64 conns", rps, "req/s", g3[0],
            note="baseline: owner-routed GET; p50 %.2f ms, p99 %.2f ms" % (p50, p99))
        rps, p50, p99, bad = wrk(url3, "search.lua", conns=16)
        row("REST email search, 3 nodes, 16 conns", rps, "req/s", search1,
            note="baseline: search on 1 node; p50 %.2f ms, p99 %.2f ms" % (p50, p99))
        one.stop()  # the failover measured without it
        fo, parts = failover(three, gw1, uids, owner)
        row("failover: kill -9 of 1 of 3 nodes to all active", fo, "s", SESSION_MS / 1000,
            "< %.0f s (session + 3 s)" % (SESSION_MS / 1000 + 3), fo < SESSION_MS / 1000 + 3,
            "baseline: the group session (session.timeout.ms=%d); %s" % (SESSION_MS, parts))
    finally:
        for st in (three, one):
            if st is not None:
                st.stop()
                st.destroy()

    # ---- cost as data grows ----------------------------------------------
    # One node holding 100k profiles beside one holding 2M, each loaded
    # through the log (bench-bulk-load), not the API; 128 partitions.
    sizes = {}
    try:
        for n in SIZES:
            sizes[n] = sized_node(n, tmp)
        small, large = SIZES
        for n in SIZES:
            st, info = sizes[n]
            row("restore of %s profiles loaded through the log" % human(n), info["restore"], "events/s",
                note="%d events in %.1f s, no local files; loaded at %.0f records/s" % (
                    info["replayed"], info["secs"], info["load_rate"]))
        for n in SIZES:
            st, info = sizes[n]
            row("store bytes per profile at %s" % human(n), du_kib(os.path.join(st.data, "core1", "store")) * 1024.0 / n,
                "bytes", note="every partition's .kch files")
        get_at = {n: (lambda st=sizes[n][0], f=sizes[n][1]["uids"]: wrk("http://127.0.0.1:%d" % st.port, "get.lua",
                                                                      env={"UIDS": f})) for n in SIZES}
        paired("REST GET p50 at %s (beside %s)" % (human(large), human(small)), "ms",
               lambda: (get_at[small]()[1],), lambda: (get_at[large]()[1],), "within 20%",
               lambda sv, b, r: 0.8 <= r <= 1.2, lambda sv, b: "baseline: the same node holding %s" % human(small))
        post_at = {n: (lambda st=sizes[n][0]: wrk("http://127.0.0.1:%d" % st.port, "post.lua")) for n in SIZES}
        paired("REST create rate at %s (beside %s)" % (human(large), human(small)), "creates/s", post_at[small],
               post_at[large], "within 20%", lambda sv, b, r: r >= 0.8,
               lambda sv, b: "baseline: the same node holding %s; %s" % (human(small), lat(sv)))
        # Memory once both have served a while (a restore's buffers are
        # given back when the node goes idle).
        for n in SIZES:
            st, info = sizes[n]
            rss = rss_anon_kib(st.cores[1].p.pid) / 1024
            row("core RssAnon holding %s profiles" % human(n), rss, "MiB", aim="< 64 MiB at 2M" if n == large else None,
                ok=rss < 64 if n == large else None, note="after the rows above")
    finally:
        for st, _ in sizes.values():
            st.stop()
            st.destroy()

    # ---- reads through a failover: standbys and max-stale ----------------
    sb = Stack(nodes=3, partitions=6)
    sb.core_args = {i: ("--standbys", "1") for i in (1, 2, 3)}
    sb.gateway_args = ["--timeout-ms", "1000"]
    sb.start()
    try:
        wait_for(lambda: all(len(p["replicas"]) >= 2 for p in sb.cluster()["partitions"]), 120, "standbys")
        owner = {p["partition"]: p["owner"] for p in sb.cluster()["partitions"]}
        made = [sb.create("fo%d" % i, "fo%d@bench.example" % i) for i in range(60)]
        victims = [p for p in made if owner[java_partition(p["uid"], 6)] == "node3"]
        fo, tally, _, _ = reads_through_a_kill(sb, victims, 3)
        share = {k: 100.0 * v[200] / max(1, sum(v.values())) for k, v in tally.items()}
        row("reads 200 through a kill -9, max-stale, standbys 1", share[True], "%", share[False], "100%",
            share[True] == 100.0, "baseline: the same reads without max-stale; %s vs %s; 1 s deadline; failover %.1f s"
            % (dict(tally[True]), dict(tally[False]), fo))
    finally:
        sb.stop()
        sb.destroy()

    print()
    print("%-46s %12s %-10s %12s %6s  %-42s %-4s %s" % ("measure", "value", "unit", "baseline", "ratio", "aim", "met", "notes"))
    for name, value, unit, baseline, ratio, aim, ok, note in rows:
        base = "" if not baseline else "%.0f" % baseline if baseline >= 100 else "%.2f" % baseline
        print("%-46s %12.2f %-10s %12s %6s  %-42s %-4s %s" % (name, value, unit, base, ratio, aim, ok, note))


if __name__ == "__main__":
    main()
