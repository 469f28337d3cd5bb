#!/usr/bin/env python3
"""The chaos verifier: three core nodes and the gateway under a mixed load
from several clients, while round after round a fault strikes; then every
promise is checked against what the clients were told and what the log holds.

Faults: a random core node killed (SIGKILL) and started again; a random core
node stopped (SIGSTOP) past its group session and resumed; the gateway killed
and started again; the Kafka broker (a real one, of the run's own) killed
(SIGKILL) and started again on its data; once, the whole stack stopped and
started, Kafka included. And, as root (tests/integration/netns.py: each core
node in a network namespace of its own), partitions past the group session
while the node keeps running: a node cut from Kafka only, the gateway still
reaching it (cut-kafka); a node cut from everything (cut-all); a node's
answers to the gateway dropped, one way (cut-gateway); every node cut from
Kafka at once, for up to a session (cut-kafka-all); and every link to Kafka
100-500 ms slower each way for about a session (slow-kafka; a delaying
relay, tests/chaos/relay.py, in front of the broker).

Each client is the only writer of its profiles (creates with an
Idempotency-Key, updates and deletes with If-Match) and reads and searches
every client's, deleted ones included (one get in five accepting a copy up
to 2 s stale, one in five of its own profiles any copy that applied its
last write there, by that write's position). Every operation is recorded with the caller's interval
(invocation to completion). Once the load stopped and the service's
answers settled, the nodes are stopped (nothing is written afterwards) and
the topic is read as any consumer reads it (tests/tools/kafka_records, a
plain read_committed consumer that knows nothing of this project). The
history is then checked against the log as a linearizable register's would
be (tests/chaos/checker.py: lost, revived, version, log, key, stale,
future, body, status); any finding fails the run and prints the operations
that show it.

    python3 tests/chaos/chaos.py [--rounds N] [--clients N] [--seed N]
        [--faults kill,stall,gateway,broker,stack] [--plan KIND,...]
        [--write-delay-ms MS]
        [--fault-fence-off] [--lost-read-ms MS] [--expect KIND[,KIND...]]
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

import checker  # noqa: E402
import netns  # noqa: E402
from harness import SESSION_MS, Stack  # noqa: E402

SESSION_S = SESSION_MS / 1000  # the group session the harness gives the cores


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
    """A ProfileEvent record as the checker reads it."""
    ev = fields(value)
    p = fields(ev.get(2, b""))
    return {"username": p.get(2, b"").decode(), "email": p.get(3, b"").decode(), "version": p.get(4, 0),
            "key": ev.get(3, b"").decode()}


def read_log(stack):
    """Per uid, its records in log order (None for a tombstone), as a plain
    read_committed consumer of the topic sees them: a write the service did
    not commit is not there."""
    records = {}
    for part, offset, key, value in stack.records():
        records.setdefault(key, []).append(decode_event(value) if value is not None else None)
    return records


# ---- the clients ------------------------------------------------------------

class Client(threading.Thread):
    """A client of its own profiles (the only writer of each) that also
    reads and searches every client's, deleted ones included, recording
    every operation with its interval for the checker."""

    def __init__(self, cid, port, stop, rng, known):
        super().__init__(daemon=True)
        self.cid, self.port, self.stop_ev, self.rng = cid, port, stop, rng
        self.known = known  # uid -> email, of every client's acknowledged creates (shared)
        self.mine = {}  # uid -> the profile as last read or written (None: deleted), or "dirty"
        self.wrote = {}  # uid -> (X-Profile-Position, the state it made) of the last acknowledged write
        self.seq = 0
        self.history = []

    def request(self, method, path, body=None, headers=None):
        """(status, json, timed out, X-Profile-Position): status 0 when
        refused (never sent), None when no answer came."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            h = {"Content-Type": "application/json"} if body is not None else {}
            h.update(headers or {})
            conn.request(method, path, json.dumps(body) if body is not None else None, h)
            r = conn.getresponse()
            data = r.read()
            return r.status, (json.loads(data) if data else None), False, r.getheader("X-Profile-Position")
        except ConnectionRefusedError:
            return 0, None, False, None
        except TimeoutError:
            return None, None, True, None
        except (OSError, http.client.HTTPException):
            return None, None, False, None  # cut off: unknown
        finally:
            conn.close()

    def call(self, kind, method, path, body=None, headers=None, **op):
        start = time.monotonic()
        status, resp, timeout, position = self.request(method, path, body, headers)
        op.update(kind=kind, client=self.cid, start=start, end=time.monotonic(), status=status, timeout=timeout,
                  resp=resp if status in (200, 201) and isinstance(resp, dict) else None, position=position)
        self.history.append(op)
        return op

    def live(self):
        return [u for u, p in self.mine.items() if isinstance(p, dict)]

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
                self.get(self.pick(live))
            else:
                self.search(self.pick(live))

    def pick(self, live):
        """A profile to read: half the time one of this client's live ones,
        else any client's, deleted ones included."""
        if live and self.rng.random() < 0.5:
            return self.rng.choice(live)
        return self.rng.choice(list(self.known))

    def create(self):
        key = "c%d-%d" % (self.cid, self.seq)
        body = {"username": "n-%d-%d" % (self.cid, self.seq), "email": "c%d-%d@mail.com" % (self.cid, self.seq)}
        for _ in range(60):  # a keyed create is retried until it is answered
            o = self.call("create", "POST", "/api/profile", body, {"Idempotency-Key": key}, key=key,
                          value=body["username"], email=body["email"])
            if o["status"] == 201:
                o["uid"] = o["resp"]["uid"]
                self.mine[o["uid"]] = o["resp"]
                self.wrote[o["uid"]] = (o["position"], {"version": 1})
                self.known[o["uid"]] = body["email"]
                return
            if o["status"] not in (0, None, 503, 504) or self.stop_ev.is_set():
                return
            time.sleep(0.25)

    def refresh(self, uid):
        """After an unknown outcome or a refusal: learn the state (by reads
        the checker judges like any other) before writing again."""
        for _ in range(120):
            o = self.call("get", "GET", "/api/profile/" + uid, uid=uid)
            if o["status"] in (200, 404):
                self.mine[uid] = o["resp"]
                return
            if self.stop_ev.is_set():
                break
            time.sleep(0.25)
        self.mine[uid] = "dirty"  # not known yet: left alone

    def write(self, kind, uid, method, body):
        version = self.mine[uid]["version"]
        o = self.call(kind, method, "/api/profile/" + uid, body, {"If-Match": '"%d"' % version}, uid=uid,
                      match=version, value=body["username"] if body else None)
        if o["status"] == 200:
            self.mine[uid] = o["resp"]
            self.wrote[uid] = (o["position"], {"version": o["resp"]["version"]})
        elif o["status"] == 204:
            self.mine[uid] = None
            self.wrote[uid] = (o["position"], {"deleted": True})
        elif o["status"] in (412, 404, 504, None):
            self.refresh(uid)

    def update(self, uid):
        self.write("update", uid, "PUT", {"username": "u-%d-%d" % (self.cid, self.seq)})

    def delete(self, uid):
        self.write("delete", uid, "DELETE", None)

    def get(self, uid):
        r = self.rng.random()
        if r < 0.2 and self.wrote.get(uid, (None,))[0]:
            # Any copy up to a minute stale, if it has applied this client's
            # last write of the profile (its position).
            position, after = self.wrote[uid]
            self.call("get", "GET", "/api/profile/" + uid, headers={
                "Cache-Control": "max-stale=60", "X-Profile-Min-Position": position}, uid=uid, stale=60,
                after=after)
        elif r < 0.4:  # a copy up to 2 s stale
            self.call("get", "GET", "/api/profile/" + uid, headers={"Cache-Control": "max-stale=2"}, uid=uid,
                      stale=2)
        else:
            self.call("get", "GET", "/api/profile/" + uid, uid=uid)

    def search(self, uid):
        self.call("search", "GET", "/api/search?email=" + self.known[uid], uid=uid, email=self.known[uid])


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
    elif kind in ("cut-kafka", "cut-all", "cut-gateway"):
        # A partition past the group session: the node keeps running (and,
        # but for cut-all, keeps being asked) while Kafka gives its
        # partitions to the others.
        i = rng.choice(sorted(stack.cores))
        what = kind.split("-", 1)[1]
        pause = SESSION_S + 2 + rng.random() * 2
        stack.net.cut(i, what)
        time.sleep(pause)
        stack.net.heal(i)
        log("cut node%d %s for %.1f s, then healed" % (i, CUTS[what], pause))
    elif kind == "cut-kafka-all":
        pause = 2 + rng.random() * SESSION_S
        for i in sorted(stack.cores):
            stack.net.cut(i, "kafka")
        time.sleep(pause)
        for i in sorted(stack.cores):
            stack.net.heal(i)
        log("cut every node from Kafka for %.1f s, then healed" % pause)
    elif kind == "slow-kafka":
        ms = 100 + rng.random() * 400
        pause = SESSION_S + rng.random() * 2
        stack.slow_kafka(ms)
        time.sleep(pause)
        stack.slow_kafka(0)
        log("every link to Kafka %.0f ms slower each way for %.1f s" % (ms, pause))
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


