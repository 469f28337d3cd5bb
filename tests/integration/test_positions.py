"""Positions: read-your-writes on any replica. Every write answers
X-Profile-Position; a read that carries it (X-Profile-Min-Position) is
answered only by a replica that has applied it, waiting within the
deadline. Written through one node's gateway and read at once through
another's, in both state modes, the read always sees the write; searches
take a set of positions; malformed tokens are 400; a position no replica
reaches in time is 503."""
import re
import threading
import time

from harness import StackTest, all_active_on, main, wait_for

TOKEN = re.compile(r"^\d+:\d+$")
ROUNDS = 60


class Positions(StackTest):
    nodes = 3
    partitions = 6
    state = "replicated"

    def gateways(self):
        s = self.stack
        wait_for(lambda: all_active_on(s, {"node1", "node2", "node3"}), 60, "every partition active")
        return [s.node_gateway(i, ("--timeout-ms", "2000")) for i in (1, 2, 3)]

    def test_a_write_on_one_node_is_read_on_another(self):
        gws = self.gateways()
        p = gws[0].request("POST", "/api/profile", {"username": "pos", "email": "pos0@mail.com"})
        self.assertEqual(p.status, 201, p)
        self.assertRegex(p.headers["x-profile-position"], TOKEN)
        uid = p.json["uid"]
        created = p.headers["x-profile-position"]
        stale = 0
        for i in range(1, ROUNDS + 1):
            w, r = gws[i % 3], gws[(i + 1) % 3]
            up = w.request("PUT", "/api/profile/" + uid, {"email": "pos%d@mail.com" % i})
            self.assertEqual(up.status, 200, up)
            token = up.headers["x-profile-position"]
            plain = r.request("GET", "/api/profile/" + uid)
            stale += plain.json["version"] < up.json["version"]
            got = r.request("GET", "/api/profile/" + uid, headers={"X-Profile-Min-Position": token})
            self.assertEqual((got.status, got.json["version"]), (200, up.json["version"]), got)
            found = r.request("GET", "/api/search?email=pos%d@mail.com" % i,
                              headers={"X-Profile-Min-Position": token + ", " + created})
            self.assertEqual((found.status, found.json["uid"]), (200, uid), found)
        print("%s: reads without the position that missed the write just made: %d of %d" %
              (self.state, stale, ROUNDS))
        # Where reads may be answered from: every replica with its offset.
        for part in self.stack.cluster()["partitions"]:
            nodes = sorted(r["node"] for r in part["replicas"])
            self.assertEqual(nodes, ["node1", "node2", "node3"] if self.state == "replicated" else [part["owner"]])
            self.assertTrue(all(r["applied_offset"] >= -1 and r["lag"] >= 0 for r in part["replicas"]), part)
        gone = gws[0].request("DELETE", "/api/profile/" + uid)
        self.assertEqual(gone.status, 204)
        after = gws[1].request("GET", "/api/profile/" + uid,
                               headers={"X-Profile-Min-Position": gone.headers["x-profile-position"]})
        self.assertEqual(after.status, 404, after)

    def test_a_read_waits_for_a_position_not_yet_reached(self):
        """A read asking for the next record of a partition, sent before
        that record is written, answers with it, not with what was there.
        (The offset after a write's is its transaction's commit marker: the
        next record is at the one after.)"""
        gws = self.gateways()
        p = gws[0].request("POST", "/api/profile", {"username": "wait", "email": "wait@mail.com"})
        part, offset = map(int, p.headers["x-profile-position"].split(":"))
        box = {}

        def read():
            box["r"] = gws[1].request("GET", "/api/profile/" + p.json["uid"],
                                      headers={"X-Profile-Min-Position": "%d:%d" % (part, offset + 2)})
        t = threading.Thread(target=read)
        t.start()
        time.sleep(0.5)
        self.assertTrue(t.is_alive(), "the read did not wait: %s" % box.get("r"))
        up = gws[2].request("PUT", "/api/profile/" + p.json["uid"], {"username": "waited"})
        up_part, up_offset = map(int, up.headers["x-profile-position"].split(":"))
        self.assertEqual(up_part, part)
        self.assertGreater(up_offset, offset)  # the next record; Kafka's offsets need not be contiguous
        t.join(10)
        self.assertEqual((box["r"].status, box["r"].json["username"]), (200, "waited"), box["r"])

    def test_bad_and_unreachable_positions(self):
        s = self.stack
        gw = self.gateways()[1]
        p = s.create("far", "far@mail.com")
        for bad in ("x", "1:", ":5", "1:2,", "1:2;3:4", "-1:5", "1:-5", "99999999999:1", "1:99999999999999999999"):
            r = gw.request("GET", "/api/profile/" + p["uid"], headers={"X-Profile-Min-Position": bad})
            self.assertEqual((r.status, r.json["error"]["code"]), (400, "INVALID_ARGUMENT"), bad)
        far = "%d:%d" % (0, 10 ** 12)
        r = gw.request("GET", "/api/search?email=far@mail.com", headers={"X-Profile-Min-Position": far})
        self.assertEqual(r.status, 503, r)
        self.assertIn("position", r.json["error"]["message"])


class PositionsPartitioned(Positions):
    state = "partitioned"


if __name__ == "__main__":
    main()
