"""profilectl: JSON lines on stdout, one status line on stderr on failure,
exit codes, --help for every command, the change feed (watch) and bench."""
import json
import os
import queue
import signal
import subprocess
import threading
import time

from harness import BUILD, StackTest, main

CTL = os.path.join(BUILD, "profilectl")


class Profilectl(StackTest):
    def ctl(self, *args, env=None, timeout=30):
        e = dict(os.environ)
        e.pop("PROFILE_CORE", None)
        e.update(env or {})
        return subprocess.run([CTL] + list(args), capture_output=True, text=True, timeout=timeout, env=e)

    def core(self):
        return ["--core", self.stack.core_addr[1]]

    def ok(self, *args, **kw):
        r = self.ctl(*self.core(), *args, **kw)
        self.assertEqual((r.returncode, r.stderr), (0, ""), r)
        return [json.loads(line) for line in r.stdout.splitlines()]

    def fails(self, code, status, *args, **kw):
        r = self.ctl(*args, **kw)
        self.assertEqual(r.returncode, code, r)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith(status + ": "), r.stderr)
        return lines[0]

    def test_commands(self):
        [p] = self.ok("create", "bob", "Bob@Mail.com")
        self.assertEqual((p["username"], p["email"], p["version"]), ("bob", "Bob@Mail.com", 1))
        at_create = p.pop("position")
        self.assertRegex(at_create, r"^\d+:\d+$")
        uid = p["uid"]
        self.assertEqual(self.ok("get", uid), [p])
        [u] = self.ok("update", uid, "--email", "bob2@mail.com", "--if-version", "1")
        self.assertEqual((u["version"], u["username"], u["email"]), (2, "bob", "bob2@mail.com"))
        # A read at the update's position; a malformed one is a usage of the API, not of the CLI.
        self.assertEqual(self.ok("get", "--min-position", u["position"], uid)[0]["version"], 2)
        self.assertEqual(len(self.ok("search", "--min-position", u["position"] + "," + at_create, "bob2@mail.com")), 1)
        self.fails(1, "INVALID_ARGUMENT", *self.core(), "get", "--min-position", "x", uid)
        # A stale copy allowed: the owner (this single node) still answers, so no age.
        [fresh] = self.ok("get", "--max-stale", "30", uid)
        self.assertEqual((fresh["version"], "age" in fresh), (2, False))
        r = self.ctl(*self.core(), "get", "--max-stale", "soon", uid)
        self.assertEqual((r.returncode, r.stdout), (2, ""), r)
        far = u["position"].split(":")[0] + ":999999999"  # the uid's partition, never reached
        self.fails(1, "UNAVAILABLE", *self.core(), "--timeout", "0.5", "get", "--min-position", far, uid)
        msg = self.fails(1, "FAILED_PRECONDITION", *self.core(), "update", uid, "--username", "x", "--if-version", "1")
        self.assertIn("version is 2", msg)
        self.ok("create", "other", "BOB2@mail.com")
        found = self.ok("search", "bob2@MAIL.com")
        self.assertEqual(len(found), 2)
        self.assertEqual(self.ok("search", "nobody@mail.com"), [])
        [gone] = self.ok("delete", uid, "--if-version", "2")
        where = gone.pop("position")
        self.assertRegex(where, r"^\d+:\d+$")
        self.assertEqual(gone, {"uid": uid, "deleted": True})
        self.fails(1, "NOT_FOUND", *self.core(), "get", "--min-position", where, uid)
        self.fails(1, "NOT_FOUND", *self.core(), "delete", uid)
        self.fails(1, "INVALID_ARGUMENT", *self.core(), "get", "not-a-uid")
        self.fails(1, "INVALID_ARGUMENT", *self.core(), "create", "bob", "nope")
        # The core address from the environment.
        r = self.ctl("create", "env", "env@mail.com", env={"PROFILE_CORE": self.stack.core_addr[1]})
        self.assertEqual(r.returncode, 0, r)

    def test_create_with_an_idempotency_key(self):
        [p] = self.ok("create", "--idempotency-key", "ctl-1", "kay", "kay@mail.com")
        p.pop("position")  # the repeat makes no record: no position
        self.assertEqual(self.ok("create", "--idempotency-key", "ctl-1", "kay", "kay@mail.com"), [p])
        msg = self.fails(1, "INVALID_ARGUMENT", *self.core(), "create", "--idempotency-key", "ctl-1", "kay",
                         "other@mail.com")
        self.assertIn("Idempotency-Key", msg)
        self.fails(1, "INVALID_ARGUMENT", *self.core(), "create", "--idempotency-key", "x" * 256, "kay",
                   "kay@mail.com")
        self.assertIn("--idempotency-key K", self.ctl("create", "--help").stdout)

    def test_down_core_and_usage_errors(self):
        t = time.monotonic()
        self.fails(1, "UNAVAILABLE", "--core", "tcp://127.0.0.1:1", "--timeout", "0.5", "get",
                   "74292b21-0fbb-4f1d-a18f-fa80f947fa5d")
        self.assertLess(time.monotonic() - t, 5)
        for args in (["frobnicate"], ["get"], ["create", "onlyname"], ["update", "74292b21-0fbb-4f1d-a18f-fa80f947fa5d"],
                     ["delete", "74292b21-0fbb-4f1d-a18f-fa80f947fa5d", "--if-version", "zero"],
                     ["--timeout", "-1", "get", "x"], []):
            r = self.ctl(*args)
            self.assertEqual((r.returncode, r.stdout), (2, ""), (args, r))
        for cmd in ("create", "get", "update", "delete", "search", "watch", "bench"):
            r = self.ctl(cmd, "--help")
            self.assertEqual(r.returncode, 0, r)
            self.assertIn("usage: profilectl " + cmd, r.stdout)
        self.assertIn("commands:", self.ctl("--help").stdout)

    def test_watch_shows_changes_made_through_the_gateway(self):
        s = self.stack
        w = subprocess.Popen([CTL, "watch", "--brokers", s.bootstrap, "--topic", s.topic, "--from-beginning"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            p = s.create("watched", "watched@mail.com")
            self.assertEqual(s.request("PUT", "/api/profile/" + p["uid"], {"email": "watched2@mail.com"}).status, 200)
            self.assertEqual(s.request("DELETE", "/api/profile/" + p["uid"]).status, 204)
            lines = queue.Queue()
            threading.Thread(target=lambda: [lines.put(x) for x in w.stdout], daemon=True).start()
            seen, deadline = [], time.monotonic() + 30
            while len(seen) < 3 and time.monotonic() < deadline:
                try:
                    change = json.loads(lines.get(timeout=1))
                except queue.Empty:
                    continue
                if change["uid"] == p["uid"]:
                    seen.append(change)
            self.assertEqual([c["op"] for c in seen], ["create", "update", "delete"], seen)
            self.assertEqual(seen[0]["profile"]["email"], "watched@mail.com")
            self.assertEqual((seen[1]["profile"]["email"], seen[1]["profile"]["version"]), ("watched2@mail.com", 2))
            self.assertIsNone(seen[2]["profile"])
            self.assertEqual(len({c["partition"] for c in seen}), 1)
            self.assertEqual([c["offset"] for c in seen], sorted(c["offset"] for c in seen))
            w.send_signal(signal.SIGINT)
            self.assertEqual(w.wait(10), 0)
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()
            w.stderr.close()

    def test_watch_starts_at_the_end_and_sigterm_ends_it_cleanly(self):
        """Without --from-beginning, watch shows only what changes after it
        started; SIGTERM ends it with exit 0."""
        s = self.stack
        old = s.create("before", "before@mail.com")
        w = subprocess.Popen([CTL, "watch", "--brokers", s.bootstrap, "--topic", s.topic, "-X", "fetch.wait.max.ms=100"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = queue.Queue()
            threading.Thread(target=lambda: [lines.put(x) for x in w.stdout], daemon=True).start()
            seen, made, deadline = [], set(), time.monotonic() + 30
            # The watch places itself at the end as it starts: keep making
            # profiles until one shows, then a few more.
            while len([c for c in seen if c["uid"] in made]) < 3 and time.monotonic() < deadline:
                made.add(s.create("after", "after%d@mail.com" % len(made))["uid"])
                try:
                    seen.append(json.loads(lines.get(timeout=0.5)))
                except queue.Empty:
                    pass
            self.assertGreaterEqual(len([c for c in seen if c["uid"] in made]), 3, seen)
            self.assertNotIn(old["uid"], [c["uid"] for c in seen])
            w.send_signal(signal.SIGTERM)
            self.assertEqual(w.wait(10), 0)
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()
            w.stderr.close()

    def test_bench_prints_its_figures(self):
        r = self.ctl(*self.core(), "bench", "--duration", "0.5", "--profiles", "50", "--concurrency", "8",
                     timeout=120)
        self.assertEqual(r.returncode, 0, r)
        rows = {}
        for line in r.stdout.splitlines():
            parts = line.split()
            if parts and parts[0] in ("get", "create", "mixed"):
                rows[parts[0]] = parts
        self.assertEqual(sorted(rows), ["create", "get", "mixed"], r.stdout)
        for name, parts in rows.items():
            nums = [float(x) for x in parts[-6:]]  # ops, ops/s, p50, p99, p99.9, errors
            self.assertGreater(nums[0], 0, name)
            self.assertGreater(nums[1], 0, name)
            self.assertTrue(0 < nums[2] <= nums[3] <= nums[4], (name, nums))
            self.assertEqual(nums[5], 0, name)


if __name__ == "__main__":
    main()
