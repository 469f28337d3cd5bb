"""A node that stalls past its group session (SIGSTOP) answers no read from
a store it has lost once it runs again.

Node 1 owns a profile's partition and is stopped; node 2 takes every
partition over and updates the profile. While node 1 is still stopped,
readers ask it for the profile: their requests wait in its sockets and are
the first thing it serves when it resumes, before librdkafka has heard from
the group that the partition is gone. Without the stall watch node 1
answers them from its store, which lacks node 2's update (a stale read);
with it, every read either fails or returns the update."""
import os
import signal
import subprocess
import threading
import time

from harness import BUILD, StackTest, main, wait_for

READERS = 8


class Stall(StackTest):
    nodes = 2
    partitions = 4

    def ctl(self, node, *args, timeout=10):
        return subprocess.run([os.path.join(BUILD, "profilectl"), "--core", self.stack.core_addr[node],
                               "--timeout", str(timeout)] + list(args),
                              capture_output=True, text=True, timeout=timeout + 30)

    def test_a_stalled_node_serves_no_read_of_a_partition_it_lost(self):
        s = self.stack
        r = self.ctl(1, "create", "first", "first@mail.com")  # lands in a partition node 1 owns
        self.assertEqual(r.returncode, 0, r.stderr)
        uid = r.stdout.split('"uid":"')[1].split('"')[0]
        self.assertIn('"username":"first"', self.ctl(1, "get", uid).stdout)

        s.cores[1].p.send_signal(signal.SIGSTOP)
        answers, readers = [], []
        try:
            def fresh():
                r = self.ctl(2, "update", uid, "--username", "fresh", timeout=3)
                return r.stdout if r.returncode == 0 else None
            wait_for(fresh, 60, "node 2 to take the partition over and update")

            def read():
                r = self.ctl(1, "get", uid, timeout=20)
                answers.append((r.returncode, r.stdout.strip(), r.stderr.strip()))
            readers = [threading.Thread(target=read) for _ in range(READERS)]
            for t in readers:
                t.start()
            time.sleep(1.5)  # the readers' requests wait in node 1's sockets
        finally:
            s.cores[1].p.send_signal(signal.SIGCONT)
        for t in readers:
            t.join(60)
        print("answers after the stall:", answers)
        self.assertEqual(len(answers), READERS)
        stale = [a for a in answers if '"username":"first"' in a[1]]
        self.assertEqual(stale, [], "node 1 answered from the store it had lost")
        self.assertTrue(any('"username":"fresh"' in a[1] for a in answers) or
                        all(a[0] != 0 for a in answers), answers)
        wait_for(lambda: '"username":"fresh"' in self.ctl(1, "get", uid).stdout, 30, "node 1 to route to node 2")
        s.wait_ready()
        self.assertIn("did not run for", self.log(1))
        wait_for(lambda: "reads resume" in self.log(1), 10, "node 1 to read again")

    def log(self, node):
        with open(self.stack.cores[node].log_path) as f:
            return f.read()


if __name__ == "__main__":
    main()
