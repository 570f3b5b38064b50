"""Predator-prey on a grid with several populations (Pérolat et al. 2022, sec. 5.4).

Populations i = 0..K-1 move on an ``n x n`` grid with walls (every displacement is
clamped to the grid). Actions: stay, +x, +y, -y, -x. After the chosen move comes a
noise displacement: none with probability ``1 - noise``, each of the four moves with
probability ``noise / 4`` (noise = 0.8 by default). Population i starts with all its
mass on one cell (corners). At every reward time an agent of population i at cell z earns

    r_i(z) = -log(mu_i(z) + 1e-25) + sum_j R_ij mu_j(z),

with no action cost. ``horizon`` counts reward times as in OpenSpiel's
``python_mfg_predator_prey``: ``T = horizon - 1`` transitions, then a terminal reward
of the same form. The eps matters: a best responder may move where its own population
has no mass and collect -log(1e-25) ~ 57.6.

- ``predator-prey-v0``: 3 populations, 5x5, horizon 10, starts (0,0), (4,0), (0,4),
  R = [[0,-1,1],[1,0,-1],[-1,1,0]].
- ``predator-prey-4pop-v0``: 4 populations, 5x5, horizon 20, the four corners, cyclic
  R with R_{i,i+1} = -1 (i is chased by i+1) and R_{i,i-1} = +1 (i chases i-1).
"""
from __future__ import annotations

import numpy as np

from mfgbench.games.base import Game, LogCoupling, Population
from mfgbench.games.registry import register

LOG_EPS = 1e-25
MOVES = np.array([(0, 0), (1, 0), (0, 1), (0, -1), (-1, 0)])
"""(dx, dy) of stay, +x, +y, -y, -x; the state index of cell (x, y) is x * n + y."""


class PredatorPrey(Game):
    """Predator-prey game with K populations and interaction matrix R (see module docstring)."""

    static_transitions = True

    def __init__(self, size, horizon, starts, interaction, noise):
        interaction = np.asarray(interaction, dtype=np.float64)
        K = len(starts)
        if interaction.shape != (K, K):
            raise ValueError(f"game {self.id}: interaction matrix must be {K}x{K}, got {interaction.shape}")
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"game {self.id}: noise must lie in [0, 1], got {noise}")
        self.size = int(size)
        self.interaction = interaction
        if LogCoupling.monotone_cross(interaction):
            # monotone (e.g. R antisymmetric, as in both registered games): the interior point applies
            self.log_coupling = LogCoupling(1.0, LOG_EPS, "add", terminal=True,
                                            cross=tuple(map(tuple, interaction)))
        self.noise = float(noise)
        S = self.size * self.size
        pops = []
        for i, (x, y) in enumerate(starts):
            if not (0 <= x < self.size and 0 <= y < self.size):
                raise ValueError(f"game {self.id}: start cell {(x, y)} of population {i} is off the grid")
            mu0 = np.zeros(S)
            mu0[x * self.size + y] = 1.0
            pops.append(Population(f"pop{i}", S, len(MOVES), mu0, grid_shape=(self.size, self.size)))
        super().__init__(int(horizon) - 1, pops)

    def _state_reward(self, k, mf):
        coupling = sum(self.interaction[k, j] * mf.mu[j] for j in range(self.n_populations))
        return -np.log(mf.mu[k] + LOG_EPS) + coupling

    def rewards(self, k, t, mf):
        r = self._state_reward(k, mf)
        return np.repeat(r[:, None], len(MOVES), axis=1)

    def terminal(self, k, mf):
        return self._state_reward(k, mf)

    def transitions(self, k, t, mf):
        n = self.size
        cells = np.array([(x, y) for x in range(n) for y in range(n)])
        after_move = np.clip(cells[:, None, :] + MOVES[None, :, :], 0, n - 1)           # (S, A, 2)
        after_noise = np.clip(after_move[:, :, None, :] + MOVES[None, None, :, :], 0, n - 1)  # (S, A, B, 2)
        succ = after_noise[..., 0] * n + after_noise[..., 1]
        p_noise = np.array([1.0 - self.noise] + [self.noise / 4.0] * 4)
        prob = np.broadcast_to(p_noise, succ.shape).copy()
        return succ.astype(np.int64), prob


CYCLIC_3 = [[0, -1, 1], [1, 0, -1], [-1, 1, 0]]


def _cyclic(K):
    R = np.zeros((K, K))
    for i in range(K):
        R[i, (i + 1) % K] = -1.0
        R[i, (i - 1) % K] = 1.0
    return R


@register("predator-prey-v0", description="3 populations chase each other cyclically on a 5x5 grid",
          source="Pérolat et al. 2022, Scaling MFGs by online mirror descent, sec. 5.4; OpenSpiel python_mfg_predator_prey")
class PredatorPrey3(PredatorPrey):
    id = "predator-prey-v0"

    def __init__(self, size: int = 5, horizon: int = 10, noise: float = 0.8):
        n = int(size) - 1
        super().__init__(size, horizon, [(0, 0), (n, 0), (0, n)], CYCLIC_3, noise)


@register("predator-prey-4pop-v0", description="4 populations, cyclic chase from the corners, horizon 20",
          source="4-population variant of Pérolat et al. 2022, sec. 5.4 (heterogeneous stress case)")
class PredatorPrey4(PredatorPrey):
    id = "predator-prey-4pop-v0"

    def __init__(self, size: int = 5, horizon: int = 20, noise: float = 0.8):
        n = int(size) - 1
        super().__init__(size, horizon, [(0, 0), (n, 0), (0, n), (n, n)], _cyclic(4), noise)
