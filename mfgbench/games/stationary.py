"""Stationary discounted mean field games (infinite horizon), and the two registered ones.

A stationary game has populations k (``S_k`` states, ``A_k`` actions), a discount
factor ``gamma`` in (0, 1) and no horizon. For a joint *stationary* mean field ``mf``
(``mf.mu[k][s]``, ``mf.L[k][s, a] = mu_k(s) pi_k(a|s)``, ``mf.t = None``) it defines

- ``rewards(k, mf) -> R[s, a]``,
- ``transitions(k, mf) -> (succ[s, a, b], prob[s, a, b])`` (fixed-width successor list, as
  in finite games).

A policy is ``pi_k[s, a]``. The population it induces is the stationary distribution
``mu^pi`` with ``mu^pi = mu^pi P^pi(mu^pi)`` (for a kernel that depends on the mean
field, the fixed point of that map); an agent's value is
``V^pi(s) = E[sum_t gamma^t R(s_t, a_t)]`` against it, and an equilibrium is a policy
optimal against the distribution it induces (QMI paper, Zhang, Chen & Di 2024).
``Population.mu0`` is only the starting point of the fixed-point iteration.
``mfgbench.core.stationary`` evaluates these games exactly.

- ``ring-road-v0``: speed control on a ring (REFERENCES.md; QMI paper's experiment).
- ``garnet-stationary-v0``: seeded random game, optionally with a mean-field-dependent
  kernel.
"""
from __future__ import annotations

import numpy as np

from mfgbench.errors import GameError
from mfgbench.games.base import Population, PopulationGame
from mfgbench.games.garnet import random_kernel
from mfgbench.games.registry import register


class StationaryGame(PopulationGame):
    """Base class of stationary discounted games (see the module docstring for the contract).

    Subclasses call ``StationaryGame.__init__`` with ``gamma`` and the populations and
    implement ``rewards(k, mf)`` and ``transitions(k, mf)``. Set ``static_transitions``
    when the kernel does not depend on the mean field: the stationary distribution is
    then a linear solve, not a fixed point.
    """

    id: str = "stationary-game"
    kind: str = "stationary"
    description: str = ""
    source: str = ""
    static_transitions: bool = False
    horizon = None

    def __init__(self, gamma: float, populations, params: dict | None = None):
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating)) or not 0.0 < gamma < 1.0:
            raise GameError(f"game {self.id}: gamma must lie in (0, 1), got {gamma!r}")
        self.gamma = float(gamma)
        self._set_populations(populations, params)

    def rewards(self, k: int, mf) -> np.ndarray:
        raise NotImplementedError

    def transitions(self, k: int, mf):
        raise NotImplementedError

    def __repr__(self):
        sizes = ", ".join(f"{p.name}: S={p.n_states} A={p.n_actions}" for p in self.populations)
        return f"<{type(self).__name__} {self.id} gamma={self.gamma} ({sizes})>"

    def static_transition(self, k: int):
        """Population k's transitions when they do not depend on the mean field."""
        return self._cached_transition(k, lambda: self.transitions(k, None))


@register("ring-road-v0", kind="stationary",
          description="speed control on a ring road: match a target speed that falls with density",
          source="Zhang, Chen & Di 2024, A single online agent can efficiently learn MFGs (ECAI), speed control; "
                 "parameters from the first author's public code")
class RingRoad(StationaryGame):
    """Speed control on a ring of ``size`` = S cells (QMI paper's experiment; REFERENCES.md).

    Action a = 0..n_speeds-1 is the speed a/S: the agent moves one cell forward with
    probability a/S, else stays. With the stationary density M, the reward at cell s is

        r(s, a) = -(a/S - min(b(s), 0.5 (1 - M(s) S / 3)))^2 / (2 S),
        b(s) = 0.2 (sin(4 pi s / S) + 2),

    the squared gap to a target speed that is the road's own preference b(s) capped by
    a speed-density (Greenshields-like) law. Discount ``gamma = 1 - 1/S`` unless given.
    Defaults S = 50 cells, 50 speeds (0, 1/50, ..., 49/50).
    """

    id = "ring-road-v0"
    static_transitions = True

    def __init__(self, size: int = 50, n_speeds: int = 50, gamma: float | None = None):
        if not isinstance(size, (int, np.integer)) or size < 2:
            raise ValueError(f"game {self.id}: size must be an integer >= 2, got {size!r}")
        if not isinstance(n_speeds, (int, np.integer)) or not 2 <= n_speeds <= size + 1:
            raise ValueError(f"game {self.id}: n_speeds must be an integer in 2..size+1 (speeds a/size <= 1), "
                             f"got {n_speeds!r}")
        if gamma is None:
            gamma = 1.0 - 1.0 / size
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"game {self.id}: gamma must lie in (0, 1), got {gamma}")
        self.size, self.n_speeds = int(size), int(n_speeds)
        S = self.size
        super().__init__(float(gamma), Population("drivers", S, self.n_speeds, np.full(S, 1.0 / S),
                                                  grid_shape=(S,), periodic=True))
        s = np.arange(S)
        self.preferred = 0.2 * (np.sin(4.0 * np.pi * s / S) + 2.0)
        self.speeds = np.arange(self.n_speeds) / S

    def target_speed(self, mu) -> np.ndarray:
        return np.minimum(self.preferred, 0.5 * (1.0 - mu * self.size / 3.0))

    def rewards(self, k, mf):
        gap = self.speeds[None, :] - self.target_speed(mf.mu[0])[:, None]
        return -gap ** 2 / (2.0 * self.size)

    def transitions(self, k, mf):
        S = self.size
        s = np.arange(S)[:, None]
        succ = np.stack(np.broadcast_arrays(s, (s + 1) % S), axis=-1)
        succ = np.broadcast_to(succ, (S, self.n_speeds, 2)).astype(np.int64)
        prob = np.stack([1.0 - self.speeds, self.speeds], axis=-1)
        return succ.copy(), np.broadcast_to(prob, (S, self.n_speeds, 2)).copy()


