"""Bring your own agent: environment speed, the DQN best responder's cost, deep vs exact fictitious play.

1. Transitions per second of ``BestResponseEnv`` (one agent, Python ``step`` loop with random
   actions) on crowd-1d-v0 and predator-prey-v0, and of ``parallel_env`` (all agents of all
   populations per step) with N = 100 and 1000 agents per population.
2. ``dqn_best_response`` on crowd-1d-v0 (2000 transitions) with one and two torch threads, each
   under GNU OpenMP's default wait policy (idle threads spin a while before sleeping: torch imported
   before mfgbench, as an SB3 script usually does) and under ``OMP_WAIT_POLICY=PASSIVE`` (what
   ``mfgbench._jit`` sets when mfgbench is imported first): every contender in a new process,
   interleaved (A B C D, A B C D, ...), medians of wall and CPU time, and the exact return the
   policy reaches against the best response's.
3. Deep fictitious play (DQN best responses, 2000 transitions each) against exact fictitious play
   on crowd-1d-v0: exact exploitability at iterations 1, 5, 10, 20 and the wall and CPU time.

Every timing is printed with the load average. Run: ``python benchmarks/deep_fictitious_play.py``
(about 3 CPU-minutes, 5-10 minutes wall on a loaded machine; the output in
``benchmarks/out/deep_fictitious_play.txt`` is this script's).
"""
import functools
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

import mfgbench as mb
from mfgbench.envs import BestResponseEnv, parallel_env
from mfgbench.envs.sb3 import dqn_best_response


def timed(fn):
    """(result, wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def env_speed():
    print("1. environment transitions per second (median of 5 runs)")
    for game_id, population in (("crowd-1d-v0", 0), ("predator-prey-v0", 1)):
        env = BestResponseEnv(mb.make(game_id), population=population, seed=0)
        actions = np.random.default_rng(0).integers(env.action_space.n, size=10_000)

        def run():
            env.reset()
            for a in actions:
                if env.step(int(a))[2]:
                    env.reset()

        runs = [timed(run) for _ in range(5)]
        wall, cpu = statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)
        print(f"   BestResponseEnv {game_id:<17} {len(actions) / wall:>9.0f} /s wall, {len(actions) / cpu:>9.0f} /s CPU"
              f"   ({load()})")
    for n in (100, 1000):
        game = mb.make("predator-prey-v0")
        penv = parallel_env(game, n, seed=0)
        rng = np.random.default_rng(0)

        def episode():
            penv.reset()
            while penv.agents:
                penv.step({a: int(rng.integers(5)) for a in penv.agents})

        runs = [timed(episode) for _ in range(5)]
        per_episode = game.horizon * game.n_populations * n
        wall, cpu = statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)
        print(f"   parallel_env predator-prey-v0 N={n:<5} {per_episode / wall:>9.0f} agent-transitions/s wall, "
              f"{per_episode / cpu:>9.0f} /s CPU   ({load()})")


CONTENDER = """
import json, os, sys, time
import torch                      # first: OpenMP's wait policy is fixed when torch loads it
import mfgbench as mb
from mfgbench.envs import BestResponseEnv
from mfgbench.envs.sb3 import dqn_best_response
game = mb.make("crowd-1d-v0")
env = BestResponseEnv(game, seed=0)
wall, cpu = time.perf_counter(), time.process_time()
model = dqn_best_response(env, seed=0, timesteps=2000, torch_threads=int(sys.argv[1]))
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps([wall, cpu, env.exact_return(mb.envs.tabulate_policy(game, model)[0]), env.best_response()[1]]))
"""


def dqn_threads(repeats: int = 3):
    print("2. dqn_best_response, crowd-1d-v0, 2000 transitions: torch threads x OpenMP wait policy "
          f"(new process each, interleaved, median of {repeats})")
    contenders = [(threads, policy) for policy in ("default", "PASSIVE") for threads in (1, 2)]
    results = {c: [] for c in contenders}
    for _ in range(repeats):
        for threads, policy in contenders:
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
            if policy == "PASSIVE":
                env["OMP_WAIT_POLICY"] = "PASSIVE"
            out = subprocess.run([sys.executable, "-c", CONTENDER, str(threads)], env=env, capture_output=True,
                                 text=True, check=True)
            results[(threads, policy)].append(json.loads(out.stdout.strip().splitlines()[-1]))
    for (threads, policy), rows in results.items():
        print(f"   {threads} thread(s), wait policy {policy:<8}: wall {statistics.median(r[0] for r in rows):6.2f} s, "
              f"CPU {statistics.median(r[1] for r in rows):6.2f} s, exact return {rows[0][2]:.4f} (best response "
              f"{rows[0][3]:.4f})   ({load()})")


def deep_vs_exact():
    print("3. deep (DQN, 2000 transitions per best response) vs exact fictitious play, crowd-1d-v0, seed 0")
    game = mb.make("crowd-1d-v0")
    marks = [1, 5, 10, 20]
    deep, d_wall, d_cpu = timed(lambda: mb.run_trial(
        game, "fictitious-play", iterations=20, seed=0, checkpoints=marks, best_response="external",
        best_responder=functools.partial(dqn_best_response, timesteps=2000)))
    exact, e_wall, e_cpu = timed(lambda: mb.run_trial(game, "fictitious-play", iterations=20, seed=0,
                                                      checkpoints=marks))
    print(f"   uniform policy: {mb.exploitability(game, mb.uniform_policy(game)):.4f}")
    print(f"   {'iteration':>9} {'deep FP':>9} {'exact FP':>9}")
    for d, e in zip(deep.history, exact.history):
        print(f"   {d['iteration']:>9} {d['exploitability']:>9.4f} {e['exploitability']:>9.4f}")
    print(f"   deep FP: wall {d_wall:.1f} s, CPU {d_cpu:.1f} s, {deep.final['samples']} transitions; exact FP (with "
          f"scoring and reference): wall {e_wall:.2f} s, CPU {e_cpu:.2f} s   ({load()})")


def main():
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, {load()}")
    env_speed()
    dqn_threads()
    deep_vs_exact()


if __name__ == "__main__":
    main()
