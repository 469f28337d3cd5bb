"""`make run` (scripts/run.sh) starts the stack in the foreground on a real
Apache Kafka broker, the README's walkthrough works against it as pasted into
a shell, and SIGINT (Ctrl-C) stops everything it started before it returns. A
core node, the gateway or the Kafka broker that dies is started again while
the rest serve (RESTART=never leaves it down); a Kafka that cannot start
stops the launch with a message that says how to use another, never a
silent fallback."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, SANITIZER_MARKERS, SOURCE, free_port, free_port_run, wait_for, main


def readme_block(heading):
    """The first shell block under one of the README's headings."""
    with open(os.path.join(SOURCE, "README.md")) as f:
        text = f.read()
    m = re.search(r"^## %s\n.*?```sh\n(.*?)```" % re.escape(heading), text, re.S | re.M)
    assert m, "the README has no shell block under " + heading
    return m.group(1)


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout


class MakeRun(unittest.TestCase):
    def test_walkthrough_verbatim_and_ctrl_c_stops_everything(self):
        data = tempfile.mkdtemp(prefix="profile-run-")
        port, rpc = free_port(), free_port_run(3)
        env = dict(os.environ, PORT=str(port), RPC_PORT=str(rpc), KAFKA_PORT=str(free_port_run(2)), DATA=data,
                   BUILD=os.path.abspath(BUILD))
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

            # The README's walkthrough, pasted into a shell as it is but for
            # the port, then what it did checked through the API.
            script = readme_block("Walkthrough").replace("localhost:8080", "localhost:%d" % port)
            done = subprocess.run(["bash", "-c", "set -e\n" + script], capture_output=True, text=True, timeout=60)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            uid = re.match(r"([0-9a-f-]{36})\n", done.stdout)
            self.assertTrue(uid, "the walkthrough's first line printed no uid:\n" + done.stdout)
            uid = uid.group(1)
            self.assertIn('"email":"bob1@mail.com"', done.stdout)  # the GET, and the search
            self.assertIn('"email":"bob2@mail.com"', done.stdout)  # the PUT, and the search by the new email
            self.assertEqual(done.stdout.count('"uid":"%s"' % uid), 4)
            out = sh("""curl -s -o /dev/null -w '%%{http_code}' %s/api/profile/%s""" % (url, uid))
            self.assertEqual(out, "404")  # the DELETE
            out = sh("""curl -s -o /dev/null -w '%%{http_code}' -XGET -H "Accept: application/json" %s/api/search\\?email\\=bob2@mail.com""" % url)
            self.assertEqual(out, "404")
            # "Calling it": a keyed create, then an update of its version 1.
            script = readme_block("Calling it").replace("localhost:8080", "localhost:%d" % port)
            done = subprocess.run(["bash", "-c", "set -e\n" + script], capture_output=True, text=True, timeout=60)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            self.assertRegex(done.stdout, r"^HTTP/1\.1 200 ", done.stdout)
            self.assertIn('"email":"ada@example.org","version":2', done.stdout.replace(" ", ""))

            os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            run.wait(timeout=60)
            text = output()
            self.assertEqual(run.returncode, 0, text)
            for marker in SANITIZER_MARKERS:
                self.assertNotIn(marker, text)
            self.assertIn("Gateway:         %s/" % url, text)
            self.assertRegex(text, r"Kafka bootstrap: 127\.0\.0\.1:\d+")
            self.assertRegex(text, r"Kafka: +1 broker\(s\), Apache Kafka 3\.\d+\.\d+, ready in \d+ ms")
            # A real broker's data, kept across runs; never the mock.
            self.assertTrue(os.path.exists(os.path.join(data, "kafka", "logs", "meta.properties")))
            self.assertNotIn("profile-kafka-broker", text)
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


class Launch:
    """scripts/run.sh in its own process group, its output in a file."""

    def __init__(self, **env):
        self.data = tempfile.mkdtemp(prefix="profile-run-")
        self.port = free_port()
        env = dict(dict(os.environ, PORT=str(self.port), RPC_PORT=str(free_port_run(3)), DATA=self.data,
                        KAFKA_PORT=str(free_port_run(2)), BUILD=os.path.abspath(BUILD)), **env)
        self.log_path = os.path.join(self.data, "run.log")
        self.log = open(self.log_path, "w")
        self.run = subprocess.Popen([os.path.join(SOURCE, "scripts", "run.sh")], env=env, cwd=SOURCE,
                                    stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = "http://localhost:%d" % self.port

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def status(self, method, path, body=None):
        data = "-H 'Content-Type: application/json' -d '%s'" % body if body else ""
        return sh("curl -s -o /dev/null -w '%%{http_code}' -X%s %s %s%s" % (method, data, self.url, path))

    def wait_ready(self):
        def ready():
            assert self.run.poll() is None, "run.sh exited early:\n" + self.output()
            return self.status("GET", "/readyz") == "200"
        wait_for(ready, 120, "the stack to be ready")

    def pid_of(self, part):
        """The pid of the core node with DATA/coreN, of the gateway, or of
        the Kafka broker; None when none runs (two are a failure)."""
        if part == "gateway":
            pattern = "profile-gateway --address 127.0.0.1 --port %d " % self.port
        elif part == "kafka":
            pattern = "-Dkafka.logs.dir=%s/kafka -cp" % self.data
        else:
            pattern = "--data %s/%s " % (self.data, part)
        pids = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True).stdout.split()
        assert len(pids) <= 1, "%d processes match %r" % (len(pids), pattern)
        return int(pids[0]) if pids else None

    def stop(self, test):
        os.killpg(self.run.pid, signal.SIGINT)
        self.run.wait(timeout=60)
        test.assertEqual(self.run.returncode, 0, self.output())
        left = subprocess.run(["pgrep", "-f", self.data], capture_output=True, text=True).stdout.split()
        test.assertEqual(left, [], "still running after run.sh returned")

    def close(self):
        try:
            os.killpg(self.run.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.run.wait()
        self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)


