"""The coupled discrete MFG system of a continuous game and three ways to solve it.

For populations k = 1..K on one grid, the unknowns are ``u_k^n`` (n = 0..nt) and ``m_k^n``
(n = 1..nt; ``m_k^0`` is the normalised initial density) and the equations are those of
``scheme`` with ``f_k^n = f_k(t_{n+1}, x, m^{n+1})``, ``b_k^n = b_k(t_{n+1}, x, m^{n+1})`` and
``u_k^nt = g_k(x, m^nt)``. The **residual** of (u, m) is the max-norm of the whole system
written in time-step form: ``dt * F_HJB``, ``u^nt - g`` and ``dt * (J_n^T m^{n+1} - m^n/dt)``.

Solvers (all stop when the residual is <= tol and end with an exact forward sweep, so the
returned m conserves mass to round-off and is non-negative):

- ``picard``: m <- (1 - theta) m + theta FP(BR(m)) (damped fixed point);
- ``fictitious``: the same with theta_j = 1/(j + 2) (fictitious play);
- ``newton``: Newton's method on the whole discrete system, one sparse LU (scipy) per
  iteration, started from a few Picard iterations, with a backtracking line search.
  Couplings through a mean (rank one) enter through one extra unknown per term and time,
  so the matrix stays sparse; convolution couplings enter as dense blocks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mfgbench.games.continuous import LogDensity
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
        return max(max(np.abs(h).max(), np.abs(t).max(), np.abs(p).max())
                   for h, t, p, *_ in self.residual_parts(u, m))

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
    m = problem.initial_flow() if m is None else m
    stop_at = tol if stop_at is None else max(tol, stop_at)
    residuals, u = [], None
    for j in range(max_iter):
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


# ----------------------------------------------------------------------------- Newton
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


def _drift_sensitivities(sch, u, un1, m_next, b):
    """dF_i/db_i (HJB, per axis) and the matrix d(J^T m)/db (per axis) at one time step (1D drift only)."""
    nb, h, N = sch.nb, sch.h, sch.n
    ip, im = nb[:, 1], nb[:, 2]
    q1 = np.where(ip >= 0, (u[np.where(ip >= 0, ip, 0)] - u) / h[0], 0.0)
    q2 = np.where(im >= 0, (u - u[np.where(im >= 0, im, 0)]) / h[0], 0.0)
    pos = b[0] >= 0
    dF = -np.where(pos, q1, q2)
    # d vals[i, c] / d b_i: plus -1[b>0]/h, minus +1[b<0]/h, diag the negative of their sum
    dplus = np.where((ip >= 0) & (b[0] > 0), -1.0 / h[0], 0.0)
    dminus = np.where((im >= 0) & (b[0] < 0), 1.0 / h[0], 0.0)
    ddiag = -(dplus + dminus)
    i = np.arange(N)
    rows = np.concatenate([i, np.where(ip >= 0, ip, 0), np.where(im >= 0, im, 0)])
    data = np.concatenate([ddiag, dplus, dminus]) * np.tile(m_next, 3)
    D = sp.csr_matrix((data, (rows, np.tile(i, 3))), shape=(N, N))
    return dF, D


def newton(problem: Problem, tol=1e-10, max_iter=50, linear: str = "krylov", warmup_tol=1e-2, warmup_iter=20,
           warmup_damping=0.1, krylov_restart=60, coarse: bool = True) -> SolveResult:
    """Newton's method on the whole discrete system (see the module docstring).

    Starts from damped Picard iterations (until the residual is below ``warmup_tol`` or
    ``warmup_iter`` iterations), themselves started, when ``coarse`` and the grid is large
    enough, from the Newton solution on a grid coarser by 4 in space and time, interpolated
    (nested iteration); ``residuals`` lists the warm-up residuals, then one per Newton step. Each Newton step solves the linearised system either by ``linear="krylov"``
    (default: eliminate du by a backward sweep and dm by a forward sweep, and solve the
    remaining equation on dm by GMRES; memory and work grow like N nt) or by
    ``linear="direct"`` (one sparse LU of the whole matrix; exact, but its fill-in limits it to
    small grids). A backtracking line search on the residual keeps log-density games in
    m > 0. A last sweep u = BR(m), m = FP(u) makes m exactly mass-conserving and
    non-negative; it is kept when its residual is still within tol.
    """
    if linear not in ("krylov", "direct"):
        raise ValueError(f"newton: linear must be 'krylov' or 'direct', got {linear!r}")
    t0 = time.perf_counter()
    notes = []
    coarse_problem = _coarser(problem) if coarse else None
    if coarse_problem is not None:
        rough = newton(coarse_problem, tol=max(tol, 1e-8), max_iter=max_iter, linear=linear, warmup_tol=warmup_tol,
                       warmup_iter=warmup_iter, warmup_damping=warmup_damping, krylov_restart=krylov_restart)
        u, m = _interpolate(rough, problem)
        residuals = [problem.residual(u, m)]
        notes.append(f"started from the solution on grid {list(coarse_problem.grid.shape)} x {coarse_problem.nt}, "
                     f"interpolated ({rough.seconds:.2f}s)")
        warm = 0
    else:
        u, m, residuals = _fixed_point(problem, tol, warmup_iter, lambda j: warmup_damping, stop_at=warmup_tol)
        warm = len(residuals)
    has_log = any(isinstance(t, LogDensity) for p in problem.game.populations for t in p.running + p.terminal)
    res = residuals[-1]
    it = 0
    krylov_its, work, fallbacks = [], None, 0
    while res > tol and it < max_iter:
        it += 1
        if linear == "direct":
            du, dm = _direct_step(problem, u, m)
        else:
            if work is None:
                work = np.empty((krylov_restart + 1, problem.K * problem.nt * problem.n))
            du, dm, kits = _krylov_step(problem, u, m, res, krylov_restart, tol, work)
            krylov_its.append(kits)
        # non-monotone line search (Grippo, Lampariello & Lucidi 1986): a step may raise the
        # residual above the last one, but not above the largest of the last few
        reference = max(residuals[-NONMONOTONE_MEMORY:])
        step, accepted = 1.0, False
        for _ in range(LINE_SEARCH_STEPS):
            u_try = [uk + step * d for uk, d in zip(u, du)]
            m_try = [mk + step * d for mk, d in zip(m, dm)]
            if not has_log or all(np.all(mk > 0) for mk in m_try):
                r_try = problem.residual(u_try, m_try)
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
            r_try = problem.residual(u_try, m_try)
        u, m, res = u_try, m_try, r_try
        residuals.append(res)
    notes += [f"warm-up: {warm} damped Picard iterations (damping {warmup_damping})", f"linear solver: {linear}"]
    if krylov_its:
        notes.append(f"GMRES iterations per Newton step: {krylov_its}")
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


LINE_SEARCH_STEPS = 12
NONMONOTONE_MEMORY = 4
COARSE_MIN_CELLS = 20
COARSE_MIN_STEPS = 20


def _coarser(problem):
    """The same game on a grid 4 times coarser in space and time, or None when that is too coarse."""
    shape, nt = problem.grid.shape, problem.nt
    if min(shape) // 4 < COARSE_MIN_CELLS or nt // 4 < COARSE_MIN_STEPS:
        return None
    return Problem(problem.game, tuple(n // 4 for n in shape), nt // 4)


def _interpolate(coarse, problem):
    """The coarse solution (u, m), linearly interpolated to the fine grid and times (m renormalised)."""
    cg, fg = coarse.grid, problem.grid

    def resample(field_c):
        tt = np.empty((problem.nt + 1, field_c.shape[1]))
        for i in range(field_c.shape[1]):
            tt[:, i] = np.interp(problem.times, coarse.times, field_c[:, i])
        field = tt.reshape((problem.nt + 1,) + cg.shape)
        for a in range(fg.dim):
            xc, xf = cg.axes[a], fg.axes[a]
            period = (fg.hi[a] - fg.lo[a]) if fg.periodic else None
            field = np.apply_along_axis(lambda v: np.interp(xf, xc, v, period=period), a + 1, field)
        return np.ascontiguousarray(field.reshape(problem.nt + 1, fg.size))

    us, ms = [], []
    for k in range(problem.K):
        us.append(resample(coarse.u[k]))
        mk = np.maximum(resample(coarse.m[k]), 0.0)
        mk /= fg.mass(mk)[:, None]
        mk[0] = problem.m0[k]
        ms.append(mk)
    return us, ms


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
        return c * (v @ w)[:, None]
    if kind == "dense":
        return v @ np.asarray(data).T
    raise ValueError(f"unknown Jacobian block kind {kind!r}")


def _edge_apply(nb, wp, wm, x):
    out = np.empty_like(x)
    kernels.edge_apply(nb, wp, wm, np.ascontiguousarray(x), out)
    return out


def gmres(matvec, b, rtol, restart=60, max_restarts=20, work=None):
    """Restarted GMRES (modified Gram-Schmidt in a Numba kernel; no BLAS threads).

    Solves ``A x = b`` until ``|b - A x| <= rtol |b|`` (2-norms); returns (x, iterations, converged).
    ``work``: an optional (restart + 1, n) array for the Krylov basis, reused between calls.
    """
    n = b.size
    x = np.zeros(n)
    restart = max(1, min(restart, n))
    bnorm = np.sqrt(kernels_dot(b, b))
    if bnorm == 0.0:
        return x, 0, True
    total = 0
    r = b.copy()
    for _ in range(max_restarts):
        beta = np.sqrt(kernels_dot(r, r))
        if beta <= rtol * bnorm:
            return x, total, True
        V = work if work is not None and work.shape == (restart + 1, n) else np.empty((restart + 1, n))
        V[0] = r / beta
        H = np.zeros((restart + 1, restart))
        cs, sn = np.zeros(restart), np.zeros(restart)
        g = np.zeros(restart + 1)
        g[0] = beta
        h = np.empty(restart + 1)
        j_used = 0
        for j in range(restart):
            w = matvec(V[j])
            kernels.arnoldi_orthogonalize(V, j, w, h[: j + 2])
            V[j + 1] = w
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
        for i in range(j_used):
            x += y[i] * V[i]
        r = b - matvec(x)
    return x, total, bool(np.sqrt(kernels_dot(r, r)) <= rtol * bnorm)


def kernels_dot(a, b):
    return float(np.einsum("i,i->", a, b))


class _Linearisation:
    """Newton's matrix at (u, m), kept in the factors the elimination needs (all batched over time)."""

    def __init__(self, problem, u, m):
        self.problem = problem
        game, x, dv, dt = problem.game, problem.x, problem.dv, problem.dt
        parts = problem.residual_parts(u, m)
        self.rhs_h = [-p[0] for p in parts]
        self.rhs_t = [-p[1] for p in parts]
        self.rhs_f = [-p[2] for p in parts]
        self.vals = [p[3] for p in parts]
        t = problem.times[1:, None]
        ms = tuple(ml[1:] for ml in m)
        self.hjb_blocks, self.fp_blocks, self.term_blocks, self.weights = [], [], [], []
        for k, sch in enumerate(problem.schemes):
            hb = [(l, kind, _scaled((kind, data), -dt)[1]) for l, kind, data in game.running_jacobian(k, t, x, dv, ms)]
            fb = []
            if game.has_drift(k):
                dF, D = _drift_factors(sch, u[k], m[k], parts[k][5])
                for l, kind, data in game.drift_jacobian(k, t, x, dv, ms):
                    hb.append((l, "drift-hjb", (dt * dF, kind, data)))
                    fb.append((l, "drift-fp", (tuple(dt * c for c in D), kind, data)))
            self.hjb_blocks.append(hb)
            self.fp_blocks.append(fb)
            self.term_blocks.append([(l, kind, _scaled((kind, data), -1.0)[1])
                                     for l, kind, data in game.terminal_jacobian(k, x, dv, tuple(ml[-1] for ml in m))])
            nt, N, d = problem.nt, problem.n, sch.grid.dim
            wp, wm = np.empty((nt, d, N)), np.empty((nt, d, N))
            for n in range(nt):
                kernels.fp_edge_weights(u[k][n], m[k][n + 1], sch.nb, sch.h, sch.bound, wp[n], wm[n])
            self.weights.append((dt * wp, dt * wm))
        self.factors = [(sch.factor(v, False), sch.factor(v, True)) for sch, v in zip(problem.schemes, self.vals)]

    def _couple(self, blocks, dm, k):
        out = 0.0
        for l, kind, data in blocks:
            v = dm[l][1:]
            if kind == "drift-hjb":
                scale, kind2, data2 = data
                out = out + scale * _apply_block(kind2, data2, v)
            elif kind == "drift-fp":
                coef, kind2, data2 = data
                out = out + _drift_fp_apply(self.problem.schemes[k].nb, coef, _apply_block(kind2, data2, v))
            else:
                out = out + _apply_block(kind, data, v)
        return out

    def du_of(self, dm, homogeneous=False):
        """du from the HJB and terminal rows given dm."""
        out = []
        for k, sch in enumerate(self.problem.schemes):
            rhs = -self._couple(self.hjb_blocks[k], dm, k) + (0.0 if homogeneous else self.rhs_h[k])
            term = 0.0 if homogeneous else self.rhs_t[k]
            for l, kind, data in self.term_blocks[k]:
                term = term - _apply_block(kind, data, dm[l][-1][None, :])[0]
            rhs = np.broadcast_to(rhs, (self.problem.nt, self.problem.n))
            out.append(sch.newton_backward(self.vals[k], np.ascontiguousarray(rhs),
                                           np.ascontiguousarray(np.broadcast_to(term, (self.problem.n,))),
                                           self.factors[k][0]))
        return out

    def phi(self, dm, homogeneous=False):
        """The dm that the FP rows give for the du of ``du_of(dm)`` (Newton's step is its fixed point)."""
        du = self.du_of(dm, homogeneous)
        out = []
        for k, sch in enumerate(self.problem.schemes):
            wp, wm = self.weights[k]
            rhs = -_edge_apply(sch.nb, wp, wm, du[k][:-1]) - self._couple(self.fp_blocks[k], dm, k)
            if not homogeneous:
                rhs = rhs + self.rhs_f[k]
            out.append(sch.newton_forward(self.vals[k], np.ascontiguousarray(np.broadcast_to(rhs, du[k][:-1].shape)),
                                          self.factors[k][1]))
        return out


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


