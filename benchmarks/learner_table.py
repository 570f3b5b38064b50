"""Every tabular learner on every registered finite and stationary game, default settings.

Two tables:

1. time per fictitious-play iteration (exact best response, the default) on every registered
   finite and stationary game at its default parameters: median wall and CPU time of one ``step()`` after a
   warm-up (the Numba kernels compile on the first call);
2. the exploitability each tabular learner reaches with its default budget (``run_trial``'s
   100 iterations, the learner's default config, seed 0), next to the uniform policy's, with
   the learner's own wall time (scoring excluded).

A game a learner does not play (kind) is skipped. Run:
``python benchmarks/learner_table.py [--games g1,g2] [--learners l1,l2] [--iterations N]``.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import mfgbench as mb  # noqa: E402
from mfgbench.games import spec  # noqa: E402
from mfgbench.learners.base import make_learner  # noqa: E402

TABULAR = ("fictitious-play", "mirror-descent", "qmi", "nash-q")


def tabular_games():
    return [g for g in mb.list_games() if spec(g).kind in ("finite", "stationary")]


def fp_iteration_times(game_id, repeats=7):
    """Median (wall, cpu) seconds of one fictitious-play step on ``game_id`` after 2 warm-up steps."""
    game = mb.make(game_id)
    learner = make_learner("fictitious-play", game, rng=np.random.default_rng(0))
    for _ in range(2):
        learner.step()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        learner.step()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    size = sum(p.n_states for p in game.populations)
    return size, statistics.median(wall), statistics.median(cpu)


def plays(learner, game_id):
    try:
        make_learner(learner, mb.make(game_id), rng=np.random.default_rng(0))
    except ValueError:
        return False
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", default="", help="comma-separated game ids (default: every finite/stationary game)")
    ap.add_argument("--learners", default=",".join(TABULAR))
    ap.add_argument("--iterations", type=int, default=100, help="budget of table 2 (run_trial's default: 100)")
    ap.add_argument("--skip-budget", action="store_true", help="print table 1 only")
    args = ap.parse_args(argv)
    games = [g for g in args.games.split(",") if g] or tabular_games()
    learners = [name for name in args.learners.split(",") if name]

    print("== time per fictitious-play iteration (exact best response), default parameters")
    print(f"{'game':26s} {'kind':10s} {'states':>7s} {'wall ms':>10s} {'cpu ms':>10s}")
    for g in games:
        size, wall, cpu = fp_iteration_times(g)
        print(f"{g:26s} {spec(g).kind:10s} {size:7d} {wall * 1e3:10.3f} {cpu * 1e3:10.3f}", flush=True)
    if args.skip_budget:
        return 0

    print(f"\n== exploitability after the default budget ({args.iterations} iterations, default config, seed 0)")
    print(f"{'game':26s} {'learner':16s} {'uniform':>11s} {'final':>11s} {'ratio':>8s} {'learner s':>10s}")
    for g in games:
        game = mb.make(g)
        uniform = mb.exploitability(game, mb.uniform_policy(game))
        for name in learners:
            if not plays(name, g):
                continue
            res = mb.run_trial(game, name, iterations=args.iterations, seed=0, reference=False,
                               checkpoints=[args.iterations])
            final = res.final
            ratio = uniform / final["exploitability"] if final["exploitability"] > 0 else float("inf")
            print(f"{g:26s} {name:16s} {uniform:11.3e} {final['exploitability']:11.3e} {ratio:8.1f} "
                  f"{final['wall_time']:10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
