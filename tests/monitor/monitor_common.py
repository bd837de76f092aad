"""What the monitor tests share: a training study whose first attempt of
simulation 0 hangs until it is killed (the retry runs normally), the
monitor's address from monitor.json, and HTTP calls with or without the token.
"""
import json
import os
import stat
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import HEAT, RUN, SERVER, check, fail, skip_without_torch, start, tmpdir, write_study  # noqa: E402,F401


def slow_first_attempt_client(work, grid, steps):
    """A client command: simulation 0's attempt 1 waits to be killed, every other runs melissa-heat."""
    path = os.path.join(work, "client.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                'if [ "$MELISSA_SIM_ID" = 0 ] && [ "$MELISSA_ATTEMPT" = 1 ]; then sleep 600; exit 1; fi\n'
                f'exec {HEAT} --grid {grid} --steps {steps} "$@"\n')
    os.chmod(path, 0o755)
    return path


def wait_for_file(path, proc, seconds=60):
    deadline = time.time() + seconds
    while not os.path.exists(path):
        if proc.poll() is not None or time.time() > deadline:
            fail(f"no {path} (melissa-run exited {proc.poll()})")
        time.sleep(0.1)


class Monitor:
    def __init__(self, output_dir):
        path = os.path.join(output_dir, "monitor.json")
        self.file_mode = stat.S_IMODE(os.stat(path).st_mode)
        info = json.load(open(path))
        self.url, self.token = info["url"], info["token"]
        self.base = f"http://{info['host']}:{info['port']}"

    def call(self, method, path, body=None, token=True, headers=None):
        """(status, parsed JSON or text, headers)."""
        h = dict(headers or {})
        if token is True:
            h["Authorization"] = "Bearer " + self.token
        elif token:
            h["Authorization"] = "Bearer " + token
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=60) as r:
                status, text, hdrs = r.status, r.read().decode(), r.headers
        except urllib.error.HTTPError as e:
            status, text, hdrs = e.code, e.read().decode(), e.headers
        try:
            return status, json.loads(text), hdrs
        except ValueError:
            return status, text, hdrs

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=b"", **kw):
        return self.call("POST", path, body=body, **kw)

    def ok(self, path, method="GET", body=b""):
        status, j, _ = self.call(method, path, body=body if method == "POST" else None)
        if status != 200 or not isinstance(j, dict) or j.get("ok") is not True:
            fail(f"{method} {path}: {status} {j}")
        return j
