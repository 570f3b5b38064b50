"""DDPG (Lillicrap et al. 2015) on the particle version of a continuous mean field game.

The population state is an input: actor ``mu(t, x, m)`` (bounded, ``a_max tanh``), critic
``Q(t, x, a, m)``, target networks with Polyak rate tau, a replay buffer, Gaussian,
decaying-Gaussian or Ornstein-Uhlenbeck exploration noise, and no bootstrap past the horizon T
(the episode terminates there; gamma = 1: finite horizon, undiscounted). The default config learns
within the standard suite's budget; ``make_config("ddpg", preset="paper")`` gives the design notes'
exact hyperparameters (``config``). All N agents of a population share the actor; a
multi-population game gets one independent DDPG learner per population, each seeing only its own
population's density unless ``actor_densities`` / ``critic_densities`` say "all" (then it is
``maddpg``). The loop is in ``actor_critic``.
"""
from __future__ import annotations

from mfgbench.learners.neural.actor_critic import ActorCriticLearner
from mfgbench.learners.neural.config import DDPGConfig


class DDPG(ActorCriticLearner):
    """Mean-field DDPG: per population an actor mu(t, x, m_k) and a critic Q(t, x, a, m_k)."""

    name = "ddpg"
    Config = DDPGConfig
    densities = "own"
