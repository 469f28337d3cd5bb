"""Idempotent creates: POST /api/profile with an Idempotency-Key (the IETF
httpapi draft) makes one profile per key, however the retries race, on
whichever node they land, and across a failover and a restore from the log;
the same key with another body is 422; a malformed key is 400 and changes
nothing. profilectl and the C library offer the same (test_client,
test_profilectl)."""
import os
import signal
import threading

from harness import StackTest, java_partition, main, wait_for


def post(target, key, username="idem", email="idem@mail.com"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return target.request("POST", "/api/profile", {"username": username, "email": email}, headers=headers)


def created_with(stack, email):
    """uids of the profile records in the log with this email."""
    return {k for _, _, k, v in stack.records() if v is not None and email.encode() in v}


class OneNode(StackTest):
    contract = True  # every request and answer checked against gateway/openapi.json
    def test_same_key_same_body_is_the_same_profile(self):
        s = self.stack
        first = post(s, "order-1")
        self.assertEqual(first.status, 201, first)
        again = post(s, "order-1")
        self.assertEqual((again.status, again.json), (201, first.json))
        # The structured-field form of the header names the same key.
        quoted = post(s, '"order-1"')
        self.assertEqual((quoted.status, quoted.json), (201, first.json))
        # Still the original answer after the profile changed.
        self.assertEqual(s.request("PUT", "/api/profile/" + first.json["uid"], {"username": "later"}).status, 200)
        self.assertEqual(post(s, "order-1").json, first.json)
        # Another key, or none, makes another profile.
        other = post(s, "order-2")
        self.assertEqual(other.status, 201)
        self.assertNotEqual(other.json["uid"], first.json["uid"])
        self.assertNotEqual(post(s, None).json["uid"], first.json["uid"])
        wait_for(lambda: len(created_with(s, "idem@mail.com")) == 3, 10, "the topic")

    def test_same_key_other_body_is_422_and_changes_nothing(self):
        s = self.stack
        first = post(s, "k")
        r = post(s, "k", email="other@mail.com")
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json["error"]["code"], "INVALID_ARGUMENT")
        self.assertIn("Idempotency-Key", r.json["error"]["message"])
        self.assertEqual(s.request("GET", "/api/search?email=other@mail.com").status, 404)
        self.assertEqual(post(s, "k").json, first.json)

    def test_malformed_keys_are_400(self):
        s = self.stack
        for key in ["", "x" * 256, "tab\there", "caf\u00e9".encode("utf-8").decode("latin-1"), '"open', '"a"b']:
            r = post(s, key, email="bad@mail.com")
            self.assertEqual(r.status, 400, (key, r))
            self.assertEqual(r.json["error"]["code"], "INVALID_ARGUMENT")
            self.assertIn("Idempotency-Key", r.json["error"]["message"])
        self.assertEqual(post(s, "x" * 255, email="ok@mail.com").status, 201)
        self.assertEqual(s.request("GET", "/api/search?email=bad@mail.com").status, 404)

    def test_the_key_survives_a_restore_from_the_log(self):
        s = self.stack
        first = post(s, "restored")
        self.assertEqual(s.request("PUT", "/api/profile/" + first.json["uid"], {"email": "moved@mail.com"}).status,
                         200)
        # The update's record carries the key on (so compaction cannot lose it).
        records = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(
            [v for _, _, k, v in s.records() if k == first.json["uid"]]), 10, "the topic")
        self.assertIn(b"restored", records[1])
        s.cores[1].stop()
        s.start_core(1, data_name="fresh-stores")  # an empty store: everything from the log
        s.wait_ready()
        self.assertEqual(post(s, "restored").json, first.json)
        self.assertEqual(post(s, "restored", email="moved@mail.com").status, 422)


class Cluster(StackTest):
    nodes = 3

    def test_racing_retries_on_every_node_make_one_profile(self):
        s = self.stack
        gateways = [s.node_gateway(i) for i in (1, 2, 3)]
        for g in gateways:
            wait_for(lambda: g.request("GET", "/healthz").status == 200, 10, "a node gateway")
        results = []

        def racer(g, key):
            results.append((key, post(g, key, username="racer", email="racer-%s@mail.com" % key)))
        threads = [threading.Thread(target=racer, args=(g, "race-%d" % k)) for k in range(8) for g in gateways
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 8 * 3 * 2)
        by_key = {}
        for key, r in results:
            self.assertEqual(r.status, 201, r)
            by_key.setdefault(key, set()).add(r.json["uid"])
        self.assertEqual(sorted(len(u) for u in by_key.values()), [1] * 8, by_key)
        for k in range(8):
            wait_for(lambda: created_with(s, "racer-race-%d@mail.com" % k) == by_key["race-%d" % k], 10,
                     "one profile for key race-%d in the log" % k)

    def test_a_retry_after_the_owner_dies_finds_the_profile(self):
        s = self.stack
        first = post(s, "failover")
        self.assertEqual(first.status, 201)
        owner = s.cluster()["partitions"]
        # The key's partition is where the create was made: its uid's too.
        p = [x for x in owner if x["partition"] == java_partition(first.json["uid"], s.partitions)][0]
        node = int(p["owner"].replace("node", ""))
        s.cores[node].stop(signal.SIGKILL)
        # A client with a key retries whatever did not answer: 503 (not
        # executed) and 504 (unknown) alike.
        r = wait_for(lambda: (lambda r: r if r.status not in (503, 504) else None)(post(s, "failover")), 60,
                     "the retry after the failover")
        self.assertEqual((r.status, r.json), (201, first.json))


if __name__ == "__main__":
    main()
