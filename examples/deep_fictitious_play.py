"""Deep fictitious play on crowd-1d-v0: Stable-Baselines3 agents as best responders, scored exactly.

Each iteration of fictitious play needs a best response to the flow of the current average policy.
Here a deep RL agent learns it on ``mfgbench.envs.BestResponseEnv`` (DQN by default, or PPO), and
mfgbench tabulates the agent's policy, averages it in, and scores the average exactly at every
iteration, next to exact fictitious play (exact best responses) on the same game.

    pip install -e ".[rl]"
    python examples/deep_fictitious_play.py                        # DQN, 10 iterations (~1 CPU-minute)
    python examples/deep_fictitious_play.py --algorithm ppo --timesteps 4096

Prints the exploitability of both at every iteration and writes the curves to
``results/deep_fictitious_play.png``.
"""
from __future__ import annotations

import argparse
import functools
from pathlib import Path

import mfgbench as mb
from mfgbench.envs.sb3 import dqn_best_response


def ppo_best_response(env, seed, timesteps):
    """A best responder of your own: any callable (env, seed) -> policy (here a trained PPO model)."""
    import torch
    from stable_baselines3 import PPO
    torch.set_num_threads(1)   # small networks: one thread is fastest
    model = PPO("MlpPolicy", env, gamma=env.gamma, n_steps=512, batch_size=64, seed=seed, verbose=0)
    model.learn(total_timesteps=timesteps)
    return model


def run(game_id: str, algorithm: str, iterations: int, timesteps: int, seed: int, out: Path) -> None:
    trainer = dqn_best_response if algorithm == "dqn" else ppo_best_response
    checkpoints = range(1, iterations + 1)
    deep = mb.run_trial(game_id, "fictitious-play", iterations=iterations, seed=seed, checkpoints=checkpoints,
                        best_response="external",
                        best_responder=functools.partial(trainer, timesteps=timesteps))
    exact = mb.run_trial(game_id, "fictitious-play", iterations=iterations, seed=seed, checkpoints=checkpoints)
    game = mb.make(game_id)
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    print(f"{game_id}: exploitability (uniform policy {uniform:.4f}); best responses by {algorithm.upper()}, "
          f"{timesteps} transitions each")
    print(f"{'iteration':>9}  {'deep FP':>10}  {'exact FP':>10}  {'samples':>8}")
    for d, e in zip(deep.history, exact.history):
        print(f"{d['iteration']:>9}  {d['exploitability']:>10.4f}  {e['exploitability']:>10.4f}  {d['samples']:>8}")
    print(f"final flow distance to the reference (TV): deep {deep.final['tv']:.4f}, exact {exact.final['tv']:.4f}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    its = [h["iteration"] for h in deep.history]
    ax.loglog(its, [h["exploitability"] for h in deep.history], "o-", label=f"deep FP ({algorithm.upper()})")
    ax.loglog(its, [h["exploitability"] for h in exact.history], "s-", label="exact FP")
    ax.axhline(uniform, color="gray", ls=":", label="uniform policy")
    ax.set_xlabel("fictitious-play iteration")
    ax.set_ylabel("exact exploitability")
    ax.set_title(game_id)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--game", default="crowd-1d-v0")
    p.add_argument("--algorithm", choices=("dqn", "ppo"), default="dqn")
    p.add_argument("--iterations", type=int, default=10, help="fictitious-play iterations")
    p.add_argument("--timesteps", type=int, default=3000, help="environment transitions per best response")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results") / "deep_fictitious_play.png")
    args = p.parse_args(argv)
    run(args.game, args.algorithm, args.iterations, args.timesteps, args.seed, args.out)


if __name__ == "__main__":
    main()
