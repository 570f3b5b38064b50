"""Neural learners: particle-environment speed, wall time to the issue's targets, density figures.

1. Environment steps per second of ``ParticleEnv`` with N = 10^4 agents per population
   (zero actions; one step moves every agent of every population, histograms them on the PDE
   grid and evaluates the rewards), on lq-continuous-v0 and segregation-2pop-v0.
2. Wall time (learner time, scoring excluded) for DDPG on lq-continuous-v0 to lower the PDE
   exploitability 5x from its initial policy with W1 < 0.1 to the PDE equilibrium density, and
   for MADDPG on segregation-2pop-v0 to lower it 3x; scored every ``--every`` episodes, up to
   ``--episodes``. Budget: the tests' CI budget (``tests/neural/test_learners.py``).
3. Figures: particle density of each learner's final noise-free rollout against the PDE
   equilibrium density at t = 0, T/2, T, per population (one PNG per learner).

Run: ``python benchmarks/neural_speed.py [OUT_DIR]`` (default ``benchmarks/out``).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import mfgbench as mb  # noqa: E402
from _timing import median_seconds  # noqa: E402
from mfgbench.learners.neural.env import ParticleEnv  # noqa: E402

CI = dict(n_agents=1000, n_steps=25, actor_lr=1e-3, critic_lr=1e-3, tau=5e-3, updates_per_step=2,
          learning_starts=1000, eval_agents=5000)
TARGETS = {"ddpg": ("lq-continuous-v0", 5.0, 0.1), "maddpg": ("segregation-2pop-v0", 3.0, None)}
EXTRA = {"maddpg": dict(n_agents=2000, n_steps=100, updates_per_step=1, exploration_noise=1.0, tau=0.02,
                        exploration="deviators", mean_field_update="fictitious", critic_form="gradient",
                        time_to_go=True, position_modes=10)}
"""The slow test's settings for segregation (tests/neural/test_learners.py, ``SEGREGATION_3X``): 100
steps, so that the actor is trained at the scoring grid's times (the PDE equilibrium restricted to a
piecewise-constant control on 25 / 50 / 100 steps scores 0.0141 / 0.0064 / 0.0043)."""


def env_speed(game_id, n_agents=10_000, n_steps=100):
    game = mb.make(game_id)
    env = ParticleEnv(game, n_agents=n_agents, n_steps=n_steps)
    zeros = tuple(np.zeros((n_agents, game.dim)) for _ in range(game.n_populations))

    def episode():
        env.reset(seed=0)
        for _ in range(n_steps):
            env.step(zeros)

    seconds = median_seconds(episode, repeats=3)
    cpu = []
    for _ in range(3):  # CPU time too: wall time is noisy on a shared machine
        start = time.process_time()
        episode()
        cpu.append(time.process_time() - start)
    cpu = float(np.median(cpu))
    return n_steps / seconds, n_steps * n_agents * game.n_populations / seconds, n_steps / cpu


def time_to_target(name, episodes, every, seed=0):
    import torch

    from mfgbench.learners import make_learner
    from mfgbench.learners.neural import pde_reference, score_continuous

    torch.set_num_threads(1)
    game_id, factor, w1_max = TARGETS[name]
    game = mb.make(game_id)
    ref = pde_reference(game)
    learner = make_learner(name, game, rng=np.random.default_rng(seed), **{**CI, **EXTRA.get(name, {})})
    first = score_continuous(game, learner, ref)
    spent, cpu, reached, score = 0.0, 0.0, None, first
    for ep in range(1, episodes + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        learner.step()
        spent += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        if ep % every == 0 or ep == episodes:
            score = score_continuous(game, learner, ref)
            ok = score["exploitability"] <= first["exploitability"] / factor and (w1_max is None or score["w1"] < w1_max)
            print(f"  {name} ep {ep:4d}  {spent:6.1f}s wall {cpu:6.1f}s CPU  E={score['exploitability']:.4f}  W1={score['w1']:.3f}", flush=True)
            if ok and reached is None:
                reached = (ep, spent, score["exploitability"], score["w1"], cpu)
    return game, ref, learner, first, score, reached, spent, cpu


def figure(path, game, ref, score, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = ref.grid
    x = grid.axes[0]
    K = game.n_populations
    fig, axes = plt.subplots(K, 3, figsize=(11, 3 * K), squeeze=False)
    times = score["times"]
    for k in range(K):
        for col, frac in enumerate((0.0, 0.5, 1.0)):
            j = int(round(frac * (len(times) - 1)))
            n = int(np.argmin(np.abs(ref.times - times[j])))
            ax = axes[k][col]
            ax.plot(x, ref.m[k][n], "k-", lw=2, label="PDE equilibrium")
            ax.step(x, score["flow"][k][j], where="mid", color="C1", lw=1, label="particles (learner)")
            ax.plot(x, score["pde_flow"][k][n], "C0--", lw=1, label="PDE flow of the learned feedback")
            ax.set_title(f"{game.populations[k].name}, t = {times[j]:.2f}")
            ax.set_xlabel("x")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=os.path.join(os.path.dirname(__file__), "out"))
    parser.add_argument("--episodes", type=int, default=150)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--only", choices=("env", "ddpg", "maddpg"), default=None,
                        help="run one part only (env speed, or one learner's time to target)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for game_id in ("lq-continuous-v0", "segregation-2pop-v0") if args.only in (None, "env") else ():
        steps, agent_steps, cpu_steps = env_speed(game_id)
        rows.append(f"| env steps/s, {game_id}, N = 10^4 per population | {steps:,.0f} steps/s wall, "
                    f"{cpu_steps:,.0f} per CPU second ({agent_steps:.2e} agent-steps/s wall) |")
        print(rows[-1], flush=True)
    for name in [n for n in ("ddpg", "maddpg") if args.only in (None, n)]:
        game, ref, learner, first, score, reached, spent, cpu = time_to_target(name, args.episodes, args.every)
        _, factor, w1_max = TARGETS[name]
        target = f"E / {factor:g}" + (f", W1 < {w1_max}" if w1_max else "")
        if reached:
            ep, secs, e, w, secs_cpu = reached
            rows.append(f"| {name} on {game.id}: time to {target} | {secs:.1f} s wall, {secs_cpu:.1f} s CPU ({ep} episodes; "
                        f"E {first['exploitability']:.4f} -> {e:.4f}, W1 {w:.3f}) |")
        else:
            rows.append(f"| {name} on {game.id}: time to {target} | not reached in {args.episodes} episodes "
                        f"({spent:.1f} s wall, {cpu:.1f} s CPU; E {first['exploitability']:.4f} -> {score['exploitability']:.4f}) |")
        print(rows[-1], flush=True)
        path = os.path.join(args.out, f"neural_{name}_{game.id}.png")
        figure(path, game, ref, score, f"{name} on {game.id} after {args.episodes} episodes: "
                                       f"E = {score['exploitability']:.4f}, W1 = {score['w1']:.3f}")
        print("wrote", path)
    print("\n| measurement | result |\n|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
