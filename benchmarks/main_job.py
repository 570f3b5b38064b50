"""Wall time of the main job, ``python -m mfgbench run``, as a new user sees it.

Run: ``python benchmarks/main_job.py [--suite standard] [--runs 2] [--args ...]``.

Clones this repository into a temporary folder (so nothing is compiled yet: Numba's cache lives
beside the sources, and no reference is cached), then runs ``python -m mfgbench run`` there with
the clone first on ``PYTHONPATH``, ``--runs`` times in a row into the same results folder:
the first run is the cold one (Numba compilation and every reference included), the later ones are
warm (kernels and references cached; with ``--no-resume`` so the trials run again). Prints, per
run, the wall time, the CPU time of the run and its worker processes, the trials' status line
and the load average before and after. Targets (issue 15): cold <= 10 min on 2 idle cores, warm
<= 3 min.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def children_cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def timed_run(clone: Path, out: Path, extra: list, resume: bool) -> tuple:
    env = dict(os.environ, PYTHONPATH=str(clone))
    cmd = [sys.executable, "-m", "mfgbench", "run", "--out", str(out), "--quiet", *extra]
    if not resume:
        cmd.append("--no-resume")
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), children_cpu()
    proc = subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode != 0:
        last = f"exit {proc.returncode}: {(proc.stderr.strip().splitlines() or [''])[-1]}"
    return wall, cpu, load, os.getloadavg()[0], last


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2, help="runs in a row: the first cold, the others warm")
    ap.add_argument("--suite", default=None, help="suite to run (default: whatever `run` runs by default)")
    ap.add_argument("--args", nargs=argparse.REMAINDER, default=[], help="more arguments for `run`")
    args = ap.parse_args(argv)
    extra = (["--suite", args.suite] if args.suite else []) + args.args
    with tempfile.TemporaryDirectory(prefix="mfgbench-main-job-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                             text=True).stdout.strip()
        print(f"# python -m mfgbench run {' '.join(extra)} from a fresh clone of {rev}; "
              f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"{'run':5s} {'wall s':>8s} {'cpu s':>8s} {'load before':>11s} {'after':>6s}  result")
        for i in range(args.runs):
            wall, cpu, before, after, last = timed_run(clone, Path(tmp) / "results", extra, resume=i == 0)
            print(f"{'cold' if i == 0 else 'warm':5s} {wall:8.1f} {cpu:8.1f} {before:11.1f} {after:6.1f}  {last}",
                  flush=True)


if __name__ == "__main__":
    main()
