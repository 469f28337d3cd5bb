"""The chaos verifier's checker: a history of operations, each with the
caller's wall-clock interval (its invocation and its completion), judged
against the topic as a plain read_committed consumer read it once every
writer had stopped.

min.compaction.lag.ms keeps every record of a run, so the log is the whole
order of the committed writes of each profile: version 1 (the create), +1
per update, a tombstone last. Every committed state is then a state of a
register, and the history is checked as a linearizable register's would be:

  lost     an acknowledged write is not in the log;
  revived  a write answered as not executed (503, 412, 404, refused) is in
           the log;
  version  the log's versions of a profile are not 1, 2, 3... (a write
           validated against a stale state was committed);
  log      a record no write of the history explains, or the service's
           final answer is not the log's last state (nor a state before
           writes whose outcome was never told, which may land later);
  key      an Idempotency-Key made more than one profile;
  stale    a read returned a state that a newer write, acknowledged before
           the read began, had replaced (for a read that allowed staleness,
           before its bound), or, for a read that carried a write's
           position, a state before that write's;
  future   a read returned a state whose write had not begun when it ended;
  body     a read returned a committed version with other contents;
  status   an answer the service does not promise: outside the documented
           statuses, a 412 or a 404 to a write that no state it could
           have met explains, or no answer within the client's timeout.

An operation is a dict: kind (create, update, delete, get, search), client,
uid (the profile: a create's once answered), start and end (time.monotonic
of the caller), status (an HTTP status; 0: refused, never sent; None: no
answer), timeout (no answer because the client gave up), value (the
username a create or update wrote), email, key (a create's Idempotency-Key),
match (the version an update or delete sent in If-Match), stale (the
max-stale seconds a read allowed, or None), after (for a read that sent a
write's position: {"version": V} or {"deleted": True}, the state that
write made) and resp (the profile answered, or None). A record of the log is a dict (username, email, version, key) or
None for a tombstone.
"""

KINDS = ("lost", "revived", "version", "log", "key", "stale", "future", "body", "status")
INF = float("inf")
NOT_EXECUTED = (0, 404, 412, 503)
UNKNOWN = (None, 504)
PROMISED = {
    "create": {0, None, 201, 503, 504},
    "update": {0, None, 200, 404, 412, 503, 504},
    "delete": {0, None, 204, 404, 412, 503, 504},
    "get": {0, None, 200, 404, 503},
    "search": {0, None, 200, 404, 503},
}


def show(op):
    """One line that says what an operation did and was told."""
    what = {
        "create": lambda: "create %s key %s" % (op.get("value"), op.get("key")),
        "update": lambda: "update %s If-Match %s" % (op.get("value"), op.get("match")),
        "delete": lambda: "delete If-Match %s" % op.get("match"),
        "get": lambda: "get" + (" max-stale=%s" % op["stale"] if op.get("stale") else ""),
        "search": lambda: "search %s" % op.get("email"),
    }[op["kind"]]()
    resp = op.get("resp")
    told = "%s" % ("refused" if op["status"] == 0 else "no answer" if op["status"] is None else op["status"])
    if resp:
        told += " v%s %s" % (resp.get("version"), resp.get("username"))
    return "client %s [%.3f, %.3f] %s -> %s" % (op.get("client"), op["start"], op["end"], what, told)


class Profile:
    """One uid: its committed states (0: not yet created; i: the log's
    record i-1, None for the tombstone) and the writes that made them."""

    def __init__(self, uid, records):
        self.uid = uid
        self.records = records
        self.writers = [None] * (len(records) + 1)  # state i -> the ops that may have made it

    def state(self, i):
        return None if i == 0 else self.records[i - 1]

    def span(self, i):
        """When state i's write began and when it was surely committed (INF:
        its outcome was never told)."""
        ops = self.writers[i]
        if i == 0:
            return -INF, -INF
        start = min(o["start"] for o in ops)
        acked = [o["end"] for o in ops if o["status"] in (200, 201, 204)]
        return start, min(acked) if acked else INF

    def admissible(self, start, end, stale=0.0):
        """The states a read over [start, end] may return."""
        spans = [self.span(i) for i in range(len(self.records) + 1)]
        out = []
        for i in range(len(spans)):
            newer_done = min((spans[j][1] for j in range(i + 1, len(spans))), default=INF)
            if spans[i][0] < end and newer_done >= start - (stale or 0.0):
                out.append(i)
        return out


