"""The short version of `make chaos` (tests/chaos/chaos.py), on a real Kafka
broker under a mixed load, in fixed orders: one round of each process fault
(a node killed, a node stalled past its session, the Kafka broker killed,
the whole stack restarted, Kafka included, the gateway killed), and, as root,
one of each network partition past the session (a node cut from Kafka while
the gateway still reaches it, a node's answers to the gateway dropped, a node
cut from everything, every node cut from Kafka). Each history is then checked
as a linearizable register's (tests/chaos/checker.py); any anomaly fails it
and prints the operations that show it."""
import os
import random
import subprocess
import sys
import unittest

import netns
from harness import BUILD, SOURCE, main


def chaos(test, plan, rounds):
    seed = random.randrange(1 << 30)
    r = subprocess.run([sys.executable, os.path.join(SOURCE, "tests", "chaos", "chaos.py"), "--plan", plan,
                        "--between", "2", "--seed", str(seed)],
                       capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PROFILE_BUILD=os.path.abspath(BUILD)))
    sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
    test.assertEqual(r.returncode, 0, "chaos failed: anomalies, or a process problem at teardown (seed %d)" % seed)
    test.assertIn("anomalies: 0", r.stdout)
    test.assertRegex(r.stdout, r"faults: %d rounds \(%s\)" % (len(plan.split(",")), rounds))
    test.assertRegex(r.stdout, r"checked: \d+ profiles, [1-9]\d* acknowledged writes, \d+ idempotency keys, "
                               r"\d+ operations \([1-9]\d* reads of other clients' profiles\)")


class Chaos(unittest.TestCase):
    def test_a_round_of_every_process_fault_keeps_every_promise(self):
        chaos(self, "kill,stall,broker,stack,gateway", r"1 broker, 1 gateway, 1 kill, 1 stack, 1 stall")

    @unittest.skipUnless(netns.available(), "network namespaces need root and iproute2")
    def test_a_round_of_every_partition_keeps_every_promise(self):
        chaos(self, "cut-kafka,cut-gateway,cut-all,cut-kafka-all",
              r"1 cut-all, 1 cut-gateway, 1 cut-kafka, 1 cut-kafka-all")


if __name__ == "__main__":
    main()
