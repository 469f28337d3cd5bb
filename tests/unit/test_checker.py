"""The chaos verifier's checker (tests/chaos/checker.py) fed made-up
histories: a clean one passes, and each kind of anomaly is found, with the
operations that show it."""
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos"))
from checker import check  # noqa: E402

U = "3f1e0c52-8a47-4e8e-9d6e-7b0b2f9a1c11"
V = "9b2d7c44-1f3a-4b6e-8c5d-2e4f6a8b0c22"


def rec(version, username, email="a@mail.com", key="k1"):
    return {"username": username, "email": email, "version": version, "key": key}


def prof(version, username, uid=U, email="a@mail.com"):
    return {"uid": uid, "username": username, "email": email, "version": version}


def op(kind, start, end, status, client=1, uid=U, **kw):
    return dict(kind=kind, start=start, end=end, status=status, client=client, uid=uid, **kw)


def create(start, end, status=201, uid=U, key="k1", value="n1", email="a@mail.com"):
    return op("create", start, end, status, uid=uid if status == 201 else None, key=key, value=value, email=email,
              resp=prof(1, value, uid, email) if status == 201 else None)


def update(start, end, status, match, value, version=None, client=1):
    return op("update", start, end, status, client=client, match=match, value=value,
              resp=prof(version, value) if status == 200 else None)


def delete(start, end, status, match):
    return op("delete", start, end, status, match=match, resp=None)


def get(start, end, status, version=None, username=None, client=2, stale=None, email="a@mail.com"):
    return op("get", start, end, status, client=client, stale=stale,
              resp=prof(version, username, email=email) if status == 200 else None)


# A clean history: create, two updates, reads between, a delete, a read 404.
CLEAN_OPS = [
    create(0, 1),
    get(1.5, 1.6, 200, 1, "n1"),
    update(2, 3, 200, 1, "u2", 2),
    get(2.5, 2.7, 200, 1, "n1"),  # concurrent with the update: either state
    get(3.5, 3.6, 200, 2, "u2"),
    update(4, 5, 200, 2, "u3", 3),
    delete(6, 7, 204, 3),
    get(8, 9, 404),
]
CLEAN_LOG = {U: [rec(1, "n1"), rec(2, "u2"), rec(3, "u3"), None]}


def kinds(findings):
    return sorted({f[0] for f in findings})


