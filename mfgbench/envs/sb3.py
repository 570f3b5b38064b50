"""Stable-Baselines3 best responders for fictitious play's ``best_response="external"``.

``dqn_best_response(env, seed)`` trains SB3's DQN on a ``BestResponseEnv`` and returns the model
(``mb.score`` and fictitious play tabulate its greedy policy). Its defaults suit the small finite
games of the benchmark (a few hundred (t, s) pairs): the discount is the environment's (1 in a
finite game, the game's gamma in a stationary one), one hidden layer of 64 units, a replay buffer
holding the whole run, epsilon-greedy exploration decaying from 1 to 0.05 over the first half of
the run. Any DQN argument can be overridden: ``functools.partial(dqn_best_response, timesteps=20_000,
learning_rate=5e-4)``. In a suite file: ``best_responder = "mfgbench.envs.sb3:dqn_best_response"``.

Training runs on ``torch_threads`` threads (default 1; the previous count is restored afterwards):
networks this small gain nothing from more, and on a loaded 2-core machine two threads under GNU
OpenMP's default wait policy (torch imported before mfgbench) made a run 14x slower in wall time,
1.4x under ``OMP_WAIT_POLICY=PASSIVE`` (benchmarks/out/deep_fictitious_play.txt). SB3 seeds
Python's, NumPy's and torch's global generators from ``seed`` (its own convention); with the same
seed the runs repeat exactly on a CPU (the same numbers on one thread and on two).
"""
from __future__ import annotations

from mfgbench.envs._optional import require

DQN_DEFAULTS = dict(learning_rate=1e-3, batch_size=64, train_freq=1, gradient_steps=1, target_update_interval=200,
                    exploration_fraction=0.5, exploration_initial_eps=1.0, exploration_final_eps=0.05,
                    policy_kwargs=dict(net_arch=[64]), verbose=0)
"""DQN arguments of ``dqn_best_response`` besides the discount, buffer size, warm-up and seed."""


def dqn_best_response(env, seed: int, timesteps: int = 5000, torch_threads: int = 1, **dqn_kwargs):
    """Train DQN on ``env`` for ``timesteps`` transitions and return the model.

    Warm-up (``learning_starts``): a quarter of the run, at most 500 transitions.
    """
    sb3 = require("stable_baselines3", "mfgbench.envs.sb3.dqn_best_response")
    import torch   # installed with stable-baselines3
    for name, value in (("timesteps", timesteps), ("torch_threads", torch_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"dqn_best_response: {name} must be a positive integer, got {value!r}")
    kwargs = {**DQN_DEFAULTS, "gamma": env.gamma, "buffer_size": timesteps,
              "learning_starts": min(500, timesteps // 4), **dqn_kwargs}
    threads = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        model = sb3.DQN("MlpPolicy", env, seed=seed, **kwargs)
        model.learn(total_timesteps=timesteps)
    finally:
        torch.set_num_threads(threads)
    return model
