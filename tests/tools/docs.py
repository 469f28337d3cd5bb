#!/usr/bin/env python3
"""The documentation's reference parts, kept equal to what the programs do.

    docs.py write BUILD   rewrite the generated parts (the option tables of
                          docs/configuration.md, the OPTIONS and ENVIRONMENT of
                          the daemons' manual pages) from the programs' --help
    docs.py check BUILD   fail, naming each mismatch, when:
      - a generated part differs from what `write` would make;
      - a flag or variable of profiled, profile-gateway or profilectl is
        missing from its manual page, or the page names one the program
        does not have;
      - a route's statuses in docs/rest-api.md differ from openapi.json, or
        the code -> HTTP table differs from gateway/api.c;
      - a relative link or an #anchor in a Markdown file does not resolve;
      - a test that ctest runs is not described in docs/testing.md;
      - mandoc -T lint finds anything in man/;
      - the version in CMakeLists.txt, the programs' --version, the
        library's SOVERSION and CHANGELOG.md's newest entry disagree.
"""
import json
import os
import re
import subprocess
import sys

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.path.join(SOURCE, "docs", "configuration.md")
DAEMONS = [("profiled", "PROFILED_"), ("profile-gateway", "PROFILE_GATEWAY_")]
MAN = {"profiled": "man/profiled.8", "profile-gateway": "man/profile-gateway.8",
       "profilectl": "man/profilectl.1"}
PROFILECTL_COMMANDS = ["create", "get", "update", "delete", "search", "watch", "bench"]

# One option line of a daemon's --help: "  -l, --listen URL   text [VAR]".
OPTION = re.compile(r"^\s+(?:-(\w), )?--([a-z0-9-]+)(?: ([A-Z][A-Z_=]*|[a-z]+\|[a-z]+))?\s+(.*?)"
                    r"(?: \[([A-Z_]+)\])?$")


