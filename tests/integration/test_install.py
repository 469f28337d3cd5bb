"""The client library installs relocatably: pkg-config flags that work, the
README's example and the C library page's asynchronous one compiled against
the installed library and run against a
core, the CMake package, and profilectl running from the install's bin/."""
import os
import re
import shutil
import subprocess
import tempfile

from harness import BUILD, SOURCE, StackTest, main


# In a sanitizer build the installed library is instrumented: programs
# linked against it must be too.
SANITIZE = ["-fsanitize=" + os.environ["PROFILE_SANITIZER"]] if os.environ.get("PROFILE_SANITIZER") else []


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, "%s failed:\n%s%s" % (cmd, r.stdout, r.stderr)
    return r.stdout


def example(page):
    """The first ```c block of a page of the documentation."""
    with open(os.path.join(SOURCE, page)) as f:
        m = re.search(r"```c\n(.*?)```", f.read(), re.S)
    assert m, "%s has no ```c example" % page
    return m.group(1)


class Install(StackTest):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="profile-install-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def pkg_flags(self, prefix):
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        return run(["pkg-config", "--cflags", "--libs", "profile-client"], env=env).split()

    def build_and_run_example(self, prefix, name, page, expect):
        src = os.path.join(self.tmp, name + ".c")
        with open(src, "w") as f:
            f.write(example(page))
        exe = os.path.join(self.tmp, name)
        run(["cc", src] + SANITIZE + self.pkg_flags(prefix) + ["-pthread", "-o", exe])
        out = run([exe, self.stack.core_addr[1]], env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(prefix, "lib")))
        self.assertIn(expect, out)

    def test_install_pkg_config_cmake_package_and_relocation(self):
        first = os.path.join(self.tmp, "first")
        run(["cmake", "--install", BUILD, "--prefix", first])
        for f in ["include/profile/client.h", "include/profile/status.h", "lib/libprofile-client.so",
                  "lib/libprofile-client.a", "lib/pkgconfig/profile-client.pc",
                  "lib/cmake/ProfileClient/ProfileClientConfig.cmake", "bin/profilectl",
                  "share/man/man1/profilectl.1", "share/man/man8/profiled.8", "share/man/man8/profile-gateway.8"]:
            self.assertTrue(os.path.exists(os.path.join(first, f)), f)

        # Moved elsewhere, everything still points at the new place.
        prefix = os.path.join(self.tmp, "moved", "elsewhere")
        os.makedirs(os.path.dirname(prefix))
        shutil.move(first, prefix)
        flags = self.pkg_flags(prefix)
        includes = [os.path.normpath(x[2:]) for x in flags if x.startswith("-I")]
        self.assertIn(os.path.join(prefix, "include"), includes)
        self.build_and_run_example(prefix, "example", "README.md", "created, read and deleted")
        self.build_and_run_example(prefix, "async", "docs/c-library.md", "100 of 100 creates acknowledged")

        # profilectl finds its library through its RPATH ($ORIGIN/../lib).
        env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
        out = run([os.path.join(prefix, "bin", "profilectl"), "--core", self.stack.core_addr[1],
                   "create", "installed", "installed@mail.com"], env=env)
        self.assertIn('"username":"installed"', out)
        self.assertIn("usage: profilectl", run([os.path.join(prefix, "bin", "profilectl"), "--help"], env=env))

        # The CMake package: find_package(ProfileClient) and profile::client.
        proj = os.path.join(self.tmp, "cmake-user")
        os.makedirs(proj)
        with open(os.path.join(proj, "CMakeLists.txt"), "w") as f:
            f.write("cmake_minimum_required(VERSION 3.18)\nproject(user C)\n"
                    "find_package(ProfileClient 0.1 REQUIRED)\n"
                    "add_executable(example example.c)\n"
                    "target_link_libraries(example PRIVATE profile::client)\n")
        with open(os.path.join(proj, "example.c"), "w") as f:
            f.write(example("README.md"))
        run(["cmake", "-S", proj, "-B", os.path.join(proj, "b"), "-DCMAKE_PREFIX_PATH=" + prefix,
             "-DCMAKE_C_FLAGS=" + " ".join(SANITIZE)])
        run(["cmake", "--build", os.path.join(proj, "b")])
        out = run([os.path.join(proj, "b", "example"), self.stack.core_addr[1]])
        self.assertIn("created, read and deleted", out)

        # What users link against says nothing of how the library was built:
        # no sanitizer (nor any other compile flag) reaches them.
        for f in ["lib/pkgconfig/profile-client.pc", "lib/cmake/ProfileClient/ProfileClientTargets.cmake"]:
            with open(os.path.join(prefix, f)) as fh:
                self.assertNotIn("-fsanitize", fh.read(), f)

    def test_client_only_build_needs_only_nng_and_protobuf_c(self):
        # pkg-config sees protobuf-c alone (nng comes from its CMake package):
        # configuring would fail if librdkafka, jansson, Kyoto Cabinet or
        # libmicrohttpd were asked for.
        pc = os.path.join(self.tmp, "pkgconfig")
        os.makedirs(pc)
        protobuf_pc = run(["pkg-config", "--variable=pcfiledir", "libprotobuf-c"]).strip()
        os.symlink(os.path.join(protobuf_pc, "libprotobuf-c.pc"), os.path.join(pc, "libprotobuf-c.pc"))
        env = dict(os.environ, PKG_CONFIG_LIBDIR=pc)
        env.pop("PKG_CONFIG_PATH", None)
        build = os.path.join(self.tmp, "client-only")
        run(["cmake", "-S", SOURCE, "-B", build, "-DPROFILE_BUILD_SERVER=OFF", "-DPROFILE_WERROR=ON"], env=env)
        run(["cmake", "--build", build, "-j2"], env=env)
        for exe in ["profiled", "profile-gateway"]:
            self.assertFalse(os.path.exists(os.path.join(build, exe)), exe + " built in a client-only build")

        profilectl = os.path.join(build, "profilectl")
        libs = run(["ldd", profilectl])
        for lib in ["librdkafka", "libjansson", "libkyotocabinet", "libmicrohttpd"]:
            self.assertNotIn(lib, libs)
        out = run([profilectl, "--core", self.stack.core_addr[1], "create", "clientonly", "only@mail.com"])
        self.assertIn('"username":"clientonly"', out)
        self.assertIn('"email":"only@mail.com"', out)
        r = subprocess.run([profilectl, "watch", "--brokers", self.stack.bootstrap], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("built without it", r.stderr)


if __name__ == "__main__":
    main()
