#!/usr/bin/env python3
"""The chaos verifier: three core nodes and the gateway under a mixed load
from several clients, while round after round a fault strikes; then every
promise is checked against what the clients were told and what the log holds.

Faults: a random core node killed (SIGKILL) and started again; a random core
node stopped (SIGSTOP) past its group session and resumed; the gateway killed
and started again; the Kafka broker (a real one, of the run's own) killed
(SIGKILL) and started again on its data; and once, the whole stack stopped
and started, Kafka included.

Each client owns its profiles (one writer per profile, so every profile has
one history) and runs creates with an Idempotency-Key, updates and deletes
with If-Match, reads and searches, recording what it sent and what it was
told. The log is read as any consumer reads it (tests/tools/kafka_records, a
plain read_committed consumer that knows nothing of this project).
The checks:
  lost     an acknowledged write is not the final state, unless a later write
           of the same client had an unknown outcome (504, cut off);
  version  two acknowledged writes of a profile share a version;
  key      an Idempotency-Key made more than one profile (in the log);
  revived  a write answered 503 (not executed) is found in the log or in a
           state, or a 503 delete's profile is gone with no other delete;
  stale    a read after an acknowledged write returned an older version;
  log      the last record of a profile in the log is not its final state
           (a stale owner's write committed after a newer one);
  status   an answer outside what docs/reliability.md promises.
Any finding fails the run and prints the profile's history.

    python3 tests/chaos/chaos.py [--rounds N] [--clients N] [--seed N]
        [--faults kill,stall,gateway,broker,stack] [--plan KIND,...]
        [--write-delay-ms MS]
        [--fault-fence-off] [--expect-anomalies]
"""
import argparse
import http.client
import json
import os
import random
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

from harness import SESSION_MS, Stack, wait_for  # noqa: E402

SESSION_S = SESSION_MS / 1000  # the group session the harness gives the cores
WRITE_STATUSES = {200, 201, 204, 412, 503, 504}


# ---- the log ----------------------------------------------------------------

def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7f) << shift
        if c < 0x80:
            return v, i
        shift += 7


def fields(b):
    """Top-level protobuf fields of b: {number: value} (the last wins)."""
    out, i = {}, 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            out[num], i = varint(b, i)
        elif wt == 1:
            out[num], i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = varint(b, i)
            out[num], i = b[i:i + n], i + n
        elif wt == 5:
            out[num], i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
    return out


def decode_event(value):
    """(username, version, idempotency key) of a ProfileEvent record."""
    ev = fields(value)
    p = fields(ev.get(2, b""))
    return p.get(2, b"").decode(), p.get(4, 0), ev.get(3, b"").decode()


def read_log(stack):
    """Per uid, as a plain read_committed consumer of the topic sees it (a
    write the service did not commit is not there): its records in log
    order [(username, version, key) or None for a delete], and every
    username a record carried."""
    records, seen = {}, set()
    for part, offset, key, value in stack.records():
        state = decode_event(value) if value is not None else None
        records.setdefault(key, []).append(state)
        if state:
            seen.add(state[0])
    return records, seen


# ---- the clients ------------------------------------------------------------

