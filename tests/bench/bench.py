"""make bench: the service measured beside the ceilings of its parts, in one
run on this machine, printed as one table (every row with its baseline from
the same run and the ratio).

Starts its own stacks (local broker, core nodes, gateway) on free loopback
ports, loads data with the REST create benchmark, and stops everything.
BENCH_SECONDS sets each load phase's length (default 10)."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import BUILD, Stack, all_active_on, free_port, java_partition, wait_for  # noqa: E402
from test_cluster import journal_partitions  # noqa: E402
from test_standbys import reads_through_a_kill  # noqa: E402

D = float(os.environ.get("BENCH_SECONDS", "10"))
HERE = os.path.dirname(os.path.abspath(__file__))
rows = []


def row(name, value, unit, baseline=None, aim=None, ok=None, note=""):
    ratio = "%.0f%%" % (100.0 * value / baseline) if baseline else ""
    rows.append((name, value, unit, baseline, ratio, aim or "", "" if ok is None else ("yes" if ok else "NO"), note))
    sys.stderr.write("  %-44s %12.2f %s\n" % (name, value, unit))


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
    return list(wait_for(lambda: (lambda w: w if len(w) >= count_at_least else None)(journal_partitions(stack.data)),
                         60, "the journal"))


def write_lines(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def rss_anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"RssAnon:\s+(\d+) kB", f.read()).group(1))


def du_kib(path):
    return int(subprocess.run(["du", "-sk", path], capture_output=True, text=True).stdout.split()[0])


def profilectl_bench(core, tls=()):
    out = subprocess.run([os.path.join(BUILD, "profilectl"), "--core", core, *tls, "bench", "--concurrency", "32",
                          "--duration", str(D), "--profiles", "2000"], capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("get", "create", "mixed"):
            res[parts[0]] = [float(x) for x in parts[-6:]]
    return res


def main():
    tmp = tempfile.mkdtemp(prefix="profile-bench-")
    sys.stderr.write("make bench: %.0f s per phase; machine: %s, %d cores\n" % (
        D, open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip(), os.cpu_count()))

    # ---- baselines -------------------------------------------------------
    port = free_port()
    fixed = subprocess.Popen([os.path.join(BUILD, "tests", "bench-http-fixed"), str(port)])
    time.sleep(0.3)
    base_rps, base_p50, base_p99, _ = wrk("http://127.0.0.1:%d/" % port)
    fixed.send_signal(signal.SIGTERM)
    fixed.wait()
    row("HTTP fixed body (baseline), 64 conns", base_rps, "req/s", note="p50 %.2f ms, p99 %.2f ms" % (base_p50, base_p99))
    echo_url = "tcp://127.0.0.1:%d" % free_port()
    echo = subprocess.Popen([os.path.join(BUILD, "tests", "bench-nng-echo"), "server", echo_url, "64"])
    time.sleep(0.3)
    e = subprocess.run([os.path.join(BUILD, "tests", "bench-nng-echo"), "client", echo_url, "32", str(D)],
                       capture_output=True, text=True).stdout.split()
    echo.kill()
    echo.wait()
    echo_ops, echo_p50, echo_p99 = float(e[1]), float(e[2]), float(e[3])
    row("nng REQ/REP echo (baseline), 32 in flight", echo_ops, "ops/s", note="p50 %.3f ms, p99 %.3f ms" % (echo_p50, echo_p99))

    # The architecture's own ceiling: the gateway over a node that answers
    # every request with one canned profile (HTTP -> nng -> no work).
    canned_url = "tcp://127.0.0.1:%d" % free_port()
    canned = subprocess.Popen([os.path.join(BUILD, "tests", "bench-nng-echo"), "canned", canned_url, "64"])
    gport = free_port()
    gw = subprocess.Popen([os.path.join(BUILD, "profile-gateway"), "--address", "127.0.0.1", "--port", str(gport),
                           "--core", canned_url], stderr=subprocess.DEVNULL)
    wait_for(lambda: subprocess.run(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:%d/healthz" % gport]).returncode == 0,
             10, "the gateway")
    one_uid = os.path.join(tmp, "one-uid.txt")
    write_lines(one_uid, ["74292b21-0fbb-4f1d-a18f-fa80f947fa5d"])
    ceil_rps, p50, p99, _ = wrk("http://127.0.0.1:%d" % gport, "get.lua", env={"UIDS": one_uid})
    gw.send_signal(signal.SIGTERM)
    gw.wait()
    canned.kill()
    canned.wait()
    row("gateway over a canned-answer node (ceiling)", ceil_rps, "req/s", base_rps,
        note="HTTP -> nng -> no work; p50 %.2f ms, p99 %.2f ms" % (p50, p99))

    # ---- one node ----------------------------------------------------------
    one = Stack(nodes=1).start()
    try:
        rss_empty = rss_anon_kib(one.cores[1].p.pid)
        post = wrk("http://127.0.0.1:%d" % one.port, "post.lua")
        uids = uids_of(one, 1000)
        uid_file = os.path.join(tmp, "uids1.txt")
        write_lines(uid_file, uids)
        rps1, p50, p99, bad = wrk("http://127.0.0.1:%d" % one.port, "get.lua", env={"UIDS": uid_file})
        row("REST GET by uid, 1 node, 64 conns", rps1, "req/s", base_rps, ">= 30% of baseline, >= 15000/s, p99 < 5 ms",
            rps1 >= 0.3 * base_rps and rps1 >= 15000 and p99 < 5, "p50 %.2f ms, p99 %.2f ms, %d errors" % (p50, p99, bad))
        rps, p50, p99, bad = wrk("http://127.0.0.1:%d" % one.port, "search.lua", conns=16)
        search1 = rps
        row("REST email search, 1 node, 16 conns", rps, "req/s", rps1,
            note="baseline: GET by uid; p50 %.2f ms, p99 %.2f ms" % (p50, p99))
        nat = profilectl_bench(one.core_addr[1])
        g = nat["get"]
        row("native GET (profilectl bench), 32 in flight", g[1], "ops/s", echo_ops, ">= 70% of baseline, p50 < 0.5 ms, p99 < 3 ms",
            g[1] >= 0.7 * echo_ops and g[2] < 0.5 and g[3] < 3, "p50 %.3f ms, p99 %.3f ms" % (g[2], g[3]))
        c = nat["create"]
        row("native create, 32 in flight", c[1], "ops/s", echo_ops, aim=">= 5000", ok=c[1] >= 5000,
            note="baseline: nng echo; p50 %.2f ms, p99 %.2f ms" % (c[2], c[3]))
        rps, p50, p99, bad = post
        row("REST POST create, 1 node, 64 conns", rps, "creates/s", c[1], ">= 5000, p99 < 20 ms",
            rps >= 5000 and p99 < 20, "baseline: native create; p50 %.2f ms, p99 %.2f ms, %d errors" % (p50, p99, bad))
        m = nat["mixed"]
        row("native mixed 90/10 get/update", m[1], "ops/s", g[1],
            note="baseline: native get; p50 %.3f ms, p99 %.3f ms" % (m[2], m[3]))

        # Memory: the core's anonymous memory grows with what it holds by
        # the slope between empty and loaded; at 1M = empty + slope * 1M.
        n_profiles = len(journal_partitions(one.data))
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
        b = subprocess.run([os.path.join(BUILD, "tests", "bench-consume"), one.bootstrap, "profiles",
                            "fetch.wait.max.ms=1"], capture_output=True, text=True).stdout.split()
        base_restore = float(b[2])
        one.cores[1].stop()
        mark = os.path.getsize(one.cores[1].log_path)
        one.start_core(1, data_name="core-fresh")
        one.wait_ready(120)
        text = open(os.path.join(one.data, "core-fresh.log")).read()
        stamps = [time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) + float(t[19:23])
                  for t in re.findall(r"^(\S+Z) profiled info: partition \d+ (?:assigned|active)", text, re.M)]
        replayed = sum(int(n) for n in re.findall(r"active: replayed (\d+) records", text))
        secs = max(stamps) - min(stamps) if stamps else 0
        row("restore from the log, no local files", replayed / secs if secs else 0, "events/s", base_restore,
            ">= 200000/s and >= 70% of baseline",
            secs > 0 and replayed / secs >= 200000 and replayed / secs >= 0.7 * base_restore,
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
        del mark
    finally:
        one.stop()
        one.destroy()

    # ---- one node, every hop over TLS ---------------------------------------
    sec = Stack(nodes=1, tls=True).start()
    try:
        url = "https://localhost:%d" % sec.port
        wrk(url, "post.lua")
        uid_file = os.path.join(tmp, "uids-tls.txt")
        write_lines(uid_file, uids_of(sec, 1000))
        rps, p50, p99, bad = wrk(url, "get.lua", env={"UIDS": uid_file})
        row("REST GET over HTTPS (and TLS to the node)", rps, "req/s", rps1,
            note="baseline: REST GET, plain; 64 kept-alive conns; p50 %.2f ms, p99 %.2f ms, %d errors" % (p50, p99, bad))
        nat = profilectl_bench(sec.core_addr[1], sec.tls_args("client"))["get"]
        row("native GET over TLS, 32 in flight", nat[1], "ops/s", g[1],
            note="baseline: native GET over tcp; p50 %.3f ms, p99 %.3f ms" % (nat[2], nat[3]))
    finally:
        sec.stop()
        sec.destroy()

    # ---- three nodes -------------------------------------------------------
    three = Stack(nodes=3).start()
    try:
        post3 = wrk("http://127.0.0.1:%d" % three.port, "post.lua")
        uids = uids_of(three, 1000)
        uid_file = os.path.join(tmp, "uids3.txt")
        write_lines(uid_file, uids)
        time.sleep(2.5)  # one refresh of the gateway's owner table
        rps, p50, p99, bad = post3
        row("REST POST create, 3 nodes, 64 conns", rps, "creates/s", post[0],
            note="baseline: 1 node; p50 %.2f ms, p99 %.2f ms" % (p50, p99))
        rps3, p50, p99, bad = wrk("http://127.0.0.1:%d" % three.port, "get.lua", env={"UIDS": uid_file})
        row("REST GET, 3 nodes (owner routing), 64 conns", rps3, "req/s", rps1, "within 30% of 1 node",
            rps3 >= 0.7 * rps1, "baseline: 1 node; p50 %.2f ms, p99 %.2f ms, %d errors" % (p50, p99, bad))
        owner = {p["partition"]: p["owner"] for p in three.cluster()["partitions"]}
        foreign = [u for u in uids if owner[java_partition(u, 12)] != "node1"]
        f_file = os.path.join(tmp, "foreign.txt")
        write_lines(f_file, foreign)
        gw1 = three.node_gateway(1)
        rps, p50, p99, bad = wrk("http://127.0.0.1:%d" % gw1.port, "get.lua", env={"UIDS": f_file})
        row("REST GET forwarded (non-owner node), 64 conns", rps, "req/s", rps3,
            note="baseline: owner-routed GET; p50 %.2f ms, p99 %.2f ms" % (p50, p99))
        rps, p50, p99, bad = wrk("http://127.0.0.1:%d" % three.port, "search.lua", conns=16)
        row("REST email search, 3 nodes, 16 conns", rps, "req/s", search1,
            note="baseline: search on 1 node; p50 %.2f ms, p99 %.2f ms" % (p50, p99))
        three.cores[2].stop(signal.SIGKILL)
        t0 = time.monotonic()
        wait_for(lambda: all_active_on(gw1, ("node1", "node3")), 120, "failover")
        fo = time.monotonic() - t0
        row("failover: kill -9 of 1 of 3 nodes to all active", fo, "s", 4.0, "< 10 s", fo < 10,
            "baseline: the group session (session.timeout.ms=4000)")
    finally:
        three.stop()
        three.destroy()

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
