"""Newton's method on the whole discrete MFG system of ``coupled.Problem``.

Unknowns: u_k^n (n = 0..nt) and m_k^n (n = 1..nt) of every population; equations: the
residual rows of ``coupled.Problem.residual_parts`` (HJB, terminal, FP, each in time-step
form). The Jacobian has the blocks

    HJB_n:  dt J_n du^n - du^{n+1} - dt (df/dm) dm^{n+1} + dt (dF/db)(db/dm) dm^{n+1}
    term:   du^nt - (dg/dm) dm^nt
    FP_n+1: dt J_n^T dm^{n+1} - dm^n + dt C_n du^n + dt (d(J^T m)/db)(db/dm) dm^{n+1}

where J_n is the HJB Jacobian stencil and ``C_n = d(J_n(u)^T m^{n+1})/du`` a weighted graph
Laplacian (``kernels.fp_edge_weights``). Two ways to solve each Newton system:

- ``linear="krylov"`` (default): for a given dm, the HJB rows give du by one backward sweep
  of ``dt J_n`` solves and the FP rows then give a new dm by one forward sweep of
  ``dt J_n^T`` solves; the Newton step is the fixed point of that affine map. With one
  population, local monotone couplings and no drift, ``I - phi`` is self-adjoint and positive
  definite in the inner product weighted by the coupling derivatives (``_Linearisation.cg_weights``;
  the linearised system is the optimality system of a convex problem), and conjugate gradients
  (``cg``) find the fixed point with a short recurrence; otherwise restarted GMRES (``gmres``).
  The ``dt J_n`` are factored once per Newton step (Thomas factors in 1D, a sparse LU per time
  step in 2D, ``scheme.Scheme.factor``) and reused by every Krylov iteration. Work and memory
  grow like N nt per Krylov iteration in 1D.
- ``linear="direct"``: one sparse LU (scipy) of the whole matrix. Couplings through a mean
  (rank one) enter through one extra unknown per term and time so the matrix stays sparse;
  convolution couplings are dense blocks. Exact, but fill-in limits it to small grids.

Globalisation: a start from the solution on a coarser grid (4 times in 1D, 2 times in 2D;
its m interpolated, then one Picard sweep u = BR(m), m = FP(u)) when the grid is large
enough, else damped Picard iterations; a non-monotone backtracking line
search on the residual (keeping m > 0 when a log-density coupling is present); and a
damped Picard step whenever the line search fails (close to a kink of the upwind
Hamiltonian the Newton direction may not decrease the residual).
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mfgbench._threads import adaptive_threads, refresh_threads
from mfgbench.games.continuous import LogDensity
from reference_solvers.pde import kernels
from reference_solvers.pde.coupled import Problem, SolveResult, _fixed_point, _result
from reference_solvers.pde.memory import large_arrays

class _Assembler:
    """COO triplets of the Newton matrix, with extra unknowns for rank-one (mean) couplings."""

    def __init__(self, n_main):
        self.rows, self.cols, self.vals = [], [], []
        self.n_main = n_main
        self.n_extra = 0

    def add(self, r, c, v):
        self.rows.append(np.asarray(r, dtype=np.int64).ravel())
        self.cols.append(np.asarray(c, dtype=np.int64).ravel())
        self.vals.append(np.asarray(v, dtype=float).ravel())

    def add_block(self, r0, c0, block):
        """Add a coupling derivative block (kind, data) at rows r0.. and columns c0.."""
        kind, data = block
        if kind == "diag":
            i = np.arange(data.size)
            self.add(r0 + i, c0 + i, data)
        elif kind == "dense":
            data = np.asarray(data.toarray() if sp.issparse(data) else data)
            ii, jj = np.nonzero(data)
            self.add(r0 + ii, c0 + jj, data[ii, jj])
        elif kind == "sparse":
            coo = sp.coo_matrix(data)
            self.add(r0 + coo.row, c0 + coo.col, coo.data)
        elif kind == "outer":
            cvec, w = data
            e = self.n_main + self.n_extra
            self.n_extra += 1
            i = np.arange(cvec.size)
            self.add(r0 + i, np.full(i.size, e), cvec)
            j = np.arange(w.size)
            self.add(np.full(j.size, e), c0 + j, -w)
            self.add([e], [e], [1.0])
        else:
            raise ValueError(f"unknown Jacobian block kind {kind!r}")

    def matrix(self):
        n = self.n_main + self.n_extra
        return sp.csc_matrix((np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
                             shape=(n, n))


def _scaled(block, scale):
    kind, data = block
    if kind == "outer":
        return kind, (scale * data[0], data[1])
    return kind, scale * data


def _left(op, block):
    """``op @ block`` for a sparse operator op."""
    kind, data = block
    if kind == "diag":
        return "sparse", op @ sp.diags(data)
    if kind == "outer":
        return "outer", (op @ data[0], data[1])
    return "dense", op @ np.asarray(data)


def newton(problem: Problem, tol=1e-10, max_iter=50, linear: str = "krylov", warmup_tol=1e-2, warmup_iter=20,
           warmup_damping=0.1, krylov_restart=60, coarse: bool = True) -> SolveResult:
    """Newton's method on the whole discrete system (see the module docstring).

    Starts, when ``coarse`` and the grid is large enough, from the Newton solution on a
    coarser grid (by 4 in 1D, 2 in 2D, in space and time; solved to ``COARSE_TOL``), whose m is
    interpolated and followed by one Picard sweep (nested iteration);
    otherwise from damped Picard iterations (until the residual is below ``warmup_tol`` or
    ``warmup_iter`` iterations). ``residuals`` lists the starting residuals, then one per
    Newton step. Each Newton step solves the linearised system either by ``linear="krylov"``
    (default: eliminate du by a backward sweep and dm by a forward sweep, and solve the
    remaining equation on dm by GMRES; memory and work grow like N nt) or by
    ``linear="direct"`` (one sparse LU of the whole matrix; exact, but its fill-in limits it to
    small grids). A backtracking line search on the residual keeps log-density games in
    m > 0. A last sweep u = BR(m), m = FP(u) makes m exactly mass-conserving and
    non-negative; it is kept when its residual is still within tol. Runs inside
    ``memory.large_arrays()`` (freed temporaries are reused, not faulted in again).
    """
    with large_arrays(), adaptive_threads():
        return _newton(problem, tol, max_iter, linear, warmup_tol, warmup_iter, warmup_damping, krylov_restart,
                       coarse)


def _newton(problem, tol, max_iter, linear, warmup_tol, warmup_iter, warmup_damping, krylov_restart, coarse):
    if linear not in ("krylov", "direct"):
        raise ValueError(f"newton: linear must be 'krylov' or 'direct', got {linear!r}")
    t0 = time.perf_counter()
    notes = []
    coarse_problem = _coarser(problem) if coarse else None
    if coarse_problem is not None:
        rough = newton(coarse_problem, tol=max(tol, COARSE_TOL), max_iter=max_iter, linear=linear,
                       warmup_tol=warmup_tol, warmup_iter=warmup_iter, warmup_damping=warmup_damping,
                       krylov_restart=krylov_restart)
        u, m = _interpolate(rough, problem)
        # make the start consistent by one Picard sweep from the interpolated m: u = BR(m) solves the
        # HJB rows exactly and m = FP(u) the FP rows, so only the coupling mismatch f(m_interp) vs
        # f(m) is left (interpolating u itself leaves a large discrete Laplacian error where u is steep)
        u, vals = problem.best_response(m, u)
        m = problem.flow(vals)
        parts = problem.residual_parts(u, m)
        residuals = [problem.residual_norm(parts)]
        notes.append(f"started from the solution on grid {list(coarse_problem.grid.shape)} x {coarse_problem.nt}, "
                     f"m interpolated, one Picard sweep ({rough.seconds:.2f}s)")
        warm = 0
    else:
        u, m, residuals = _fixed_point(problem, tol, warmup_iter, lambda j: warmup_damping, stop_at=warmup_tol)
        warm, parts = len(residuals), None
    has_log = any(isinstance(t, LogDensity) for p in problem.game.populations for t in p.running + p.terminal)
    res = residuals[-1]
    it = 0
    krylov_its, solvers, work, fallbacks = [], set(), None, 0
    while res > tol and it < max_iter:
        it += 1
        refresh_threads()
        if linear == "direct":
            du, dm = _direct_step(problem, u, m)
        else:
            if work is None:
                work = _new_work((krylov_restart + 1, problem.K * problem.nt * problem.n))
            du, dm, kits, solver = _krylov_step(problem, u, m, res, residuals[-2] if it > 1 else None,
                                                krylov_restart, tol, work, parts)
            krylov_its.append(kits)
            solvers.add(solver)
        # non-monotone line search (Grippo, Lampariello & Lucidi 1986): a step may raise the
        # residual above the last one, but not above the largest of the last few
        reference = max(residuals[-NONMONOTONE_MEMORY:]) * (FULL_STEP_GROWTH if it <= FULL_STEPS else 1.0)
        step, accepted = 1.0, False
        for _ in range(LINE_SEARCH_STEPS):
            u_try = [uk + step * d for uk, d in zip(u, du)]
            m_try = [mk + step * d for mk, d in zip(m, dm)]
            if not has_log or all(np.all(mk > 0) for mk in m_try):
                parts_try = problem.residual_parts(u_try, m_try)
                r_try = problem.residual_norm(parts_try)
                if np.isfinite(r_try) and r_try < (1 - 1e-4 * step) * reference:
                    accepted = True
                    break
            step *= 0.5
        if not accepted:
            # the Newton direction does not decrease the residual (a kink of the upwind Hamiltonian
            # close by): take one damped Picard step instead and try Newton again from there
            fallbacks += 1
            u_br, vals = problem.best_response(m, u)
            m_try = [(1 - warmup_damping) * mk + warmup_damping * mn for mk, mn in zip(m, problem.flow(vals))]
            u_try, _ = problem.best_response(m_try, u_br)
            parts_try = problem.residual_parts(u_try, m_try)
            r_try = problem.residual_norm(parts_try)
        # the residual parts at the new point are also the first thing its linearisation needs
        u, m, res, parts = u_try, m_try, r_try, parts_try
        residuals.append(res)
    notes += [f"warm-up: {warm} damped Picard iterations (damping {warmup_damping})", f"linear solver: {linear}"]
    if krylov_its:
        notes.append(f"{' and '.join(sorted(solvers))} iterations per Newton step: {krylov_its}")
    if fallbacks:
        notes.append(f"{fallbacks} Newton steps replaced by damped Picard steps (line search failed)")
    if res <= tol:
        u2, vals = problem.best_response(m, u)
        m2 = problem.flow(vals)
        r2 = problem.residual(u2, m2)
        if r2 <= tol:
            u, m = u2, m2
            residuals.append(r2)
        else:
            notes.append(f"final exact FP sweep skipped (its residual {r2:.2e} exceeds tol)")
    return _result(problem, u, m, residuals, t0, "newton", it, tol, notes)


def _new_work(shape):
    """The Krylov basis (under "krylov", shape (restart + 1, K nt N)) and, added by ``_Linearisation``, its
    work arrays: they live for the whole solve (fresh fields per Newton step would cost page faults;
    between solves ``memory.large_arrays`` keeps the freed memory for the next one)."""
    return {"krylov": np.empty(shape)}


LINE_SEARCH_STEPS = 12
NONMONOTONE_MEMORY = 4
FULL_STEPS = 3
"""The first Newton steps may raise the residual by up to FULL_STEP_GROWTH (a watchdog: from a rough
start the full step usually lands in the region of fast convergence even when the residual grows)."""
FULL_STEP_GROWTH = 100.0
COARSE_MIN_CELLS = 20
MAX_FORCING = 0.1
"""Loosest GMRES tolerance (relative), used when the residual is already within 10 tol."""
COARSE_TOL = 1e-6
"""Residual to which the coarse-grid start is solved (its interpolation error, ~1e-2, dominates anyway)."""
COARSE_MIN_STEPS = 20


def _coarser(problem):
    """The same game on a coarser grid (by 4 in 1D, by 2 in 2D, in space and time), or None when too coarse."""
    shape, nt = problem.grid.shape, problem.nt
    r = 4 if problem.grid.dim == 1 else 2
    if min(shape) // r < COARSE_MIN_CELLS or nt // r < COARSE_MIN_STEPS:
        return None
    return Problem(problem.game, tuple(n // r for n in shape), nt // r)


def _interpolate(coarse, problem):
    """The coarse solution (u, m), linearly interpolated to the fine grid and times (m renormalised)."""
    cg, fg = coarse.grid, problem.grid

    # np.interp is linear in the values: one sparse matrix per axis (and for time) applies it to every
    # row at once (a loop of np.interp calls over 10^3 rows cost as much as a sweep)
    time_matrix = _interp_matrix(problem.times, coarse.times, None)
    axis_matrices = [_interp_matrix(fg.axes[a], cg.axes[a], (fg.hi[a] - fg.lo[a]) if fg.periodic else None)
                     for a in range(fg.dim)]

    def resample(field_c):
        field = (time_matrix @ field_c).reshape((problem.nt + 1,) + cg.shape)
        for a, W in enumerate(axis_matrices):
            field = np.moveaxis(field, a + 1, -1)
            shape = field.shape
            field = (W @ field.reshape(-1, shape[-1]).T).T.reshape(shape[:-1] + (W.shape[0],))
            field = np.moveaxis(field, -1, a + 1)
        return np.ascontiguousarray(field.reshape(problem.nt + 1, fg.size))

    us, ms = [], []
    for k in range(problem.K):
        us.append(resample(coarse.u[k]))
        mk = np.maximum(resample(coarse.m[k]), 0.0)
        mk /= fg.mass(mk)[:, None]
        mk[0] = problem.m0[k]
        ms.append(mk)
    return us, ms


def _interp_matrix(xf, xc, period):
    """The sparse (len(xf), len(xc)) matrix of ``v -> np.interp(xf, xc, v, period=period)``."""
    eye = np.eye(xc.size)
    return sp.csr_matrix(np.stack([np.interp(xf, xc, e, period=period) for e in eye], axis=1))


def _direct_step(problem, u, m):
    F, A = _newton_system(problem, u, m)
    delta = spla.spsolve(A, -F, permc_spec="COLAMD")
    nt, N = problem.nt, problem.n
    per_pop = (2 * nt + 1) * N
    du, dm = [], []
    for k in range(problem.K):
        d = delta[k * per_pop:(k + 1) * per_pop]
        du.append(d[: (nt + 1) * N].reshape(nt + 1, N))
        dm.append(np.vstack([np.zeros((1, N)), d[(nt + 1) * N:].reshape(nt, N)]))
    return du, dm


def _apply_block(kind, data, v):
    """Batched product of a coupling derivative with v (nt, N)."""
    if kind == "diag":
        return data * v
    if kind == "outer":
        c, w = data
        return c * np.einsum("ni,i->n", v, w)[:, None]
    if kind == "dense":
        return v @ np.asarray(data).T
    raise ValueError(f"unknown Jacobian block kind {kind!r}")


def gmres(matvec, b, rtol, restart=60, max_restarts=20, work=None, into=False):
    """Restarted GMRES (modified Gram-Schmidt in a Numba kernel; no BLAS threads).

    Solves ``A x = b`` until ``|b - A x| <= rtol |b|`` (2-norms); returns (x, iterations, converged).
    ``work``: an optional (restart + 1, n) array for the Krylov basis, reused between calls.
    ``into``: ``matvec(v, out)`` writes A v into out (the next basis vector: no temporary) instead of
    returning it.
    """
    n = b.size
    x = np.zeros(n)
    restart = max(1, min(restart, n))
    bnorm = np.sqrt(_dot(b, b))
    if bnorm == 0.0:
        return x, 0, True
    total = 0
    r = b.copy()
    for _ in range(max_restarts):
        beta = np.sqrt(_dot(r, r))
        if beta <= rtol * bnorm:
            return x, total, True
        V = work if work is not None and work.shape == (restart + 1, n) else np.empty((restart + 1, n))
        np.multiply(r, 1.0 / beta, out=V[0])
        H = np.zeros((restart + 1, restart))
        cs, sn = np.zeros(restart), np.zeros(restart)
        g = np.zeros(restart + 1)
        g[0] = beta
        h = np.empty(restart + 1)
        j_used = 0
        for j in range(restart):
            refresh_threads()
            w = V[j + 1]
            if into:
                matvec(V[j], w)
            else:
                w[:] = matvec(V[j])
            kernels.arnoldi_orthogonalize(V, j, w, h[: j + 2])
            col = h[: j + 2].copy()
            for i in range(j):  # apply the previous Givens rotations
                col[i], col[i + 1] = cs[i] * col[i] + sn[i] * col[i + 1], -sn[i] * col[i] + cs[i] * col[i + 1]
            denom = np.hypot(col[j], col[j + 1])
            cs[j], sn[j] = (1.0, 0.0) if denom == 0 else (col[j] / denom, col[j + 1] / denom)
            col[j], col[j + 1] = denom, 0.0
            g[j], g[j + 1] = cs[j] * g[j], -sn[j] * g[j]
            H[: j + 2, j] = col
            total += 1
            j_used = j + 1
            if abs(g[j + 1]) <= rtol * bnorm or col[j] == 0:
                break
        y = np.linalg.solve(np.triu(H[:j_used, :j_used]), g[:j_used]) if j_used else np.zeros(0)
        kernels.basis_combine(V, y, x)
        if abs(g[j_used]) <= rtol * bnorm:
            # the Arnoldi estimate |g| is the true residual up to round-off: skip the product that would
            # confirm it (one product is two whole sweeps; Newton checks its own residual anyway)
            return x, total, True
        r = b - _product(matvec, x, into)
    return x, total, bool(np.sqrt(_dot(r, r)) <= rtol * bnorm)


def _product(matvec, x, into):
    if not into:
        return matvec(x)
    out = np.empty_like(x)
    matvec(x, out)
    return out


def cg(matvec, b, weights, rtol, max_iter=500, work=None):
    """Conjugate gradients for ``A x = b`` with A self-adjoint and positive definite in the inner product
    ``<x, y> = sum_i weights_i x_i y_i`` (weights > 0).

    Stops, as ``gmres`` does, when ``|b - A x| <= rtol |b|`` (2-norms). ``matvec(v, out)`` writes A v into
    out and returns ``<v, A v>`` (or None: then it is computed here). ``work``: optional (>= 3, n) array
    whose first rows hold r, p and A p. Returns (x, iterations, converged); not converged also when
    ``<p, A p> <= 0`` shows that A is not positive definite in this inner product. Per iteration: one
    product and two passes over memory (``kernels.cg_step``, ``kernels.cg_direction``), against GMRES's
    growing Gram-Schmidt; on such an A the iteration counts are about those of GMRES.
    """
    n = b.size
    x = np.zeros(n)
    bnorm = np.sqrt(_dot(b, b))
    if bnorm == 0.0:
        return x, 0, True
    if work is not None and work.shape[0] >= 3 and work.shape[1] == n:
        r, p, q = work[0], work[1], work[2]
    else:
        r, p, q = np.empty(n), np.empty(n), np.empty(n)
    r[:] = b
    p[:] = b
    rho = kernels.weighted_dot(r, r, weights)
    for it in range(1, max_iter + 1):
        refresh_threads()
        curvature = matvec(p, q)
        if curvature is None:
            curvature = kernels.weighted_dot(p, q, weights)
        if not curvature > 0.0:
            return x, it, False
        rho_next, rr = kernels.cg_step(x, r, p, q, weights, rho / curvature)
        if np.sqrt(rr) <= rtol * bnorm:
            return x, it, True
        kernels.cg_direction(p, r, rho_next / rho)
        rho = rho_next
    return x, max_iter, False


def _dot(a, b):
    return float(np.einsum("i,i->", a, b))


class _Linearisation:
    """Newton's matrix at (u, m), kept in the factors the elimination needs (all batched over time)."""

    def __init__(self, problem, u, m, parts=None, work=None):
        self.problem = problem
        game, x, dv, dt = problem.game, problem.x, problem.dv, problem.dt
        parts = problem.residual_parts(u, m) if parts is None else parts
        self.rhs_h = [-p[0] for p in parts]
        self.rhs_t = [-p[1] for p in parts]
        self.rhs_f = [-p[2] for p in parts]
        self.vals = [p[3] for p in parts]
        t = problem.times[1:, None]
        ms = tuple(ml[1:] for ml in m)
        self.hjb_blocks, self.fp_blocks, self.term_blocks, self.weights = [], [], [], []
        for k, sch in enumerate(problem.schemes):
            # hjb_blocks hold the coupling blocks of the HJB rows negated (they are moved to the right-hand
            # side), weights the FP edge weights negated (likewise): no negation pass per product
            hb = [(l, kind, _scaled((kind, data), dt)[1]) for l, kind, data in game.running_jacobian(k, t, x, dv, ms)]
            fb = []
            if game.has_drift(k):
                dF, D = _drift_factors(sch, u[k], m[k], parts[k][5])
                for l, kind, data in game.drift_jacobian(k, t, x, dv, ms):
                    hb.append((l, "drift-hjb", (-dt * dF, kind, data)))
                    fb.append((l, "drift-fp", (tuple(dt * c for c in D), kind, data)))
            self.hjb_blocks.append(hb)
            self.fp_blocks.append(fb)
            self.term_blocks.append([(l, kind, _scaled((kind, data), -1.0)[1])
                                     for l, kind, data in game.terminal_jacobian(k, x, dv, tuple(ml[-1] for ml in m))])
            nt, N, d = problem.nt, problem.n, sch.grid.dim
            wp, wm = self._array(work, ("wp", k), (nt, d, N)), self._array(work, ("wm", k), (nt, d, N))
            kernels.fp_edge_weights_all(u[k], m[k], sch.nb, sch.h, sch.bound, wp, wm)
            wp *= -dt
            wm *= -dt
            self.weights.append((wp, wm))
        # work arrays of the homogeneous product (one per GMRES iteration): each is a whole (nt, N) field,
        # and fresh ones would cost a pass over memory (and page faults) every time
        nt, N, K = problem.nt, problem.n, problem.K
        self._du = [self._array(work, ("du", k), (nt + 1, N)) for k in range(K)]
        self._dm = [self._array(work, ("dm", k), (nt + 1, N)) for k in range(K)]
        self._rhs = [self._array(work, ("rhs", k), (nt, N)) for k in range(K)]
        self._cpl = [self._array(work, ("cpl", k), (nt, N)) for k in range(K)]
        self._zeros = None
        self.factors = []
        for k, (sch, v) in enumerate(zip(problem.schemes, self.vals)):
            if sch.grid.dim == 1:
                self.factors.append((sch.factor(v, False, out=self._factor_arrays(work, k, False)),
                                     sch.factor(v, True, out=self._factor_arrays(work, k, True))))
            else:  # one LU per step serves dt J_n and its transpose
                lus = sch.factor(v, False)
                self.factors.append((lus, lus))

    @staticmethod
    def _array(work, key, shape):
        """A work array kept in ``work`` (a dict, or None for a fresh one) between Newton steps."""
        if work is None:
            return np.empty(shape)
        a = work.get(key)
        if a is None or a.shape != shape:
            a = work[key] = np.empty(shape)
        return a

    def _factor_arrays(self, work, k, transpose):
        if work is None:
            return None
        nt, N = self.problem.nt, self.problem.n
        return tuple(self._array(work, ("factor", k, transpose, i), shape)
                     for i, shape in enumerate([(nt, N)] * 4 + [(nt, 2)]))

    def _couple(self, blocks, dm, k, buf):
        """Sum of the coupling blocks applied to dm, written into buf (nt, N) and returned; None without blocks."""
        out = None
        for l, kind, data in blocks:
            v = dm[l]
            if kind == "diag" and out is None:  # the common case, straight into buf
                out = np.multiply(data, v, out=buf)
                continue
            if kind == "drift-hjb":
                scale, kind2, data2 = data
                val = scale * _apply_block(kind2, data2, v)
            elif kind == "drift-fp":
                coef, kind2, data2 = data
                val = _drift_fp_apply(self.problem.schemes[k].nb, coef, _apply_block(kind2, data2, v))
            else:
                val = _apply_block(kind, data, v)
            # in place where possible: each temporary is a whole (nt, N) field
            if out is None:
                buf[...] = val
                out = buf
            else:
                out += val
        return out

    def cg_weights(self, work=None):
        """The weights of the inner product in which Newton's reduced operator ``I - phi`` is self-adjoint
        and positive definite, flattened like the Krylov vectors, or None.

        With one population, local couplings only (diagonal blocks) and no drift: writing L for the
        backward sweep's block-bidiagonal matrix (``dt J_n`` and -I), W for the FP edge weights (a graph
        Laplacian, symmetric and positive semidefinite) and D for the coupling derivatives, the forward
        sweep's matrix is L^T and ``phi = -L^-T W L^-1 D``, where D is ``dt df/dm`` at each step, the last
        one plus ``dg/dm`` (the terminal row feeds the last HJB step). So ``D (I - phi) = D + (L^-1 D)^T W
        (L^-1 D)`` is symmetric, and positive definite when D > 0: a monotone coupling (Lasry-Lions) and
        m > 0. None when any of this fails (GMRES then solves the step).
        """
        problem = self.problem
        if problem.K != 1 or self.fp_blocks[0]:
            return None
        nt, n = problem.nt, problem.n
        d = self._array(work, ("cg_weights",), (nt, n))
        d[...] = 0.0
        for _, kind, data in self.hjb_blocks[0]:
            if kind != "diag":
                return None
            d += data
        for _, kind, data in self.term_blocks[0]:
            if kind != "diag":
                return None
            d[-1] -= np.broadcast_to(data, (n,))  # term_blocks hold -dg/dm
        if not (np.all(np.isfinite(d)) and np.all(d > 0)):
            return None
        return d.reshape(-1)

    def du_of(self, dm, homogeneous=False):
        """du from the HJB and terminal rows given dm (per population (nt, N): dm^1..dm^nt)."""
        out = []
        nt, n = self.problem.nt, self.problem.n
        for k, sch in enumerate(self.problem.schemes):
            blocks = self.hjb_blocks[k]
            if (homogeneous and sch.grid.dim == 1 and len(blocks) in (1, 2)
                    and all(kind == "diag" and np.shape(data) == (nt, n) for _, kind, data in blocks)):
                # one or two local couplings (the common case): the sweep forms its right-hand side itself
                (l, _, data), (l2, _, data2) = blocks[0], blocks[-1]
                term = np.zeros(n)
                for lt, kind, datat in self.term_blocks[k]:
                    term -= _apply_block(kind, datat, dm[lt][-1][None, :])[0]
                kernels.linear_backward_scaled_1d(*self.factors[k][0], sch.grid.periodic, data, dm[l], data2, dm[l2],
                                                  len(blocks) == 2, term, self._du[k])
                out.append(self._du[k])
                continue
            rhs = self._couple(self.hjb_blocks[k], dm, k, self._rhs[k])
            if rhs is None:
                if homogeneous and self._zeros is None:
                    self._zeros = np.zeros((nt, n))
                rhs = self._zeros if homogeneous else self.rhs_h[k]
            elif not homogeneous:
                rhs += self.rhs_h[k]
            term = 0.0 if homogeneous else self.rhs_t[k]
            for l, kind, data in self.term_blocks[k]:
                term = term - _apply_block(kind, data, dm[l][-1][None, :])[0]
            # the homogeneous du only feeds phi: it may live in a work array
            out.append(sch.newton_backward(self.vals[k], np.ascontiguousarray(rhs),
                                           np.ascontiguousarray(np.broadcast_to(term, (n,))),
                                           self.factors[k][0], out=self._du[k] if homogeneous else None))
        return out

    def phi(self, dm, homogeneous=False):
        """The dm that the FP rows give for the du of ``du_of(dm)`` (Newton's step is its fixed point);
        dm per population as (nt, N) rows dm^1..dm^nt, in and out. The homogeneous product returns
        views of work arrays, overwritten by the next call."""
        du = self.du_of(dm, homogeneous)
        out = []
        for k, sch in enumerate(self.problem.schemes):
            rhs = self._fp_rhs(k, du[k], dm, homogeneous)
            out.append(sch.newton_forward(self.vals[k], rhs, self.factors[k][1],
                                          out=self._dm[k] if homogeneous else None)[1:])
        return out

    def _fp_rhs(self, k, du, dm, homogeneous):
        """Right-hand side of the FP rows given du and dm (in a work array)."""
        wp, wm = self.weights[k]
        rhs = self._rhs[k]  # free again: du_of is done with it
        kernels.edge_apply(self.problem.schemes[k].nb, wp, wm, du[:-1], rhs)  # -C du (weights negated)
        coupled = self._couple(self.fp_blocks[k], dm, k, self._cpl[k])
        if coupled is not None:
            rhs -= coupled
        if not homogeneous:
            rhs += self.rhs_f[k]
        return rhs

    def product(self, dm, out, weights=None):
        """out = dm - phi(dm) for the homogeneous phi (the operator the Krylov solver inverts); per population
        (nt, N). In 1D the forward sweep writes the difference directly (no dm field in between).
        With ``weights`` (one population, (nt, N)), returns ``sum weights * dm * out``, else None."""
        du = self.du_of(dm, True)
        dot = None
        for k, sch in enumerate(self.problem.schemes):
            if sch.grid.dim == 1:  # the right-hand side -C du - couplings is built inside the sweep
                coupled = self._couple(self.fp_blocks[k], dm, k, self._cpl[k])
                wp, wm = self.weights[k]
                d = kernels.linear_forward_edges_1d(*self.factors[k][1], sch.grid.periodic, sch.nb, wp, wm, du[k],
                                                    self._cpl[k], coupled is not None, dm[k], out[k],
                                                    out[k] if weights is None else weights, weights is not None)
                dot = d if weights is not None else None
            else:
                rhs = self._fp_rhs(k, du[k], dm, True)
                x = sch.newton_forward(self.vals[k], rhs, self.factors[k][1], out=self._dm[k])
                np.subtract(dm[k], x[1:], out=out[k])
                if weights is not None:
                    dot = kernels.weighted_dot(dm[k].reshape(-1), out[k].reshape(-1), weights.reshape(-1))
        return dot


