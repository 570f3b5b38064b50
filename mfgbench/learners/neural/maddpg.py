"""MADDPG (Lowe et al. 2017) in mean-field form on the particle version of a continuous game.

One actor per population, ``mu_k(t, x, m_1, ..., m_K)``, executed in a decentralised way (an agent
sees its time, its position and the public densities, not the other agents); a centralised critic
per population ``Q_k(t, x, a, m_1, ..., m_K)``, trained on population k's transitions. The mean
field replaces the other agents' observations and actions of the N-agent MADDPG: with a continuum
of agents per population, the state of the others is the vector of densities, each read by an
encoder of its population before the heads (the MADDPG source's population encoders; the
heterogeneous-population source's cross-type awareness). Everything else (targets, Polyak
averaging, replay, exploration, horizon, default and paper configs) is DDPG's (``actor_critic``).
For one population it coincides with DDPG.
"""
from __future__ import annotations

from mfgbench.learners.neural.actor_critic import ActorCriticLearner
from mfgbench.learners.neural.config import MADDPGConfig


class MADDPG(ActorCriticLearner):
    """Mean-field MADDPG: decentralised actors mu_k(t, x, m_1..m_K), centralised critics Q_k(t, x, a, m_1..m_K)."""

    name = "maddpg"
    Config = MADDPGConfig
    densities = "all"
