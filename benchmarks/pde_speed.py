"""Speed of the PDE reference solver: coupled solves to residual 1e-10.

Run: ``python benchmarks/pde_speed.py [--quick]``. Prints one line per case: game, grid,
method, Newton/Picard iterations, final residual, mass error, wall time and CPU time of
this process (medians over ``--repeat`` runs, after a warm-up solve on a small grid that
compiles the Numba kernels), the wall time of the first of those runs, and the load average
of the machine: on a shared machine the wall time depends on it, the CPU time much less.
The first run in a process also pays the page faults of the memory it touches first (later
solves reuse it: ``reference_solvers.pde.memory``), which on a virtual machine is a visible
part of a 1D solve. ``--fresh N`` also times the first solve in each of N new processes (the
time a user of ``python -m mfgbench reference`` sees, compile excluded) and prints their median.
``--only`` picks cases by game id (e.g. ``--only exit-room-2d-v0``). The 1D solves use both cores
(parallel time steps and vector passes), so CPU time exceeds wall time.

Targets (issue 5): 1D Nx = Nt = 1000 under 2 s; 2D 100 x 100 x 100 under 60 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from mfgbench.games import make
from reference_solvers.pde import solve

CASES = [
    ("crowd-continuous-v0", 1000, 1000, "1D torus, log m coupling"),
    ("lq-continuous-v0", 1000, 1000, "1D interval, mean-field coupling"),
    ("segregation-2pop-v0", 1000, 1000, "1D torus, 2 populations"),
    ("exit-room-2d-v0", 100, 100, "2D box, congestion"),
]


def run(game_id, nx, nt, repeat):
    """Median wall and CPU seconds over ``repeat`` solves, the first solve's wall seconds, and the last result."""
    game = make(game_id)
    solve(game, nx=16 if game.dim == 2 else 64, nt=16)  # compile the kernels outside the timing
    walls, cpus, res = [], [], None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = solve(game, nx=nx, nt=nt, method="newton", tol=1e-10)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), walls[0], res


def fresh_first_solves(game_id, quick, n):
    """Wall seconds of the first solve in each of n new processes (after the small compiling solve)."""
    walls = []
    for _ in range(n):
        cmd = [sys.executable, os.path.abspath(__file__), "--only", game_id, "--first-solve-only"]
        out = subprocess.run(cmd + (["--quick"] if quick else []), capture_output=True, text=True, check=True)
        walls.append(float(out.stdout.split()[-1]))
    return walls


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs per case (medians are printed)")
    ap.add_argument("--fresh", type=int, default=0, help="also time the first solve in this many new processes")
    ap.add_argument("--only", nargs="*", default=None, help="game ids of the cases to run (default: all)")
    ap.add_argument("--quick", action="store_true", help="4x smaller grids (a smoke run)")
    ap.add_argument("--first-solve-only", action="store_true", help=argparse.SUPPRESS)  # a --fresh child
    args = ap.parse_args(argv)
    if args.first_solve_only:
        for game_id, nx, nt, _ in CASES:
            if game_id in args.only:
                wall = run(game_id, nx // 4 if args.quick else nx, nt // 4 if args.quick else nt, 1)[0]
                print(f"{wall:.4f}")
        return
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'game':22s} {'grid':>12s} {'nt':>5s} {'iters':>5s} {'residual':>9s} {'mass err':>9s} {'wall (s)':>9s} "
          f"{'cpu (s)':>8s} {'1st wall':>8s}  notes")
    for game_id, nx, nt, what in CASES:
        if args.only and game_id not in args.only:
            continue
        if args.quick:
            nx, nt = nx // 4, nt // 4
        wall, cpu, first, res = run(game_id, nx, nt, args.repeat)
        s = res.summary()
        grid = "x".join(str(n) for n in s["grid"])
        print(f"{game_id:22s} {grid:>12s} {nt:5d} {s['iterations']:5d} {s['residual']:9.1e} {s['mass_error']:9.1e} "
              f"{wall:9.2f} {cpu:8.2f} {first:8.2f}  {what}; {'; '.join(s['notes'])}", flush=True)
        if args.fresh:
            walls = fresh_first_solves(game_id, args.quick, args.fresh)
            print(f"{'':22s} first solve in {args.fresh} new processes: median {statistics.median(walls):.2f} s "
                  f"(each: {', '.join(f'{w:.2f}' for w in walls)})", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
