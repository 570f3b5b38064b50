"""The discrete HJB and Fokker-Planck equations of one population, stepped in time.

With time step ``dt = T / nt``, the unknowns ``u^n, m^n`` (n = 0..nt) and the stencil
``F`` of ``kernels.hjb_stencil``, the scheme (Achdou & Capuzzo-Dolcetta 2010) is

    F(u^n; u^{n+1}, f^n, b^n) = 0                   n = nt-1, ..., 0   (implicit Euler backward)
    J_n^T m^{n+1} = m^n / dt,  J_n = dF/du (u^n)      n = 0, ..., nt-1   (implicit Euler forward)

with ``u^nt = g`` and ``m^0 = m0``; ``f^n`` and ``b^n`` are evaluated with ``m^{n+1}``.
Each HJB step is solved by Newton's method (the Hamiltonian is piecewise quadratic, so a
few iterations reach round-off). In 1D the linear systems are (cyclic) tridiagonal and
solved by a Numba kernel (whole sweeps run inside one kernel); in 2D by D-ILU preconditioned
BiCGSTAB on the stencil (a Numba kernel), with a sparse LU (scipy) as fallback. The linear
sweeps of Newton's method on the coupled system reuse one factorisation per time step over
all their Krylov iterations (Thomas factors in 1D, a sparse LU in 2D).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from reference_solvers.pde import kernels

STEP_TOL = 1e-13
"""An HJB step stops when ``dt * max|F| <= STEP_TOL * max(1, max|u|)``."""
STEP_MAX_ITER = 50
LINEAR_RTOL = 1e-14
"""Relative (max-norm) residual of the 2D iterative linear solves of the HJB and FP steps."""
NEWTON_LINEAR_RTOL = 1e-11
"""The same inside Newton's Krylov iterations, whose own tolerance is never below ~1e-9 relative."""
LU_MAX_ENTRIES = 60_000_000
"""Cap on the nonzeros of the 2D per-step LU factors kept by one Newton step (about 1 GB with their
indices); steps beyond it are solved by the iterative method instead."""


