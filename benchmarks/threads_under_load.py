"""Numba's parallel kernels under a concurrent CPU load: threading layer, wait policy, thread count.

Run: ``python benchmarks/threads_under_load.py [--repeat 3] [--load 0 1 2] [--quick]``.

The case is the 1D crowd-continuous PDE solve on a 1000 x 1000 grid (the toolkit's main parallel
path). Each contender runs in a new process (a threading layer and OpenMP's wait policy are fixed
when a process starts), compiles and warms up on a small grid, then times one solve; the
contenders are interleaved (A B C D, A B C D, ...) and the medians of wall and CPU time printed,
with ``--load N`` busy processes (pure-Python spin loops) running beside them and the load
average printed. Contenders:

- ``omp-spin``: Numba's OpenMP layer as GNU OpenMP starts it by default (idle threads spin
  300,000 times before sleeping: ``GOMP_SPINCOUNT=300000``, which ``mfgbench._jit`` respects);
- ``passive-2``: OpenMP with idle threads asleep (``OMP_WAIT_POLICY=PASSIVE``, which
  ``mfgbench._jit`` sets) on a fixed 2 threads (``MFGBENCH_ADAPTIVE_THREADS=0``);
- ``mfgbench``: what the toolkit does when nothing is set in the environment: idle threads asleep,
  and the thread count fitted to the free cores during the solve (``mfgbench._threads``); the
  ``chosen`` column lists the thread counts it used;
- ``workqueue``: Numba's own work-queue layer (2 threads);
- ``1-thread``: one thread (the serial baseline).

A loaded machine must never make the parallel path slower than one thread.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

CONTENDERS = {
    "omp-spin": {"NUMBA_THREADING_LAYER": "omp", "GOMP_SPINCOUNT": "300000", "MFGBENCH_ADAPTIVE_THREADS": "0"},
    "passive-2": {"MFGBENCH_ADAPTIVE_THREADS": "0"},
    "mfgbench": {},
    "workqueue": {"NUMBA_THREADING_LAYER": "workqueue", "MFGBENCH_ADAPTIVE_THREADS": "0"},
    "1-thread": {"NUMBA_NUM_THREADS": "1"},
}
_CLEAR = ("MFGBENCH_ADAPTIVE_THREADS", "NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY", "NUMBA_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")


def _spin(stop):
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def child(n):
    """One timed solve (after a small compiling one): prints wall and CPU seconds and the layer."""
    import numba

    from mfgbench._threads import last_governor
    from mfgbench.games import make
    from reference_solvers.pde import solve
    game = make("crowd-continuous-v0")
    solve(game, nx=64, nt=16)
    t0, c0 = time.perf_counter(), time.process_time()
    solve(game, nx=n, nt=n, method="newton", tol=1e-10)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    governor = last_governor()
    chosen = ",".join(str(t) for t in sorted({t for _, t in governor.history})) if governor else ""
    chosen = chosen or "-"
    print(f"{wall:.4f} {cpu:.4f} {numba.threading_layer()} {numba.get_num_threads()} {chosen}")


def run_contender(name, n):
    env = {k: v for k, v in os.environ.items() if k not in _CLEAR}
    env.update(CONTENDERS[name])
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(n)], env=env,
                         capture_output=True, text=True, check=True)
    wall, cpu, layer, threads, chosen = out.stdout.split()[-5:]
    return float(wall), float(cpu), layer, int(threads), chosen


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="rounds of interleaved runs (medians printed)")
    ap.add_argument("--load", type=int, nargs="*", default=[0, 1, 2], help="busy processes beside the solve")
    ap.add_argument("--quick", action="store_true", help="a 400 x 400 grid (a smoke run)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return
    n = 400 if args.quick else 1000
    print(f"# crowd-continuous-v0 {n}x{n} Newton solve to 1e-10, {os.cpu_count()} cores; "
          f"{args.repeat} interleaved rounds per load; medians")
    print(f"{'load':>4s} {'contender':12s} {'layer':10s} {'threads':>7s} {'wall s':>7s} {'cpu s':>7s} "
          f"{'walls':24s} {'loadavg':>7s} chosen")
    for load in args.load:
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(load)]
        for p in spinners:
            p.start()
        try:
            results = {name: [] for name in CONTENDERS}
            for _ in range(args.repeat):
                for name in CONTENDERS:
                    results[name].append(run_contender(name, n))
            avg = os.getloadavg()[0]
        finally:
            stop.set()
            for p in spinners:
                p.join()
        for name, runs in results.items():
            walls = [r[0] for r in runs]
            print(f"{load:4d} {name:12s} {runs[0][2]:10s} {runs[0][3]:7d} {statistics.median(walls):7.2f} "
                  f"{statistics.median(r[1] for r in runs):7.2f} {' '.join(f'{w:.2f}' for w in walls):24s} "
                  f"{avg:7.1f} {'/'.join(sorted({r[4] for r in runs}))}", flush=True)


if __name__ == "__main__":
    main()
