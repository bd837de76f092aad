#!/usr/bin/python3
"""A simulation for the trust tests, written with the Python client API: a
field `u` of 16 values over STEPS time steps (MELISSA_TEST_STEPS, default 6).
Its first attempt misbehaves as MELISSA_TEST_BEHAVIOUR says; later attempts
behave:

  normal       every step, then finalize
  slow         every step, MELISSA_TEST_SLEEP seconds apart (default 0.5)
  exit0-first  attempt 1 sends 2 steps and exits 0 without melissa_finalize
  short-first  attempt 1 sends 2 steps, then finalize (ends early)
  long-first   attempt 1 sends STEPS + 1 steps
  crash-after-finalize-first
               attempt 1 sends every step, finalizes, then exits 3 (a crash
               after the data was delivered: the retry resends everything)

    misbehaving_client.py A B      (the launcher appends the parameters)
"""
import os
import sys
import time

import numpy as np

import melissa_api

SIZE = 16


def main():
    a, b = float(sys.argv[1]), float(sys.argv[2])
    steps = int(os.environ.get("MELISSA_TEST_STEPS", "6"))
    behaviour = os.environ.get("MELISSA_TEST_BEHAVIOUR", "normal")
    first = os.environ.get("MELISSA_ATTEMPT", "1") == "1"
    sleep = float(os.environ.get("MELISSA_TEST_SLEEP", "0.5")) if behaviour == "slow" else 0.0
    send = steps
    if first and behaviour in ("exit0-first", "short-first"):
        send = 2
    elif first and behaviour == "long-first":
        send = steps + 1
    melissa_api.init("u", SIZE)
    for t in range(send):
        melissa_api.send("u", np.full(SIZE, a + b * t, dtype=np.float32))
        time.sleep(sleep)
    if first and behaviour == "exit0-first":
        sys.stdout.flush()
        os._exit(0)
    melissa_api.finalize()
    if first and behaviour == "crash-after-finalize-first":
        sys.exit(3)


if __name__ == "__main__":
    main()
