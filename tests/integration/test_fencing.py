"""Fencing of ownership changes, proven with a deliberate fault point.

Node 1 holds every write 2.5 s between its last ownership check and Kafka
(--fault-write-delay-ms), and is stopped (SIGSTOP) while an update of a
profile it owns waits there. Node 2 takes the partition over and
acknowledges a newer update of that profile. Then node 1 resumes and its
stale update reaches the log after node 2's.

With fencing (the default) the stale update is never acknowledged, no store
applies it, the profile keeps node 2's update, and the owner appends that
state again so that the last record of the key in the log is the true one.
With --fault-fence off, the same schedule loses node 2's acknowledged update:
the test shows that it does, so that it is known to catch the fault."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

from harness import BUILD, StackTest, main, wait_for

DELAY_MS = 2500


class FencingRace(StackTest):
    """The schedule; the two cases below run it with and without fencing."""
    nodes = 2
    partitions = 4
    fence = "on"

    def setUp(self):
        self.core_args = {1: ["--fault-write-delay-ms", str(DELAY_MS), "--fault-fence", self.fence],
                          2: ["--fault-fence", self.fence]}
        super().setUp()

    def ctl(self, node, *args, timeout=30):
        return subprocess.run([os.path.join(BUILD, "profilectl"), "--core", self.stack.core_addr[node],
                               "--timeout", str(timeout)] + list(args),
                              capture_output=True, text=True, timeout=timeout + 30)

    def stalled_update_race(self):
        """Runs the schedule; returns (the profile after node 2's update,
        node 1's stale update's process result)."""
        s = self.stack
        r = self.ctl(1, "create", "first", "first@mail.com")  # lands in a partition node 1 owns
        self.assertEqual(r.returncode, 0, r.stderr)
        uid = r.stdout.split('"uid":"')[1].split('"')[0]
        wait_for(lambda: self.ctl(1, "get", uid).returncode == 0, 10, "the create")

        stale = {}
        t = threading.Thread(target=lambda: stale.setdefault("r", self.ctl(1, "update", uid, "--username", "stale",
                                                                             timeout=60)))
        t.start()
        time.sleep(DELAY_MS / 1000 / 3)  # node 1 has checked the update and holds it
        s.cores[1].p.send_signal(signal.SIGSTOP)
        try:
            def fresh():
                r = self.ctl(2, "update", uid, "--username", "fresh", timeout=3)
                return r.stdout if r.returncode == 0 else None
            acked = wait_for(fresh, 60, "node 2 to take the partition over and update")
        finally:
            s.cores[1].p.send_signal(signal.SIGCONT)
        t.join(90)
        self.assertFalse(t.is_alive())
        s.wait_ready()
        return uid, acked, stale["r"]

    def final(self, uid):
        r = self.ctl(2, "get", uid)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout


class Fencing(FencingRace):
    def test_a_stalled_owners_write_is_fenced(self):
        uid, acked, stale = self.stalled_update_race()
        self.assertIn('"username":"fresh"', acked)
        # Node 1's held update reached the log after node 2's fence and was
        # fenced: never applied. Node 1 reads the partition on after losing
        # it, finds that, and answers UNAVAILABLE (not executed), which the
        # client library retries: the retry is a new write, checked against
        # node 2's version 2, so if it succeeds it is version 3. Either way
        # no two acknowledged writes share a version, and the profile is the
        # last acknowledged one.
        sys.stderr.write("the stalled node's update: %s%s" % (stale.stderr, stale.stdout))
        if stale.returncode == 0:
            self.assertIn('"version":3', stale.stdout)
            acked = json.loads(stale.stdout)
            acked.pop("position")  # where the write landed; a read has none
            self.assertEqual(json.loads(self.final(uid)), acked)
        else:
            self.assertRegex(stale.stderr, r"^(UNAVAILABLE|DEADLINE_EXCEEDED): ")
            self.assertIn('"username":"fresh"', self.final(uid))
            self.assertIn('"version":2', self.final(uid))
        # Its record is in the log, after node 2's update, and is ignored.
        records = [(o, v, tok) for _, o, k, v, tok in self.stack.records(tokens=True) if k == uid]
        self.assertTrue(any(v and b"stale" in v for _, v, _ in records), records)
        final = self.final(uid)

        # The last record of the key in the log becomes the true state again.
        def last_is_final():
            last = [v for _, o, k, v in self.stack.records() if k == uid][-1]
            return last is not None and json.loads(final)["username"].encode() in last
        wait_for(last_is_final, 20, "the owner to append the key's state again")
        logs = "".join(open(os.path.join(self.stack.data, "core%d.log" % i)).read() for i in (1, 2))
        self.assertIn("write of %s fenced" % uid, logs)
        # Node 1 learned it, though it had lost the partition: not executed.
        with open(os.path.join(self.stack.data, "core1.log")) as f:
            self.assertIn("the write of %s was fenced by a newer owner; answered not executed" % uid, f.read())


class NoFencing(FencingRace):
    fence = "off"

    def test_without_the_fence_the_stalled_write_wins(self):
        uid, acked, stale = self.stalled_update_race()
        self.assertIn('"username":"fresh"', acked)
        self.assertIn('"version":2', acked)
        # Both updates were acknowledged with version 2, and the stale one,
        # appended last, replaced the newer one: an acknowledged write lost.
        self.assertEqual(stale.returncode, 0, stale.stderr)
        self.assertIn('"version":2', stale.stdout)
        self.assertIn('"username":"stale"', self.final(uid))


if __name__ == "__main__":
    main()
