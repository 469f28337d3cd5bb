"""The short version of `make chaos` (tests/chaos/chaos.py): four fault
rounds (a node killed, a node stalled past its session, the gateway killed,
and the whole stack restarted, broker included, drawn at random around the
restart) under a mixed load, then every promise checked. It fails on any
anomaly and prints the profile's history."""
import os
import random
import subprocess
import sys
import unittest

from harness import BUILD, SOURCE, main


class Chaos(unittest.TestCase):
    def test_four_fault_rounds_keep_every_promise(self):
        seed = random.randrange(1 << 30)
        r = subprocess.run([sys.executable, os.path.join(SOURCE, "tests", "chaos", "chaos.py"), "--rounds", "4",
                            "--between", "2", "--seed", str(seed)],
                           capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, PROFILE_BUILD=os.path.abspath(BUILD)))
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        self.assertEqual(r.returncode, 0, "chaos failed: anomalies, or a process problem at teardown (seed %d)" % seed)
        self.assertIn("anomalies: 0", r.stdout)
        self.assertRegex(r.stdout, r"checked: \d+ profiles, [1-9]\d* acknowledged writes")


if __name__ == "__main__":
    main()