@register("garnet-stationary-v0", kind="stationary",
          description="seeded random discounted game (S states, A actions, branching B), monotone coupling",
          source="garnet MDPs (Archibald et al. 1995) with a mean-field reward (and optional kernel) term")
class GarnetStationary(StationaryGame):
    """Seeded random stationary game.

    ``K`` populations on ``S`` shared states with ``A`` actions. Kernel: each (s, a) has
    B random successors with random probabilities (as ``garnet-v0``), mixed with a step
    to ``s + 1 (mod S)``, which makes every policy's chain irreducible (a unique
    stationary distribution):

        P_k(. | s, a, mu) = (1 - rho_k(s)) P0_k(. | s, a) + rho_k(s) delta_{s+1},
        rho_k(s) = ring + (1 - ring) * kernel_coupling * mu_k(s).

    With ``kernel_coupling`` in (0, 1] crowded states push agents along, so the
    stationary distribution is a genuine fixed point. Reward, as in ``garnet-v0``:
    ``r_k(s, a) = base_k(s, a) - coupling * sum_j W_kj mu_j(s)``, base uniform on [0, 1],
    W = (I + 11^T)/2 (monotone). Everything drawn from ``default_rng(seed)``.
    """

    id = "garnet-stationary-v0"

    def __init__(self, S: int = 20, A: int = 3, B: int = 3, K: int = 1, gamma: float = 0.9,
                 coupling: float = 1.0, kernel_coupling: float = 0.0, ring: float = 0.05, seed: int = 0):
        if min(S, A, B, K) < 1 or S < 2:
            raise ValueError(f"game {self.id}: needs S >= 2 and A, B, K >= 1, got {(S, A, B, K)}")
        if B > S:
            raise ValueError(f"game {self.id}: branching B={B} exceeds the number of states S={S}")
        if not 0.0 <= kernel_coupling <= 1.0:
            raise ValueError(f"game {self.id}: kernel_coupling must lie in [0, 1], got {kernel_coupling}")
        if not 0.0 < ring <= 1.0:
            raise ValueError(f"game {self.id}: ring must lie in (0, 1], got {ring}")
        rng = np.random.default_rng(seed)
        self.coupling, self.kernel_coupling, self.ring = float(coupling), float(kernel_coupling), float(ring)
        self._kernels = [random_kernel(rng, S, A, B) for _ in range(K)]
        self._base = [rng.random((S, A)) for _ in range(K)]
        self.weights = (np.eye(K) + np.ones((K, K))) / 2.0
        self.static_transitions = self.kernel_coupling == 0.0
        pops = [Population(f"pop{k}", S, A, np.full(S, 1.0 / S)) for k in range(K)]
        super().__init__(gamma, pops)

    def rewards(self, k, mf):
        crowd = sum(self.weights[k, j] * mf.mu[j] for j in range(self.n_populations))
        return self._base[k] - self.coupling * crowd[:, None]

    def transitions(self, k, mf):
        succ0, prob0 = self._kernels[k]
        S, A, _ = succ0.shape
        push = np.full(S, self.ring)
        if self.kernel_coupling > 0.0:
            push = self.ring + (1.0 - self.ring) * self.kernel_coupling * mf.mu[k]
        nxt = np.broadcast_to(((np.arange(S) + 1) % S)[:, None, None], (S, A, 1))
        succ = np.concatenate([succ0, nxt], axis=2)
        prob = np.concatenate([(1.0 - push)[:, None, None] * prob0,
                               np.broadcast_to(push[:, None, None], (S, A, 1))], axis=2)
        return succ, prob