class Scheme:
    """Grid data of one population's discrete equations (neighbours, spacings, nu, dt, bound)."""

    def __init__(self, grid, nt: int, horizon: float, nu: float, control_bound=None):
        self.grid = grid
        self.nt = int(nt)
        self.dt = float(horizon) / self.nt
        self.nu = float(nu)
        self.bound = np.inf if control_bound is None else float(control_bound)
        self.nb = grid.neighbours
        self.h = np.ascontiguousarray(grid.h, dtype=np.float64)
        self.n = grid.size
        self.width = self.nb.shape[1]
        ok = self.nb >= 0
        self._rows = np.repeat(np.arange(self.n), self.width)[ok.ravel()]
        self._cols = self.nb[ok]
        self._ok = ok.ravel()

    # -- linear algebra on stencils ---------------------------------------------------
    def matrix(self, vals) -> sp.csr_matrix:
        """The stencil as a sparse matrix."""
        return sp.csr_matrix((vals.ravel()[self._ok], (self._rows, self._cols)), shape=(self.n, self.n))

    def scaled_csc(self, vals, scale) -> sp.csc_matrix:
        """``scale *`` the stencil matrix in CSC form, filled through a sparsity pattern computed once
        (the 2D Newton sweeps factor nt of these per Newton step; going through COO costs more)."""
        if not hasattr(self, "_csc_pattern"):
            order = np.lexsort((self._rows, self._cols))
            rows, cols = self._rows[order], self._cols[order]
            if np.any((np.diff(cols) == 0) & (np.diff(rows) == 0)):  # repeated neighbours: let COO sum them
                self._csc_pattern = None
            else:
                indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=self.n))])
                self._csc_pattern = (np.nonzero(self._ok)[0][order], rows.astype(np.int32), indptr.astype(np.int32))
        if self._csc_pattern is None:
            return (scale * self.matrix(vals)).tocsc()
        gather, indices, indptr = self._csc_pattern
        return sp.csc_matrix((scale * vals.reshape(-1)[gather], indices, indptr), shape=(self.n, self.n))

    def solve(self, vals, rhs, transpose=False, guess=None, rtol=LINEAR_RTOL) -> np.ndarray:
        """Solve ``M x = rhs`` (or ``M^T x = rhs``) for the stencil matrix M (``guess``: 2D starting point)."""
        if self.grid.dim == 1:
            lower, upper = vals[:, 2].copy(), vals[:, 1].copy()
            if transpose:
                lower, upper = np.roll(upper, 1), np.roll(lower, -1)
            out = np.empty(self.n)
            kernels.solve_tridiagonal(lower, np.ascontiguousarray(vals[:, 0]), upper, rhs, self.grid.periodic, out)
            return out
        x = rhs / vals[:, 0] if guess is None else guess.copy()
        if kernels.bicgstab_stencil(vals, self.nb, rhs, transpose, rtol, 500, x) >= 0:
            return x
        M = self.matrix(vals)
        return spla.spsolve((M.T if transpose else M).tocsc(), rhs)

    # -- one HJB step, one FP step ----------------------------------------------------
    def hjb_step(self, u_next, f, b, u_guess=None):
        """Solve F(u; u_next, f, b) = 0 by Newton; return (u, stencil of J at u, Newton iterations)."""
        u = (u_next if u_guess is None else u_guess).copy()
        res = np.empty(self.n)
        vals = np.empty((self.n, self.width))
        for it in range(STEP_MAX_ITER):
            kernels.hjb_stencil(u, u_next, f, b, self.nb, self.h, self.nu, self.dt, self.bound, res, vals)
            if self.dt * np.abs(res).max() <= STEP_TOL * max(1.0, np.abs(u).max()):
                return u, vals, it
            u -= self.solve(vals, res)
        raise RuntimeError(f"HJB step did not converge in {STEP_MAX_ITER} Newton iterations "
                           f"(residual {self.dt * np.abs(res).max():.3g}); is the time step too large?")

    def fp_step(self, vals, m_prev) -> np.ndarray:
        """m with ``J^T m = m_prev / dt``."""
        return self.solve(vals, m_prev / self.dt, transpose=True)

    # -- whole sweeps -----------------------------------------------------------------
    def backward(self, f, b, g, u_guess=None):
        """u (nt+1, N) and the Jacobian stencils (nt, N, W) from f (nt, N), b (nt, d, N), g (N)."""
        if self.grid.dim == 1:
            warm = u_guess is not None and np.shape(u_guess) == (self.nt + 1, self.n)
            u = np.array(u_guess, dtype=float) if warm else np.empty((self.nt + 1, self.n))
            vals = np.empty((self.nt, self.n, self.width))
            its = kernels.hjb_backward_1d(np.ascontiguousarray(f), np.ascontiguousarray(b), g, self.nb, self.h,
                                          self.nu, self.dt, self.bound, self.grid.periodic, STEP_TOL,
                                          STEP_MAX_ITER, warm, u, vals)
            if its < 0:
                raise RuntimeError(f"HJB step did not converge in {STEP_MAX_ITER} Newton iterations; "
                                   f"is the time step too large?")
            return u, vals
        return self.backward_stepwise(f, b, g, u_guess)

    def backward_stepwise(self, f, b, g, u_guess=None):
        """``backward`` one step at a time (any dimension; the numpy-level twin of the 1D kernel)."""
        nt = self.nt
        u = np.empty((nt + 1, self.n))
        vals = np.empty((nt, self.n, self.width))
        u[nt] = g
        for n in range(nt - 1, -1, -1):
            guess = None if u_guess is None else u_guess[n]
            u[n], vals[n], _ = self.hjb_step(u[n + 1], f[n], b[n], guess)
        return u, vals

    def forward(self, vals, m0) -> np.ndarray:
        """m (nt+1, N) with m[0] = m0 and ``J_n^T m^{n+1} = m^n / dt``."""
        if self.grid.dim == 1:
            m = np.empty((self.nt + 1, self.n))
            kernels.fp_forward_1d(vals, m0, self.grid.periodic, self.dt, m)
            return m
        return self.forward_stepwise(vals, m0)

    def forward_stepwise(self, vals, m0) -> np.ndarray:
        """``forward`` one step at a time (any dimension)."""
        m = np.empty((self.nt + 1, self.n))
        m[0] = m0
        for n in range(self.nt):
            m[n + 1] = self.solve(vals[n], m[n] / self.dt, transpose=True, guess=m[n])
        return m

    def linear_backward(self, f, b, g):
        """Cost of a fixed drift: the linear upwind equation (``kernels.hjb_stencil`` with bound 0)."""
        nt = self.nt
        u = np.empty((nt + 1, self.n))
        vals = np.empty((nt, self.n, self.width))
        res = np.empty(self.n)
        u[nt] = g
        for n in range(nt - 1, -1, -1):
            zero = np.zeros(self.n)
            kernels.hjb_stencil(zero, u[n + 1], f[n], b[n], self.nb, self.h, self.nu, self.dt, 0.0, res, vals[n])
            u[n] = self.solve(vals[n], -res)
        return u, vals

    # -- the linear blocks of Newton's matrix -----------------------------------------
    def factor(self, vals, transpose, out=None):
        """Per-step factors of ``dt J_n`` (or ``dt J_n^T``) for repeated Newton sweeps.

        1D: Thomas factors of the (cyclic) tridiagonal matrices (a Numba kernel), one set per
        transpose flag. 2D and more: a sparse LU (SuperLU, minimum degree on J + J^T, which keeps
        the fill of a grid Laplacian small) of ``dt J_n`` per step; the same LU solves the
        transposed system, so ``transpose`` is ignored. Once the factors would hold more than
        ``LU_MAX_ENTRIES`` nonzeros the remaining steps get None and are solved iteratively
        (memory stays bounded on large grids). Factoring on two threads gave no speed-up (tried).
        """
        nt, n = vals.shape[0], self.n
        if self.grid.dim != 1:
            def lu(k):
                return spla.splu(self.scaled_csc(vals[k], self.dt), permc_spec="MMD_AT_PLUS_A",
                                 options=dict(SymmetricMode=True))

            first = lu(0)
            # every step has the same pattern, so about the same fill as the first
            count = int(min(nt, max(1, LU_MAX_ENTRIES // max(first.nnz, 1))))
            return [first] + [lu(k) for k in range(1, count)] + [None] * (nt - count)
        # out: five arrays (nt, N) x 4 and (nt, 2) to reuse (1D only)
        f = out if out is not None else (np.empty((nt, n)), np.empty((nt, n)), np.empty((nt, n)), np.zeros((nt, n)),
                                         np.zeros((nt, 2)))
        kernels.factor_sweep_1d(vals, transpose, self.dt, self.grid.periodic, *f)
        return f

    def newton_backward(self, vals, rhs, terminal, factors=None, out=None) -> np.ndarray:
        """x[nt] = terminal, (dt J_n) x[n] = rhs[n] + x[n+1] (into ``out``, (nt+1, N), when given)."""
        x = np.empty((self.nt + 1, self.n)) if out is None else out
        if self.grid.dim == 1:
            factors = self.factor(vals, False) if factors is None else factors
            kernels.linear_backward_1d(*factors, self.grid.periodic, rhs, terminal, x)
            return x
        x[self.nt] = terminal
        for n in range(self.nt - 1, -1, -1):
            lu = None if factors is None else factors[n]
            if lu is not None:
                x[n] = lu.solve(rhs[n] + x[n + 1])
            else:
                x[n] = self.solve(vals[n], (rhs[n] + x[n + 1]) / self.dt, guess=x[n + 1], rtol=NEWTON_LINEAR_RTOL)
        return x

    def newton_forward(self, vals, rhs, factors=None, out=None) -> np.ndarray:
        """x[0] = 0, (dt J_n^T) x[n+1] = rhs[n] + x[n] (into ``out``, (nt+1, N), when given)."""
        x = np.empty((self.nt + 1, self.n)) if out is None else out
        if self.grid.dim == 1:
            factors = self.factor(vals, True) if factors is None else factors
            kernels.linear_forward_1d(*factors, self.grid.periodic, rhs, x)
            return x
        x[0] = 0.0
        for n in range(self.nt):
            lu = None if factors is None else factors[n]
            if lu is not None:
                x[n + 1] = lu.solve(rhs[n] + x[n], trans="T")
            else:
                x[n + 1] = self.solve(vals[n], (rhs[n] + x[n]) / self.dt, transpose=True, guess=x[n],
                                      rtol=NEWTON_LINEAR_RTOL)
        return x
