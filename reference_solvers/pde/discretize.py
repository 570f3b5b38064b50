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

The discretized game is a game of its own, with its own id ``<continuous id>@nx..-nt..-a..-v..``
and parameters (the continuous game's and the grid's), so its certified reference is cached
like any registered game's. When the continuous game has no drift and couples only through
``LogDensity`` (own density, one weight shared by every population) and linear
``PowerDensity`` terms, the finite game declares that structure as a
:class:`~mfgbench.games.base.LogCoupling` (``eta = w dt``, ``cross[k][j] = -c dt / dv`` from
``m = mu / dv``; the terminal cost, paid once, has ``terminal_weight = 1 / dt`` times the
per-step coupling when its terms are the running ones scaled alike), so its reference comes
from the interior point on the potential (crowd-continuous, segregation).
"""
from __future__ import annotations

import itertools

import numpy as np

from mfgbench.games.base import Game, LogCoupling, Population
from mfgbench.games.continuous import LOG_FLOOR, LogDensity, PowerDensity
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
        bridge = {"nx": int(nx), "nt": self.nt, "n_actions": int(n_actions), "max_speed": self.max_speed}
        self.id = bridged_id(getattr(game, "id", "continuous"), bridge)
        super().__init__(self.nt, pops, {**getattr(game, "params", {}), **bridge})
        self._check_cfl()
        self.log_coupling = self._local_coupling()

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

    def _local_coupling(self) -> LogCoupling | None:
        """The declared local coupling (see the module docstring), or None when the game's
        couplings are not all local log / linear density terms or do not scale alike."""
        g = self.continuous
        K = g.n_populations
        if not self.static_transitions:
            return None

        def coefficients(terms, k):   # (log weight, linear weights by source), or None if another kind
            log_w, lin = 0.0, np.zeros(K)
            for term in terms:
                if isinstance(term, LogDensity) and term._src(k) == k:
                    log_w += term.weight
                elif isinstance(term, PowerDensity) and term.alpha == 1.0:
                    lin[term._src(k)] += term.weight
                elif term.depends_on_m:
                    return None
            return log_w, lin

        run = [coefficients(g.populations[k].running, k) for k in range(K)]
        end = [coefficients(g.populations[k].terminal, k) for k in range(K)]
        if any(c is None for c in run + end) or len({w for w, _ in run}) != 1:
            return None
        eta_run = run[0][0]
        cross_run = np.array([lin for _, lin in run])
        if eta_run == 0.0 and not cross_run.any():
            return None
        # the terminal coupling must be the running one times one factor (or absent)
        run_vec = np.concatenate([[w for w, _ in run], cross_run.ravel()])
        end_vec = np.concatenate([[w for w, _ in end], np.array([lin for _, lin in end]).ravel()])
        terminal = bool(end_vec.any())
        ratio = 1.0
        if terminal:
            ratio = float(end_vec @ run_vec / (run_vec @ run_vec))
            if not np.allclose(end_vec, ratio * run_vec, rtol=1e-12, atol=0.0) or ratio <= 0:
                return None
        cross = -cross_run * self.dt / self.dv
        try:
            return LogCoupling(eta_run * self.dt, LOG_FLOOR * self.dv, floor="max", terminal=terminal,
                               cross=tuple(tuple(map(float, row)) for row in cross) if cross.any() else None,
                               terminal_weight=ratio / self.dt if terminal else 1.0)
        except ValueError:   # cross terms neither symmetric nor monotone: no potential structure
            return None

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


def bridged_id(game_id: str, bridge: dict) -> str:
    """Id of the finite game of ``game_id`` on the grid ``bridge`` (nx, nt, n_actions, max_speed)."""
    return f"{game_id}@nx{bridge['nx']}-nt{bridge['nt']}-a{bridge['n_actions']}-v{bridge['max_speed']:g}"


def discretize(game, nx, nt, n_actions, max_speed=None) -> DiscretizedGame:
    """The Markov-chain finite game of ``game`` (see the module docstring).

    ``nx``: cells per axis; ``nt``: time steps (transitions); ``n_actions``: control values per
    axis (2D games get ``n_actions**2`` actions); ``max_speed``: largest |alpha| per axis
    (default: the game's control bound, else 2).
    """
    return DiscretizedGame(game, nx, nt, n_actions, max_speed)
