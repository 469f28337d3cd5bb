"""make bench-ab: two builds of the service measured against each other in
one sitting, row by row, alternating A and B BENCH_PAIRS times (default 3)
with both stacks up, so that a change is judged on the median of the pairs'
ratios and not on how busy the host was when each side ran.

usage: python3 tests/bench/ab.py BUILD_A BUILD_B
  (build directories: each side's broker, cores and gateway come from its
  own build; the harness and the load generators, profilectl included, are
  this checkout's, so that both sides are driven alike)

Prints, for each row, A's and B's medians, the median of the B/A ratios and
their spread. BENCH_SECONDS sets each load phase (default 10); BENCH_ROWS, a
regular expression, keeps only the rows it finds in their names (to bisect
one row: make bench-ab A=good B=suspect BENCH_ROWS=mixed). The first row,
each side's gateway over a node that answers one canned profile, needs no
stack."""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402
from bench import D, PAIRS, Baselines, uids_of, write_lines, wrk  # noqa: E402
from harness import Stack, java_partition  # noqa: E402

OWN_BUILD = harness.BUILD


def start(build, nodes):
    """A stack whose processes come from build."""
    own, harness.BUILD = harness.BUILD, build
    try:
        return Stack(nodes=nodes).start()
    finally:
        harness.BUILD = own


def native(core, workload, concurrency=32):
    out = subprocess.run([os.path.join(OWN_BUILD, "profilectl"), "--core", core, "bench", "--concurrency",
                          str(concurrency), "--duration", str(D), "--profiles", "2000", "--workloads", workload],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == workload:
            return float(parts[-5]), float(parts[-4]), float(parts[-3])
    raise RuntimeError("profilectl bench printed no %s row:\n%s" % (workload, out))


def prepare(stack, tmp, tag):
    """Loads profiles through REST; the files of uids for GET (all, and
    those not node1's for the forwarded row)."""
    url = "http://127.0.0.1:%d" % stack.port
    wrk(url, "post.lua")
    uids = uids_of(stack, 1000)
    files = {"all": os.path.join(tmp, "uids-%s.txt" % tag)}
    write_lines(files["all"], uids)
    if stack.nodes > 1:
        time.sleep(2.5)  # one refresh of the gateway's owner table
        owner = {p["partition"]: p["owner"] for p in stack.cluster()["partitions"]}
        files["foreign"] = os.path.join(tmp, "foreign-%s.txt" % tag)
        write_lines(files["foreign"], [u for u in uids if owner[java_partition(u, 12)] != "node1"])
    return files


def rows_for(build, stack, files, tmp):
    """The rows of one side: name -> a measure returning (value, p50, p99)."""
    url = "http://127.0.0.1:%d" % stack.port
    if stack.nodes == 1:
        core = stack.core_addr[1]
        return {
            "REST GET by uid, 1 node, 64 conns (req/s)": lambda: wrk(url, "get.lua", env={"UIDS": files["all"]}),
            "REST POST create, 1 node, 64 conns (creates/s)": lambda: wrk(url, "post.lua"),
            "REST email search, 1 node, 16 conns (req/s)": lambda: wrk(url, "search.lua", conns=16),
            "native GET, 32 in flight (ops/s)": lambda: native(core, "get"),
            "native create, 32 in flight (ops/s)": lambda: native(core, "create"),
            "native create, 1 in flight (ops/s)": lambda: native(core, "create", 1),
            "native mixed 90/10 (ops/s)": lambda: native(core, "mixed"),
        }
    own, harness.BUILD = harness.BUILD, build
    try:
        gw1 = stack.node_gateway(1)
    finally:
        harness.BUILD = own
    return {
        "REST GET, 3 nodes, 64 conns (req/s)": lambda: wrk(url, "get.lua", env={"UIDS": files["all"]}),
        "REST GET forwarded, 64 conns (req/s)": lambda: wrk("http://127.0.0.1:%d" % gw1.port, "get.lua",
                                                            env={"UIDS": files["foreign"]}),
        "REST POST create, 3 nodes, 64 conns (creates/s)": lambda: wrk(url, "post.lua"),
        "REST email search, 3 nodes, 16 conns (req/s)": lambda: wrk(url, "search.lua", conns=16),
    }


# The row names of each stack size (rows_for's keys), to skip a size whose
# rows are all filtered out.
ROWS = {1: ("REST GET by uid, 1 node", "REST POST create, 1 node", "REST email search, 1 node", "native GET",
            "native create", "native mixed 90/10"),
        3: ("REST GET, 3 nodes", "REST GET forwarded", "REST POST create, 3 nodes", "REST email search, 3 nodes")}


# The gateway alone, over a node that answers one canned profile (no stack).
CANNED = "gateway over a canned-answer node (req/s)"


def alternate(name, measures, results):
    """Runs measures[0] and measures[1] (A and B) PAIRS times in turn and
    keeps the row."""
    runs = []
    for _ in range(PAIRS):
        a = measures[0]()
        b = measures[1]()
        runs.append((a[0], b[0]))
        sys.stderr.write("  %-48s A %10.0f  B %10.0f\n" % (name, a[0], b[0]))
    ratios = sorted(b / a for a, b in runs if a)
    results.append((name, sorted(a for a, _ in runs)[len(runs) // 2], sorted(b for _, b in runs)[len(runs) // 2],
                    ratios))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    builds = [os.path.abspath(b) for b in sys.argv[1:]]
    tmp = tempfile.mkdtemp(prefix="profile-ab-")
    results = []
    only = re.compile(os.environ.get("BENCH_ROWS", ""))
    if only.search(CANNED):
        base = Baselines(tmp)
        alternate(CANNED, [lambda b=b: base.canned(b) for b in builds], results)
    for nodes in (1, 3):
        if not any(only.search(n) for n in ROWS[nodes]):
            continue
        stacks = []
        try:
            for i, b in enumerate(builds):
                stacks.append(start(b, nodes))
            files = [prepare(s, tmp, "%s%d" % ("AB"[i], nodes)) for i, s in enumerate(stacks)]
            measures = [rows_for(builds[i], s, files[i], tmp) for i, s in enumerate(stacks)]
            for name in (n for n in measures[0] if only.search(n)):
                alternate(name, [m[name] for m in measures], results)
        finally:
            for s in stacks:
                s.stop()
                s.destroy()
    print()
    print("A: %s\nB: %s\n%d pairs, %.0f s per phase" % (builds[0], builds[1], PAIRS, D))
    print("%-48s %12s %12s %7s  %s" % ("row", "A (median)", "B (median)", "B/A", "B/A of each pair"))
    for name, a, b, ratios in results:
        print("%-48s %12.0f %12.0f %6.0f%%  %s" % (name, a, b, 100 * ratios[len(ratios) // 2],
                                                   " ".join("%.0f%%" % (100 * r) for r in ratios)))


if __name__ == "__main__":
    main()