def _drift_factors(sch, u, m, b):
    """Batched dF/db (nt, N) and the per-point coefficients of d(J^T m)/db (three (nt, N) arrays times m)."""
    nb, h = sch.nb, sch.h[0]
    ip, im = nb[:, 1], nb[:, 2]
    un = u[:-1]
    q1 = np.where(ip >= 0, (un[:, np.where(ip >= 0, ip, 0)] - un) / h, 0.0)
    q2 = np.where(im >= 0, (un - un[:, np.where(im >= 0, im, 0)]) / h, 0.0)
    b0 = b[:, 0, :]
    dF = -np.where(b0 >= 0, q1, q2)
    dplus = np.where((ip >= 0) & (b0 > 0), -1.0 / h, 0.0)
    dminus = np.where((im >= 0) & (b0 < 0), 1.0 / h, 0.0)
    mn = m[1:]
    return dF, (-(dplus + dminus) * mn, dplus * mn, dminus * mn)


def _drift_matrix(nb, coef):
    """The sparse matrix of ``_drift_fp_apply`` at one time step (coef: three (N,) arrays)."""
    cdiag, cplus, cminus = coef
    N = cdiag.size
    i = np.arange(N)
    rows, cols, vals = [i], [i], [cdiag]
    for c, col in ((cplus, 1), (cminus, 2)):
        ok = nb[:, col] >= 0
        rows.append(nb[ok, col])
        cols.append(i[ok])
        vals.append(c[ok])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(N, N))


