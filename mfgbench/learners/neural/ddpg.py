"""DDPG (Lillicrap et al. 2015) on the particle version of a continuous mean field game.

The population state is an input: actor ``mu(t, x, m)`` (bounded, ``a_max tanh``), critic
``Q(t, x, a, m)``, target networks with Polyak rate tau, a replay buffer, Gaussian exploration
noise, and no bootstrap past the horizon T (the episode terminates there). Defaults of the
design notes: actor lr 1e-4, critic lr 1e-3, tau 1e-3, batch 256, gamma = 1 (finite horizon,
undiscounted). All N agents of a population share the actor; a multi-population game gets one
independent DDPG learner per population, each seeing only its own population's density
(``maddpg`` gives the critics every population's density). The loop is in ``actor_critic``.
"""
from __future__ import annotations

from mfgbench.learners.base import register_learner
from mfgbench.learners.neural.actor_critic import ActorCriticLearner
from mfgbench.learners.neural.config import DDPGConfig


@register_learner
class DDPG(ActorCriticLearner):
    """Mean-field DDPG: per population an actor mu(t, x, m_k) and a critic Q(t, x, a, m_k)."""

    name = "ddpg"
    Config = DDPGConfig
    centralised_critic = False
