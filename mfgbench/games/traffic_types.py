"""Cars, trucks and motorcycles on a multi-lane road: three vehicle types with their own states,
actions and speeds, coupled only through the joint occupancy of the road.

Source: the heterogeneous-populations design note (``/work/shared/sources/004_*``, sec. 5.2:
"cars, trucks, motorcycles with different speeds and goals; trucks restricted to right lanes;
motorcycles can use all lanes; reach the destination quickly; penalty for congestion; penalty
for unsafe maneuvers"). The model below is mfgbench's own finite version of it.

**Road.** ``lanes`` lanes (lane 0 is the rightmost) of ``length`` cells; vehicles drive from
x = 0 towards x = length, where they leave the road into the absorbing state "arrived".

**Types** (shares ``car_share``, ``truck_share`` and the rest motorcycles):

- cars: every lane (``lanes * length + 1`` states); actions: ahead 1, ahead 2, one lane left
  and 1 ahead, one lane right and 1 ahead (4 actions);
- trucks: only the two right lanes (``2 * length + 1`` states, fewer); actions: slow (stay),
  ahead 1, change to the other truck lane and 1 ahead (3 actions, slower);
- motorcycles: every lane *and the gaps between lanes* (lane splitting: ``2 lanes - 1``
  lateral positions, ``(2 lanes - 1) * length + 1`` states); actions: ahead 1, 2 or 3, half a
  lane left or right and 1 ahead (5 actions, faster).

A move that leaves a type's lanes keeps the lane (still paying the lane change). A move of
v >= 1 cells advances only v - 1 cells with probability ``slip`` (held up, as in the
Nagel–Schreckenberg model). Arrived vehicles stay arrived.

**Occupancy and congestion.** A vehicle of type j takes ``o_j`` of a road cell (car 1,
truck ``truck_size``, motorcycle ``moto_size``); a motorcycle between two lanes takes
``split_footprint / 2`` of its size on each of them. The density of road cell c is

    D(c) = n_cells * sum_j n_j o_j sum_s A_j[c, s] mu_j(s),

with n_j the type's share, ``A_j[c, s]`` the footprint of state s on cell c (1 on its own
cell), and ``n_cells = lanes * length`` (so D = 1 when all traffic is spread evenly).

**Rewards.** At every step a vehicle of type k on the road in state s choosing a earns

    r_k(s, a) = arrive_k P(arrive | s, a) - time_k - effort_k(a) - kappa_k sum_c A_k[c, s] D(c)
                - eta log(mu_k(s) + 1e-12)    (- split_cost between lanes, motorcycles),

and at the horizon ``arrive_k x / length`` for the progress made by a vehicle still on the
road; arrived vehicles earn nothing more. The last term is a small preference of every
driver for the less crowded places of its own type (the entropy term of crowd MFGs).

**Equilibrium: unique.** With weights ``w_k = n_k o_k / kappa_k`` the congestion terms are
the gradient of ``-1/2 sum_c D(c)^2`` (what one type feels is exactly what it causes, through
the same footprints), so the game is a weighted potential game, and with ``eta > 0`` strictly
monotone: ``sum_k w_k <r_k(mu) - r_k(mu'), mu_k - mu'_k> <= -||D - D'||^2 - eta sum_k w_k
<log mu_k - log mu'_k, mu_k - mu'_k> < 0`` for mu != mu'. By the Lasry–Lions argument (with
weights, since rescaling a type's rewards does not change its best responses) the equilibrium
flow of every type is unique at the coupled times t < T (the tests find it from two starts; at T
nothing coupled follows, and the last moves may tie). Transitions do not depend on the mean field. The reference is
the interior-point solution of the equilibrium's complementarity system
(:mod:`reference_solvers.discrete.complementarity`), certified by its exact exploitability.

``length`` is the size parameter (states grow linearly in it); the default road's reference
takes about 2 CPU seconds (``benchmarks/heterogeneous.py``).
"""
from __future__ import annotations

import numpy as np

from mfgbench.games.base import Game, Population
from mfgbench.games.coupling import AffineCoupling
from mfgbench.games.registry import register

LOG_EPS = 1e-12
TRUCK_LANES = 2