def _drift_fp_apply(nb, coef, y):
    """sum_i coef_c[i] y[i] scattered to nb[i, c] (the product d(J^T m)/db y), batched over time."""
    cdiag, cplus, cminus = coef
    out = cdiag * y
    for c, col in ((cplus, 1), (cminus, 2)):
        j = nb[:, col]
        ok = j >= 0
        out[:, j[ok]] += (c * y)[:, ok]
    return out


def forcing(res, res_prev, tol):
    """Relative tolerance of a Newton step's Krylov solve at residual ``res`` (``res_prev``: the one before, or None).

    Eisenstat & Walker (1996), choice 2: ``0.9 (res / res_prev)^2``, at most 1e-2 (the first step: ``res``),
    so the linear solve is only as accurate as the observed Newton convergence can use; never below
    ``0.1 tol / res``, all that the last step needs (up to ``MAX_FORCING`` when the residual is within 10 tol).
    """
    eta = min(1e-2, res) if res_prev is None else min(1e-2, 0.9 * (res / res_prev) ** 2)
    return min(max(eta, 0.1 * tol / res, 1e-13), MAX_FORCING)


def _krylov_step(problem, u, m, res, res_prev, restart, tol, work, parts=None):
    """Newton step (du, dm) by conjugate gradients or GMRES on ``dm = phi(dm)`` (see ``_Linearisation``),
    the Krylov iterations and the solver's name ("CG" or "GMRES").

    ``parts``: ``problem.residual_parts(u, m)`` when already computed (by the line search)."""
    lin = _Linearisation(problem, u, m, parts, work)
    K, nt, N = problem.K, problem.nt, problem.n

    def unpack(v):  # views, no copies (a matrix-vector product touches 10^6 values and more)
        return [v[k * nt * N:(k + 1) * nt * N].reshape(nt, N) for k in range(K)]

    def pack(dm):
        return dm[0].reshape(-1) if K == 1 else np.concatenate([d.reshape(-1) for d in dm])

    c = pack(lin.phi(unpack(np.zeros(K * nt * N))))
    rtol = forcing(res, res_prev, tol)
    weights, done = lin.cg_weights(work), False
    w2 = None if weights is None else weights.reshape(nt, N)

    def product(z, out):  # (I - P) z into out (the next Krylov vector); with CG's weights <z, (I - P) z>
        return lin.product(unpack(z), unpack(out), w2)

    if weights is not None:
        v, count, done = cg(product, c, weights, rtol, work=work["krylov"])
        solver = "CG"
    if not done:
        w2 = None  # GMRES: the product alone
        v, count, _ = gmres(product, c, rtol, restart=restart, work=work["krylov"], into=True)
        solver = "GMRES"
    dm = unpack(v)
    du = lin.du_of(dm)
    return du, [np.vstack([np.zeros((1, N)), d]) for d in dm], count, solver


