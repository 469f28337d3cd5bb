"""Fencing of ownership changes, proven with a deliberate fault point.

Node 1 holds every write 2.5 s between its last ownership check and Kafka
(--fault-write-delay-ms), and is stopped (SIGSTOP) while an update of a
profile it owns waits there. Node 2 takes the partition over and
acknowledges a newer update of that profile. Then node 1 resumes and its
stale update reaches the log after node 2's.

With fencing (the default: node 2's taking the partition's transactional id
fences node 1's producer) the stale update never reaches the log, is never
acknowledged, and a plain read_committed reader of the topic sees the
profile's versions once each, in order.
With --fault-fence off, the same schedule loses node 2's acknowledged update:
the test shows that it does, so that it is known to catch the fault."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

from harness import BUILD, SOURCE, StackTest, main, wait_for


def decode(value):
    """The username and version of a profile record, as protoc decodes it."""
    out = subprocess.run(["protoc", "--decode=profile.v1.ProfileEvent", "-I" + os.path.join(SOURCE, "proto"),
                          os.path.join(SOURCE, "proto", "profile.proto")],
                         input=value, capture_output=True, check=True).stdout.decode()
    return {"username": re.search(r'username: "([^"]*)"', out).group(1),
            "version": int(re.search(r"version: (\d+)", out).group(1))}


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
        # Node 2 took the partition's transactional id over, which fenced
        # node 1's producer: node 1's held update never reached the log, was
        # answered UNAVAILABLE (not executed), and the client library
        # retried it: the retry is a new write, checked against node 2's
        # version 2, so if it succeeds it is version 3. Either way no two
        # acknowledged writes share a version, and the profile is the last
        # acknowledged one.
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
        # A plain read_committed reader of the topic sees each version of
        # the profile once, in order, the last one the profile as served.
        versions = [decode(v) for _, _, k, v in self.stack.records() if k == uid]
        print("the profile's records:", versions)
        self.assertEqual([e["version"] for e in versions], list(range(1, len(versions) + 1)), versions)
        self.assertEqual([e["username"] for e in versions[:2]], ["first", "fresh"], versions)
        self.assertEqual(versions[-1], {k: v for k, v in json.loads(self.final(uid)).items()
                                        if k in ("username", "version")})
        with open(os.path.join(self.stack.data, "core1.log")) as f:
            self.assertIn("fenced by a newer instance", f.read())


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
