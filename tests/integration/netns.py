"""Network partitions for the tests (root only; iproute2): every core node
runs in a network namespace of its own, joined to the host by a veth pair,
and Kafka is reached at an address of its own on the host's loopback.

    host (the gateway, the broker, the test)      namespace of node i
      10.S.0.1/32 on lo: Kafka's advertised address
      10.S.i.1/24 veth ------------------------- 10.S.i.2/24 veth, default via 10.S.i.1

The host forwards between namespaces (ip_forward, restored afterwards), so
nodes reach each other through it. A cut is a blackhole route inside a
node's namespace: the node's packets to that address are dropped. That cuts
one direction, which is enough to stop TCP both ways (nothing the far side
sends is acknowledged); a one-way cut, not a filter of both, is what the
machines without a packet filter allow, and it is how a broken route or a
lost return path looks in practice.

    cut(i, "kafka")    node i cannot reach Kafka; the gateway still reaches it
    cut(i, "gateway")  node i's answers to the gateway are dropped (requests
                       from the gateway still arrive: a one-way partition)
    cut(i, "nodes")    node i cannot reach the other nodes
    cut(i, "all")      node i reaches nothing (its default route and the
                       host's end of its link blackholed)
    heal(i)            every cut of node i removed

What it does not model: loss or delay short of a cut (there is no netem
here: see tests/chaos/relay.py for delay), partitions among Kafka's own
nodes, or clock skew."""
import itertools
import os
import re
import subprocess

FORWARD_SAVED = "/run/profile-tests-ip-forward"
_made = []  # this process's live nets
_serial = itertools.count()  # for names of their own


def available():
    """Whether this process may make namespaces (root, with iproute2)."""
    if os.geteuid() != 0:
        return False
    try:
        return subprocess.run(["ip", "netns", "list"], capture_output=True).returncode == 0
    except OSError:
        return False


def ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


class Net:
    def __init__(self):
        # A subnet and names of this process's own, so that runs side by
        # side do not meet.
        self._sweep()
        self.sub = self._claim()
        self.tag = "pf%d%s" % (os.getpid(), "abcdefghijklmnopqrstuvwxyz"[next(_serial) % 26])
        _made.append(self.tag)
        self.kafka = "10.%d.0.1" % self.sub
        self.nodes = {}  # i -> namespace
        self.cuts = {}  # i -> [route destinations blackholed]
        # Forwarding is the host's, shared by runs side by side (ctest -j):
        # the first to start keeps its setting in FORWARD_SAVED, the last to
        # close (no other process holds a net) puts it back.
        if len(_made) == 1 and not self._others():
            try:  # the first writer wins: a run starting beside it saw forwarding on already
                with open("/proc/sys/net/ipv4/ip_forward") as f, open(FORWARD_SAVED, "x") as saved:
                    saved.write(f.read())
            except FileExistsError:
                pass
        self._forward("1")

    @staticmethod
    def _claim():
        """A subnet no other live run uses, taken by adding its Kafka
        address to lo under a label naming this process: the add fails when
        another net holds it, this process's own included (two runs on one
        subnet would answer each other's packets)."""
        start = 200 + os.getpid() % 40
        for sub in list(range(start, 256)) + list(range(200, start)):
            if ip("addr", "add", "10.%d.0.1/32" % sub, "dev", "lo", "label", "lo:pf%d" % os.getpid(),
                  check=False).returncode == 0:
                return sub
        raise AssertionError("no free subnet in 10.200-255.0.0: too many runs side by side")

    def _others(self):
        """Whether another live process holds a net (its subnet's claim on
        lo, made before any namespace of it exists)."""
        for line in ip("-o", "-4", "addr", "show", "dev", "lo").stdout.splitlines():
            m = re.search(r"lo:pf(\d+)", line)
            if m and int(m.group(1)) != os.getpid() and os.path.exists("/proc/" + m.group(1)):
                return True
        return False

    @staticmethod
    def _sweep():
        """Removes the namespaces and the subnet claims a run that died left
        behind."""
        for line in ip("netns", "list").stdout.splitlines():
            m = re.match(r"pf(\d+)[a-z]-n\d+", line)
            if m and not os.path.exists("/proc/" + m.group(1)):
                ip("netns", "del", line.split()[0], check=False)
        for line in ip("-o", "-4", "addr", "show", "dev", "lo").stdout.splitlines():
            m = re.search(r"inet (10\.\d+\.0\.1)/32 .*lo:pf(\d+)", line)
            if m and not os.path.exists("/proc/" + m.group(2)):
                ip("addr", "del", m.group(1) + "/32", "dev", "lo", check=False)

    def _forward(self, value):
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(value)

    def host_side(self, i):
        return "10.%d.%d.1" % (self.sub, i)

    def addr(self, i):
        """Node i's address, in its namespace."""
        return "10.%d.%d.2" % (self.sub, i)

    def add(self, i):
        """Node i's namespace (made once; kept across the node's restarts)."""
        if i in self.nodes:
            return self.nodes[i]
        ns, host, peer = "%s-n%d" % (self.tag, i), "%sh%d" % (self.tag, i), "%sp%d" % (self.tag, i)
        ip("netns", "add", ns)
        self.nodes[i] = ns
        self._forward("1")  # again: a run that closed meanwhile saw no namespace of ours
        ip("link", "add", host, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", ns)
        ip("addr", "add", self.host_side(i) + "/24", "dev", host)
        ip("link", "set", host, "up")
        ip("-n", ns, "addr", "add", self.addr(i) + "/24", "dev", peer)
        ip("-n", ns, "link", "set", peer, "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "route", "add", "default", "via", self.host_side(i))
        return ns

    def prefix(self, i):
        """The argv prefix that runs a program in node i's namespace (ip
        netns exec execs it: the pid, and so signals, are the program's)."""
        return ["ip", "netns", "exec", self.add(i)]

    def cut(self, i, what):
        dests = {"kafka": [self.kafka], "gateway": [self.host_side(i)],
                 "nodes": [self.addr(j) for j in self.nodes if j != i],
                 "all": ["default", self.host_side(i)]}[what]
        for d in dests:
            if d == "default":
                ip("-n", self.nodes[i], "route", "replace", "blackhole", "default")
            else:
                ip("-n", self.nodes[i], "route", "replace", "blackhole", d + "/32")
            self.cuts.setdefault(i, []).append(d)

    def heal(self, i):
        for d in self.cuts.pop(i, []):
            if d == "default":
                ip("-n", self.nodes[i], "route", "replace", "default", "via", self.host_side(i))
            else:
                ip("-n", self.nodes[i], "route", "del", "blackhole", d + "/32", check=False)

    def close(self):
        """Removes every namespace (and so its veth pair) and the address."""
        for i, ns in self.nodes.items():
            ip("link", "del", "%sh%d" % (self.tag, i), check=False)  # at once, not when the kernel gets to it
            ip("netns", "del", ns, check=False)
        self.nodes = {}
        ip("addr", "del", self.kafka + "/32", "dev", "lo", check=False)
        _made.remove(self.tag)
        if not self._others() and not _made and os.path.exists(FORWARD_SAVED):
            with open(FORWARD_SAVED) as f:
                self._forward(f.read().strip())
            os.unlink(FORWARD_SAVED)