class Client(threading.Thread):
    def __init__(self, cid, port, stop, rng):
        super().__init__(daemon=True)
        self.cid, self.port, self.stop_ev, self.rng = cid, port, stop, rng
        self.profiles = {}  # uid -> {"believed": profile or None, "history": [...]}
        self.keys = {}  # idempotency key -> uid
        self.seq = 0
        self.ops = {}
        self.findings = []

    def request(self, method, path, body=None, headers=None):
        """(status, json) or (None, why) when no answer came."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            h = {"Content-Type": "application/json"} if body is not None else {}
            h.update(headers or {})
            conn.request(method, path, json.dumps(body) if body is not None else None, h)
            r = conn.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data else None)
        except ConnectionRefusedError:
            return 0, "refused"  # never sent
        except (OSError, http.client.HTTPException) as e:
            return None, str(e)  # sent, no answer: unknown
        finally:
            conn.close()

    def note(self, op, status):
        self.ops.setdefault(op, {}).setdefault(status, 0)
        self.ops[op][status] += 1

    def finding(self, kind, uid, what):
        self.findings.append((kind, uid, what))

    def live(self):
        return [u for u, p in self.profiles.items() if p["believed"] is not None and not p.get("dirty")]

    def run(self):
        while not self.stop_ev.is_set():
            self.seq += 1
            r = self.rng.random()
            live = self.live()
            if r < 0.2 or not live:
                self.create()
            elif r < 0.55:
                self.update(self.rng.choice(live))
            elif r < 0.6:
                self.delete(self.rng.choice(live))
            elif r < 0.85:
                self.get(self.rng.choice(live))
            else:
                self.search(self.rng.choice(live))

    def create(self):
        key = "c%d-%d" % (self.cid, self.seq)
        body = {"username": "n-%d-%d" % (self.cid, self.seq), "email": "c%d-%d@mail.com" % (self.cid, self.seq)}
        for _ in range(60):  # a keyed create is retried until it is answered
            status, resp = self.request("POST", "/api/profile", body, {"Idempotency-Key": key})
            self.note("create", status)
            if status == 201:
                uid = resp["uid"]
                if key in self.keys and self.keys[key] != uid:
                    self.finding("key", uid, "key %s answered %s, then %s" % (key, self.keys[key], uid))
                self.keys[key] = uid
                p = self.profiles.setdefault(uid, {"believed": resp, "history": []})
                p["history"].append(("create", key, 201, resp["version"], resp["username"]))
                p["acked"] = [(resp["version"], "create")]
                return
            if status not in (0, None, 503, 504):
                self.finding("status", key, "create answered %s %s" % (status, resp))
                return
            if self.stop_ev.is_set():
                self.keys.setdefault(key, None)
                return
            time.sleep(0.25)
        self.keys.setdefault(key, None)

    def refresh(self, uid):
        """After an unknown outcome: learn the state before going on."""
        p = self.profiles[uid]
        for _ in range(120):
            status, resp = self.request("GET", "/api/profile/" + uid)
            if status == 200:
                p["believed"], p["dirty"] = resp, False
                return
            if status == 404:
                p["believed"], p["dirty"] = None, False
                return
            if self.stop_ev.is_set():
                break
            time.sleep(0.25)
        p["dirty"] = True  # not known yet: left alone

    def write(self, op, uid, method, body):
        p = self.profiles[uid]
        version = p["believed"]["version"]
        status, resp = self.request(method, "/api/profile/" + uid, body, {"If-Match": '"%d"' % version})
        self.note(op, status)
        value = body["username"] if body else None
        if status in (200, 204):
            got = resp["version"] if status == 200 else version + 1
            p["history"].append((op, value, status, got, value))
            p["acked"] = p.get("acked", []) + [(got, op)]
            p["believed"] = resp if status == 200 else None
            # Writes to a uid run one at a time: whatever was unknown
            # before this one has landed or never will.
            p["uncertain"] = False
        elif status == 503 or status == 0:
            p["history"].append((op, value, 503, None, value))
            p.setdefault("not_run", []).append(value or "delete@%d" % version)
        elif status == 412 or (status == 404 and p.get("uncertain")):
            p["history"].append((op, value, status, None, value))
            self.refresh(uid)
        elif status in (504, None):
            # Outcome unknown: it may land later, even after a read that does
            # not show it. Reads are not held to it until a write settles it.
            p["history"].append((op, value, "unknown", None, value))
            p["uncertain"] = True
            self.refresh(uid)
        else:
            p["history"].append((op, value, status, None, value))
            self.finding("lost" if status == 404 else "status", uid, "%s answered %s %s" % (op, status, resp))

    def update(self, uid):
        self.write("update", uid, "PUT", {"username": "u-%d-%d" % (self.cid, self.seq)})

    def delete(self, uid):
        self.write("delete", uid, "DELETE", None)

    def get(self, uid):
        p = self.profiles[uid]
        status, resp = self.request("GET", "/api/profile/" + uid)
        self.note("get", status)
        if p.get("uncertain"):
            if status not in (0, None, 200, 404, 503):
                self.finding("status", uid, "get answered %s %s" % (status, resp))
        elif status == 200 and p["believed"] and resp["version"] < p["believed"]["version"]:
            self.finding("stale", uid, "read version %d after version %d was acknowledged" %
                         (resp["version"], p["believed"]["version"]))
        elif status == 404 and p["believed"] is not None and not p.get("dirty"):
            self.finding("lost", uid, "read 404 of a profile acknowledged as version %d" % p["believed"]["version"])
        elif status not in (0, None, 200, 404, 503):
            self.finding("status", uid, "get answered %s %s" % (status, resp))

    def search(self, uid):
        email = self.profiles[uid]["believed"]["email"]
        status, resp = self.request("GET", "/api/search?email=" + email)
        self.note("search", status)
        if status not in (0, None, 200, 404, 503):
            self.finding("status", uid, "search answered %s %s" % (status, resp))


# ---- faults -----------------------------------------------------------------

def fault(stack, kind, rng, log):
    if kind == "kill":
        i = rng.choice(sorted(stack.cores))
        stack.cores[i].stop(signal.SIGKILL)
        time.sleep(1 + rng.random() * 2)
        stack.start_core(i)
        log("killed node%d (SIGKILL) and started it again" % i)
    elif kind == "stall":
        i = rng.choice(sorted(stack.cores))
        pause = SESSION_S + 2 + rng.random() * 2
        stack.cores[i].p.send_signal(signal.SIGSTOP)
        time.sleep(pause)
        stack.cores[i].p.send_signal(signal.SIGCONT)
        log("stopped node%d (SIGSTOP) for %.1f s, past its session" % (i, pause))
    elif kind == "broker":
        stack.broker.stop(signal.SIGKILL)
        time.sleep(1 + rng.random() * 2)
        stack.start_broker()
        log("killed the Kafka broker (SIGKILL) and started it again (ready in %.1f s)" %
            (stack.kafka.ready_ms / 1000))
    elif kind == "gateway":
        stack.gateway.stop(signal.SIGKILL)
        time.sleep(0.5)
        stack.start_gateway()
        log("killed the gateway (SIGKILL) and started it again")
    elif kind == "stack":
        codes = stack.stop()
        stack.start_broker()
        for i in sorted(stack.cores):
            stack.start_core(i)
        stack.start_gateway()
        log("stopped the whole stack, broker included (exit codes %s), and started it again" % codes)
    stack.wait_ready(120)


def schedule(rounds, rng, kinds):
    plan = [rng.choice(kinds) for _ in range(rounds)]
    if "stack" in kinds:
        plan = [k if k != "stack" else "kill" for k in plan]
        plan[rounds // 2] = "stack"
    return plan


# ---- the checks ---------------------------------------------------------------

def verify(stack, clients, log):
    findings = []
    for c in clients:
        findings += c.findings
    logged, seen = read_log(stack)
    # Final states, as the service answers them now.
    final = {}
    for c in clients:
        for uid in c.profiles:
            status, resp = c.request("GET", "/api/profile/" + uid)
            final[uid] = resp if status == 200 else None
            if status not in (200, 404):
                findings.append(("status", uid, "final read answered %s" % status))
    acked_writes = 0
    for c in clients:
        for uid, p in c.profiles.items():
            h = p["history"]
            acked = [i for i, e in enumerate(h) if e[2] in (200, 201, 204)]
            acked_writes += len(acked)
            last_ack = acked[-1] if acked else None
            allowed = []  # states the final one may be
            if last_ack is not None:
                e = h[last_ack]
                allowed.append(None if e[0] == "delete" else e[4])
            for e in h[(last_ack or 0) + 1:]:
                if e[2] == "unknown":
                    allowed.append(None if e[0] == "delete" else e[1])
            f = final.get(uid)
            got = None if f is None else f["username"]
            if got not in allowed:
                findings.append(("lost", uid, "final state %r, expected one of %r" % (got, allowed)))
            versions = [v for v, _ in p.get("acked", [])]
            if len(versions) != len(set(versions)):
                findings.append(("version", uid, "acknowledged versions %r" % versions))
            for value in p.get("not_run", []):
                if value in seen or (f is not None and f["username"] == value):
                    findings.append(("revived", uid, "a write answered 503 (%s) is in the log" % value))
            # The log's last record is the final state.
            if uid not in logged or (None if logged[uid][-1] is None else logged[uid][-1][0]) != got:
                findings.append(("log", uid, "last record %r, final state %r" % (
                    logged[uid][-1] if uid in logged else "none", got)))
    keys = {}
    for uid, records in logged.items():
        for r in records:
            if r and r[2]:
                keys.setdefault(r[2], set()).add(uid)
    for key, uids in keys.items():
        if len(uids) > 1:
            findings.append(("key", sorted(uids)[0], "key %s made %d profiles: %s" % (key, len(uids), sorted(uids))))
    return findings, acked_writes, len(keys)


def run(args):
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    lines = []

    def log(msg):
        line = "[%6.1f s] %s" % (time.monotonic() - t0, msg)
        lines.append(line)
        print(line, flush=True)

    stack = Stack(nodes=3, partitions=args.partitions, broker="own")
    for i in (1, 2, 3):
        stack.core_args[i] = ["--fault-write-delay-ms", str(args.write_delay_ms),
                              "--fault-fence", "off" if args.fault_fence_off else "on"]
    stack.start()
    stop = threading.Event()
    clients = [Client(c, stack.port, stop, random.Random(rng.random())) for c in range(args.clients)]
    plan = args.plan.split(",") if args.plan else schedule(args.rounds, rng, args.faults.split(","))
    try:
        stack.wait_ready(60)
        for c in clients:
            c.start()
        counts = {}
        for n, kind in enumerate(plan, 1):
            time.sleep(args.between * (0.5 + rng.random()))
            fault(stack, kind, rng, lambda m: log("round %d/%d: %s" % (n, len(plan), m)))
            counts[kind] = counts.get(kind, 0) + 1
        time.sleep(args.between)
        stop.set()
        for c in clients:
            c.join(120)
        stack.wait_ready(120)
        for c in clients:  # what an unknown outcome left unread
            for uid, p in c.profiles.items():
                if p.get("dirty"):
                    c.refresh(uid)
        # Writes still finishing land within seconds: let the log settle.
        deadline = time.monotonic() + 30
        while True:
            findings, acked, keys = verify(stack, clients, log)
            if not [f for f in findings if f[0] == "log"] or time.monotonic() > deadline:
                break
            time.sleep(1)
        ops = {}
        for c in clients:
            for op, statuses in c.ops.items():
                for st, k in statuses.items():
                    ops.setdefault(op, {}).setdefault(st, 0)
                    ops[op][st] += k
        log("faults: %d rounds (%s)" % (len(plan), ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items()))))
        for op in sorted(ops):
            log("  %-7s %6d  %s" % (op, sum(ops[op].values()),
                                    " ".join("%s:%d" % ("none" if k is None else "refused" if k == 0 else k, v)
                                             for k, v in sorted(ops[op].items(), key=lambda x: str(x[0])))))
        profiles = sum(len(c.profiles) for c in clients)
        log("checked: %d profiles, %d acknowledged writes, %d idempotency keys" % (profiles, acked, keys))
        kinds_found = {}
        for kind, _, _ in findings:
            kinds_found[kind] = kinds_found.get(kind, 0) + 1
        log("anomalies: %d %s" % (len(findings), kinds_found or ""))
        for kind, uid, what in findings[:20]:
            hist = next((c.profiles[uid]["history"] for c in clients if uid in c.profiles), [])
            print("  %s %s: %s\n    history: %s" % (kind, uid, what, hist), flush=True)
        return findings
    finally:
        stop.set()
        stack.destroy()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--between", type=float, default=3.0, help="seconds of load between faults (about)")
    ap.add_argument("--faults", default="kill,stall,gateway,broker,stack",
                    help="the kinds of fault to draw from (a whole-stack restart happens once, midway)")
    ap.add_argument("--plan", help="a fixed sequence of fault kinds (comma-separated) instead of --rounds drawn "
                    "at random from --faults")
    ap.add_argument("--write-delay-ms", type=int, default=0,
                    help="the fault point: every write waits this long between its last check and Kafka, "
                         "which widens the window a stalled node's write can land in")
    ap.add_argument("--fault-fence-off", action="store_true",
                    help="run the nodes without fencing: with stalls and a write delay the checks must find "
                         "the stale writes this allows")
    ap.add_argument("--expect-anomalies", action="store_true", help="exit 0 only if an anomaly was found")
    args = ap.parse_args()
    kinds = {"kill", "stall", "gateway", "broker", "stack"}
    for k in (args.plan or args.faults).split(","):
        if k not in kinds:
            ap.error("unknown fault kind %r (kinds: %s)" % (k, ", ".join(sorted(kinds))))
    print("chaos: seed %d, %s, %d clients, write delay %d ms, fence %s" %
          (args.seed, "plan " + args.plan if args.plan else "%d rounds of %s" % (args.rounds, args.faults),
           args.clients, args.write_delay_ms,
           "off" if args.fault_fence_off else "on"), flush=True)
    findings = run(args)
    if args.expect_anomalies:
        sys.exit(0 if findings else 1)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
