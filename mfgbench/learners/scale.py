"""The reward scale of a game: the unit of the learners' temperatures and step sizes.

    reward_scale(game) = E(uniform) / (K H),

the exact exploitability of the uniform policy, per population (K of them) and per unit
of horizon (``H = T`` in a finite-horizon game, ``H = 1 / (1 - gamma)`` in a stationary
discounted one). By the performance-difference identity,

    E_k(uniform) = sum_{t < T} E_{s ~ mu^unif_t} [ max_a Q^BR_t(s, a) - mean_a Q^BR_t(s, a) ]

(``Q^BR`` the best response's Q-values against the uniform policy's flow; in a stationary
game ``(1 - gamma) E_k = E_{s ~ mu^unif}[max_a Q^BR(s, a) - mean_a Q^BR(s, a)]``), so the
scale is the mean gap, along the uniform policy's flow, between the best action and the
average action: the size of the Q-value differences that a softmax temperature or a
mirror-descent step acts on. ring-road-v0 (rewards of order 1e-3) has a scale of 1.2e-3,
predator-prey-v0 (log-density rewards of order 50) one of 1.4.

The scale is computed from the game alone (one exact evaluation of its uniform policy),
never from a reference equilibrium, and it is linear in the rewards: multiplying every
reward by c multiplies it by c, so a learner whose temperatures are multiples of it and
whose steps are multiples of its inverse behaves the same on both games. When the uniform
policy is itself an equilibrium (scale 0) the scale is the largest absolute reward along
its flow (1 if every reward is 0).
"""
from __future__ import annotations

import numpy as np


def horizon_length(game) -> float:
    """T for a finite-horizon game, 1 / (1 - gamma) for a stationary discounted one."""
    if getattr(game, "kind", "finite") == "stationary":
        return 1.0 / (1.0 - game.gamma)
    return float(game.horizon)


def reward_scale(game) -> float:
    """``E(uniform) / (K H)`` (module docstring); positive and finite."""
    from mfgbench.core import evaluate, uniform_policy
    ev = evaluate(game, uniform_policy(game))
    scale = ev.exploitability / (game.n_populations * horizon_length(game))
    if scale > 0.0:
        return float(scale)
    largest = max(float(np.abs(R).max()) for R in ev.model.rewards)
    return largest if largest > 0.0 else 1.0


def resolve_scale(game, configured) -> float:
    """The scale a learner uses: ``configured`` when the config fixes one (e.g. 1.0 for absolute
    units, as the paper presets do), else ``reward_scale(game)``."""
    if configured is None:
        return reward_scale(game)
    return float(configured)


def check_configured_scale(learner: str, value) -> None:
    """Config validation of a ``reward_scale`` field: None or a positive finite number."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{learner}: reward_scale must be None (computed from the game) or a positive number, "
                         f"got {value!r}")
