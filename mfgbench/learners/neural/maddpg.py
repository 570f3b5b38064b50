"""MADDPG (Lowe et al. 2017) in mean-field form on the particle version of a continuous game.

One actor per population, ``mu_k(t, x, m_k)``, executed in a decentralised way (an agent sees
its time, its position and its own population's density); a centralised critic per population
``Q_k(t, x, a, m_1, ..., m_K)`` that sees every population's density, trained on population k's
transitions. The mean field replaces the other agents' observations and actions of the N-agent
MADDPG: with a continuum of agents per population, the state of the others is the vector of
densities. Everything else (targets, Polyak averaging, replay, exploration, horizon) is DDPG's
(``actor_critic``). For one population it coincides with DDPG.
"""
from __future__ import annotations

from mfgbench.learners.base import register_learner
from mfgbench.learners.neural.actor_critic import ActorCriticLearner
from mfgbench.learners.neural.config import MADDPGConfig


@register_learner
class MADDPG(ActorCriticLearner):
    """Mean-field MADDPG: decentralised actors mu_k(t, x, m_k), centralised critics Q_k(t, x, a, m_1..m_K)."""

    name = "maddpg"
    Config = MADDPGConfig
    centralised_critic = True
