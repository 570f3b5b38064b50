"""Markov-chain approximation of a continuous game: a finite game tabular learners can play.

On the cell-centred grid of ``grid.Grid`` with ``dt = T / nt``, an agent at cell i using the
control alpha (one of ``n_actions`` values per axis, evenly spaced in ``[-max_speed, max_speed]``)
with total velocity ``v = alpha + b(x_i, m)`` moves in one step (Kushner & Dupuis upwinding)

    to i + e_a  with probability  dt (nu/h_a^2 + max(v_a, 0)/h_a),
    to i - e_a  with probability  dt (nu/h_a^2 + max(-v_a, 0)/h_a),

and stays otherwise; a move across a wall is replaced by staying (reflection). These are
probabilities only when ``dt * sum_a (2 nu/h_a^2 + |v_a|/h_a) <= 1``; the constructor checks it.
The mean is ``v dt`` and the variance ``2 nu dt + O(dt h)``, consistent with the diffusion.
Rewards are the negatives of the costs integrated over a step:
``R_t[i, alpha] = -(|alpha|^2/2 + f(t_t, x_i, m_t)) dt`` with the density ``m_t = mu_t / dv``,
and the terminal reward is ``-g(x_i, m_T)``. The result follows the finite-game contract of
``mfgbench.games.base`` (T = nt transitions).
"""
from __future__ import annotations

import itertools

import numpy as np

from mfgbench.games.base import Game, Population
from reference_solvers.pde.grid import Grid


class DiscretizedGame(Game):
    """The finite game of a continuous game on an ``nx`` by ``nt`` grid (see the module docstring)."""

    kind = "finite"

    def __init__(self, game, nx, nt, n_actions, max_speed=None):
        if getattr(game, "kind", None) != "continuous":
            raise ValueError(f"discretize: expected a continuous game, got {game!r}")
        if isinstance(nt, bool) or not isinstance(nt, (int, np.integer)) or nt < 1:
            raise ValueError(f"discretize: nt must be an integer >= 1, got {nt!r}")
        if isinstance(n_actions, bool) or not isinstance(n_actions, (int, np.integer)) or n_actions < 2:
            raise ValueError(f"discretize: n_actions (per axis) must be an integer >= 2, got {n_actions!r}")
        if max_speed is None:
            max_speed = game.control_bound if game.control_bound is not None else 2.0
        if not (np.isfinite(max_speed) and max_speed > 0):
            raise ValueError(f"discretize: max_speed must be a positive number, got {max_speed!r}")
        if game.control_bound is not None and max_speed > game.control_bound:
            raise ValueError(f"discretize: max_speed {max_speed} exceeds the game's control bound {game.control_bound}")
        self.continuous = game
        self.grid = Grid.from_domain(game.domain, nx)
        self.nt = int(nt)
        self.dt = game.horizon / self.nt
        self.x = self.grid.points
        self.dv = self.grid.dv
        d = self.grid.dim
        speeds = np.linspace(-max_speed, max_speed, int(n_actions))
        self.actions = np.array(list(itertools.product(speeds, repeat=d)), dtype=float).T  # (d, A)
        self.max_speed = float(max_speed)
        self._nb = self.grid.neighbours
        pops = []
        for k, p in enumerate(game.populations):
            m0 = game.m0(k, self.x)
            mu0 = m0 / m0.sum()
            pops.append(Population(p.name, self.grid.size, self.actions.shape[1], mu0, grid_shape=self.grid.shape,
                                   periodic=self.grid.periodic))
        self.static_transitions = not any(game.has_drift(k) for k in range(game.n_populations))
        self.id = f"{getattr(game, 'id', 'continuous')}-discretized"
        super().__init__(self.nt, pops, {"nx": nx, "nt": nt, "n_actions": n_actions, "max_speed": max_speed})
        self._check_cfl()

    def _check_cfl(self):
        h = self.grid.h
        worst_b = 0.0
        if not self.static_transitions:
            worst_b = max(np.abs(self.continuous.drift(k, 0.0, self.x, self.dv, tuple(
                p.mu0 / self.dv for p in self.populations))).max() for k in range(self.n_populations))
        for k, p in enumerate(self.continuous.populations):
            rate = sum(2 * p.nu / ha ** 2 + (self.max_speed + worst_b) / ha for ha in h)
            if rate * self.dt > 1:
                need = int(np.ceil(rate * self.continuous.horizon))
                raise ValueError(f"discretize: dt = {self.dt:.3g} is too large for probabilities "
                                 f"(population {k}: dt * rate = {rate * self.dt:.3g} > 1); use nt >= {need}")

    def _densities(self, mf):
        return tuple(np.asarray(mu) / self.dv for mu in mf.mu)

    def transitions(self, k, t, mf):
        g = self.continuous
        S, A, d = self.grid.size, self.actions.shape[1], self.grid.dim
        nu, h, nb = g.populations[k].nu, self.grid.h, self._nb
        v = np.broadcast_to(self.actions[:, None, :], (d, S, A)).copy()
        if not self.static_transitions:
            v += g.drift(k, t * self.dt, self.x, self.dv, self._densities(mf))[:, :, None]
        succ = np.empty((S, A, 1 + 2 * d), dtype=np.int64)
        prob = np.empty((S, A, 1 + 2 * d))
        succ[:, :, 0] = np.arange(S)[:, None]
        stay = np.ones((S, A))
        for a in range(d):
            for col, move in ((1 + 2 * a, np.maximum(v[a], 0.0)), (2 + 2 * a, np.maximum(-v[a], 0.0))):
                p = self.dt * (nu / h[a] ** 2 + move / h[a])
                has = (nb[:, col] >= 0)[:, None]
                succ[:, :, col] = np.where(has, nb[:, col][:, None], np.arange(S)[:, None])
                prob[:, :, col] = np.where(has, p, 0.0)
                stay -= prob[:, :, col]
        prob[:, :, 0] = stay
        if stay.min() < -1e-12:
            raise ValueError(f"discretize: negative stay probability {stay.min():.3g} at t={t} (drift too large for dt)")
        prob[:, :, 0] = np.maximum(stay, 0.0)
        return succ, prob

    def rewards(self, k, t, mf):
        f = self.continuous.running_cost(k, t * self.dt, self.x, self.dv, self._densities(mf))
        control_cost = 0.5 * (self.actions ** 2).sum(axis=0)
        return -(f[:, None] + control_cost[None, :]) * self.dt

    def terminal(self, k, mf):
        return -self.continuous.terminal_cost(k, self.x, self.dv, self._densities(mf))

    def density(self, mu) -> np.ndarray:
        """A distribution over cells (..., S) as a density on the grid (divide by dv)."""
        return np.asarray(mu) / self.dv


def discretize(game, nx, nt, n_actions, max_speed=None) -> DiscretizedGame:
    """The Markov-chain finite game of ``game`` (see the module docstring).

    ``nx``: cells per axis; ``nt``: time steps (transitions); ``n_actions``: control values per
    axis (2D games get ``n_actions**2`` actions); ``max_speed``: largest |alpha| per axis
    (default: the game's control bound, else 2).
    """
    return DiscretizedGame(game, nx, nt, n_actions, max_speed)
