"""Linear-quadratic (systemic risk) game on a circle of cells (Perrin et al. 2020, sec. 4.1).

Continuous model: dX = [a + K(m̄ - X)] dt + sigma dW, running reward
``dt/2 (-a^2 + 2 q a (m̄ - X) - kappa (m̄ - X)^2)`` for the action a taken at t and
terminal reward ``-c/2 (m̄_T - X_T)^2``, with m̄ the population mean.

Grid version: positions x = 0..size-1 on a circle; m̄_t = sum_x x mu_t(x) (the plain,
not circular, mean). Actions a = -A//2..A//2 (7 actions: moves -3..3). One step:
``x <- x + round((a + K (m̄_t - x)) dt)`` (round half to even, as Python's round), then
``x <- x + e`` with e in -3..3,
``P(e) = Phi((e + 1/2)/(sigma sqrt(dt))) - Phi((e - 1/2)/(sigma sqrt(dt)))`` and the tails
folded into ±3; both mod size. ``horizon`` decision times (T = horizon), then the
terminal reward. Defaults: size 10, horizon 10, dt 1, sigma 1, K 0, q 0.01, kappa 0.5,
c 1, x0 uniform. Unlike OpenSpiel's ``mfg_linear_quadratic`` (which never applies the
terminal cost and charges the previous action's cost) this follows the paper.
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from mfgbench.games.base import Game, Population
from mfgbench.games.registry import register

NOISE_STEPS = np.arange(-3, 4)


def noise_probabilities(sigma: float, dt: float) -> np.ndarray:
    """P(e), e = -3..3: a discretised N(0, sigma^2 dt) with the tails folded into ±3."""
    scale = sigma * np.sqrt(dt)
    cdf = ndtr((NOISE_STEPS + 0.5) / scale)
    p = np.diff(np.concatenate([[0.0], cdf[:-1], [1.0]]))
    return p


@register("lq-v0", description="linear-quadratic systemic-risk game on a circle of cells",
          source="Perrin et al. 2020, Fictitious play for MFGs, sec. 4.1 (Carmona et al. systemic risk)")
class LinearQuadratic(Game):
    id = "lq-v0"

    def __init__(self, size: int = 10, horizon: int = 10, n_actions: int = 7, dt: float = 1.0,
                 sigma: float = 1.0, K: float = 0.0, q: float = 0.01, kappa: float = 0.5, c: float = 1.0):
        if n_actions < 1 or n_actions % 2 == 0:
            raise ValueError(f"game {self.id}: n_actions must be odd and positive, got {n_actions}")
        if sigma <= 0 or dt <= 0:
            raise ValueError(f"game {self.id}: sigma and dt must be positive, got sigma={sigma}, dt={dt}")
        self.size, self.dt, self.sigma = int(size), float(dt), float(sigma)
        self.K, self.q, self.kappa, self.c = float(K), float(q), float(kappa), float(c)
        self.actions = np.arange(n_actions) - n_actions // 2
        self.static_transitions = self.K == 0.0
        self._noise = noise_probabilities(self.sigma, self.dt)
        pop = Population("agents", self.size, int(n_actions), np.full(self.size, 1.0 / self.size),
                         grid_shape=(self.size,), periodic=True)
        super().__init__(int(horizon), pop)

    def _mean(self, mu):
        return float(np.arange(self.size) @ mu)

    def rewards(self, k, t, mf):
        gap = self._mean(mf.mu[0]) - np.arange(self.size)[:, None]
        a = self.actions[None, :]
        return 0.5 * self.dt * (-a * a + 2.0 * self.q * a * gap - self.kappa * gap * gap)

    def terminal(self, k, mf):
        gap = self._mean(mf.mu[0]) - np.arange(self.size)
        return -0.5 * self.c * gap * gap

    def transitions(self, k, t, mf):
        x = np.arange(self.size)[:, None]
        drift = self.actions[None, :].astype(np.float64)
        if self.K != 0.0:
            drift = drift + self.K * (self._mean(mf.mu[0]) - x)
        moved = x + np.round(drift * self.dt).astype(np.int64)
        succ = (moved[:, :, None] + NOISE_STEPS[None, None, :]) % self.size
        prob = np.broadcast_to(self._noise, succ.shape).copy()
        return succ.astype(np.int64), prob
