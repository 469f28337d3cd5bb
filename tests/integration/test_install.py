"""The client library installs relocatably: pkg-config flags that work, the
README's example compiled against the installed library and run against a
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


def readme_example():
    with open(os.path.join(SOURCE, "README.md")) as f:
        m = re.search(r"```c\n(.*?)```", f.read(), re.S)
    assert m, "the README has no ```c example"
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

    def build_and_run_example(self, prefix, name):
        src = os.path.join(self.tmp, name + ".c")
        with open(src, "w") as f:
            f.write(readme_example())
        exe = os.path.join(self.tmp, name)
        run(["cc", src] + SANITIZE + self.pkg_flags(prefix) + ["-o", exe])
        out = run([exe, self.stack.core_addr[1]], env=dict(os.environ, LD_LIBRARY_PATH=os.path.join(prefix, "lib")))
        self.assertIn("created, read and deleted", out)

    def test_install_pkg_config_cmake_package_and_relocation(self):
        first = os.path.join(self.tmp, "first")
        run(["cmake", "--install", BUILD, "--prefix", first])
        for f in ["include/profile/client.h", "include/profile/status.h", "lib/libprofile-client.so",
                  "lib/libprofile-client.a", "lib/pkgconfig/profile-client.pc",
                  "lib/cmake/ProfileClient/ProfileClientConfig.cmake", "bin/profilectl"]:
            self.assertTrue(os.path.exists(os.path.join(first, f)), f)

        # Moved elsewhere, everything still points at the new place.
        prefix = os.path.join(self.tmp, "moved", "elsewhere")
        os.makedirs(os.path.dirname(prefix))
        shutil.move(first, prefix)
        flags = self.pkg_flags(prefix)
        includes = [os.path.normpath(x[2:]) for x in flags if x.startswith("-I")]
        self.assertIn(os.path.join(prefix, "include"), includes)
        self.build_and_run_example(prefix, "example")

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
            f.write(readme_example())
        run(["cmake", "-S", proj, "-B", os.path.join(proj, "b"), "-DCMAKE_PREFIX_PATH=" + prefix,
             "-DCMAKE_C_FLAGS=" + " ".join(SANITIZE)])
        run(["cmake", "--build", os.path.join(proj, "b")])
        out = run([os.path.join(proj, "b", "example"), self.stack.core_addr[1]])
        self.assertIn("created, read and deleted", out)


if __name__ == "__main__":
    main()
