"""Concurrent writes: one writer per key, optimistic concurrency."""
from concurrent.futures import ThreadPoolExecutor

from harness import StackTest, main


class Concurrency(StackTest):
    contract = True  # every request and answer checked against gateway/openapi.json
    def test_concurrent_if_match_updates_exactly_one_wins(self):
        s = self.stack
        p = s.create("race", "race@mail.com")
        path = "/api/profile/" + p["uid"]

        def put(i):
            return s.request("PUT", path, {"email": "winner%d@mail.com" % i}, headers={"If-Match": '"1"'})

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(put, range(16)))
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [200] + [412] * 15, [r.body for r in results])
        winner = next(r for r in results if r.status == 200).json
        now = s.request("GET", path).json
        self.assertEqual((now["version"], now["email"]), (2, winner["email"]))

    def test_concurrent_updates_to_one_key_are_serialized(self):
        """No lost update: N racing PUTs make N versions, each seen once."""
        s = self.stack
        p = s.create("serial", "serial@mail.com")
        path = "/api/profile/" + p["uid"]
        n = 24

        def put(i):
            return s.request("PUT", path, {"username": "u%d" % i})

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(put, range(n)))
        self.assertTrue(all(r.status == 200 for r in results), [r.body for r in results if r.status != 200])
        self.assertEqual(sorted(r.json["version"] for r in results), list(range(2, n + 2)))
        final = s.request("GET", path).json
        self.assertEqual(final["version"], n + 1)
        last = max(results, key=lambda r: r.json["version"]).json
        self.assertEqual(final["username"], last["username"])

    def test_concurrent_creates_are_all_kept(self):
        s = self.stack
        with ThreadPoolExecutor(16) as pool:
            made = list(pool.map(lambda i: s.create("c%d" % i, "c%d@mail.com" % i), range(64)))
        uids = {m["uid"] for m in made}
        self.assertEqual(len(uids), 64)
        for m in made:
            self.assertEqual(s.request("GET", "/api/profile/" + m["uid"]).json, m)


if __name__ == "__main__":
    main()
