"""libprofile-client against a real core: runs tests/client/test_client.c."""
import os
import subprocess

from harness import BUILD, StackTest, main


class Client(StackTest):
    def test_library(self):
        r = subprocess.run([os.path.join(BUILD, "tests", "test_client"), self.stack.core_addr[1]],
                           capture_output=True, text=True, timeout=240)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("0 failed", r.stdout)


if __name__ == "__main__":
    main()