class Checker(unittest.TestCase):
    def test_a_clean_history_has_no_finding(self):
        self.assertEqual(check(CLEAN_OPS, CLEAN_LOG, {U: None}), [])

    def test_a_lost_acknowledged_write(self):
        log = {U: [rec(1, "n1"), rec(2, "u2")]}  # u3 and the delete are gone
        f = check(CLEAN_OPS[:6], log, {U: prof(2, "u2")})
        self.assertIn("lost", kinds(f))
        self.assertTrue(any("update u3" in line for k, _, _, shown in f if k == "lost" for line in shown), f)

    def test_a_lost_delete(self):
        log = {U: [rec(1, "n1"), rec(2, "u2"), rec(3, "u3")]}
        ops = CLEAN_OPS[:7] + [get(8, 9, 200, 3, "u3")]
        self.assertEqual(kinds(check(ops, log, {U: prof(3, "u3")})), ["lost"])
        # In the log, but a read after it was acknowledged still finds the profile.
        self.assertEqual(kinds(check(ops, CLEAN_LOG, {U: None})), ["stale"])

    def test_a_stale_read(self):
        ops = CLEAN_OPS[:3] + [get(3.5, 3.6, 200, 1, "n1")]  # began after u2 was acknowledged
        f = check(ops, {U: [rec(1, "n1"), rec(2, "u2")]}, {U: prof(2, "u2")})
        self.assertEqual(kinds(f), ["stale"])
        self.assertTrue(any("update u2" in line for line in f[0][3]), f)  # the write it missed is shown

    def test_a_stale_read_by_another_client(self):
        # Client 1 writes; client 3 reads its profile after the write was
        # acknowledged and gets the old state.
        ops = [create(0, 1), update(2, 3, 200, 1, "u2", 2, client=1), get(3.2, 3.3, 200, 1, "n1", client=3)]
        f = check(ops, {U: [rec(1, "n1"), rec(2, "u2")]}, {U: prof(2, "u2")})
        self.assertEqual(kinds(f), ["stale"])
        self.assertIn("client 3", f[0][3][0])

    def test_a_read_within_its_staleness_bound_passes_and_beyond_it_does_not(self):
        base = [create(0, 1), update(2, 3, 200, 1, "u2", 2)]
        log = {U: [rec(1, "n1"), rec(2, "u2")]}
        self.assertEqual(check(base + [get(4, 4.1, 200, 1, "n1", stale=5)], log, {U: prof(2, "u2")}), [])
        self.assertEqual(kinds(check(base + [get(9, 9.1, 200, 1, "n1", stale=5)], log, {U: prof(2, "u2")})),
                         ["stale"])

    def test_a_read_with_a_position_must_reach_it_however_stale_it_allows(self):
        base = [create(0, 1), update(2, 3, 200, 1, "u2", 2)]
        log = {U: [rec(1, "n1"), rec(2, "u2")]}
        at = dict(get(4, 4.1, 200, 1, "n1", stale=60), after={"version": 2})
        self.assertEqual(kinds(check(base + [at], log, {U: prof(2, "u2")})), ["stale"])
        at = dict(get(4, 4.1, 200, 2, "u2", stale=60), after={"version": 2})
        self.assertEqual(check(base + [at], log, {U: prof(2, "u2")}), [])

    def test_a_503_that_was_applied(self):
        ops = [create(0, 1), update(2, 3, 503, 1, "u2")]
        f = check(ops, {U: [rec(1, "n1"), rec(2, "u2")]}, {U: prof(2, "u2")})
        self.assertEqual(kinds(f), ["revived"])

    def test_an_unknown_write_may_land_or_not(self):
        ops = [create(0, 1), update(2, 3, 504, 1, "u2"), get(4, 5, 200, 1, "n1")]
        self.assertEqual(check(ops, {U: [rec(1, "n1")]}, {U: prof(1, "n1")}), [])
        ops[2] = get(4, 5, 200, 2, "u2")
        self.assertEqual(check(ops, {U: [rec(1, "n1"), rec(2, "u2")]}, {U: prof(2, "u2")}), [])

    def test_a_duplicate_version_a_stale_owner_committed(self):
        ops = [create(0, 1), update(2, 3, 200, 1, "u2", 2), update(2.5, 4, 504, 1, "z2")]
        log = {U: [rec(1, "n1"), rec(2, "u2"), rec(2, "z2")]}
        self.assertIn("version", kinds(check(ops, log, {U: prof(2, "z2")})))

    def test_a_412_no_state_explains(self):
        ops = [create(0, 1), update(2, 3, 412, 1, "u2")]
        f = check(ops, {U: [rec(1, "n1")]}, {U: prof(1, "n1")})
        self.assertEqual(kinds(f), ["status"])
        # With an earlier write of unknown outcome that landed, it is right.
        ops = [create(0, 1), update(1.5, 1.8, 504, 1, "u2"), update(2, 3, 412, 1, "u3")]
        self.assertEqual(check(ops, {U: [rec(1, "n1"), rec(2, "u2")]}, {U: prof(2, "u2")}), [])

    def test_a_search_that_misses_a_live_profile(self):
        ops = [create(0, 1), op("search", 2, 3, 404, client=2, email="a@mail.com", resp=None)]
        self.assertEqual(kinds(check(ops, {U: [rec(1, "n1")]}, {U: prof(1, "n1")})), ["stale"])

    def test_a_read_with_the_right_version_and_the_wrong_body(self):
        ops = [create(0, 1), get(2, 3, 200, 1, "n1", email="b@mail.com")]
        self.assertEqual(kinds(check(ops, {U: [rec(1, "n1")]}, {U: prof(1, "n1")})), ["body"])

    def test_one_key_two_profiles(self):
        ops = [create(0, 1), create(2, 3, uid=V, email="b@mail.com")]
        log = {U: [rec(1, "n1")], V: [rec(1, "n1", email="b@mail.com")]}
        self.assertIn("key", kinds(check(ops, log, {U: prof(1, "n1"), V: prof(1, "n1", V, "b@mail.com")})))

    def test_a_read_of_a_write_not_yet_begun(self):
        ops = [create(0, 1), get(2, 3, 200, 2, "u2"), update(4, 5, 200, 1, "u2", 2)]
        f = check(ops, {U: [rec(1, "n1"), rec(2, "u2")]}, {U: prof(2, "u2")})
        self.assertEqual(kinds(f), ["future"])

    def test_a_record_no_write_made_and_a_final_answer_off_the_log(self):
        f = check([create(0, 1)], {U: [rec(1, "n1"), rec(2, "ghost")]}, {U: prof(3, "elsewhere")})
        self.assertEqual(kinds(f), ["log"])
        self.assertEqual(len(f), 2, f)

    def test_a_write_of_unknown_outcome_may_land_after_the_final_answer(self):
        ops = [create(0, 1), update(2, 3, 504, 1, "u2")]
        self.assertEqual(check(ops, {U: [rec(1, "n1"), rec(2, "u2")]}, {U: prof(1, "n1")}), [])
        ops[1] = update(2, 3, 200, 1, "u2", 2)  # acknowledged: the final answer must have it
        self.assertEqual(kinds(check(ops, {U: [rec(1, "n1"), rec(2, "u2")]}, {U: prof(1, "n1")})), ["log"])

    def test_unanswered_and_undocumented_answers(self):
        ops = [create(0, 1), dict(get(2, 17, None), timeout=True), get(18, 19, 500)]
        f = check(ops, {U: [rec(1, "n1")]}, {U: prof(1, "n1")})
        self.assertEqual([(k, what) for k, _, what, _ in f],
                         [("status", "no answer within the client's timeout"),
                          ("status", "an answer outside the documented ones")])


if __name__ == "__main__":
    unittest.main(verbosity=2)
