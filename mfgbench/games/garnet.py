"""Garnet games: seeded random finite MFGs for property tests and scaling.

``S`` states, ``A`` actions, branching ``B`` (each (s, a) reaches B distinct states
drawn at random, with random probabilities), horizon ``T``, ``K`` populations sharing
the state space. Transitions are static (they depend on neither t nor the mean field).
Population k at state s earns

    r_k(s, a) = base_k(s, a) - coupling * sum_j W_kj mu_j(s),

with base rewards uniform on [0, 1]. ``monotone=True`` (default) takes
W = (I + 11^T) / 2, symmetric positive definite, so the coupling is monotone in the
Lasry–Lions sense and the equilibrium is unique; ``monotone=False`` takes W with
independent standard normal entries (no uniqueness). ``coupling = 0`` gives K
independent MDPs. Everything is drawn from ``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

import numpy as np

from mfgbench.games.base import Game, Population
from mfgbench.games.registry import register


def random_kernel(rng, S, A, B):
    """B distinct successors per (s, a) and Dirichlet(1) probabilities over them."""
    if B > S:
        raise ValueError(f"branching B={B} exceeds the number of states S={S}")
    keys = rng.random((S, A, S)) if S * A * S <= 4_000_000 else None
    if keys is not None:
        succ = np.argpartition(keys, B - 1, axis=2)[:, :, :B] if B < S else np.argsort(keys, axis=2)
    else:  # large S: draw with replacement, then redraw rows that repeat a successor
        succ = rng.integers(0, S, size=(S, A, B))
        for _ in range(100):
            srt = np.sort(succ, axis=2)
            dup = (np.diff(srt, axis=2) == 0).any(axis=2)
            if not dup.any():
                break
            succ[dup] = rng.integers(0, S, size=(int(dup.sum()), B))
    prob = rng.exponential(size=(S, A, B))
    prob /= prob.sum(axis=2, keepdims=True)
    return succ.astype(np.int64), prob


@register("garnet-v0", description="seeded random game (S states, A actions, branching B), monotone coupling",
          source="garnet MDPs (Archibald et al. 1995) with a mean-field reward term")
class Garnet(Game):
    id = "garnet-v0"
    static_transitions = True

    @staticmethod
    def array_dims(S, A, B, T, K, **_):
        """(T, [(S, A, B)] * K) before building, for the registry's memory check."""
        return T, [(S, A, B)] * K

    def __init__(self, S: int = 20, A: int = 3, B: int = 3, T: int = 10, K: int = 1,
                 coupling: float = 1.0, monotone: bool = True, seed: int = 0):
        if min(S, A, B, T, K) < 1:
            raise ValueError(f"game {self.id}: S, A, B, T, K must be >= 1, got {(S, A, B, T, K)}")
        rng = np.random.default_rng(seed)
        self.coupling = float(coupling)
        self._kernels = [random_kernel(rng, S, A, B) for _ in range(K)]
        self._base = [rng.random((S, A)) for _ in range(K)]
        self.weights = (np.eye(K) + np.ones((K, K))) / 2.0 if monotone else rng.standard_normal((K, K))
        pops = [Population(f"pop{k}", S, A, np.full(S, 1.0 / S)) for k in range(K)]
        super().__init__(int(T), pops)

    def rewards(self, k, t, mf):
        if self.coupling == 0.0:
            return self._base[k]
        crowd = sum(self.weights[k, j] * mf.mu[j] for j in range(self.n_populations))
        return self._base[k] - self.coupling * crowd[:, None]

    def transitions(self, k, t, mf):
        return self._kernels[k]
