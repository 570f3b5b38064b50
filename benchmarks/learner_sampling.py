"""Samples per second of the model-free learners' sampling loops (median of several runs).

- QMI on ring-road-v0 (S = A = 50, the paper preset): the Numba kernel alone on 10^6 pre-drawn samples,
  and a whole outer iteration (rewards at the frozen estimate, 10^6 uniforms drawn from
  the Generator, the kernel). Targets (issue 6): >= 10^7 samples/s off-policy,
  >= 2 x 10^6 on-policy.
- QMI on predator-prey-v0 (finite horizon, one agent per population, time-indexed Q, M).
- Mean-field Nash-Q on predator-prey-v0 (3 populations, T = 9): one episode of N agents
  per population (agent kernels + the game's reward functions at the empirical mean
  field, called from Python at every time step), for several N.
- Classic Nash-Q on Grid Game 1 (a stage game solved at every sample).

A sample is one transition (s, a, r, s') of one agent. Run:
``python benchmarks/learner_sampling.py``.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import mfgbench as mb  # noqa: E402
from _timing import median_seconds  # noqa: E402
from mfgbench.learners.grid_game import GridGame1  # noqa: E402
from mfgbench.learners.nash_q import MeanFieldNashQ, NashQ, NashQ2PConfig, NashQConfig  # noqa: E402
from mfgbench.learners import make_config  # noqa: E402
from mfgbench.learners.qmi import QMI, QMIConfig, qmi_stationary_kernel  # noqa: E402

QMI_TARGETS = {"off-policy": 1e7, "on-policy": 2e6}


def qmi_rows():
    game = mb.make("ring-road-v0")
    n = 1_000_000
    rows = []
    for variant, target in QMI_TARGETS.items():
        learner = QMI(game, make_config("qmi", preset="paper", variant=variant, samples_per_iteration=n),
                      np.random.default_rng(0))
        for _ in range(3):  # compile, and leave the uniform start so Q has structure
            learner.step()
        behaviour = learner.behaviour_policy()
        Mbar = [m.copy() for m in learner._M]
        R, succ, prob = learner._stationary_tables(0, Mbar, [m[:, None] * b for m, b in zip(Mbar, behaviour)])
        cdf = np.cumsum(behaviour[0], axis=1)
        cdf[:, -1] = np.inf
        u = np.random.default_rng(1).random((n, 2))
        Q, M = learner.q_values[0], learner.mean_field_estimate[0]
        visits, counts = np.zeros_like(Q), np.zeros_like(M)
        cfg = learner.config

        def kernel():
            qmi_stationary_kernel(Q, visits, M, counts, R, succ, prob, game.gamma, cdf, variant == "on-policy",
                                  learner.temperature, cfg.alpha, False, cfg.beta, u, 0)

        t_kernel = median_seconds(kernel, repeats=7)
        t_step = median_seconds(learner.step, repeats=5)
        rows.append((f"QMI {variant} kernel", "ring-road-v0", n / t_kernel, target))
        rows.append((f"QMI {variant} outer iteration", "ring-road-v0", n / t_step, target))
    game = mb.make("predator-prey-v0")
    for variant in QMI_TARGETS:
        learner = QMI(game, QMIConfig(variant=variant, samples_per_iteration=n // 3), np.random.default_rng(0))
        learner.step()
        t_step = median_seconds(learner.step, repeats=5)
        rows.append((f"QMI {variant} outer iteration (3 agents)", "predator-prey-v0",
                     3 * learner.config.samples_per_iteration / t_step, None))
    return rows


def nash_q_rows():
    game = mb.make("predator-prey-v0")
    rows = []
    for N in (2_000, 20_000, 200_000):
        learner = MeanFieldNashQ(game, NashQConfig(n_agents=N), np.random.default_rng(0))
        learner.episode()
        per_episode = N * game.horizon * game.n_populations
        t = median_seconds(learner.episode, repeats=5)
        rows.append((f"mean-field Nash-Q episode, N={N}", "predator-prey-v0", per_episode / t, None))
    grid = GridGame1()
    learner = NashQ(grid, NashQ2PConfig(episodes_per_iteration=200), np.random.default_rng(0))
    learner.step()
    before = learner.samples
    t = median_seconds(learner.step, repeats=5, warmup=0)
    rows.append(("classic Nash-Q (stage game per sample)", "grid-game-1", (learner.samples - before) / 5 / t, None))
    return rows


def main():
    rows = qmi_rows() + nash_q_rows()
    print(f"{'loop':42s} {'game':18s} {'samples/s':>12s} {'target':>10s}  ok")
    for name, game, rate, target in rows:
        tgt = f"{target:10.0e}" if target else f"{'-':>10s}"
        ok = ("yes" if rate >= target else "NO") if target else ""
        print(f"{name:42s} {game:18s} {rate:12.3e} {tgt}  {ok}")


if __name__ == "__main__":
    main()
