"""The shape of core/: dependencies point one way (no include cycle between
modules; a module is a .c/.h pair, with its _-suffixed internal headers),
and no file holds two rooms (no .c file over 700 lines, in core/, gateway/
and client/)."""
import os
import re
import sys
import unittest

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CORE = os.path.join(SOURCE, "core")


def module(name):
    return re.split(r"[._]", name)[0]


class CoreLayout(unittest.TestCase):
    def test_no_include_cycle_between_modules(self):
        deps = {}
        for name in os.listdir(CORE):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(CORE, name)) as f:
                for inc in re.findall(r'#include "([^"]+)"', f.read()):
                    if os.path.exists(os.path.join(CORE, inc)) and module(inc) != module(name):
                        deps.setdefault(module(name), set()).add(module(inc))
        cycles = []

        def visit(m, path):
            for d in sorted(deps.get(m, ())):
                if d in path:
                    cycles.append(path[path.index(d):] + [d])
                else:
                    visit(d, path + [d])
        for m in sorted(deps):
            visit(m, [m])
        self.assertEqual(cycles, [])
        self.assertIn("reply", deps["peers"])  # the reply type sits below forwarding...
        self.assertNotIn("service", deps["peers"])  # ...which no longer reaches up for it

    def test_no_file_over_700_lines(self):
        sizes = {}
        for folder in ("core", "gateway", "client/src", "client/profilectl"):
            for name in os.listdir(os.path.join(SOURCE, folder)):
                if name.endswith(".c"):
                    with open(os.path.join(SOURCE, folder, name)) as f:
                        sizes[folder + "/" + name] = sum(1 for _ in f)
        self.assertEqual({n: s for n, s in sizes.items() if s > 700}, {})


if __name__ == "__main__":
    unittest.main(verbosity=2, argv=sys.argv[:1])