def help_text(build, program, *args):
    r = subprocess.run([os.path.join(build, program)] + list(args) + ["--help"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit("%s %s --help exited %d: %s" % (program, " ".join(args), r.returncode, r.stderr))
    return r.stdout


def daemon_options(build, program):
    """[(short, long, arg, text, default, variable)] from --help."""
    out = []
    for line in help_text(build, program).splitlines():
        m = OPTION.match(line)
        if not m:
            continue
        short, name, arg, text, var = m.groups()
        if name in ("help", "version"):
            continue
        default = None
        d = re.search(r" \(default:? ([^()]*(?:\([^()]*\)[^()]*)*)\)$", text)
        if d:
            default, text = d.group(1), text[:d.start()]
        out.append((short, name, arg, text, default, var))
    return out


def config_tables(build):
    """The generated part of configuration.md, per daemon."""
    tables = {}
    for program, _ in DAEMONS:
        rows = ["| option | variable | default | meaning |", "| --- | --- | --- | --- |"]
        for short, name, arg, text, default, var in daemon_options(build, program):
            flag = "`--%s%s`" % (name, (" " + arg).replace("|", "\\|") if arg else "")
            if short:
                flag = "`-%s`, %s" % (short, flag)
            cell = (default if default else "").replace("|", "\\|")
            rows.append("| %s | `%s` | %s | %s |" % (flag, var, "`%s`" % cell if cell else "",
                                                    text.replace("|", "\\|")))
        tables[program] = "\n".join(rows) + "\n"
    return tables


def roff(text):
    """Text for one mdoc line: escapes, and no request at its start."""
    text = text.replace("\\", "\\e")
    return "\\&" + text if text[:1] in (".", "'") else text


def man_options(build, program):
    """The OPTIONS and ENVIRONMENT lists of a daemon's manual page."""
    opts = daemon_options(build, program)
    out = [".Sh OPTIONS", ".Bl -tag -width Ds"]
    for short, name, arg, text, default, var in opts:
        head = ".It " + ("Fl %s , " % short if short else "") + "Fl \\-" + name + (" Ar " + arg if arg else "")
        out.append(head)
        out.append(roff(text + "."))
        if default:
            out.append(roff("Default: " + default + "."))
    out += [".It Fl h , Fl \\-help", "Print the options and exit.", ".It Fl \\-version",
            "Print the version and exit.", ".El", ".Sh ENVIRONMENT",
            "Each option can also be given by a variable; the command line wins.", ".Bl -tag -width Ds"]
    for short, name, arg, text, default, var in opts:
        out += [".It Ev " + var, "As", ".Fl \\-%s ." % name]
    out.append(".El")
    return "\n".join(out) + "\n"


def replace_between(text, begin, end, body, where):
    i = text.find(begin)
    if i < 0:
        raise SystemExit("%s lacks the marker: %s" % (where, begin.strip()))
    j = text.index(end, i)
    return text[:i + len(begin)] + body + text[j:]


def generated(build, text):
    for program, table in config_tables(build).items():
        text = replace_between(text, "<!-- generated from `%s --help` by tests/tools/docs.py write -->\n" % program,
                               "<!-- end of generated -->\n", table, "docs/configuration.md")
    return text


def generated_man(build, program, text):
    return replace_between(text, ".\\\" generated from `%s --help` by tests/tools/docs.py write\n" % program,
                           ".\\\" end of generated\n", man_options(build, program), MAN[program])


def generated_files(build):
    """{path: (what it holds, what it should hold)} of the generated parts."""
    out = {}
    with open(CONFIG) as f:
        have = f.read()
    out[CONFIG] = (have, generated(build, have))
    for program, _ in DAEMONS:
        path = os.path.join(SOURCE, MAN[program])
        with open(path) as f:
            have = f.read()
        out[path] = (have, generated_man(build, program, have))
    return out


def check_config(build, problems):
    import difflib
    for path, (have, want) in generated_files(build).items():
        if have != want:
            diff = "".join(difflib.unified_diff(have.splitlines(True), want.splitlines(True), "committed",
                                                "from --help"))
            problems.append("%s is not what the program's --help says (run tests/tools/docs.py write BUILD):\n%s"
                            % (os.path.relpath(path, SOURCE), diff))


def man_flags(page):
    """Long options and environment variables a manual page names."""
    with open(os.path.join(SOURCE, page)) as f:
        text = f.read()
    # mdoc's Fl writes one dash itself: "Fl \-listen" is --listen.
    flags = set(re.findall(r"\bFl \\?-([a-z0-9][a-z0-9-]*)", text))
    envs = set(re.findall(r"\bEv ([A-Z][A-Z0-9_]+)", text))
    return flags, envs


def profilectl_options(build):
    texts = [help_text(build, "profilectl")]
    texts += [help_text(build, "profilectl", c) for c in PROFILECTL_COMMANDS]
    joined = "\n".join(texts)
    flags = set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", joined)) - {"help"}
    envs = set(re.findall(r"\$(PROFILE_[A-Z_]+)", joined))
    return flags, envs


def check_man(build, problems):
    for program, prefix in DAEMONS:
        opts = daemon_options(build, program)
        want_flags = {o[1] for o in opts} | {"help", "version"}
        want_envs = {o[5] for o in opts if o[5]}
        flags, envs = man_flags(MAN[program])
        for f in sorted(want_flags - flags):
            problems.append("%s: --%s is in --help but not in the manual page" % (MAN[program], f))
        for f in sorted(flags - want_flags):
            problems.append("%s: --%s is in the manual page but %s has no such flag" % (MAN[program], f, program))
        for v in sorted(want_envs - envs):
            problems.append("%s: %s is in --help but not in the manual page" % (MAN[program], v))
        for v in sorted(envs - want_envs):
            if v.startswith(prefix):
                problems.append("%s: %s is in the manual page but not in --help" % (MAN[program], v))
    want_flags, want_envs = profilectl_options(build)
    want_flags |= {"help", "version"}
    flags, envs = man_flags(MAN["profilectl"])
    for f in sorted(want_flags - flags):
        problems.append("man/profilectl.1: --%s is in profilectl's help but not in the manual page" % f)
    for f in sorted(flags - want_flags):
        problems.append("man/profilectl.1: --%s is in the manual page but not in profilectl's help" % f)
    for v in sorted(want_envs - envs):
        problems.append("man/profilectl.1: %s is in profilectl's help but not in the manual page" % v)
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning"] + [os.path.join(SOURCE, p) for p in MAN.values()],
                       capture_output=True, text=True)
    if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
        problems.append("mandoc -T lint:\n" + r.stdout + r.stderr)


def check_rest(problems):
    with open(os.path.join(SOURCE, "gateway", "openapi.json")) as f:
        spec = json.load(f)
    with open(os.path.join(SOURCE, "docs", "rest-api.md")) as f:
        page = f.read()
    documented = {}
    for m in re.finditer(r"^\| `(GET|POST|PUT|DELETE) ([^`?]+)(?:\?[^`]*)?` \|.*\| ([0-9, ]+) \|$", page, re.M):
        documented[(m.group(1).lower(), m.group(2))] = set(m.group(3).replace(" ", "").split(","))
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "delete"):
                continue
            want = set(op["responses"])
            have = documented.pop((method, path), None)
            if have is None:
                problems.append("docs/rest-api.md: %s %s is in openapi.json but not in the routes table"
                                % (method.upper(), path))
            elif have != want:
                problems.append("docs/rest-api.md: %s %s answers %s in openapi.json, %s on the page"
                                % (method.upper(), path, ",".join(sorted(want)), ",".join(sorted(have))))
    for method, path in documented:
        problems.append("docs/rest-api.md: %s %s is on the page but not in openapi.json" % (method.upper(), path))

    with open(os.path.join(SOURCE, "gateway", "api.c")) as f:
        code = dict(re.findall(r"\{PROFILE_([A-Z_]+), (\d+)\}", f.read()))
    table = dict(re.findall(r"^\| `([A-Z_]+)` \| (\d+)", page, re.M))
    if code != table:
        problems.append("docs/rest-api.md: the code -> HTTP table is %s; gateway/api.c has %s"
                        % (sorted(table.items()), sorted(code.items())))


