"""Helpers shared by the heat solver's integration tests (run with Debian's python3 + numpy)."""
import os
import subprocess
import sys

PARAMS = ["312.5", "104.2", "220", "400", "150"]


def binary():
    if len(sys.argv) < 2:
        sys.exit("usage: %s PATH/TO/melissa-heat" % sys.argv[0])
    return os.path.abspath(sys.argv[1])


def mpirun(n):
    """mpirun prefix for n ranks: oversubscribed, root allowed (containers, CI)."""
    return ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", str(n)]


def run(cmd, expect_rc=0, **kw):
    env = dict(os.environ)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    # Stream mode must not find a server left in the environment by a caller.
    for key in ("MELISSA_SERVER_ADDRESSES", "MELISSA_SIM_ID"):
        env.pop(key, None)
    env.update(kw.pop("extra_env", {}))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, **kw)
    if expect_rc is not None and p.returncode != expect_rc:
        raise AssertionError("%s\nexit %d (expected %d)\nstdout: %s\nstderr: %s"
                             % (" ".join(cmd), p.returncode, expect_rc, p.stdout, p.stderr))
    return p


class Results:
    """Counts checks; prints the closing 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
            print("ok     " + what)
        else:
            self.failed += 1
            print("FAILED " + what)

    def run(self, fn, *args):
        try:
            fn(self, *args)
        except Exception as e:  # a crashed case counts as one failure, the rest go on
            self.check(False, "%s: %s" % (fn.__name__, e))

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
