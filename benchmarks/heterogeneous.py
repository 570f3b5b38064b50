"""The heterogeneous games against the main job's budget: time to a certified reference, and the
standard suite's tabular trials (100 iterations, 20 exact-evaluation checkpoints) on each.

1. Reference, cold (no reference cache), in this process after a warm-up solve of a small
   instance of every game (Numba compilation and loading excluded): median wall and CPU time over
   ``--repeats``, the games interleaved (A B C A B C). Target: <= ~10 CPU s each.
2. Reference in a fresh process (``--fresh`` processes per game, interleaved): the first solve's
   CPU time there, which includes loading the cached Numba kernels; median.
3. Every tabular learner of the standard suite (its settings from ``suite.standard()``) for 100
   iterations with the checkpoints scored against the reference: median wall and CPU time over
   ``--repeats`` (interleaved), final exploitability per type, and for fictitious play the ratio
   of the uniform policy's exploitability to the final one (the tests ask >= 20). Target: <= ~2 CPU s
   per trial.

The load average is printed before and after each part. About 3 minutes on an idle 2-core machine:

    python benchmarks/heterogeneous.py [--repeats 3] [--fresh 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import mfgbench as mb
from mfgbench.bench.suite import standard
from mfgbench.reference import reference

GAMES = ["predator-prey-capture-v0", "traffic-3type-v0", "sir-types-v0"]
WARM = {"predator-prey-capture-v0": dict(size=5, horizon=4), "traffic-3type-v0": dict(length=4, horizon=3),
        "sir-types-v0": dict(horizon=4)}

FRESH = """
import json, sys, time
start_cpu, start = time.process_time(), time.perf_counter()
import mfgbench as mb
ref = mb.reference(mb.make(sys.argv[1]), cache=False)
print(json.dumps({"cpu": time.process_time() - start_cpu, "wall": time.perf_counter() - start,
                  "certified": ref.certified}))
"""


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(fn):
    start, start_cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - start_cpu, out


def references(repeats):
    for g in GAMES:   # warm-up: compile / load every kernel the solve uses
        reference(mb.make(g, **WARM[g]), cache=False)
    runs = {g: [] for g in GAMES}
    for _ in range(repeats):
        for g in GAMES:
            runs[g].append(timed(lambda: reference(mb.make(g), cache=False)))
    print("| game | median wall s | median CPU s | certified | exploitability | method |")
    print("|---|---:|---:|---|---:|---|")
    for g in GAMES:
        wall = statistics.median(r[0] for r in runs[g])
        cpu = statistics.median(r[1] for r in runs[g])
        ref = runs[g][-1][2]
        print(f"| {g} | {wall:.2f} | {cpu:.2f} | {ref.certified} | {ref.exploitability:.1e} | {ref.method} |")
    return {g: runs[g][-1][2] for g in GAMES}


def fresh(n):
    runs = {g: [] for g in GAMES}
    for _ in range(n):
        for g in GAMES:
            out = subprocess.run([sys.executable, "-c", FRESH, g], capture_output=True, text=True, check=True)
            runs[g].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("| game | first solve in a new process: median CPU s (imports, Numba cache included) | median wall s "
          "| certified |")
    print("|---|---:|---:|---|")
    for g in GAMES:
        print(f"| {g} | {statistics.median(r['cpu'] for r in runs[g]):.2f} | "
              f"{statistics.median(r['wall'] for r in runs[g]):.2f} | {all(r['certified'] for r in runs[g])} |")


def trials(refs, repeats):
    specs = [t for t in standard().trials if t.game in GAMES and t.seed == 0]
    for t in specs:   # warm-up: every learner's kernels on every game
        mb.run_trial(mb.make(t.game), t.learner, iterations=2, seed=0, reference=refs[t.game], **t.config)
    runs = {(t.game, t.learner, t.tag): [] for t in specs}   # tuned and paper rows apart
    for _ in range(repeats):
        for t in specs:
            runs[t.game, t.learner, t.tag].append(timed(lambda: mb.run_trial(
                mb.make(t.game), t.learner, iterations=t.iterations, seed=t.seed, reference=refs[t.game], **t.config)))
    print("| game | learner | config | iterations | median wall s | median CPU s | final exploitability | per type | "
          "uniform / final |")
    print("|---|---|---|---:|---:|---:|---:|---|---:|")
    for t in specs:
        game = mb.make(t.game)
        res = runs[t.game, t.learner, t.tag][-1][2]
        final = res.final["exploitability"]
        uniform = mb.exploitability(game, mb.uniform_policy(game))
        per = ", ".join(f"{p.name} {x:.2g}" for p, x in zip(game.populations, res.final["per_population"]))
        print(f"| {t.game} | {t.learner} | {t.tag} | {t.iterations} | "
              f"{statistics.median(r[0] for r in runs[t.game, t.learner, t.tag]):.2f} | "
              f"{statistics.median(r[1] for r in runs[t.game, t.learner, t.tag]):.2f} | {final:.3g} | {per} | "
              f"{uniform / final:.1f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fresh", type=int, default=3)
    args = ap.parse_args(argv)
    print(time.strftime("%Y-%m-%d %H:%M:%S %Z"), "|", os.cpu_count(), "cores |", load())
    print("\n## 1. Certified reference, cold (no cache), kernels warm\n")
    refs = references(args.repeats)
    print("\n" + load())
    print("\n## 2. Certified reference, first solve in a new process\n")
    fresh(args.fresh)
    print("\n" + load())
    print("\n## 3. The standard suite's tabular trials (100 iterations, 20 scored checkpoints)\n")
    trials(refs, args.repeats)
    print("\n" + load())


if __name__ == "__main__":
    main()
