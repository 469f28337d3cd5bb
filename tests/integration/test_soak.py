"""The soak (tests/soak/soak.py), short: 30 s of steady mixed load; the
gateway's and the cores' memory must stay flat after the warm-up, and every
answer be a success. `make soak` runs it for 10 minutes."""
import os
import subprocess
import sys
import unittest

from harness import BUILD

SOAK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "soak", "soak.py")


class Soak(unittest.TestCase):
    def test_thirty_seconds_of_mixed_load_leave_memory_flat(self):
        r = subprocess.run([sys.executable, SOAK, "--seconds", "30", "--threads", "4"],
                           env=dict(os.environ, PROFILE_BUILD=os.path.abspath(BUILD)),
                           capture_output=True, text=True, timeout=240)
        sys.stdout.write(r.stdout[-3000:])
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
        self.assertIn("PASS", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
