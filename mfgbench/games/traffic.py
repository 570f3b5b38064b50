"""Heterogeneous traffic on a ring road: cars and trucks, two populations with different action sets.

The road is a ring of ``size`` cells (index mod size). Two populations share it:

- population 0, cars (mass share ``car_share``): speeds a in {0, 1, 2} cells per step,
  desired speed u_0 = 2;
- population 1, trucks (mass share ``1 - car_share``): speeds a in {0, 1}, desired speed
  u_1 = 1.

Dynamics (static): a vehicle at cell s choosing speed a >= 1 moves to ``s + a`` with
probability ``1 - slip`` and to ``s + a - 1`` with probability ``slip`` (it is held up,
as in the Nagel-Schreckenberg model); a = 0 stays.

Congestion. The density felt by population k at cell s weights both populations:

    rho_k(s) = size * sum_j W[k, j] m_j mu_j(s),    W = [[1, truck_weight], [car_weight, 1]],

with m_0 = car_share, m_1 = 1 - car_share (so rho = 1 everywhere when both
populations are spread uniformly and W = 1). By default a truck weighs 2 in a car's
congestion (it takes more road and blocks the view) and a car 0.5 in a truck's.

Reward of population k at cell s choosing speed a, paid at each of the ``horizon``
decision times with the current distributions:

    r_k(s, a) = a - a^2 / (2 u_k) - kappa * a * rho_k(s),

progress minus a convex cost of exceeding one's comfortable speed, minus a congestion
cost that grows with speed and density. Terminal reward 0. Initially cars are spread
uniformly; trucks are spread uniformly over the first half of the ring (so the
congestion is uneven and both populations must plan around each other).
"""
from __future__ import annotations

import numpy as np

from mfgbench.games.base import Game, LogCoupling, Population
from mfgbench.games.registry import register


@register("traffic-2type-v0", description="cars (speeds 0-2) and trucks (speeds 0-1) share a ring road, "
                                          "cross-weighted congestion",
          source="mfgbench (heterogeneous speed-control MFG after the QMI ring road, Zhang, Chen & Di 2024)")
class TwoTypeTraffic(Game):
    id = "traffic-2type-v0"
    static_transitions = True
    MAX_SPEED = (2, 1)

    def __init__(self, size: int = 20, horizon: int = 20, car_share: float = 0.7, truck_weight: float = 2.0,
                 car_weight: float = 0.5, kappa: float = 0.5, slip: float = 0.2):
        if not isinstance(size, (int, np.integer)) or size < 4:
            raise ValueError(f"game {self.id}: size must be an integer >= 4, got {size!r}")
        if not 0.0 < car_share < 1.0:
            raise ValueError(f"game {self.id}: car_share must lie in (0, 1), got {car_share}")
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"game {self.id}: slip must lie in [0, 1], got {slip}")
        if truck_weight < 0 or car_weight < 0 or kappa < 0:
            raise ValueError(f"game {self.id}: truck_weight, car_weight and kappa must be >= 0, "
                             f"got {truck_weight}, {car_weight}, {kappa}")
        n = int(size)
        self.size, self.kappa, self.slip = n, float(kappa), float(slip)
        self.shares = np.array([car_share, 1.0 - car_share])
        self.weights = np.array([[1.0, truck_weight], [car_weight, 1.0]])
        trucks0 = np.zeros(n)
        trucks0[: n // 2] = 1.0 / (n // 2)
        pops = (Population("cars", n, self.MAX_SPEED[0] + 1, np.full(n, 1.0 / n), grid_shape=(n,), periodic=True),
                Population("trucks", n, self.MAX_SPEED[1] + 1, trucks0, grid_shape=(n,), periodic=True))
        super().__init__(int(horizon), pops)
        # congestion: -kappa a size W_kj m_j mu_j(s), linear in mu, growing with the speed a
        self.log_coupling = LogCoupling(0.0, 1.0, terminal=False, action_cross=tuple(
            tuple(tuple(-self.kappa * n * self.weights[k, j] * self.shares[j] * np.arange(self.MAX_SPEED[k] + 1))
                  for j in range(2)) for k in range(2)))

    def density(self, k, mf) -> np.ndarray:
        """``rho_k(s)``: the congestion population k feels at each cell."""
        return self.size * sum(self.weights[k, j] * self.shares[j] * mf.mu[j] for j in range(2))

    def rewards(self, k, t, mf):
        a = np.arange(self.MAX_SPEED[k] + 1, dtype=np.float64)[None, :]
        u = float(self.MAX_SPEED[k])
        return a - a ** 2 / (2.0 * u) - self.kappa * a * self.density(k, mf)[:, None]

    def transitions(self, k, t, mf):
        n, A = self.size, self.MAX_SPEED[k] + 1
        s = np.arange(n)[:, None]
        a = np.arange(A)[None, :]
        succ = np.stack([(s + a) % n, (s + np.maximum(a - 1, 0)) % n], axis=2)
        prob = np.empty((n, A, 2))
        prob[:, :, 0] = np.where(a > 0, 1.0 - self.slip, 1.0)
        prob[:, :, 1] = 1.0 - prob[:, :, 0]
        return succ.astype(np.int64), prob
