#!/usr/bin/env python3
"""A toy "solver" instrumented with the Melissa Python API: the same travelling
pulse as toy_solver.c (see there). With mpi4py installed and several ranks the
domain is block-distributed; without it one process owns the whole field.

    mpirun -n 2 python3 toy_solver.py [--steps N] [--size N] [--field NAME] [--no-mpi]
"""
import argparse

import numpy as np

import melissa_api


def pulse(first, last, size, t, steps, sim_id):
    i = np.arange(first, last, dtype=np.float64)
    x = i / float(size - 1)
    center = float(t) / float(steps)
    d = (x - center) * 10.0
    return (1.0 + 0.5 * float(sim_id)) / (1.0 + d * d)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--field", default="temperature")
    parser.add_argument("--no-mpi", action="store_true", help="do not use mpi4py even if present")
    args = parser.parse_args()

    comm = None
    if not args.no_mpi:
        try:
            from mpi4py import MPI
            comm = MPI.COMM_WORLD
        except ImportError:
            pass
    rank, ranks = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
    first = args.size * rank // ranks
    last = args.size * (rank + 1) // ranks

    melissa_api.init(args.field, last - first, comm)
    sim_id = melissa_api.sim_id()
    for t in range(args.steps):
        melissa_api.send(args.field, pulse(first, last, args.size, t, args.steps, sim_id))
    melissa_api.finalize()
    if rank == 0:
        print(f"toy_solver.py: simulation {sim_id} sent {args.steps} steps of {args.size} values")


if __name__ == "__main__":
    main()