def create(launch, name):
    """Creates a profile through the gateway: its uid, or None."""
    out = sh("""curl -s -XPOST -H "Content-Type: application/json" -d '{"username": "%s", "email": "%s@mail.com"}' %s/api/profile"""
             % (name, name, launch.url))
    m = re.search(r'"uid":"([^"]+)"', out)
    return m.group(1) if m else None


class Restart(unittest.TestCase):
    def test_dead_node_and_gateway_are_started_again_while_the_rest_serve(self):
        launch = Launch(RESTART_DELAY="1")
        try:
            launch.wait_ready()
            uid = create(launch, "before")
            self.assertIsNotNone(uid)
            node2 = launch.pid_of("core2")
            self.assertIsNotNone(node2)
            os.kill(node2, signal.SIGKILL)
            # The others go on: creates land on the partitions they own.
            wait_for(lambda: create(launch, "during") is not None, 30, "a create while node2 is down")
            wait_for(lambda: "node2 (pid %d) exited with status 137; starting it again" % node2 in launch.output(),
                     10, "the launcher to report node2's exit")
            wait_for(lambda: "node2 started again" in launch.output(), 10, "node2 to be started again")
            self.assertNotIn("stopping the rest", launch.output())
            again = wait_for(lambda: (lambda p: p if p not in (None, node2) else None)(launch.pid_of("core2")), 30,
                             "the new node2 process")
            launch.wait_ready()
            self.assertEqual(launch.status("GET", "/api/profile/" + uid), "200")

            gateway = launch.pid_of("gateway")
            self.assertIsNotNone(gateway)
            os.kill(gateway, signal.SIGKILL)
            wait_for(lambda: "gateway started again" in launch.output(), 15, "the gateway to be started again")
            wait_for(lambda: launch.status("GET", "/api/profile/" + uid) == "200", 15, "the new gateway to serve")
            launch.stop(self)
        finally:
            launch.close()

    def test_a_dead_kafka_broker_is_started_again_on_its_data(self):
        """kill -9 of the Kafka broker: the launcher starts it again on the
        same data, and every acknowledged profile is there."""
        launch = Launch(RESTART_DELAY="1", NODES="1")
        try:
            launch.wait_ready()
            made = [create(launch, "k%d" % i) for i in range(10)]
            self.assertNotIn(None, made)
            kafka = launch.pid_of("kafka")
            self.assertIsNotNone(kafka)
            os.kill(kafka, signal.SIGKILL)
            wait_for(lambda: "Kafka broker 1 (pid %d) exited with status 137; starting it again" % kafka
                     in launch.output(), 10, "the launcher to report the broker's exit")
            wait_for(lambda: "Kafka broker 1 started again" in launch.output(), 10, "the broker to be started again")
            wait_for(lambda: launch.pid_of("kafka") not in (None, kafka), 10, "the new broker process")
            wait_for(lambda: create(launch, "after") is not None, 90, "a create after the broker came back")
            # The node's group session lapsed while the broker was down: its
            # partitions were given to it again and each restores (a read
            # meanwhile is 503, retry). Every acknowledged profile then reads.
            for uid in made:
                got = ""
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    got = sh("curl -s -w ' %%{http_code}' %s/api/profile/%s" % (launch.url, uid))
                    if not got.endswith((" 503", " 504")):
                        break  # 200, or a lost profile (404)
                    time.sleep(0.2)
                self.assertTrue(got.endswith(" 200"), got + "\n" + launch.output()[-8000:])
            launch.stop(self)
        finally:
            launch.close()

    def test_a_kafka_that_cannot_start_stops_the_launch_and_says_what_to_do(self):
        """The broker's port taken: no fallback to anything else, a message
        naming the broker's log and BROKERS=, and a non-zero exit."""
        with socket.socket() as taken:
            port = free_port_run(2)
            taken.bind(("127.0.0.1", port))
            taken.listen()
            launch = Launch(KAFKA_PORT=str(port))
            try:
                launch.run.wait(timeout=120)
                text = launch.output()
                self.assertNotEqual(launch.run.returncode, 0, text)
                self.assertIn("Kafka broker 1 did not start", text)
                self.assertIn("make run BROKERS=host:port", text)
                self.assertNotIn("Gateway:", text)
                left = subprocess.run(["pgrep", "-f", launch.data], capture_output=True, text=True).stdout.split()
                self.assertEqual(left, [], "still running after run.sh returned")
            finally:
                launch.close()

    def test_restart_never_leaves_a_dead_node_down(self):
        launch = Launch(RESTART="never", RESTART_DELAY="0", NODES="2")
        try:
            launch.wait_ready()
            node2 = launch.pid_of("core2")
            self.assertIsNotNone(node2)
            os.kill(node2, signal.SIGKILL)
            wait_for(lambda: "left down (RESTART=never)" in launch.output(), 10, "the launcher to report node2's exit")
            wait_for(lambda: create(launch, "alone") is not None, 30, "node1 to serve alone")
            time.sleep(2)
            self.assertIsNone(launch.pid_of("core2"))
            self.assertIsNone(launch.run.poll())
            launch.stop(self)
        finally:
            launch.close()


if __name__ == "__main__":
    main()