class _Type:
    """One vehicle type's road: lateral positions, moves (lateral step, cells ahead), effort per move."""

    def __init__(self, name, positions, moves, effort, half_lanes):
        self.name, self.positions, self.moves = name, positions, moves
        self.effort = np.asarray(effort, dtype=np.float64)
        self.half_lanes = half_lanes   # lateral positions are half lanes (motorcycles)


@register("traffic-3type-v0", description="cars, trucks (right lanes only) and motorcycles (lane splitting) "
                                          "share a multi-lane road; joint occupancy congestion",
          source="heterogeneous-populations note (sources/004, sec. 5.2: cars, trucks, motorcycles); "
                 "mfgbench's finite version")
class ThreeTypeTraffic(Game):
    """Three vehicle types on a multi-lane road (see the module docstring)."""

    id = "traffic-3type-v0"
    static_transitions = True

    def __init__(self, length: int = 10, lanes: int = 3, horizon: int = 12, car_share: float = 0.55,
                 truck_share: float = 0.3, truck_size: float = 2.5, moto_size: float = 0.5,
                 split_footprint: float = 0.5, kappa: float = 0.4, eta: float = 0.05, slip: float = 0.1,
                 split_cost: float = 0.05):
        if not isinstance(length, (int, np.integer)) or length < 3:
            raise ValueError(f"game {self.id}: length must be an integer >= 3, got {length!r}")
        if not isinstance(lanes, (int, np.integer)) or lanes < TRUCK_LANES:
            raise ValueError(f"game {self.id}: lanes must be an integer >= {TRUCK_LANES}, got {lanes!r}")
        if not (car_share > 0 and truck_share > 0 and car_share + truck_share < 1):
            raise ValueError(f"game {self.id}: car_share and truck_share must be positive with a sum below 1 "
                             f"(motorcycles are the rest), got {car_share}, {truck_share}")
        for name, value in (("truck_size", truck_size), ("moto_size", moto_size), ("kappa", kappa)):
            if not value > 0:
                raise ValueError(f"game {self.id}: {name} must be positive, got {value}")
        if not 0 < split_footprint <= 1:
            raise ValueError(f"game {self.id}: split_footprint must lie in (0, 1], got {split_footprint}")
        if not (0 <= slip < 1 and eta >= 0 and split_cost >= 0):
            raise ValueError(f"game {self.id}: need 0 <= slip < 1, eta >= 0 and split_cost >= 0, "
                             f"got {slip}, {eta}, {split_cost}")
        self.length, self.lanes, self.slip = int(length), int(lanes), float(slip)
        self.kappa, self.eta, self.split_cost = float(kappa), float(eta), float(split_cost)
        L, n_cells = self.length, self.lanes * self.length
        self.n_cells = n_cells
        self.types = (
            _Type("cars", self.lanes, [(0, 1), (0, 2), (1, 1), (-1, 1)], [0.0, 0.1, 0.05, 0.05], False),
            _Type("trucks", TRUCK_LANES, [(0, 0), (0, 1), (None, 1)], [0.0, 0.0, 0.1], False),
            _Type("motorcycles", 2 * self.lanes - 1, [(0, 1), (0, 2), (0, 3), (1, 1), (-1, 1)],
                  [0.0, 0.05, 0.15, 0.02, 0.02], True))
        self.shares = np.array([car_share, truck_share, 1.0 - car_share - truck_share])
        self.sizes = np.array([1.0, truck_size, moto_size])
        self.time_cost = np.array([0.2, 0.3, 0.2])
        self.arrive = np.array([2.0, 2.0, 2.0])
        pops = []
        self.footprint = []
        for k, ty in enumerate(self.types):
            S = ty.positions * L + 1
            mu0 = np.zeros(S)
            starts = [p * L + x for p in range(ty.positions) if not (ty.half_lanes and p % 2) for x in (0, 1)]
            mu0[starts] = 1.0 / len(starts)
            foot = np.zeros((n_cells, S))    # A_k[c, s]
            for p in range(ty.positions):
                for x in range(L):
                    s = p * L + x
                    if ty.half_lanes and p % 2:   # between lanes (p - 1) / 2 and (p + 1) / 2
                        foot[((p - 1) // 2) * L + x, s] = foot[((p + 1) // 2) * L + x, s] = split_footprint / 2
                    else:
                        foot[(p // 2 if ty.half_lanes else p) * L + x, s] = 1.0
            self.footprint.append(foot)
            labels = tuple(self._label(ty, p, x) for p in range(ty.positions) for x in range(L)) + ("arrived",)
            grid = (ty.positions if ty.half_lanes else self.lanes, L)
            cells = tuple(range(ty.positions * L)) + (-1,)
            links = tuple((p * L + L - 1, S - 1, 1.0) for p in range(ty.positions))
            pops.append(Population(ty.name, S, len(ty.moves), mu0, grid_shape=grid, state_labels=labels,
                                   cells=cells, links=links))
        super().__init__(int(horizon), pops)
        widths = [2] * 3
        occupancy = [n_cells * self.shares[j] * self.sizes[j] * self.footprint[j] for j in range(3)]
        reward = []
        for k, pop in enumerate(self.populations):
            # -kappa_k sum_c A_k[c, s] D(c), the same for every action
            reward.append(np.repeat(-self.kappa * self.footprint[k].T, pop.n_actions, axis=0))
        self.affine_coupling = AffineCoupling.build(self.populations, widths, occupancy, reward=reward,
                                             eta=[self._road_mask(k) * self.eta for k in range(3)], eps=LOG_EPS)

    @staticmethod
    def _label(ty, p, x):
        if ty.half_lanes:
            return f"lane {p // 2}, x={x}" if p % 2 == 0 else f"lanes {(p - 1) // 2}|{(p + 1) // 2}, x={x}"
        return f"lane {p}, x={x}"

    def _road_mask(self, k):
        mask = np.ones(self.populations[k].n_states)
        mask[-1] = 0.0
        return mask

    def density(self, mus) -> np.ndarray:
        """``D(c)``: the occupancy of every road cell (lane-major, ``lanes x length`` row-major)."""
        return self.n_cells * sum(self.shares[j] * self.sizes[j] * (self.footprint[j] @ mus[j]) for j in range(3))

    def _arrival_and_move_cost(self, k):
        """``arrive_k P(arrive | s, a) - time_k - effort_k(a)`` (and the split cost) on road states; 0 when arrived."""
        succ, prob = self.static_transition(k)
        ty, pop = self.types[k], self.populations[k]
        arrived = pop.n_states - 1
        base = self.arrive[k] * (prob * (succ == arrived)).sum(axis=2) - self.time_cost[k] - ty.effort[None, :]
        if ty.half_lanes:
            split = np.array([(s // self.length) % 2 == 1 for s in range(pop.n_states - 1)] + [False])
            base -= self.split_cost * split[:, None]
        base[arrived] = 0.0
        return base

    def rewards(self, k, t, mf):
        congestion = -self.kappa * (self.footprint[k].T @ self.density(mf.mu))
        crowd = -self.eta * np.log(mf.mu[k] + LOG_EPS)
        state = congestion + crowd
        state[-1] = 0.0
        return self._arrival_and_move_cost(k) + state[:, None]

    def terminal(self, k, mf):
        pop, L = self.populations[k], self.length
        x = np.arange(pop.n_states - 1) % L
        return np.r_[self.arrive[k] * x / L, 0.0]

    def transitions(self, k, t, mf):
        ty, pop, L = self.types[k], self.populations[k], self.length
        S, A = pop.n_states, pop.n_actions
        arrived = S - 1
        succ = np.full((S, A, 2), arrived, dtype=np.int64)
        prob = np.zeros((S, A, 2))
        prob[arrived, :, 0] = 1.0
        for s in range(S - 1):
            p, x = divmod(s, L)
            for a, (dp, v) in enumerate(ty.moves):
                if dp is None:          # trucks: the other truck lane
                    target = 1 - p
                else:
                    target = p + dp
                    if not 0 <= target < ty.positions:
                        target = p
                for b, (ahead, weight) in enumerate(((v, 1.0 - self.slip), (max(v - 1, 0), self.slip))):
                    if v == 0:
                        ahead, weight = 0, (1.0 if b == 0 else 0.0)
                    x_new = x + ahead
                    succ[s, a, b] = arrived if x_new >= L else target * L + x_new
                    prob[s, a, b] = weight
        return succ, prob
