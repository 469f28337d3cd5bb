"""The short version of `make chaos` (tests/chaos/chaos.py): one round of
each fault kind, in a fixed order (a node killed, a node stalled past its
session, the Kafka broker killed, the whole stack restarted, Kafka
included, the gateway killed), under a mixed load on a real Kafka broker,
then every promise checked. It fails on any anomaly and prints the
profile's history."""
import os
import random
import subprocess
import sys
import unittest

from harness import BUILD, SOURCE, main


class Chaos(unittest.TestCase):
    def test_a_round_of_every_fault_kind_keeps_every_promise(self):
        seed = random.randrange(1 << 30)
        r = subprocess.run([sys.executable, os.path.join(SOURCE, "tests", "chaos", "chaos.py"), "--plan",
                            "kill,stall,broker,stack,gateway", "--between", "2", "--seed", str(seed)],
                           capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, PROFILE_BUILD=os.path.abspath(BUILD)))
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        self.assertEqual(r.returncode, 0, "chaos failed: anomalies, or a process problem at teardown (seed %d)" % seed)
        self.assertIn("anomalies: 0", r.stdout)
        self.assertRegex(r.stdout, r"faults: 5 rounds \(1 broker, 1 gateway, 1 kill, 1 stack, 1 stall\)")
        self.assertRegex(r.stdout, r"checked: \d+ profiles, [1-9]\d* acknowledged writes")


if __name__ == "__main__":
    main()
