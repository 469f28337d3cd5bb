"""The Apache Kafka broker one ctest run shares (a fixture: ctest runs
`start` before the first integration test and `stop` after the last).

    shared_kafka.py start DIR   starts a broker with its data in DIR/broker,
                                detached, waits until it is ready, writes its
                                pid to DIR/pid and its bootstrap list to
                                DIR/bootstrap (the harness reads both through
                                PROFILE_KAFKA_SHARED=DIR)
    shared_kafka.py stop DIR    stops it (SIGTERM, SIGKILL past 60 s) and
                                removes DIR

Each stack on it takes topics and a consumer group of its own names, so the
tests that run at once do not see one another; a test that kills, stops or
restarts Kafka starts a broker of its own instead.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import KAFKA_SCRIPT, free_port  # noqa: E402


def start(folder):
    stop(folder)
    os.makedirs(folder)
    port, cport = free_port(), free_port()
    with open(os.path.join(folder, "kafka.out"), "ab") as out:
        p = subprocess.Popen([KAFKA_SCRIPT, "run", os.path.join(folder, "broker"), "--port", str(port),
                              "--controller-port", str(cport), "--heap", "512m"],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
    with open(os.path.join(folder, "pid"), "w") as f:
        f.write("%d\n" % p.pid)
    r = subprocess.run([KAFKA_SCRIPT, "wait", os.path.join(folder, "broker"), "90", str(p.pid)],
                       capture_output=True, text=True)
    if r.returncode != 0 or p.poll() is not None:
        sys.stderr.write(r.stderr)
        stop(folder)
        return 1
    with open(os.path.join(folder, "bootstrap.tmp"), "w") as f:
        f.write("127.0.0.1:%d\n" % port)
    os.rename(os.path.join(folder, "bootstrap.tmp"), os.path.join(folder, "bootstrap"))
    print("shared Kafka on 127.0.0.1:%d, ready in %s ms" % (port, r.stdout.strip()))
    return 0


def stop(folder):
    try:
        with open(os.path.join(folder, "pid")) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        pid = None
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                if open("/proc/%d/stat" % pid).read().split(")")[1].split()[0] == "Z":
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        except (OSError, IndexError):
            pass
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: shared_kafka.py start|stop DIR")
    sys.exit((start if sys.argv[1] == "start" else stop)(os.path.abspath(sys.argv[2])))
