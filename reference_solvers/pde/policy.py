"""Evaluation of a feedback control alpha(t, x) in a continuous game, on the PDE grid.

For a control profile (one feedback per population), on the grid of ``coupled.Problem``:

1. the flow it induces: ``m^{n+1} = (B_n^T)^{-1} m^n / dt`` where ``B_n`` is the implicit upwind
   operator of the drift ``v^n = alpha(t_n, x) + b(m^{n+1})`` (``kernels.hjb_stencil`` with
   control bound 0; a drift that depends on m is resolved by a fixed point at each step);
2. its cost ``J(alpha) = int u^alpha(0) m0``, where ``u^alpha`` solves the linear backward
   equation ``B_n u^n - u^{n+1}/dt = |alpha^n|^2/2 + f(m^{n+1})``, ``u^nt = g(m^nt)``;
3. the best-response cost ``J_BR = int u^BR(0) m0`` against the same flow (the HJB scheme);
4. ``exploitability = sum_k (J_k(alpha) - J_k,BR)``.

The numerical Hamiltonian dominates every upwind linear operator (it is a supremum over
one-sided controls), so the discrete comparison principle gives ``J(alpha) >= J_BR``: the
exploitability is >= 0 up to round-off, and it is a discretisation-level number for the
equilibrium control.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference_solvers.pde import kernels
from reference_solvers.pde.coupled import Problem

DRIFT_FP_TOL = 1e-13
DRIFT_FP_MAX_ITER = 200


@dataclass
class ControlEvaluation:
    """What ``evaluate_control`` computed; per-population lists, plus the total exploitability."""

    problem: Problem
    alpha: list
    m: list
    u: list
    u_best_response: list
    cost: np.ndarray
    best_response_cost: np.ndarray

    @property
    def exploitability_per_population(self) -> np.ndarray:
        return self.cost - self.best_response_cost

    @property
    def exploitability(self) -> float:
        return float(self.exploitability_per_population.sum())


def _control_values(problem, control, k):
    """alpha_k^n at the grid points, shape (nt, d, N), from a callable or an array."""
    nt, d, N = problem.nt, problem.grid.dim, problem.n
    if callable(control):
        out = np.empty((nt, d, N))
        for n in range(nt):
            v = np.asarray(control(problem.times[n], problem.x), dtype=float)
            if v.shape == (N,) and d == 1:
                v = v[None, :]
            if v.shape != (d, N):
                raise ValueError(f"control of population {k}: callable returned shape {v.shape} at t={problem.times[n]}, "
                                 f"expected ({d}, {N}) (or ({N},) in 1D)")
            out[n] = v
    else:
        out = np.asarray(control, dtype=float)
        if out.shape == (nt, N) and d == 1:
            out = out[:, None, :]
        if out.shape != (nt, d, N):
            raise ValueError(f"control of population {k}: array has shape {out.shape}, expected (nt, d, N) = "
                             f"({nt}, {d}, {N}) (or ({nt}, {N}) in 1D)")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"control of population {k} is not finite everywhere")
    bound = problem.game.control_bound
    if bound is not None and np.abs(out).max() > bound * (1 + 1e-12):
        raise ValueError(f"control of population {k} exceeds the game's control bound {bound} "
                         f"(max |alpha| = {np.abs(out).max():.4g})")
    return np.ascontiguousarray(out)


def induced_flow(problem: Problem, alphas):
    """The flow m_k^n (n = 0..nt) induced by the controls alpha_k (arrays (nt, d, N))."""
    game, x, dv = problem.game, problem.x, problem.dv
    K, N = problem.K, problem.n
    m = [np.empty((problem.nt + 1, N)) for _ in range(K)]
    for k in range(K):
        m[k][0] = problem.m0[k]
    drifting = any(game.has_drift(k) for k in range(K))
    zero = np.zeros(N)
    res = np.empty(N)
    for n in range(problem.nt):
        guess = [m[k][n] for k in range(K)]
        for _ in range(DRIFT_FP_MAX_ITER if drifting else 1):
            new = []
            for k, sch in enumerate(problem.schemes):
                v = alphas[k][n] + game.drift(k, problem.times[n + 1], x, dv, tuple(guess))
                vals = np.empty((N, sch.width))
                kernels.hjb_stencil(zero, zero, zero, v, sch.nb, sch.h, sch.nu, sch.dt, 0.0, res, vals)
                new.append(sch.fp_step(vals, m[k][n]))
            change = max(np.abs(a - b).max() for a, b in zip(new, guess))
            guess = new
            if change <= DRIFT_FP_TOL * max(1.0, max(g.max() for g in guess)):
                break
        for k in range(K):
            m[k][n + 1] = guess[k]
    return m


def evaluate_control(game, control, nx, nt, problem: Problem | None = None) -> ControlEvaluation:
    """Flow, cost, best-response cost and exploitability of a feedback control profile.

    ``control``: for a one-population game a callable ``alpha(t, x)`` (x of shape (d, N); returns
    (d, N), or (N,) in 1D) or an array (nt, d, N) / (nt, N) of values at the grid points and times
    ``t_n = n T / nt`` (n < nt); for K populations a tuple of K of those. The control is the
    game's alpha (velocity = alpha + b). Pass ``problem`` to reuse a grid.
    """
    problem = Problem(game, nx, nt) if problem is None else problem
    K = problem.K
    controls = control if isinstance(control, (tuple, list)) else (control,)
    if len(controls) != K:
        raise ValueError(f"game {game.id} has {K} populations; got {len(controls)} controls")
    alphas = [_control_values(problem, c, k) for k, c in enumerate(controls)]
    m = induced_flow(problem, alphas)
    fs, bs, gs = problem.couplings(m)
    us, ubrs, J, Jbr = [], [], np.empty(K), np.empty(K)
    for k, sch in enumerate(problem.schemes):
        a = alphas[k]
        running = fs[k] + 0.5 * (a ** 2).sum(axis=1)
        u, _ = sch.linear_backward(running, a + bs[k], gs[k])
        ubr, _ = sch.backward(fs[k], bs[k], gs[k])
        us.append(u)
        ubrs.append(ubr)
        J[k] = u[0] @ problem.m0[k] * problem.dv
        Jbr[k] = ubr[0] @ problem.m0[k] * problem.dv
    return ControlEvaluation(problem, alphas, m, us, ubrs, J, Jbr)