def anchors(path):
    """GitHub's anchors for the headings of a Markdown file."""
    out = set()
    with open(path) as f:
        inside = False
        for line in f:
            if line.startswith("```"):
                inside = not inside
            if inside:
                continue
            m = re.match(r"#+ (.*)", line)
            if m:
                a = m.group(1).strip().lower()
                a = re.sub(r"[^\w\- ]", "", a).replace(" ", "-")
                out.add(a)
    return out


def markdown_files():
    out = []
    for root, dirs, files in os.walk(SOURCE):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("node_modules",)
                   and not d.startswith("build")]
        out += [os.path.join(root, f) for f in files if f.endswith(".md")]
    return sorted(out)


def check_links(problems):
    for md in markdown_files():
        with open(md) as f:
            text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
            where = os.path.relpath(md, SOURCE)
            if not os.path.exists(dest):
                problems.append("%s: link to %s: no such file" % (where, target))
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                problems.append("%s: link to %s: no such heading" % (where, target))


def check_test_list(problems):
    """Every test ctest runs is described in docs/testing.md."""
    with open(os.path.join(SOURCE, "tests", "CMakeLists.txt")) as f:
        cmake = f.read()
    tests = set(re.findall(r"^profile_(?:unit|integration)\((\w+)", cmake, re.M))
    tests |= set(re.findall(r"add_test\(NAME (test_\w+)", cmake))
    with open(os.path.join(SOURCE, "docs", "testing.md")) as f:
        page = f.read()
    for t in sorted(tests):
        if "`%s`" % t not in page:
            problems.append("docs/testing.md does not describe %s" % t)


def check_version(build, problems):
    with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
        cmake = f.read()
    version = re.search(r"project\(profile-service VERSION (\S+)", cmake).group(1)
    soversion = re.search(r"set\(PROFILE_CLIENT_SOVERSION (\d+)\)", cmake).group(1)
    for program in ("profiled", "profile-gateway", "profilectl"):
        out = subprocess.run([os.path.join(build, program), "--version"], capture_output=True, text=True).stdout
        if out.split()[-1:] != [version]:
            problems.append("%s --version prints %r, CMakeLists.txt says %s" % (program, out.strip(), version))
    with open(os.path.join(SOURCE, "CHANGELOG.md")) as f:
        log = f.read()
    newest = re.search(r"^## (\S+)", log, re.M)
    if not newest or newest.group(1) != version:
        problems.append("CHANGELOG.md's newest entry is %s, the version is %s"
                        % (newest.group(1) if newest else "missing", version))
    elif "libprofile-client.so.%s" % soversion not in log[newest.start():]:
        problems.append("CHANGELOG.md's entry for %s does not name libprofile-client.so.%s" % (version, soversion))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        raise SystemExit(__doc__)
    build = os.path.abspath(sys.argv[2])
    if sys.argv[1] == "write":
        for path, (have, want) in generated_files(build).items():
            if have != want:
                with open(path, "w") as f:
                    f.write(want)
        return
    problems = []
    check_config(build, problems)
    check_man(build, problems)
    check_rest(problems)
    check_links(problems)
    check_test_list(problems)
    check_version(build, problems)
    for p in problems:
        print("docs: " + p, file=sys.stderr)
    if problems:
        raise SystemExit(1)
    print("docs: configuration, manual pages, REST statuses, links and versions agree")


if __name__ == "__main__":
    main()
