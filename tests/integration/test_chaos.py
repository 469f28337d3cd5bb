"""The short version of `make chaos` (tests/chaos/chaos.py), on a real Kafka
broker under a mixed load, in fixed orders: one round of each process fault
(a node killed, a node stalled past its session, the Kafka broker killed,
the whole stack restarted, Kafka included, the gateway killed), and, as root,
one of each network partition past the session (a node cut from Kafka while
the gateway still reaches it, a node's answers to the gateway dropped, a node
cut from everything, every node cut from Kafka; then Kafka's links slowed
through the delaying relay). Each history is then checked
as a linearizable register's (tests/chaos/checker.py); any anomaly fails it
and prints the operations that show it. And the partitions' control: nodes
that answer reads of the partitions they lost while cut from Kafka
(--lost-read-ms) must be found stale."""
import os
import random
import subprocess
import sys
import unittest

import netns
from harness import BUILD, SOURCE, main


def chaos(test, plan, rounds, *args):
    seed = random.randrange(1 << 30)
    r = subprocess.run([sys.executable, os.path.join(SOURCE, "tests", "chaos", "chaos.py"), "--plan", plan,
                        "--between", "2", "--seed", str(seed)] + list(args),
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PROFILE_BUILD=os.path.abspath(BUILD)))
    sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
    test.assertEqual(r.returncode, 0, "chaos failed: anomalies, or a process problem at teardown (seed %d)" % seed)
    if "--expect" in args:
        test.assertIn("expected %s: found" % args[args.index("--expect") + 1], r.stdout)
    else:
        test.assertIn("anomalies: 0", r.stdout)
    test.assertRegex(r.stdout, r"faults: %d rounds \(%s\)" % (len(plan.split(",")), rounds))
    test.assertRegex(r.stdout, r"checked: \d+ profiles, [1-9]\d* acknowledged writes, \d+ idempotency keys, "
                               r"\d+ operations \([1-9]\d* reads of other clients' profiles, "
                               r"[1-9]\d* carrying a write's position\)")


class Chaos(unittest.TestCase):
    def test_a_round_of_every_process_fault_keeps_every_promise(self):
        chaos(self, "kill,stall,broker,stack,gateway", r"1 broker, 1 gateway, 1 kill, 1 stack, 1 stall")

    @unittest.skipUnless(netns.available(), "network namespaces need root and iproute2")
    def test_a_round_of_every_partition_keeps_every_promise(self):
        chaos(self, "cut-kafka,cut-gateway,cut-all,cut-kafka-all,slow-kafka",
              r"1 cut-all, 1 cut-gateway, 1 cut-kafka, 1 cut-kafka-all, 1 slow-kafka")

    @unittest.skipUnless(netns.available(), "network namespaces need root and iproute2")
    def test_the_checks_find_a_cut_off_node_that_goes_on_answering(self):
        """The control: with --lost-read-ms a node cut from Kafka keeps
        answering reads of the partitions it lost, and the checks must find
        them stale once their new owner wrote."""
        chaos(self, "cut-kafka,cut-kafka", r"2 cut-kafka", "--lost-read-ms", "20000", "--expect", "stale")


if __name__ == "__main__":
    main()
