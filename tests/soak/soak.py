#!/usr/bin/env python3
"""The soak: a steady mixed load (creates, reads, updates, searches, deletes,
with the data set held steady) against a local stack for --seconds, then a
report: requests and answers by status, and the RSS of every process at the
start, after the warm-up and at the end. Flat memory is the pass mark: the
gateway and every core may grow by at most --max-growth-mib (or 10%) after
the warm-up (the first third of the run). Kafka, a JVM that grows its heap
as it likes up to its bound, is reported, not judged (under ctest the run's
shared broker is not among the stack's processes at all).

    make soak                      # 10 minutes
    make soak SOAK_SECONDS=60
"""
import argparse
import collections
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Stack, build_sanitizer  # noqa: E402


def rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def worker(stack, k, stop, statuses, mu):
    rnd = random.Random(k)
    mine = []  # (uid, email)
    i = 0

    def note(r):
        with mu:
            statuses[r.status] += 1
        return r

    while not stop.is_set():
        try:
            op = rnd.random()
            if len(mine) < 30 or (op < 0.15 and len(mine) < 60):
                email = "soak%d.%d@mail.com" % (k, i)
                i += 1
                r = note(stack.request("POST", "/api/profile", {"username": "soak%d" % k, "email": email}))
                if r.status == 201:
                    mine.append((r.json["uid"], email))
            elif op < 0.65:
                note(stack.request("GET", "/api/profile/" + rnd.choice(mine)[0]))
            elif op < 0.8:
                uid, email = rnd.choice(mine)
                note(stack.request("PUT", "/api/profile/" + uid, {"username": "u%d" % rnd.randint(0, 999)}))
            elif op < 0.9:
                note(stack.request("GET", "/api/search?email=" + rnd.choice(mine)[1]))
            else:
                uid, _ = mine.pop(rnd.randrange(len(mine)))
                note(stack.request("DELETE", "/api/profile/" + uid))
        except OSError:
            with mu:
                statuses["error"] += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--max-growth-mib", type=float, default=8.0)
    args = ap.parse_args()
    sanitizer = build_sanitizer()
    if sanitizer:
        print("a %s sanitizer build: memory is reported, not judged (its quarantine holds freed memory)"
              % sanitizer)

    stack = Stack(nodes=args.nodes, partitions=6)
    stack.start()
    try:
        procs = {name: p.p.pid for name, p in stack.procs()}
        start = {n: rss_mib(pid) for n, pid in procs.items()}
        statuses, mu, stop = collections.Counter(), threading.Lock(), threading.Event()
        threads = [threading.Thread(target=worker, args=(stack, k, stop, statuses, mu))
                   for k in range(args.threads)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        warm, samples = None, []
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1)
            now = {n: rss_mib(pid) for n, pid in procs.items()}
            samples.append(now)
            if warm is None and time.monotonic() - t0 >= args.seconds / 3:
                warm = now
        stop.set()
        for t in threads:
            t.join()
        end = {n: rss_mib(pid) for n, pid in procs.items()}
        took = time.monotonic() - t0
        total = sum(statuses.values())
        print("soak: %d s, %d requests (%.0f/s), answers by status: %s" %
              (took, total, total / took, dict(sorted(statuses.items(), key=str))))
        failed = []
        print("%-10s %10s %10s %10s %10s %10s" % ("process", "start MiB", "warm MiB", "peak MiB", "end MiB", "growth"))
        for n in procs:
            peak = max(s[n] for s in samples)
            growth = end[n] - warm[n]
            judged = not n.startswith(("broker", "kafka")) and not sanitizer
            print("%-10s %10.1f %10.1f %10.1f %10.1f %+9.1f%s" % (n, start[n], warm[n], peak, end[n], growth,
                                                               "" if judged else "  (not judged)"))
            if judged and growth > max(args.max_growth_mib, warm[n] * 0.10):
                failed.append("%s grew %.1f MiB after the warm-up" % (n, growth))
        bad = {s: c for s, c in statuses.items() if s not in (200, 201, 204)}
        if bad:
            failed.append("answers other than 200/201/204: %s" % bad)
        if any(not p.alive() for _, p in stack.procs()):
            failed.append("a process exited")
    finally:
        stack.destroy()
    for f in failed:
        print("FAIL: " + f)
    print("PASS" if not failed else "FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
