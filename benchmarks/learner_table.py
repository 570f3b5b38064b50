"""Every tabular learner on every registered finite and stationary game, and on the standard
suite's discretized continuous games (issues 16, 18).

Two tables:

1. time per fictitious-play iteration (exact best response, the default) on every game at its
   default parameters: median wall and CPU time of one ``step()`` after a warm-up (the Numba
   kernels compile on the first call);
2. the exploitability each tabular learner reaches at the standard budget (``run_trial``'s
   100 iterations, with its 20 exact-evaluation checkpoints), mean and std over seeds 0, 1, 2,
   with three configs: ``paper`` (the learner's "paper" preset: its source's hyperparameters),
   ``default`` (the learner's default config) and ``tuned`` (the shipped tuned file,
   ``mfgbench/learners/tuned.toml``: the game's entry, else its family's, as the standard suite
   looks them up); next to the uniform policy's exploitability and the ratio uniform / mean;
   and the CPU seconds of one whole trial (learner and checkpoints). Exact learners
   (fictitious play, mirror descent) draw no random number: they run once.

The continuous games of the standard suite (``crowd-continuous-v0``, ``segregation-2pop-v0``)
are played on the grid the suite plays them on (``mfgbench.bench.suite.DEFAULT_BRIDGE``), as
finite games. A game a learner does not play (kind) is skipped. Runtime: about 25 CPU-minutes.
Run: ``python benchmarks/learner_table.py [--games g1,g2] [--learners l1,l2] [--iterations N]
[--configs paper,default,tuned] [--skip-timing]``.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import mfgbench as mb  # noqa: E402
from mfgbench.bench.suite import standard  # noqa: E402
from mfgbench.games import spec  # noqa: E402
from mfgbench.learners import learner_class, make_config  # noqa: E402
from mfgbench.learners.base import make_learner  # noqa: E402
from mfgbench.learners.tuned import tuned_config  # noqa: E402

TABULAR = ("fictitious-play", "mirror-descent", "qmi", "nash-q")
SEEDS = (0, 1, 2)


def bridges() -> dict:
    """The continuous games the standard suite plays on a grid, and the grid."""
    return {t.game: t.discretize for t in standard().trials if t.discretize}


def tabular_games():
    return [g for g in mb.list_games() if spec(g).kind in ("finite", "stationary")] + list(bridges())


def make_game(game_id):
    """The game a tabular learner plays: the registered one, or a continuous game's discretization."""
    game = mb.make(game_id)
    if spec(game_id).kind == "continuous":
        from reference_solvers.pde.discretize import discretize
        game = discretize(game, **bridges()[game_id])
    return game


def kind(game_id) -> str:
    """The kind of game a tabular learner plays (a discretized continuous game is finite)."""
    return "finite" if spec(game_id).kind == "continuous" else spec(game_id).kind


def fp_iteration_times(game_id, repeats=7):
    """Median (wall, cpu) seconds of one fictitious-play step on ``game_id`` after 2 warm-up steps."""
    game = make_game(game_id)
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
        make_learner(learner, make_game(game_id), rng=np.random.default_rng(0))
    except ValueError:
        return False
    return True


def trial_row(game, name, config, iterations):
    """(mean, std, CPU seconds per trial) of the final exploitability over the seeds."""
    seeds = SEEDS if learner_class(name).model_free else SEEDS[:1]
    finals, cpu = [], []
    for seed in seeds:
        c0 = time.process_time()
        res = mb.run_trial(game, name, iterations=iterations, seed=seed, config=config, reference=False)
        cpu.append(time.process_time() - c0)
        finals.append(res.final["exploitability"])
    return float(np.mean(finals)), float(np.std(finals)), float(np.mean(cpu))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", default="", help="comma-separated game ids (default: every finite/stationary game)")
    ap.add_argument("--learners", default=",".join(TABULAR))
    ap.add_argument("--iterations", type=int, default=100, help="budget of table 2 (the standard budget: 100)")
    ap.add_argument("--configs", default="paper,default,tuned", help="columns of table 2")
    ap.add_argument("--skip-timing", action="store_true", help="print table 2 only")
    args = ap.parse_args(argv)
    games = [g for g in args.games.split(",") if g] or tabular_games()
    learners = [name for name in args.learners.split(",") if name]
    print(f"# benchmarks/learner_table.py at {time.strftime('%H:%M UTC %Y-%m-%d', time.gmtime())}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)

    if not args.skip_timing:
        print("== time per fictitious-play iteration (exact best response), default parameters")
        print(f"{'game':26s} {'kind':10s} {'states':>7s} {'wall ms':>10s} {'cpu ms':>10s}")
        for g in games:
            size, wall, cpu = fp_iteration_times(g)
            print(f"{g:26s} {kind(g):10s} {size:7d} {wall * 1e3:10.3f} {cpu * 1e3:10.3f}", flush=True)
        print()

    labels = [c for c in args.configs.split(",") if c]
    print(f"== final exploitability at the standard budget ({args.iterations} iterations), mean (std) over seeds "
          f"{','.join(map(str, SEEDS))}; ratio = uniform / mean; cpu = CPU s per trial (learner + 20 checkpoints)")
    print(f"{'game':24s} {'learner':16s} {'uniform':>9s} | " +
          " | ".join(f"{label:>20s} {'ratio':>7s} {'cpu':>5s}" for label in labels), flush=True)
    for g in games:
        game = make_game(g)
        uniform = mb.exploitability(game, mb.uniform_policy(game))
        for name in learners:
            if not plays(name, g):
                continue
            cells = []
            for label in labels:
                if label == "paper":
                    config = make_config(name, preset="paper")
                elif label == "default":
                    config = make_config(name)
                else:
                    config = make_config(name, **(tuned_config(name, g, kind(g)) or {}))
                mean, std, cpu = trial_row(game, name, config, args.iterations)
                ratio = uniform / mean if mean > 0 else float("inf")
                cells.append(f"{mean:9.3e} ({std:8.2e}) {ratio:7.1f} {cpu:5.2f}")
            print(f"{g:24s} {name:16s} {uniform:9.3e} | " + " | ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