def _apply(problem, u, m, delta, step):
    nt, N = problem.nt, problem.n
    per_pop = (2 * nt + 1) * N
    us, ms = [], []
    for k in range(problem.K):
        d = delta[k * per_pop:(k + 1) * per_pop]
        us.append(u[k] + step * d[: (nt + 1) * N].reshape(nt + 1, N))
        mk = m[k].copy()
        mk[1:] += step * d[(nt + 1) * N:].reshape(nt, N)
        ms.append(mk)
    return us, ms


def _newton_system(problem, u, m):
    """Residual vector and Jacobian of the whole system at (u, m); ordering per population:
    u^0..u^nt, then m^1..m^nt."""
    game, x, dv, dt = problem.game, problem.x, problem.dv, problem.dt
    nt, N, K = problem.nt, problem.n, problem.K
    per_pop = (2 * nt + 1) * N
    parts = problem.residual_parts(u, m)
    asm = _Assembler(K * per_pop)
    F = []

    def uoff(k, n):
        return k * per_pop + n * N

    def moff(l, n):  # m^n, n >= 1
        return l * per_pop + (nt + 1) * N + (n - 1) * N

    for k, sch in enumerate(problem.schemes):
        hjb, term, fp, vals, fs, bs = parts[k]
        F.extend([hjb.ravel(), term, fp.ravel()])
        drifting = game.has_drift(k)
        drift = _drift_factors(sch, u[k], m[k], bs) if drifting else None
        for n in range(nt):
            row_h = uoff(k, n)
            row_f = k * per_pop + (nt + 1) * N + n * N
            J = sch.matrix(dt * vals[n])
            coo = J.tocoo()
            # HJB_n: d/du^n = dt J, d/du^{n+1} = -I
            asm.add(row_h + coo.row, uoff(k, n) + coo.col, coo.data)
            asm.add(row_h + np.arange(N), uoff(k, n + 1) + np.arange(N), -np.ones(N))
            # FP_{n+1}: d/dm^{n+1} = dt J^T, d/dm^n = -I, d/du^n = dt C
            asm.add(row_f + coo.col, moff(k, n + 1) + coo.row, coo.data)
            if n >= 1:
                asm.add(row_f + np.arange(N), moff(k, n) + np.arange(N), -np.ones(N))
            wp = np.empty((sch.grid.dim, N))
            wm = np.empty((sch.grid.dim, N))
            kernels.fp_edge_weights(u[k][n], m[k][n + 1], sch.nb, sch.h, sch.bound, wp, wm)
            for a in range(sch.grid.dim):
                for w, col in ((wp[a], 1 + 2 * a), (wm[a], 2 + 2 * a)):
                    j = sch.nb[:, col]
                    sel = (j >= 0) & (w != 0)
                    i, j, w = np.nonzero(sel)[0], j[sel], dt * w[sel]
                    asm.add(row_f + np.concatenate([i, j, i, j]), uoff(k, n) + np.concatenate([i, j, j, i]),
                            np.concatenate([w, w, -w, -w]))
            # couplings at m^{n+1}
            ms = tuple(ml[n + 1] for ml in m)
            t = problem.times[n + 1]
            for l, kind, data in game.running_jacobian(k, t, x, dv, ms):
                asm.add_block(row_h, moff(l, n + 1), _scaled((kind, data), -dt))
            if drifting:
                dF, D = drift[0][n], _drift_matrix(sch.nb, tuple(c[n] for c in drift[1]))
                for l, kind, data in game.drift_jacobian(k, t, x, dv, ms):
                    asm.add_block(row_h, moff(l, n + 1), _left(sp.diags(dt * dF), (kind, data)))
                    asm.add_block(row_f, moff(l, n + 1), _left(dt * D, (kind, data)))
        # terminal: u^nt - g(m^nt)
        row_t = uoff(k, nt)
        asm.add(row_t + np.arange(N), uoff(k, nt) + np.arange(N), np.ones(N))
        ms = tuple(ml[nt] for ml in m)
        for l, kind, data in game.terminal_jacobian(k, x, dv, ms):
            asm.add_block(row_t, moff(l, nt), _scaled((kind, data), -1.0))
    # the extra (mean) unknowns are set from m, so their equations hold exactly
    return np.concatenate(F + [np.zeros(asm.n_extra)]), asm.matrix()