def check(ops, log, final):
    """The findings of a history: [(kind, uid, what, [op lines])]. ops: the
    history; log: {uid: [record or None]} in log order; final: {uid: the
    profile the service answered after the run, or None}."""
    findings = []

    def find(kind, uid, what, *shown):
        findings.append((kind, uid, what, [show(o) for o in shown if o]))

    for o in ops:
        if o["status"] not in PROMISED[o["kind"]]:
            find("status", o.get("uid") or o.get("key"), "an answer outside the documented ones", o)
        elif o.get("timeout"):
            find("status", o.get("uid") or o.get("key"), "no answer within the client's timeout", o)

    # Idempotency keys: one profile per key, in the answers and in the log.
    by_key = {}
    for o in ops:
        if o["kind"] == "create" and o["status"] == 201:
            by_key.setdefault(o["key"], {}).setdefault(o["resp"]["uid"], o)
    for uid, records in log.items():
        for r in records:
            if r and r.get("key"):
                by_key.setdefault(r["key"], {}).setdefault(uid, None)
    for key, uids in sorted(by_key.items()):
        if len(uids) > 1:
            find("key", sorted(uids)[0], "key %s made %d profiles: %s" % (key, len(uids), sorted(uids)),
                 *uids.values())

    creates = {}
    for o in ops:
        if o["kind"] == "create":
            creates.setdefault(o["key"], []).append(o)
    writes, reads = {}, {}
    for o in ops:
        if o["kind"] in ("update", "delete"):
            writes.setdefault(o["uid"], []).append(o)
        elif o["kind"] in ("get", "search"):
            reads.setdefault(o["uid"], []).append(o)
    made = {}  # uid -> the create attempts that made it (by key or answer)
    for key, attempts in creates.items():
        uids = {a["resp"]["uid"] for a in attempts if a["status"] == 201}
        for uid, records in log.items():
            if records and records[0] and records[0].get("key") == key:
                uids.add(uid)
        for uid in uids:
            made[uid] = attempts
    for key, attempts in creates.items():
        acked = [a for a in attempts if a["status"] == 201]
        for a in acked[:1]:
            records = log.get(a["resp"]["uid"]) or [None]
            r = records[0]
            if r is None or r["version"] != 1 or r["username"] != a["value"]:
                find("lost", a["resp"]["uid"], "an acknowledged create is not the profile's first record", a)
        if not acked and all(a["status"] in NOT_EXECUTED for a in attempts):
            for uid, records in log.items():
                if records and records[0] and records[0].get("key") == key:
                    find("revived", uid, "a create answered as not executed is in the log", *attempts)

    for uid in sorted(set(log) | set(made) | set(writes) | set(reads)):
        records = log.get(uid, [])
        prof = Profile(uid, records)
        mine = writes.get(uid, [])
        # The versions of the log: 1, 2, 3..., a tombstone only last.
        versions = [r["version"] for r in records if r is not None]
        if versions != list(range(1, len(versions) + 1)) or None in records[:-1]:
            find("version", uid, "the log's versions are %s%s" % (
                versions, " (a record after the tombstone)" if None in records[:-1] else ""))
        # Who made each state.
        for i, r in enumerate(records, 1):
            if r is None:
                before = records[i - 2]["version"] if i >= 2 and records[i - 2] else None
                ops_i = [o for o in mine if o["kind"] == "delete" and o["match"] == before]
            elif i == 1 or r["version"] == 1:
                ops_i = made.get(uid, [])
            else:
                ops_i = [o for o in mine if o["kind"] == "update" and o["value"] == r["username"]]
            done = [o for o in ops_i if o["status"] not in NOT_EXECUTED]
            if not ops_i:
                find("log", uid, "record %d (%s) was made by no write of the history" % (i, r))
                ops_i = [{"start": -INF, "end": INF, "status": None}]
            elif not done:
                find("revived", uid, "record %d (%s) was written by writes answered as not executed" % (i, r),
                     *ops_i)
            prof.writers[i] = done or ops_i
        # Every acknowledged update and delete is in the log.
        for o in mine:
            if o["status"] == 200:
                hit = [r for r in records if r and r["username"] == o["value"]]
                if not hit or hit[0]["version"] != o["resp"]["version"]:
                    find("lost", uid, "an acknowledged update is not in the log as version %d" %
                         o["resp"]["version"], o)
            elif o["status"] == 204:
                at = [k for k, r in enumerate(records) if r is None]
                if not at or at[0] == 0 or (records[at[0] - 1] or {}).get("version") != o["match"]:
                    find("lost", uid, "an acknowledged delete is not in the log after version %s" % o["match"], o)
            elif o["status"] in (404, 412):
                states = [prof.state(i) for i in prof.admissible(o["start"], o["end"])]
                fits = [s for s in states if s is None] if o["status"] == 404 else \
                    [s for s in states if s is None or s["version"] != o["match"]]
                if not fits:
                    find("status", uid, "%d with no state to explain it (the states it could meet: %s)" %
                         (o["status"], [s and s["version"] for s in states]), o)
        # Reads, against the states they could have met.
        for o in reads.get(uid, []):
            if o["status"] not in (200, 404):
                continue
            ok = prof.admissible(o["start"], o["end"], o.get("stale") or 0.0)
            if o.get("after"):  # it carried a write's position: that state or a later one
                floor = [i for i in range(1, len(records) + 1)
                         if (records[i - 1] is None) == bool(o["after"].get("deleted")) and
                         (records[i - 1] is None or records[i - 1]["version"] == o["after"]["version"])]
                ok = [i for i in ok if floor and i >= floor[0]]
            resp = o["resp"] if o["status"] == 200 else None
            if resp is None:
                got = [i for i in range(len(records) + 1) if prof.state(i) is None]
            else:
                got = [i for i in range(1, len(records) + 1)
                       if records[i - 1] and records[i - 1]["version"] == resp["version"]]
                if not got:
                    find("log", uid, "a read returned version %s, which no committed record has" %
                         resp["version"], o)
                    continue
                r = records[got[0] - 1]
                if (resp.get("uid", uid), resp["username"], resp["email"]) != (uid, r["username"], r["email"]):
                    find("body", uid, "a read of version %d returned %s, the log has %s" % (
                        r["version"], {k: resp.get(k) for k in ("uid", "username", "email")}, r), o)
            if any(i in ok for i in got):
                continue
            if got and ok and min(got) > max(ok):
                find("future", uid, "a read returned a state whose write had not begun when it ended", o,
                     *[w for i in got for w in prof.writers[i] if "kind" in w])
            else:
                newer = [w for i in range(max(got) + 1 if got else 0, len(records) + 1)
                         for w in (prof.writers[i] or []) if w.get("status") in (200, 201, 204)]
                find("stale", uid, "a read returned %s after a newer state was acknowledged" % (
                    "version %d" % resp["version"] if resp else "404"), o, *newer[:2])
        # The service's last answer is the log's last state, or one before
        # writes whose outcome was never told (they may land after it).
        if uid in final:
            f = final[uid]
            same = [i for i in range(len(records) + 1)
                    if (prof.state(i) and (prof.state(i)["version"], prof.state(i)["username"])) ==
                    (f and (f["version"], f["username"]))]
            if not any(all(prof.span(j)[1] == INF for j in range(i + 1, len(records) + 1)) for i in same):
                last = records[-1] if records else None
                find("log", uid, "final answer %s, the log's last state %s" % (
                    f and (f["version"], f["username"]), last and (last["version"], last["username"])))
    return findings
