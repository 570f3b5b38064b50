"""Online mirror descent for mean field games (Pérolat et al. 2022, "Scaling mean field
games by online mirror descent").

Each iteration evaluates the current policy against the flow it induces and adds its
Q-function to a cumulative score, then projects with a softmax:

    y_{j+1}(t, s, a) = y_j(t, s, a) + lr * Q^{pi_j}_t(s, a; mu^{pi_j}),
    pi_{j+1}(. | t, s) = softmax(y_{j+1}(t, s, .)),

starting from y_0 = 0 (the uniform policy). With ``munchausen > 0`` the Q-function is
evaluated with the Munchausen-regularised reward
``r + munchausen * temperature * log pi_j(a|t,s)`` and the entropy-regularised value
``V = sum_a pi_j (Q - temperature log pi_j)``, and the projection is
``softmax(Q / temperature)`` (Munchausen OMD, Laurière et al. 2022, which equals OMD
with an implicit step size without storing the cumulative score). Exact evaluation: no
samples. Works for several populations, and for stationary discounted games, where
``Q^pi(s, a) = r(s, a) + gamma sum_s' P(s'|s, a) V^pi(s')`` at the stationary
distribution ``pi`` induces (plain OMD only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgbench.core import kernels
from mfgbench.core.evaluate import model_of_profile
from mfgbench.core.policy import uniform_policy
from mfgbench.learners.base import Learner, register_learner
from mfgbench.learners.fictitious_play import softmax


@dataclass
class MirrorDescentConfig:
    learning_rate: float = 0.1
    """Step size ``lr`` of the cumulative Q update (0.1: stable on every registered game;
    larger steps converge faster on monotone games but oscillate on predator-prey)."""
    munchausen: float = 0.0
    """Munchausen coefficient alpha in [0, 1); 0 is plain OMD."""
    temperature: float = 1.0
    """Entropy temperature tau of the Munchausen variant."""

    def __post_init__(self):
        if self.learning_rate <= 0:
            raise ValueError(f"mirror-descent: learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.munchausen < 1.0:
            raise ValueError(f"mirror-descent: munchausen must lie in [0, 1), got {self.munchausen}")
        if self.temperature <= 0:
            raise ValueError(f"mirror-descent: temperature must be positive, got {self.temperature}")


@register_learner
class MirrorDescent(Learner):
    """Online mirror descent with exact policy evaluation (see module docstring)."""

    name = "mirror-descent"
    Config = MirrorDescentConfig
    kinds = ("finite", "stationary")

    def __init__(self, game, config=None, rng=None):
        super().__init__(game, config, rng)
        if getattr(game, "kind", "finite") == "stationary" and self.config.munchausen > 0:
            raise ValueError("mirror-descent: the Munchausen variant plays finite-horizon games only")
        self._policy = uniform_policy(game)
        self._score = [np.zeros_like(pi) for pi in self._policy]

    @property
    def policy(self) -> tuple:
        return self._policy

    def _stationary_q_values(self):
        from mfgbench.core import stationary
        model = stationary.induced_model(self.game, self._policy)
        values = stationary.values_along(model, self._policy)
        return [stationary.q_values(model.rewards[k], model.succ[k], model.prob[k], values[k], model.gamma)
                for k in range(self.game.n_populations)]

    def step(self) -> dict:
        cfg = self.config
        if getattr(self.game, "kind", "finite") == "stationary":
            for k, Q in enumerate(self._stationary_q_values()):
                self._score[k] += cfg.learning_rate * Q
            self._policy = tuple(softmax(y, 1.0) for y in self._score)
            self.iteration += 1
            return {"iteration": self.iteration, "samples": 0}
        model = model_of_profile(self.game, self._policy)
        new = []
        for k, pi in enumerate(self._policy):
            if cfg.munchausen > 0.0:
                log_pi = np.log(np.maximum(pi, 1e-300))
                R = model.rewards[k] + cfg.munchausen * cfg.temperature * log_pi
                Q = _soft_q_values(R, model.succ[k], model.prob[k], model.terminal[k], pi, cfg.temperature)
                new.append(softmax(Q, cfg.temperature))
            else:
                # Q^pi, the score update and the softmax in one backward pass
                new.append(kernels.mirror_descent_update(model.rewards[k], model.succ[k], model.prob[k],
                                                         model.terminal[k], pi, self._score[k],
                                                         cfg.learning_rate))
        self._policy = tuple(new)
        self.iteration += 1
        return {"iteration": self.iteration, "samples": 0}


def _soft_q_values(R, succ, prob, g, pi, temperature):
    """Q of ``pi`` with the entropy-regularised value V = sum_a pi (Q - tau log pi)."""
    entropy_bonus = -temperature * (pi * np.log(np.maximum(pi, 1e-300))).sum(axis=-1)  # [t, s]
    # the entropy of the action taken at t+1 enters V_{t+1}: add it to that time's rewards
    R_soft = R + entropy_bonus[..., None]
    V, Q = kernels.policy_q_values(R_soft, succ, prob, g, pi)
    return Q - entropy_bonus[..., None]
