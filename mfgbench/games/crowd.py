"""Crowd modelling on a circle: the "beach bar" game of Perrin et al. (2020), section 4.2.

States are ``size`` positions on a circle; actions move -1, 0, +1; after the move an
independent noise of -1, 0, +1 (probability 1/3 each) is added, both mod ``size``.
The agent at x at reward time t earns

    r_t(x, a) = 1 - |x - size//2| / (size//2) - log(mu_t(x) + 1e-25) - |move(a)| / size.

There are ``horizon`` reward times (OpenSpiel's ``mfg_crowd_modelling``, horizon 10):
in our timing convention that is ``T = horizon - 1`` transitions plus a terminal
reward at T equal to the positional and log-density terms (a move chosen at the last
reward time has no effect, so it is never charged). x0 is uniform.
"""
from __future__ import annotations

import numpy as np

from mfgbench.games.base import Game, LogCoupling, Population
from mfgbench.games.registry import register

LOG_EPS = 1e-25


@register("crowd-1d-v0", description="crowd on a circle drawn to a bar, averse to crowding (beach bar)",
          source="Perrin et al. 2020, Fictitious play for MFGs, sec. 4.2; OpenSpiel mfg_crowd_modelling")
class CrowdModelling1D(Game):
    id = "crowd-1d-v0"
    static_transitions = True
    log_coupling = LogCoupling(eta=1.0, eps=LOG_EPS, floor="add", terminal=True)

    @staticmethod
    def array_dims(size, horizon):
        """(T, [(S, A, B)]) before building, for the registry's memory check."""
        return horizon - 1, [(size, 3, 3)]

    def __init__(self, size: int = 10, horizon: int = 10):
        if size < 3 or horizon < 2:
            raise ValueError(f"game {self.id}: needs size >= 3 and horizon >= 2, got size={size}, horizon={horizon}")
        self.size = int(size)
        pop = Population("crowd", self.size, 3, np.full(self.size, 1.0 / self.size),
                         grid_shape=(self.size,), periodic=True)
        super().__init__(int(horizon) - 1, pop)
        x = np.arange(self.size)
        half = self.size // 2
        self._position_reward = 1.0 - np.abs(x - half) / half
        self._move_cost = np.abs(np.arange(3) - 1) / self.size

    def _state_reward(self, mu):
        return self._position_reward - np.log(mu + LOG_EPS)

    def rewards(self, k, t, mf):
        return self._state_reward(mf.mu[0])[:, None] - self._move_cost[None, :]

    def terminal(self, k, mf):
        return self._state_reward(mf.mu[0])

    def transitions(self, k, t, mf):
        n = self.size
        x = np.arange(n)[:, None, None]
        move = (np.arange(3) - 1)[None, :, None]
        noise = (np.arange(3) - 1)[None, None, :]
        succ = (x + move + noise) % n
        prob = np.full((n, 3, 3), 1.0 / 3.0)
        return succ.astype(np.int64), prob
