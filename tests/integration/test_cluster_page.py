"""The cluster page (GET / on the gateway) in a real browser: Debian's
chromium, headless, driven by playwright-core (tests/tools/cluster_page.mjs).
The page is opened once and never reloaded: it must show the three nodes and
every partition active, then, after one node is killed (kill -9), that
node down and its partitions owned by the others, by refreshing itself.
PROFILE_SCREENSHOT=FILE saves a picture of it (docs/operations.md's)."""
import json
import os
import shutil
import signal
import subprocess

from harness import TOOLS, StackTest, all_active_on, main, npm_tool, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Page:
    def __init__(self, url, log_dir):
        npm_tool("playwright-core")  # installed, or a failure saying how
        self.err = open(os.path.join(log_dir, "browser.log"), "w")
        self.p = subprocess.Popen(["node", os.path.join(TOOLS, "cluster_page.mjs"), url, CHROMIUM],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
                                  cwd=TOOLS)
        first = self.p.stdout.readline()
        assert first and json.loads(first).get("ready"), "the browser did not start: %r" % first

    def ask(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
            self.p.wait(20)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()
        self.err.close()


class ClusterPage(StackTest):
    nodes = 3
    partitions = 6

    def test_page_follows_a_node_kill_without_a_reload(self):
        s = self.stack
        if not os.path.exists(CHROMIUM):
            self.fail("chromium is not installed: run `make test` (scripts/deps.sh installs it)")
        names = {"node%d" % i for i in (1, 2, 3)}
        wait_for(lambda: all_active_on(s, names), 60, "every partition active")
        for i in range(20):
            s.request("GET", "/healthz")
        page = Page("http://127.0.0.1:%d/" % s.port, s.data)
        try:
            def shows(cond):
                snap = page.ask("snapshot")
                return snap if cond(snap) else None

            before = wait_for(lambda: shows(lambda v: len(v["nodes"]) == 3 and
                                            all(n["state"] == "up" for n in v["nodes"]) and
                                            len(v["partitions"]) == 6 and
                                            all(p["state"] == "active" and p["owner"] in names
                                                for p in v["partitions"]) and v["refreshes"] >= 2), 30,
                              "the page to show three nodes up and every partition active")
            self.assertEqual(before["errors"], [])
            self.assertNotEqual(before["gatewayRate"], "–")
            lost = {p["partition"] for p in before["partitions"] if p["owner"] == "node3"}
            self.assertTrue(lost, before)

            s.cores[3].stop(signal.SIGKILL)
            after = wait_for(lambda: shows(lambda v: all(p["state"] == "active" and p["owner"] in ("node1", "node2")
                                                         for p in v["partitions"]) and
                                           all(n["id"] != "node3" or n["state"] == "down" for n in v["nodes"])),
                             90, "the page to show node3's partitions active on the others")
            self.assertGreater(after["refreshes"], before["refreshes"])
            moved = {p["partition"]: p["owner"] for p in after["partitions"] if p["partition"] in lost}
            self.assertTrue(all(o in ("node1", "node2") for o in moved.values()), moved)
            self.assertEqual(after["errors"], [])
            shot = os.environ.get("PROFILE_SCREENSHOT")
            if shot:
                self.assertTrue(page.ask("screenshot " + os.path.abspath(shot))["ok"])
        finally:
            page.close()


if __name__ == "__main__":
    main()
