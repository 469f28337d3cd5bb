"""The change feed followed by a tool users already run: Kafka's
MirrorMaker 2 (dedicated mode, from Maven Central) copies the service's
topic to a second Kafka cluster while the service creates, updates and
deletes profiles, and a node is killed (-9) so that another takes its
partitions over. Afterwards the mirrored topic, read by a plain
read_committed consumer that knows nothing of this project, holds exactly
the service's profiles: for every uid, its last record is the profile the
service answers (tombstones for the deleted ones), and nothing else."""
import os
import re
import signal
import subprocess

from harness import KAFKA_SCRIPT, SOURCE, KafkaBroker, Proc, StackTest, all_active_on, main, topic_records, wait_for


def decode(value):
    """A profile record's fields, as protoc decodes it."""
    out = subprocess.run(["protoc", "--decode=profile.v1.ProfileEvent", "-I" + os.path.join(SOURCE, "proto"),
                          os.path.join(SOURCE, "proto", "profile.proto")],
                         input=value, capture_output=True, check=True).stdout.decode()
    return {"username": re.search(r'username: "([^"]*)"', out).group(1),
            "email": re.search(r'email: "([^"]*)"', out).group(1),
            "version": int(re.search(r"version: (\d+)", out).group(1))}


class Mirror(StackTest):
    nodes = 2
    partitions = 4

    def test_a_mirrored_topic_holds_exactly_the_services_profiles(self):
        s = self.stack
        mirror = KafkaBroker(os.path.join(s.data, "mirror-kafka"), s.data, name="mirror-kafka").start()
        props = os.path.join(s.data, "mm2.properties")
        with open(props, "w") as f:
            f.write("\n".join([
                "clusters = service, backup",
                "service.bootstrap.servers = " + s.bootstrap,
                "backup.bootstrap.servers = " + mirror.bootstrap,
                "service->backup.enabled = true",
                "service->backup.topics = " + re.escape(s.topic),
                "backup->service.enabled = false",
                # Only what the service committed.
                "service.consumer.isolation.level = read_committed",
                "refresh.topics.interval.seconds = 1",
                "emit.checkpoints.enabled = false",
                "sync.group.offsets.enabled = false",
            ] + ["%s = 1" % k for k in (
                "replication.factor", "offset-syncs.topic.replication.factor",
                "heartbeats.topic.replication.factor", "checkpoints.topic.replication.factor",
                "offset.storage.replication.factor", "status.storage.replication.factor",
                "config.storage.replication.factor")]) + "\n")
        mm2 = Proc("mirrormaker", [KAFKA_SCRIPT, "mirror", props], s.data)
        try:
            made = [s.create("m%d" % i, "m%d@mail.com" % i) for i in range(40)]
            for p in made[:20]:
                self.assertEqual(s.request("PUT", "/api/profile/" + p["uid"], {"username": "u1"}).status, 200)
            for p in made[30:35]:
                self.assertEqual(s.request("DELETE", "/api/profile/" + p["uid"]).status, 204)
            # A takeover: node 2's partitions move to node 1.
            s.cores[2].stop(signal.SIGKILL)
            wait_for(lambda: all_active_on(s, {"node1"}), 60, "node 1 to take every partition over")
            made += [s.create("n%d" % i, "n%d@mail.com" % i) for i in range(10)]
            for p in made[:10]:
                self.assertEqual(s.request("PUT", "/api/profile/" + p["uid"], {"username": "u2"}).status, 200)
            for p in made[35:38]:
                self.assertEqual(s.request("DELETE", "/api/profile/" + p["uid"]).status, 204)

            served = {}
            for p in made:
                r = s.request("GET", "/api/profile/" + p["uid"])
                self.assertIn(r.status, (200, 404), r)
                served[p["uid"]] = ({k: r.json[k] for k in ("username", "email", "version")}
                                    if r.status == 200 else None)

            def mirrored():
                last = {}
                try:
                    records = topic_records(mirror.bootstrap, "service." + s.topic)
                except AssertionError:  # not made yet
                    return None
                for _, _, key, value in records:
                    last[key] = decode(value) if value is not None else None
                return last if last == served else None
            try:
                wait_for(mirrored, 120, "the mirror to hold the service's profiles")
            except AssertionError:
                print(mm2.tail(40))
                raise
            # The consumer that copies the records read only committed ones
            # (from mm2.properties: MirrorMaker's own default is to read all).
            with open(mm2.log_path) as f:
                configs = f.read().split("ConsumerConfig values:")[1:]
            copiers = [re.search(r"isolation\.level = (\S+)", c).group(1) for c in configs
                       if re.search(r"client\.id = \S*replication-consumer", c)]
            self.assertTrue(copiers, "no replication consumer in MirrorMaker's log")
            self.assertEqual(set(copiers), {"read_committed"})
            print("mirrored: %d profiles, %d deleted" % (sum(v is not None for v in served.values()),
                                                          sum(v is None for v in served.values())))
        finally:
            mm2.stop(check=False)
            mirror.proc.stop(check=False)


if __name__ == "__main__":
    main()
