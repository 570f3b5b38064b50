"""Environments over the games, for agents trained outside mfgbench, and exact scoring of their policies.

- ``BestResponseEnv(game, flow=None, population=0, seed=None)``: a ``gymnasium.Env`` in which one
  representative agent of a population faces a fixed flow of a finite (or stationary) game;
- ``parallel_env(game, n_agents, seed=None)``: a PettingZoo ``ParallelEnv`` of ``n_agents`` agents per
  population whose mean field is their own empirical distribution;
- ``ParticleVectorEnv`` and ``particle_parallel_env``: the continuous games' particle system
  (``mfgbench.learners.neural.env.ParticleEnv``) as a Gymnasium vector environment (one population)
  and as a PettingZoo ``ParallelEnv`` (any number of populations);
- ``score(game, policy)`` (also ``mb.score``): the exact evaluation of a policy given as a function
  ``policy(t, state, population)`` or as a trained Stable-Baselines3 model.

Gymnasium and PettingZoo are an optional extra (``pip install "mfgbench[rl]"``): this package
imports without them, and only the environments need them.
"""
from mfgbench.envs._optional import INSTALL
from mfgbench.envs.scoring import Score, score, tabulate_policy

_LAZY = {
    "BestResponseEnv": "mfgbench.envs.best_response",
    "MeanFieldParallelEnv": "mfgbench.envs.parallel",
    "parallel_env": "mfgbench.envs.parallel",
    "ParticleVectorEnv": "mfgbench.envs.particles",
    "ParticleParallelEnv": "mfgbench.envs.particles",
    "particle_parallel_env": "mfgbench.envs.particles",
}


def __getattr__(name):
    # the environments subclass gymnasium / PettingZoo classes: import them only when asked for
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = ["BestResponseEnv", "INSTALL", "MeanFieldParallelEnv", "ParticleParallelEnv", "ParticleVectorEnv",
           "Score", "parallel_env", "particle_parallel_env", "score", "tabulate_policy"]
