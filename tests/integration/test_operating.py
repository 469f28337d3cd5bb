"""What operators read: /metrics passes promtool and its counters move as
requests are made (the gateway's, each node's, forwards); the core commits
its applied offsets to its consumer group, where any Kafka tool reads them;
an X-Request-Id names the request in the log lines of the gateway, the node
that forwarded it and the node that answered it; and the HTTP conventions
(Location, If-None-Match, HEAD, 415) over real sockets."""
import os
import re
import subprocess
import time

from harness import BUILD, StackTest, all_active_on, java_partition, main, wait_for


def samples(text):
    """{(name, frozenset(labels)): value} of a Prometheus exposition."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def total(s, name, **labels):
    want = set(labels.items())
    return sum(v for (n, ls), v in s.items() if n == name and want <= set(ls))


class Operating(StackTest):
    nodes = 2
    partitions = 4
    core_args = {1: ("--log-level", "debug"), 2: ("--log-level", "debug")}
    gateway_args = ("--log-level", "debug")

    def metrics(self, gw=None):
        r = (gw or self.stack).request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers)
        return r.body

    def owned_by(self, node, email):
        """A profile created until one lands on a partition node owns (once
        the group has given both nodes their share: the stack is ready as
        soon as every partition is active, on one node at first)."""
        s = self.stack
        wait_for(lambda: all_active_on(s, {"node1", "node2"}) and
                 {p["owner"] for p in s.cluster()["partitions"]} == {"node1", "node2"}, 60,
                 "both nodes owning partitions")
        owned = {p["partition"] for p in s.cluster()["partitions"] if p["owner"] == node}
        for i in range(200):
            p = self.stack.create("op%d" % i, "op%d.%s" % (i, email))
            if java_partition(p["uid"], self.partitions) in owned:
                return p
        self.fail("no profile landed on %s" % node)

    def test_metrics_pass_promtool_and_move(self):
        s = self.stack
        text = self.metrics()
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        planted = subprocess.run(["promtool", "check", "metrics"], input=text + "# TYPE profile_node_up gauge\n",
                                 capture_output=True, text=True)
        self.assertNotEqual(planted.returncode, 0, "promtool let a repeated family pass")
        before = samples(text)
        for i in range(5):
            s.create("m%d" % i, "m%d@mail.com" % i)
        p = self.owned_by("node2", "fwd@mail.com")
        via1 = s.node_gateway(1)  # a gateway that reaches node2 only through node1
        for _ in range(3):
            self.assertEqual(via1.request("GET", "/api/profile/" + p["uid"]).status, 200)
        after = samples(self.metrics())
        created = total(after, "profile_gateway_http_requests_total", method="POST", code="201") - \
            total(before, "profile_gateway_http_requests_total", method="POST", code="201")
        self.assertGreaterEqual(created, 6)
        self.assertEqual(total(after, "profile_node_requests_total", method="create", status="OK") -
                         total(before, "profile_node_requests_total", method="create", status="OK"), created)
        self.assertGreaterEqual(total(after, "profile_node_forwards_total", node="node1") -
                                total(before, "profile_node_forwards_total", node="node1"), 3)
        self.assertGreaterEqual(total(after, "profile_node_request_duration_seconds_count", method="create"),
                                created)
        self.assertEqual(total(after, "profile_node_up"), 2)
        self.assertEqual(total(after, "profile_partition_state", state="active"), 4)
        self.assertGreater(total(after, "profile_partition_store_bytes"), 0)
        self.assertGreaterEqual(total(after, "profile_partition_applied_offset"), created - 4)
        self.assertGreaterEqual(total(after, "profile_node_rebalances_total"), 2)
        # A gateway whose core is gone still answers its own counters.
        s.cores[1].stop()
        s.cores[2].stop()
        alone = samples(self.metrics())
        self.assertEqual(alone[("profile_cluster_view_up", frozenset())], 0)

    def test_applied_offsets_are_committed_to_the_group(self):
        s = self.stack
        made = [s.create("c%d" % i, "c%d@mail.com" % i) for i in range(12)]
        per_partition = {}
        for p in made:
            part = java_partition(p["uid"], self.partitions)
            per_partition[part] = per_partition.get(part, 0) + 1

        def committed():
            out = subprocess.run([os.path.join(BUILD, "tests", "kafka_committed"), s.bootstrap, s.group,
                                  s.topic, str(self.partitions)], capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stderr)
            return {int(a): int(b) for a, b in (line.split() for line in out.stdout.split("\n") if line)}

        # The committed offset is the one after the last record applied, and
        # past the commit marker that follows it.
        def agree():
            c = committed()
            ends = {p["partition"]: p["applied_offset"] + 1 for p in s.cluster()["partitions"]}
            return c if all(c[p] == ends[p] for p in per_partition) else None
        got = wait_for(agree, 20, "the group's committed offsets to reach what the stores applied")
        for p, n in per_partition.items():
            self.assertGreaterEqual(got[p], n)

    def test_request_id_in_every_log_line_for_it(self):
        s = self.stack
        p = self.owned_by("node2", "rid@mail.com")
        via1 = s.node_gateway(1, ("--log-level", "debug"))
        r = via1.request("GET", "/api/profile/" + p["uid"], headers={"X-Request-Id": "trace-77f3"})
        self.assertEqual((r.status, r.headers["x-request-id"]), (200, "trace-77f3"))
        made = via1.request("GET", "/healthz").headers["x-request-id"]
        self.assertRegex(made, r"^[0-9a-f]{8}-[0-9a-f]+$")
        bad = via1.request("GET", "/healthz", headers={"X-Request-Id": "has space"}).headers["x-request-id"]
        self.assertNotEqual(bad, "has space")

        def lines(proc):
            with open(proc.log_path, errors="replace") as f:
                return [l for l in f if "id=trace-77f3" in l]
        wait_for(lambda: lines(via1.proc) and lines(s.cores[1]) and lines(s.cores[2]), 10,
                 "the request's log lines")
        self.assertIn("http GET /api/profile/{uid} 200", lines(via1.proc)[0])
        self.assertIn("rpc get OK", lines(s.cores[1])[0])  # forwarded from here
        self.assertIn("rpc get OK", lines(s.cores[2])[0])  # answered here

    def test_http_conventions(self):
        s = self.stack
        r = s.request("POST", "/api/profile", {"username": "loc", "email": "loc@mail.com"})
        self.assertEqual(r.status, 201)
        self.assertEqual(r.headers["location"], "/api/profile/" + r.json["uid"])
        follow = s.request("GET", r.headers["location"])
        self.assertEqual((follow.status, follow.json), (200, r.json))
        same = s.request("GET", r.headers["location"], headers={"If-None-Match": r.headers["etag"]})
        self.assertEqual((same.status, same.body, same.headers["etag"]), (304, "", r.headers["etag"]))
        s.request("PUT", r.headers["location"], {"username": "loc2"})
        changed = s.request("GET", r.headers["location"], headers={"If-None-Match": r.headers["etag"]})
        self.assertEqual((changed.status, changed.json["version"]), (200, 2))
        head = s.request("HEAD", r.headers["location"])
        self.assertEqual((head.status, head.body, head.headers["etag"]), (200, "", '"2"'))
        self.assertEqual(s.request("HEAD", "/api/nothing").status, 404)
        xml = s.request("POST", "/api/profile", "<profile/>", headers={"Content-Type": "application/xml"})
        self.assertEqual((xml.status, xml.json["error"]["code"]), (415, "UNSUPPORTED_MEDIA_TYPE"))
        form = s.request("POST", "/api/profile", '{"username":"f","email":"f@mail.com"}',
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(form.status, 201, form)  # curl -d's default type, as the original's clients send


if __name__ == "__main__":
    main()
