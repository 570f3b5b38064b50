"""The coupled discrete MFG system of a continuous game and three ways to solve it.

For populations k = 1..K on one grid, the unknowns are ``u_k^n`` (n = 0..nt) and ``m_k^n``
(n = 1..nt; ``m_k^0`` is the normalised initial density) and the equations are those of
``scheme`` with ``f_k^n = f_k(t_{n+1}, x, m^{n+1})``, ``b_k^n = b_k(t_{n+1}, x, m^{n+1})`` and
``u_k^nt = g_k(x, m^nt)``. The **residual** of (u, m) is the max-norm of the whole system
written in time-step form: ``dt * F_HJB``, ``u^nt - g`` and ``dt * (J_n^T m^{n+1} - m^n/dt)``.

Here: the ``Problem`` (a game on a grid, and the residual), the ``SolveResult``, and the
fixed-point solvers, which end with an exact forward sweep (so the returned m conserves
mass to round-off and is non-negative):

- ``picard``: m <- (1 - theta) m + theta FP(BR(m)) (damped fixed point);
- ``fictitious_play``: the same with theta_j = 1/(j + 2).

Newton's method on the whole system is in ``newton``; ``solvers.solve`` picks a method.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from mfgbench._threads import adaptive_threads, refresh_threads
from reference_solvers.pde import kernels
from reference_solvers.pde.grid import Grid
from reference_solvers.pde.scheme import Scheme


# ----------------------------------------------------------------------------- the problem
class Problem:
    """A continuous game on a space-time grid: schemes, points, initial densities, cost evaluation."""

    def __init__(self, game, nx, nt: int):
        if getattr(game, "kind", None) != "continuous":
            raise ValueError(f"expected a continuous game (kind 'continuous'), got {game!r}")
        if isinstance(nt, bool) or not isinstance(nt, (int, np.integer)) or nt < 1:
            raise ValueError(f"nt (number of time steps) must be an integer >= 1, got {nt!r}")
        shape = (nx,) * game.dim if np.isscalar(nx) else tuple(nx)
        if len(shape) != game.dim or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 3
                                         for n in shape):
            raise ValueError(f"nx must be an integer >= 3 (or {game.dim} of them) for game {game.id}, got {nx!r}")
        self.game = game
        self.grid = Grid.from_domain(game.domain, shape)
        self.nt = int(nt)
        self.K = game.n_populations
        self.x = self.grid.points
        self.dv = self.grid.dv
        self.n = self.grid.size
        self.schemes = [Scheme(self.grid, nt, game.horizon, p.nu, game.control_bound) for p in game.populations]
        self.dt = self.schemes[0].dt
        self.times = np.linspace(0.0, game.horizon, self.nt + 1)
        self.m0 = []
        for k in range(self.K):
            m0 = game.m0(k, self.x)
            if not np.all(np.isfinite(m0)) or np.any(m0 < 0) or m0.sum() <= 0:
                raise ValueError(f"game {game.id}, population {k}: m0 must be finite, >= 0 and not all zero on the grid")
            self.m0.append(m0 / (m0.sum() * self.dv))

    def initial_flow(self):
        """m_k^n = m0_k for every n: the usual starting guess."""
        return [np.tile(m0, (self.nt + 1, 1)) for m0 in self.m0]

    def couplings(self, m):
        """(f, b, g) per population for the flow m: f (nt, N), b (nt, d, N), g (N).

        All time steps are evaluated in one batch (times t_{n+1} as a column, densities m^{n+1}).
        """
        game, x, dv = self.game, self.x, self.dv
        t = self.times[1:, None]
        ms = tuple(ml[1:] for ml in m)
        fs, bs, gs = [], [], []
        for k in range(self.K):
            fs.append(np.ascontiguousarray(game.running_cost(k, t, x, dv, ms)))
            bs.append(np.ascontiguousarray(game.drift(k, t, x, dv, ms)))
            gs.append(game.terminal_cost(k, x, dv, tuple(ml[-1] for ml in m)))
        return fs, bs, gs

    def best_response(self, m, u_guess=None):
        """u_k solving the HJB equations against the flow m, and their Jacobian stencils."""
        fs, bs, gs = self.couplings(m)
        us, vals = [], []
        for k, sch in enumerate(self.schemes):
            u, v = sch.backward(fs[k], bs[k], gs[k], None if u_guess is None else u_guess[k])
            us.append(u)
            vals.append(v)
        return us, vals

    def flow(self, vals):
        return [sch.forward(vals[k], self.m0[k]) for k, sch in enumerate(self.schemes)]

    def residual_parts(self, u, m):
        """Residual of the system at (u, m) per population: (hjb (nt, N), terminal (N), fp (nt, N),
        Jacobian stencils, f, b)."""
        fs, bs, gs = self.couplings(m)
        out = []
        for k, sch in enumerate(self.schemes):
            hjb = np.empty((self.nt, self.n))
            fp = np.empty((self.nt, self.n))
            vals = np.empty((self.nt, self.n, sch.width))
            kernels.system_residual(u[k], m[k], fs[k], bs[k], sch.nb, sch.h, sch.nu, sch.dt, sch.bound, hjb, fp, vals)
            out.append((hjb, u[k][-1] - gs[k], fp, vals, fs[k], bs[k]))
        return out

    def residual(self, u, m) -> float:
        return self.residual_norm(self.residual_parts(u, m))

    @staticmethod
    def residual_norm(parts) -> float:
        """The residual (max-norm) of the output of ``residual_parts``."""
        return float(max(max(np.abs(h).max(), np.abs(t).max(), np.abs(p).max()) for h, t, p, *_ in parts))

    def mass_error(self, m) -> float:
        return float(max(np.abs(self.grid.mass(mk) - 1.0).max() for mk in m))


# ----------------------------------------------------------------------------- result
@dataclass
class SolveResult:
    """A solved discrete MFG: u[k] and m[k] of shape (nt+1, *grid shape flattened), and how we got there."""

    problem: Problem
    u: list
    m: list
    residuals: list
    method: str
    iterations: int
    seconds: float
    tol: float
    converged: bool
    notes: list = field(default_factory=list)

    @property
    def grid(self) -> Grid:
        return self.problem.grid

    @property
    def times(self) -> np.ndarray:
        return self.problem.times

    @property
    def residual(self) -> float:
        return self.residuals[-1] if self.residuals else float("nan")

    @property
    def mass_error(self) -> float:
        return self.problem.mass_error(self.m)

    @property
    def min_density(self) -> float:
        return float(min(mk.min() for mk in self.m))

    def control(self, k: int = 0) -> np.ndarray:
        """The equilibrium feedback alpha_k^n = -grad_p H(grad u_k^n) at the grid points (centred), (nt, d, N)."""
        bound = self.problem.schemes[k].bound
        g = np.stack([self.grid.gradient(un) for un in self.u[k][:-1]])
        return -np.clip(g, -bound, bound)

    def summary(self) -> dict:
        g = self.problem.game
        return {"game": g.id, "method": self.method, "iterations": self.iterations, "residual": self.residual,
                "tol": self.tol, "converged": self.converged, "mass_error": self.mass_error,
                "min_density": self.min_density, "seconds": self.seconds, "grid": list(self.grid.shape),
                "nt": self.problem.nt, "notes": list(self.notes)}

    def __repr__(self):
        s = self.summary()
        return (f"<SolveResult {s['game']} {s['method']} grid={s['grid']} nt={s['nt']} it={s['iterations']} "
                f"residual={s['residual']:.2e} mass_error={s['mass_error']:.1e} {s['seconds']:.2f}s>")


# ----------------------------------------------------------------------------- fixed points
def _fixed_point(problem, tol, max_iter, step, m=None, stop_at=None):
    """Shared loop of Picard and fictitious play; ``step(j)`` is the averaging weight of iteration j.

    Iteration j computes u_j = BR(m), m_j = FP(u_j) and records the residual of the pair
    (u_j, m_j) (its FP part is exact, so this is the HJB mismatch of m against m_j).
    """
    with adaptive_threads():
        return _fixed_point_loop(problem, tol, max_iter, step, m, stop_at)


def _fixed_point_loop(problem, tol, max_iter, step, m, stop_at):
    m = problem.initial_flow() if m is None else m
    stop_at = tol if stop_at is None else max(tol, stop_at)
    residuals, u = [], None
    for j in range(max_iter):
        refresh_threads()
        u, vals = problem.best_response(m, u)
        m_new = problem.flow(vals)
        residuals.append(problem.residual(u, m_new))
        if not np.isfinite(residuals[-1]):
            raise FloatingPointError(f"fixed-point iteration {j} produced a non-finite residual")
        if residuals[-1] <= stop_at:
            return u, m_new, residuals
        theta = step(j)
        m = [(1 - theta) * mk + theta * mn for mk, mn in zip(m, m_new)]
    return u, m_new, residuals


def _result(problem, u, m, residuals, t0, method, iterations, tol, notes=()):
    return SolveResult(problem, u, m, residuals, method, iterations, time.perf_counter() - t0, tol,
                       residuals[-1] <= tol, list(notes))


def picard(problem: Problem, tol=1e-10, max_iter=1000, damping=0.1) -> SolveResult:
    """Damped Picard iteration m <- (1 - damping) m + damping FP(BR(m))."""
    if not 0 < damping <= 1:
        raise ValueError(f"picard: damping must be in (0, 1], got {damping}")
    t0 = time.perf_counter()
    u, m, res = _fixed_point(problem, tol, max_iter, lambda j: damping)
    return _result(problem, u, m, res, t0, "picard", len(res), tol, [f"damping={damping}"])


def fictitious_play(problem: Problem, tol=1e-10, max_iter=1000) -> SolveResult:
    """Fictitious play: m <- average of FP(BR(m)) over iterations (weight 1/(j+2))."""
    t0 = time.perf_counter()
    u, m, res = _fixed_point(problem, tol, max_iter, lambda j: 1.0 / (j + 2))
    return _result(problem, u, m, res, t0, "fictitious", len(res), tol)
