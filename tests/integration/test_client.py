"""libprofile-client against a real core: runs tests/client/test_client.c."""
import os
import re
import subprocess

from harness import BUILD, StackTest, main


class Client(StackTest):
    def test_library(self):
        try:
            r = subprocess.run([os.path.join(BUILD, "tests", "test_client"), self.stack.core_addr[1]],
                               capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired as e:  # each test prints its name first: say where it hung
            self.fail("test_client hung; its output:\n%s%s" % (e.stdout or "", e.stderr or ""))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"^test_client: (\d+) checks, (\d+) failed$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        self.assertEqual(int(m.group(2)), 0, r.stdout + r.stderr)
        self.assertGreater(int(m.group(1)), 100)


if __name__ == "__main__":
    main()
