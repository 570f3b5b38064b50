"""Learners: iterative algorithms scored against certified references.

Exact-model learners: fictitious play, online mirror descent. Model-free learners:
QMI and Nash-Q. ``make_learner(name, game, config, rng)`` builds one by name.
"""
from mfgbench.learners.base import (Learner, config_dict, learner_class, list_learners, make_config, make_learner,
                                    register_learner)
from mfgbench.learners import fictitious_play, mirror_descent, nash_q, qmi  # noqa: F401  (registers them)
try:
    from mfgbench.learners import neural  # noqa: F401  (registers ddpg, maddpg; unavailable without torch)
except ImportError:  # the PDE reference solvers are missing from a partial install
    pass

__all__ = ["Learner", "config_dict", "learner_class", "list_learners", "make_config", "make_learner",
           "register_learner"]
