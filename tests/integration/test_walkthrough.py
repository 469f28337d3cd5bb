"""The original service's walkthrough (SEED.md) through the gateway, and the
REST contract around it."""
import os
import re
import subprocess

from harness import SOURCE, StackTest, free_port, main, wait_for

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class Walkthrough(StackTest):
    contract = True  # every request and answer checked against gateway/openapi.json
    def test_seed_walkthrough(self):
        s = self.stack
        r = s.request("POST", "/api/profile", {"username": "bob", "email": "bob1@mail.com"})
        self.assertEqual(r.status, 201, r)
        uid = r.json["uid"]
        self.assertRegex(uid, UUID4)
        self.assertEqual((r.json["username"], r.json["email"], r.json["version"]), ("bob", "bob1@mail.com", 1))
        self.assertEqual(r.json["created_at"], r.json["updated_at"])
        self.assertEqual(r.headers["etag"], '"1"')
        created = r.json

        # Read-your-writes: the create is visible at once, by uid and email.
        r = s.request("GET", "/api/profile/" + uid, headers={"Accept": "application/json"})
        self.assertEqual((r.status, r.json), (200, created))
        self.assertEqual(r.headers["etag"], '"1"')
        r = s.request("GET", "/api/search?email=bob1@mail.com")
        self.assertEqual((r.status, r.json), (200, created))
        r = s.request("GET", "/api/search?email=BOB1@Mail.Com")
        self.assertEqual((r.status, r.json["uid"]), (200, uid))
        # An upper-case uid names the same profile.
        r = s.request("GET", "/api/profile/" + uid.upper())
        self.assertEqual((r.status, r.json), (200, created))

        r = s.request("PUT", "/api/profile/" + uid, {"username": "bob", "email": "bob2@mail.com"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json["email"], r.json["version"], r.json["created_at"]),
                         ("bob2@mail.com", 2, created["created_at"]))
        self.assertGreater(r.json["updated_at"], created["updated_at"])  # strictly, even within one ms
        self.assertEqual(r.headers["etag"], '"2"')
        r = s.request("GET", "/api/search?email=bob2@mail.com")
        self.assertEqual((r.status, r.json["uid"], r.json["version"]), (200, uid, 2))
        r = s.request("GET", "/api/search?email=bob1@mail.com")
        self.assertEqual((r.status, r.json["error"]["code"]), (404, "NOT_FOUND"))

        r = s.request("DELETE", "/api/profile/" + uid)
        self.assertEqual((r.status, r.body), (204, ""))
        r = s.request("GET", "/api/search?email=bob2@mail.com")
        self.assertEqual(r.status, 404)
        r = s.request("GET", "/api/profile/" + uid)
        self.assertEqual((r.status, r.json["error"]["code"]), (404, "NOT_FOUND"))
        r = s.request("DELETE", "/api/profile/" + uid)
        self.assertEqual(r.status, 404)

    def test_put_keeps_omitted_fields_and_unknown_uid_is_404(self):
        s = self.stack
        p = s.create("carol", "carol@mail.com")
        r = s.request("PUT", "/api/profile/" + p["uid"], {"username": "caroline"})
        self.assertEqual((r.status, r.json["username"], r.json["email"], r.json["version"]),
                         (200, "caroline", "carol@mail.com", 2))
        r = s.request("PUT", "/api/profile/00000000-0000-4000-8000-000000000000", {"username": "x"})
        self.assertEqual((r.status, r.json["error"]["code"]), (404, "NOT_FOUND"))

    def test_search_answers_the_most_recently_updated(self):
        s = self.stack
        a = s.create("a", "shared@mail.com")
        b = s.create("b", "shared@mail.com")
        r = s.request("GET", "/api/search?email=shared@mail.com")
        self.assertEqual(r.json["uid"], b["uid"])
        self.assertEqual(s.request("PUT", "/api/profile/" + a["uid"], {"username": "a2"}).status, 200)
        r = s.request("GET", "/api/search?email=shared@mail.com")
        self.assertEqual((r.json["uid"], r.json["username"]), (a["uid"], "a2"))

    def test_if_match(self):
        s = self.stack
        p = s.create("dave", "dave@mail.com")
        path = "/api/profile/" + p["uid"]
        r = s.request("PUT", path, {"email": "dave2@mail.com"}, headers={"If-Match": '"2"'})
        self.assertEqual((r.status, r.json["error"]["code"]), (412, "FAILED_PRECONDITION"))
        self.assertEqual(s.request("GET", path).json["version"], 1)  # unchanged
        r = s.request("PUT", path, {"email": "dave2@mail.com"}, headers={"If-Match": '"1"'})
        self.assertEqual((r.status, r.json["version"]), (200, 2))
        r = s.request("PUT", path, {"email": "dave3@mail.com"}, headers={"If-Match": "2"})
        self.assertEqual((r.status, r.json["version"]), (200, 3))
        r = s.request("PUT", path, {"email": "dave4@mail.com"}, headers={"If-Match": 'W/"3"'})
        self.assertEqual((r.status, r.json["version"]), (200, 4))
        r = s.request("DELETE", path, headers={"If-Match": '"3"'})
        self.assertEqual(r.status, 412)
        r = s.request("DELETE", path, headers={"If-Match": "*"})
        self.assertEqual(r.status, 204)
        r = s.request("DELETE", path, headers={"If-Match": "*"})
        self.assertEqual(r.status, 404)

    def test_health_and_readiness(self):
        s = self.stack
        self.assertEqual(s.request("GET", "/healthz").status, 200)
        r = s.request("GET", "/readyz")
        self.assertEqual((r.status, r.json["partitions"]), (200, 12))
        c = s.cluster()
        self.assertEqual(len(c["partitions"]), 12)
        self.assertTrue(all(p["state"] == "active" for p in c["partitions"]))

    def test_readiness_and_cluster_view_say_503_when_a_core_is_missing(self):
        """/readyz wants every core the gateway was given to be a reachable
        member; /api/cluster needs one core to answer. Both say 503 (with
        Retry-After and a JSON error) otherwise, and at once."""
        s = self.stack
        dead = "tcp://127.0.0.1:%d" % free_port()
        both = s.extra_gateway([s.core_addr[1], dead])
        r = both.request("GET", "/readyz")
        self.assertEqual((r.status, r.headers.get("retry-after"), r.json["error"]["code"]), (503, "1", "UNAVAILABLE"))
        self.assertIn(dead, r.json["error"]["message"])
        self.assertEqual(both.request("GET", "/api/cluster").status, 200)
        none = s.extra_gateway([dead])
        for path in ("/readyz", "/api/cluster"):
            r = none.request("GET", path)
            self.assertEqual((r.status, r.headers.get("retry-after"), r.json["error"]["code"]),
                             (503, "1", "UNAVAILABLE"), path)

    def test_records_on_the_topic_decode_with_protoc(self):
        """Every value on the topic is a ProfileEvent protoc can decode, and
        a delete is a tombstone. Read back from the topic by a plain consumer, which
        holds exactly what Kafka stored."""
        s = self.stack
        p = s.create("erin", "erin@mail.com")
        s.request("DELETE", "/api/profile/" + p["uid"])
        mine = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(
            [(key, val) for _, _, key, val in s.records() if key == p["uid"]]), 20,
            "both records in the topic")
        created, deleted = mine
        self.assertIsNone(deleted[1], "a delete must be a tombstone")
        out = subprocess.run(["protoc", "--decode=profile.v1.ProfileEvent", "-I" + os.path.join(SOURCE, "proto"),
                              os.path.join(SOURCE, "proto", "profile.proto")],
                             input=created[1], capture_output=True, check=True).stdout.decode()
        self.assertIn("type: CREATED", out)
        self.assertIn('uid: "%s"' % p["uid"], out)
        self.assertIn('username: "erin"', out)
        self.assertIn('email: "erin@mail.com"', out)
        self.assertIn("version: 1", out)


if __name__ == "__main__":
    main()