def _drift_fp_apply(nb, coef, y):
    """sum_i coef_c[i] y[i] scattered to nb[i, c] (the product d(J^T m)/db y), batched over time."""
    cdiag, cplus, cminus = coef
    out = cdiag * y
    for c, col in ((cplus, 1), (cminus, 2)):
        j = nb[:, col]
        ok = j >= 0
        out[:, j[ok]] += (c * y)[:, ok]
    return out


def _krylov_step(problem, u, m, res, restart, tol, work):
    lin = _Linearisation(problem, u, m)
    K, nt, N = problem.K, problem.nt, problem.n

    def unpack(v):
        return [np.vstack([np.zeros((1, N)), v[k * nt * N:(k + 1) * nt * N].reshape(nt, N)]) for k in range(K)]

    def pack(dm):
        return np.concatenate([d[1:].ravel() for d in dm])

    c = pack(lin.phi(unpack(np.zeros(K * nt * N))))
    op = spla.LinearOperator((K * nt * N,) * 2, matvec=lambda v: v - pack(lin.phi(unpack(v), homogeneous=True)),
                             dtype=float)
    # forcing term: ~res keeps Newton quadratic; 0.1 tol/res is all the last step needs
    rtol = min(1e-2, max(res, 0.1 * tol / res, 1e-13))
    v, count, _ = gmres(lambda z: z - pack(lin.phi(unpack(z), homogeneous=True)), c, rtol, restart=restart,
                        work=work)
    dm = unpack(v)
    du = lin.du_of(dm)
    return du, dm, count


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
                dF, D = _drift_sensitivities(sch, u[k][n], u[k][n + 1], m[k][n + 1], bs[n])
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


# ----------------------------------------------------------------------------- entry point
METHODS = {"newton": newton, "picard": picard, "fictitious": fictitious_play}


def solve(game, nx=None, nt=None, method: str = "newton", tol: float = 1e-10, **options) -> SolveResult:
    """Solve the discrete MFG system of a continuous game on an ``nx`` (per axis) by ``nt`` grid.

    ``method`` is ``"newton"`` (default), ``"picard"`` or ``"fictitious"``; ``options`` go to
    that solver (e.g. ``damping`` for Picard, ``max_iter``). Defaults: nx = 200 in 1D and 50 in
    2D, nt = 100. Returns a ``SolveResult``; ``result.summary()`` is a JSON-able dict.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if getattr(game, "kind", None) != "continuous":
        raise ValueError(f"solve: expected a continuous game, got {game!r}")
    nx = (200 if game.dim == 1 else 50) if nx is None else nx
    nt = 100 if nt is None else nt
    return METHODS[method](Problem(game, nx, nt), tol=tol, **options)
