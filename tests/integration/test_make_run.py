"""`make run` (scripts/run.sh) starts the stack in the foreground, the SEED.md
walkthrough works verbatim against it with curl, and SIGINT (Ctrl-C) stops
everything it started before it returns."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import BUILD, SANITIZER_MARKERS, SOURCE, free_port, free_port_run, wait_for, main


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout


class MakeRun(unittest.TestCase):
    def test_walkthrough_verbatim_and_ctrl_c_stops_everything(self):
        data = tempfile.mkdtemp(prefix="profile-run-")
        port, rpc = free_port(), free_port_run(3)
        env = dict(os.environ, PORT=str(port), RPC_PORT=str(rpc), DATA=data, BUILD=os.path.abspath(BUILD))
        # Output to a file, not a pipe: reading it can never block on a
        # child that still holds the pipe open.
        log_path = os.path.join(data, "run.log")
        log = open(log_path, "w")
        run = subprocess.Popen([os.path.join(SOURCE, "scripts", "run.sh")], env=env, cwd=SOURCE,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def output():
            with open(log_path) as f:
                return f.read()

        try:
            url = "http://localhost:%d" % port
            def ready():
                assert run.poll() is None, "run.sh exited early:\n" + output()
                return sh("curl -s -o /dev/null -w '%%{http_code}' %s/readyz" % url) == "200"
            wait_for(ready, 120, "the stack to be ready")
            started = subprocess.run(["pgrep", "-f", data], capture_output=True, text=True).stdout.split()
            self.assertGreaterEqual(len(started), 2)  # broker and core name the data directory

            # The walkthrough, verbatim but for the port.
            out = sh("""curl -XPOST -H "Content-Type: application/json" -d '{"username": "bob", "email": "bob1@mail.com"}' %s/api/profile""" % url)
            uid = re.search(r'"uid":"([^"]+)"', out).group(1)
            out = sh("""curl -XGET -H "Accept: application/json" %s/api/profile/%s""" % (url, uid))
            self.assertIn('"email":"bob1@mail.com"', out)
            out = sh("""curl -XGET -H "Accept: application/json" %s/api/search\\?email\\=bob1@mail.com""" % url)
            self.assertIn(uid, out)
            out = sh("""curl -XPUT -H "Content-Type: application/json" -d '{"username": "bob", "email": "bob2@mail.com"}' %s/api/profile/%s""" % (url, uid))
            self.assertIn('"email":"bob2@mail.com"', out)
            out = sh("""curl -XGET -H "Accept: application/json" %s/api/search\\?email\\=bob2@mail.com""" % url)
            self.assertIn(uid, out)
            out = sh("""curl -s -o /dev/null -w '%%{http_code}' -XDELETE %s/api/profile/%s""" % (url, uid))
            self.assertEqual(out, "204")
            out = sh("""curl -s -o /dev/null -w '%%{http_code}' -XGET -H "Accept: application/json" %s/api/search\\?email\\=bob2@mail.com""" % url)
            self.assertEqual(out, "404")

            os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            run.wait(timeout=60)
            text = output()
            self.assertEqual(run.returncode, 0, text)
            for marker in SANITIZER_MARKERS:
                self.assertNotIn(marker, text)
            self.assertIn("Gateway:         %s/" % url, text)
            self.assertRegex(text, r"Kafka bootstrap: 127\.0\.0\.1:\d+")
            # Every process started with this data directory has exited.
            left = subprocess.run(["pgrep", "-f", data], capture_output=True, text=True).stdout.split()
            self.assertEqual(left, [], "still running after run.sh returned: " + subprocess.run(
                ["ps", "-o", "pid,stat,args", "-p", ",".join(left or ["1"])], capture_output=True, text=True).stdout)
        finally:
            try:  # whatever of its group is left, if anything
                os.killpg(run.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            run.wait()
            log.close()
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