CUTS = {"kafka": "from Kafka (the gateway still reaching it)", "all": "from everything",
        "gateway": "from the gateway (its answers dropped, one way)"}
KINDS = ("kill", "stall", "gateway", "broker", "stack", "cut-kafka", "cut-all", "cut-gateway", "cut-kafka-all",
         "slow-kafka")
NET_KINDS = KINDS[5:]  # in network namespaces: root only


def schedule(rounds, rng, kinds):
    plan = [rng.choice(kinds) for _ in range(rounds)]
    if "stack" in kinds:
        plan = [k if k != "stack" else "kill" for k in plan]
        plan[rounds // 2] = "stack"
    return plan


# ---- the checks ---------------------------------------------------------------

def final_states(clients):
    """The service's answer for every profile a client made, once the load
    stopped (a read that is not 200 or 404 is retried); each read is in the
    client's history, checked like any other."""
    final = {}
    for c in clients:
        for uid in c.mine:
            for _ in range(120):
                o = c.call("get", "GET", "/api/profile/" + uid, uid=uid)
                if o["status"] in (200, 404):
                    final[uid] = o["resp"]
                    break
                time.sleep(0.25)
    return final


def settled(final, logged):
    last = {uid: records[-1] for uid, records in logged.items()}
    return all((final[u] and (final[u]["version"], final[u]["username"])) ==
               (last.get(u) and (last[u]["version"], last[u]["username"])) for u in final)


def run(args):
    rng = random.Random(args.seed)
    t0 = time.monotonic()

    def log(msg):
        print("[%6.1f s] %s" % (time.monotonic() - t0, msg), flush=True)

    net = any(k in NET_KINDS for k in (args.plan or args.faults).split(","))
    stack = Stack(nodes=3, partitions=args.partitions, broker="own", net=net)
    for i in (1, 2, 3):
        stack.core_args[i] = ["--fault-write-delay-ms", str(args.write_delay_ms),
                              "--fault-fence", "off" if args.fault_fence_off else "on",
                              "--lost-read-ms", str(args.lost_read_ms)]
    stop, known = threading.Event(), {}
    plan = args.plan.split(",") if args.plan else schedule(args.rounds, rng, args.faults.split(","))
    try:
        stack.start()
        clients = [Client(c, stack.port, stop, random.Random(rng.random()), known) for c in range(args.clients)]
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
        # Writes of unknown outcome land within seconds: wait until the
        # service's answers and the log agree (30 s at most), then stop the
        # nodes, so that nothing is written after the log is read.
        deadline = time.monotonic() + 30
        while True:
            final = final_states(clients)
            if settled(final, read_log(stack)) or time.monotonic() > deadline:
                break
            time.sleep(1)
        stack.stop_service()
        logged = read_log(stack)
        ops = [o for c in clients for o in c.history]
        findings = checker.check(ops, logged, final)

        tally = {}
        for o in ops:
            st = "none" if o["status"] is None else "refused" if o["status"] == 0 else o["status"]
            tally.setdefault(o["kind"], {}).setdefault(st, 0)
            tally[o["kind"]][st] += 1
        log("faults: %d rounds (%s)" % (len(plan), ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items()))))
        for kind in sorted(tally):
            log("  %-7s %6d  %s" % (kind, sum(tally[kind].values()),
                                    " ".join("%s:%d" % kv for kv in sorted(tally[kind].items(), key=str))))
        acked = sum(o["status"] in (200, 201, 204) for o in ops if o["kind"] in ("create", "update", "delete"))
        keys = len({o["key"] for o in ops if o["kind"] == "create"})
        cross = sum(1 for c in clients for o in c.history
                    if o["kind"] in ("get", "search") and o.get("uid") not in c.mine)
        positioned = sum(1 for o in ops if o.get("after"))
        log("checked: %d profiles, %d acknowledged writes, %d idempotency keys, %d operations "
            "(%d reads of other clients' profiles, %d carrying a write's position)" %
            (len(final), acked, keys, len(ops), cross, positioned))
        found = {}
        for kind, _, _, _ in findings:
            found[kind] = found.get(kind, 0) + 1
        log("anomalies: %d %s" % (len(findings), found or ""))
        for kind, uid, what, shown in findings[:20]:
            print("  %s %s: %s" % (kind, uid, what), flush=True)
            for line in shown[:6]:
                print("      " + line, flush=True)
        return found
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
    ap.add_argument("--faults", default=",".join(KINDS if netns.available() else KINDS[:5]),
                    help="the kinds of fault to draw from (a whole-stack restart happens once, midway); "
                         "default: all of %s (%s as root only)" % (", ".join(KINDS), ", ".join(NET_KINDS)))
    ap.add_argument("--plan", help="a fixed sequence of fault kinds (comma-separated) instead of --rounds drawn "
                    "at random from --faults")
    ap.add_argument("--write-delay-ms", type=int, default=0,
                    help="the fault point: every write waits this long between its last check and Kafka, "
                         "which widens the window a stalled node's write can land in")
    ap.add_argument("--fault-fence-off", action="store_true",
                    help="run the nodes without fencing: with stalls and a write delay the checks must find "
                         "the stale writes this allows")
    ap.add_argument("--lost-read-ms", type=int, default=0,
                    help="the nodes' --lost-read-ms: a node cut from Kafka answers reads from the stores it lost "
                         "this long, which the checks must find stale once another node wrote (a control for "
                         "the partitions)")
    ap.add_argument("--expect", metavar="KIND[,KIND...]",
                    help="exit 0 only if anomalies of each of these kinds were found (%s)" % ", ".join(checker.KINDS))
    args = ap.parse_args()
    for k in (args.plan or args.faults).split(","):
        if k not in KINDS:
            ap.error("unknown fault kind %r (kinds: %s)" % (k, ", ".join(KINDS)))
        if k in NET_KINDS and not netns.available():
            ap.error("fault %s acts on the network between network namespaces: it needs root and iproute2" % k)
    print("chaos: seed %d, %s, %d clients, write delay %d ms, fence %s" %
          (args.seed, "plan " + args.plan if args.plan else "%d rounds of %s" % (args.rounds, args.faults),
           args.clients, args.write_delay_ms,
           "off" if args.fault_fence_off else "on"), flush=True)
    expect = set(args.expect.split(",")) if args.expect else set()
    if expect - set(checker.KINDS):
        ap.error("unknown anomaly kind in --expect (kinds: %s)" % ", ".join(checker.KINDS))
    found = run(args)
    if expect:
        missing = expect - set(found)
        print("expected %s: %s" % (", ".join(sorted(expect)), "missing " + ", ".join(sorted(missing))
                                   if missing else "found"), flush=True)
        sys.exit(1 if missing else 0)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
