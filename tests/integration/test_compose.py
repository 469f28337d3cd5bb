"""docker-compose.yml cannot run here (no Docker engine), so it is kept
correct by docker-compose's own check (`config`) and by reading: every variable it sets on our services is one the
binaries accept (their --help lists it), and the values they check are valid;
and its Kafka is the one `make run KAFKA_NODES=3` runs: the same version
(scripts/kafka/pom.xml) and the same settings (scripts/kafka.sh)."""
import os
import re
import subprocess
import tempfile
import unittest

from harness import BUILD, KAFKA_SCRIPT, SOURCE, main


def services(path):
    """{service: (command, {VAR: value})} for the services built from here."""
    out, name, in_env, command, section = {}, None, False, None, None
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:
        top = re.match(r"^([a-z][\w-]*):", line)
        if top:
            section, name = top.group(1), None
            continue
        if section != "services":
            continue
        m = re.match(r"^  ([a-z0-9]+):\s*$", line)
        if m:
            name, in_env, command = m.group(1), False, None
            out[name] = [None, {}]
            continue
        if name is None:
            continue
        m = re.match(r'^    command: \["([^"]+)"', line)
        if m:
            out[name][0] = m.group(1)
        if re.match(r"^    environment:\s*$", line):
            in_env = True
            continue
        if in_env:
            m = re.match(r'^      ([A-Z0-9_]+): "?(.*?)"?\s*$', line)
            if m:
                out[name][1][m.group(1)] = m.group(2)
            elif not line.startswith("      "):
                in_env = False
    return out


class Compose(unittest.TestCase):
    def test_docker_compose_accepts_the_file(self):
        """docker-compose's own check (`config`, no engine needed), and
        that it refuses a broken copy, so the check is known to check."""
        run = lambda path: subprocess.run(["docker-compose", "-f", path, "config", "-q"], capture_output=True,
                                          text=True, cwd=SOURCE)
        r = run(os.path.join(SOURCE, "docker-compose.yml"))
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(SOURCE, "docker-compose.yml")) as f:
            text = f.read()
        with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=SOURCE) as broken:
            broken.write(text.replace("    restart: unless-stopped\n", "    restart: unless-stopped\n    bogus: 1\n", 1)
                         .replace("  restart: unless-stopped\n", "  restart: unless-stopped\n  bogus: 1\n", 1))
            broken.flush()
            self.assertNotEqual(run(broken.name).returncode, 0, "docker-compose accepted an unknown key")

    def test_every_variable_is_accepted(self):
        found = services(os.path.join(SOURCE, "docker-compose.yml"))
        ours = {n: v for n, v in found.items() if n.startswith(("core", "gateway"))}
        self.assertEqual(sorted(ours), ["core1", "core2", "core3", "gateway"])
        binaries = {"core": "profiled", "gateway": "profile-gateway"}
        for name, (_, env) in ours.items():
            binary = binaries["gateway" if name == "gateway" else "core"]
            helptext = subprocess.run([os.path.join(BUILD, binary), "--help"], capture_output=True, text=True,
                                      check=True).stdout
            accepted = set(re.findall(r"\[([A-Z0-9_]+)\]", helptext))
            self.assertTrue(env, name)
            for var in env:
                self.assertIn(var, accepted, "%s sets %s, which %s does not read" % (name, var, binary))
        # The core services reach each other at the addresses they advertise,
        # and the gateway is given exactly those.
        advertised = sorted(ours[n][1]["PROFILED_ADVERTISE"] for n in ("core1", "core2", "core3"))
        self.assertEqual(sorted(ours["gateway"][1]["PROFILE_GATEWAY_CORES"].split()), advertised)
        for n in ("core1", "core2", "core3"):
            self.assertIn(ours[n][1]["PROFILED_STATE"], ("partitioned", "replicated"))
            self.assertEqual(ours[n][1]["PROFILED_NODE_ID"], n)
            # Plain TCP beyond loopback must be allowed out loud, or the
            # node refuses to start.
            if ours[n][1]["PROFILED_LISTEN"].startswith("tcp://") and \
                    not ours[n][1]["PROFILED_LISTEN"].startswith("tcp://127."):
                self.assertEqual(ours[n][1].get("PROFILED_ALLOW_PLAINTEXT"), "1", n)
        gw = ours["gateway"][1]
        if "PROFILE_GATEWAY_HTTPS_CERT" not in gw and not gw["PROFILE_GATEWAY_ADDRESS"].startswith("127."):
            self.assertEqual(gw.get("PROFILE_GATEWAY_ALLOW_PLAINTEXT"), "1")

    def test_every_flag_has_a_variable(self):
        for binary in ("profiled", "profile-gateway"):
            helptext = subprocess.run([os.path.join(BUILD, binary), "--help"], capture_output=True, text=True,
                                      check=True).stdout
            for line in helptext.splitlines():
                if re.match(r"^\s+(-\w, )?--[a-z]", line) and "--help" not in line and "--version" not in line:
                    self.assertRegex(line, r"\[[A-Z0-9_]+\]$", "%s: %s" % (binary, line.strip()))


def compose_kafka(path):
    """(image, {property: value}) of the Kafka nodes: the x-kafka image and
    the x-kafka-env variables, KAFKA_X_Y read as x.y."""
    image, env, block = None, {}, None
    with open(path) as f:
        for line in f.read().splitlines():
            top = re.match(r"^([a-z][\w-]*):", line)
            if top:
                block = top.group(1)
                continue
            m = re.match(r"^  image: (\S+)", line)
            if block == "x-kafka" and m:
                image = m.group(1)
            m = re.match(r'^  KAFKA_([A-Z0-9_]+): "?(.*?)"?\s*$', line)
            if block == "x-kafka-env" and m:
                env[m.group(1).lower().replace("_", ".")] = m.group(2)
    return image, env


class ComposeKafka(unittest.TestCase):
    # Where a node is and how its listeners are named differ by design
    # (container names against loopback ports).
    PLACEMENT = {"listeners", "advertised.listeners", "controller.quorum.voters", "node.id",
                 "listener.security.protocol.map", "inter.broker.listener.name", "log.dirs"}
    # What the service relies on: both must set these, to the same values.
    SERVICE = {"process.roles", "controller.listener.names", "default.replication.factor", "min.insync.replicas",
               "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
               "transaction.state.log.min.isr", "auto.create.topics.enable", "unclean.leader.election.enable",
               "group.initial.rebalance.delay.ms"}

    def test_compose_runs_the_kafka_make_run_runs(self):
        image, env = compose_kafka(os.path.join(SOURCE, "docker-compose.yml"))
        version = subprocess.run([KAFKA_SCRIPT, "version"], capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(image, "apache/kafka:" + version)
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([KAFKA_SCRIPT, "properties", d, "--replication", "3", "--min-isr", "2"],
                                 capture_output=True, text=True, check=True).stdout
        local = dict(line.split("=", 1) for line in out.splitlines() if line and not line.startswith("#"))
        for key in self.SERVICE:
            self.assertIn(key, env, "docker-compose.yml does not set %s" % key)
            self.assertEqual(env[key], local[key], key)
        for key, value in env.items():
            if key in self.PLACEMENT or key == "cluster.id":
                continue
            self.assertIn(key, local, "scripts/kafka.sh does not set %s" % key)
            self.assertEqual(value, local[key], key)


if __name__ == "__main__":
    main()
