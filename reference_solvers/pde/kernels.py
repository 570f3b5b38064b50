"""Kernels of the implicit monotone scheme (Achdou & Capuzzo-Dolcetta 2010) on a grid.

One implicit Euler step of the HJB equation at a grid point i, with q1 = (u_{i+e} - u_i)/h
and q2 = (u_i - u_{i-e})/h per axis (a difference across a wall is absent), reads

    F_i(u) = (u_i - u_next_i)/dt - nu sum_axes (u_{i+e} - 2 u_i + u_{i-e})/h^2
             + sum_axes [ hb(min(q1, 0)) + hb(max(q2, 0)) - b^+ q1 - b^- q2 ] - f_i,

where ``hb`` is the Hamiltonian of one axis, ``p^2/2`` (Huber-like ``A|p| - A^2/2`` beyond
``|p| > A`` when the control is bounded by A; ``A = 0`` turns the scheme into the linear
upwind equation of a pure drift b). The numerical Hamiltonian is nonincreasing in q1 and
nondecreasing in q2 (monotone), so the Jacobian ``J = dF/du`` is an M-matrix with row sums
``1/dt``; the Fokker-Planck step uses ``J^T``, which conserves mass exactly and keeps m >= 0.

Matrices are kept as stencils ``vals[i, c]``, the coefficient of ``u[nb[i, c]]`` in row i
(layout of ``grid.Grid.neighbours``). Every kernel here is a ``mfgbench._jit.jit`` function
with a plain numpy twin (suffix ``_numpy``) that the tests compare with it.
"""
from __future__ import annotations

import numba
import numpy as np

from mfgbench._jit import PARALLEL_CHUNKS, jit, jit_inline, jit_parallel


# ------------------------------------------------------------------ HJB residual and Jacobian
@jit
def hjb_stencil(u, u_next, f, b, nb, h, nu, dt, bound, res, vals):
    """Fill ``res`` with F(u) and ``vals`` with the stencil of J = dF/du (see the module docstring)."""
    n = u.shape[0]
    d = b.shape[0]
    for i in range(n):
        r = (u[i] - u_next[i]) / dt - f[i]
        diag = 1.0 / dt
        for a in range(d):
            ha = h[a]
            lap = nu / (ha * ha)
            bp = max(b[a, i], 0.0)
            bm = min(b[a, i], 0.0)
            cp = 0.0
            cm = 0.0
            ip = nb[i, 1 + 2 * a]
            im = nb[i, 2 + 2 * a]
            if ip >= 0:
                q1 = (u[ip] - u[i]) / ha
                p = min(q1, 0.0)
                if abs(p) <= bound:
                    hv = 0.5 * p * p
                    hd = p
                else:
                    hv = bound * abs(p) - 0.5 * bound * bound
                    hd = bound * np.sign(p)
                r += -lap * (u[ip] - u[i]) + hv - bp * q1
                cp = -lap + (hd - bp) / ha
            if im >= 0:
                q2 = (u[i] - u[im]) / ha
                p = max(q2, 0.0)
                if abs(p) <= bound:
                    hv = 0.5 * p * p
                    hd = p
                else:
                    hv = bound * abs(p) - 0.5 * bound * bound
                    hd = bound * np.sign(p)
                r += -lap * (u[im] - u[i]) + hv - bm * q2
                cm = -lap - (hd - bm) / ha
            vals[i, 1 + 2 * a] = cp
            vals[i, 2 + 2 * a] = cm
            diag -= cp + cm
        vals[i, 0] = diag
        res[i] = r


def _huber_numpy(p, bound):
    if not np.isfinite(bound):
        return 0.5 * p * p, p
    inside = np.abs(p) <= bound
    value = np.where(inside, 0.5 * p * p, bound * np.abs(p) - 0.5 * bound * bound)
    slope = np.where(inside, p, bound * np.sign(p))
    return value, slope


def hjb_stencil_numpy(u, u_next, f, b, nb, h, nu, dt, bound):
    """Numpy twin of ``hjb_stencil``: returns (res, vals)."""
    n, d = u.shape[0], b.shape[0]
    res = (u - u_next) / dt - f
    vals = np.zeros((n, 1 + 2 * d))
    vals[:, 0] = 1.0 / dt
    for a in range(d):
        lap = nu / h[a] ** 2
        bp, bm = np.maximum(b[a], 0.0), np.minimum(b[a], 0.0)
        for col, side in ((1 + 2 * a, 1), (2 + 2 * a, -1)):
            j = nb[:, col]
            has = j >= 0
            uj = np.where(has, u[np.where(has, j, 0)], u)
            q = side * (uj - u) / h[a]
            p = np.minimum(q, 0.0) if side == 1 else np.maximum(q, 0.0)
            hv, hd = _huber_numpy(p, bound)
            drift = bp if side == 1 else bm
            res += np.where(has, -lap * (uj - u) + hv - drift * q, 0.0)
            coef = np.where(has, -lap + side * (hd - drift) / h[a], 0.0)
            vals[:, col] = coef
            vals[:, 0] -= coef
    return res, vals


# ------------------------------------------------------------------ second derivative of the FP flux
@jit
def fp_edge_weights(u, m, nb, h, bound, w_plus, w_minus):
    """Weights of d(J(u)^T m)/du = sum over edges w (e_p - e_q)(e_p - e_q)^T.

    ``w_plus[a, i]`` belongs to the edge (i, i+e_a), ``w_minus[a, i]`` to (i-e_a, i):
    ``m_i hb''(q) / h^2`` where the one-sided Hamiltonian of that side is active.
    """
    n = u.shape[0]
    d = h.shape[0]
    for i in range(n):
        for a in range(d):
            ha = h[a]
            ip = nb[i, 1 + 2 * a]
            im = nb[i, 2 + 2 * a]
            w_plus[a, i] = 0.0
            w_minus[a, i] = 0.0
            if ip >= 0:
                q1 = (u[ip] - u[i]) / ha
                if q1 < 0.0 and -q1 < bound:
                    w_plus[a, i] = m[i] / (ha * ha)
            if im >= 0:
                q2 = (u[i] - u[im]) / ha
                if q2 > 0.0 and q2 < bound:
                    w_minus[a, i] = m[i] / (ha * ha)


@jit_parallel
def fp_edge_weights_all(u, m, nb, h, bound, w_plus, w_minus):
    """``fp_edge_weights`` for every time step: u[n] with m[n + 1], into w_plus/w_minus (nt, d, N)
    (time steps in parallel)."""
    for k in numba.prange(w_plus.shape[0]):
        fp_edge_weights(u[k], m[k + 1], nb, h, bound, w_plus[k], w_minus[k])


def fp_edge_weights_numpy(u, m, nb, h, bound):
    """Numpy twin of ``fp_edge_weights``: returns (w_plus, w_minus)."""
    d = h.shape[0]
    w_plus, w_minus = np.zeros((d, u.size)), np.zeros((d, u.size))
    for a in range(d):
        ip, im = nb[:, 1 + 2 * a], nb[:, 2 + 2 * a]
        q1 = (u[np.where(ip >= 0, ip, 0)] - u) / h[a]
        q2 = (u - u[np.where(im >= 0, im, 0)]) / h[a]
        w_plus[a] = np.where((ip >= 0) & (q1 < 0) & (-q1 < bound), m / h[a] ** 2, 0.0)
        w_minus[a] = np.where((im >= 0) & (q2 > 0) & (q2 < bound), m / h[a] ** 2, 0.0)
    return w_plus, w_minus


# ------------------------------------------------------------------ tridiagonal solves (1D)
@jit
def solve_tridiagonal(lower, diag, upper, rhs, periodic, out):
    """Solve ``lower_i x_{i-1} + diag_i x_i + upper_i x_{i+1} = rhs_i`` into ``out``.

    Indices wrap when ``periodic`` (then ``lower_0`` multiplies ``x_{n-1}`` and ``upper_{n-1}``
    multiplies ``x_0``; handled by Sherman-Morrison); otherwise ``lower_0`` and ``upper_{n-1}``
    are ignored. Assumes a diagonally dominant matrix (no pivoting), which the scheme guarantees.
    """
    n = diag.shape[0]
    c = np.empty(n)
    y = np.empty(n)
    z = np.empty(n)
    dd = diag.copy()
    gamma = 0.0
    if periodic:
        gamma = -dd[0]
        dd[0] -= gamma
        dd[n - 1] -= lower[0] * upper[n - 1] / gamma
    # forward elimination shared by both right-hand sides
    c[0] = upper[0] / dd[0]
    y[0] = rhs[0] / dd[0]
    if periodic:
        z[0] = gamma / dd[0]
    # the chains' last values in locals (no store-to-load round trip), one reciprocal per row
    cl, yl, zl = c[0], y[0], z[0] if periodic else 0.0
    for i in range(1, n):
        inv = 1.0 / (dd[i] - lower[i] * cl)
        cl = upper[i] * inv if i < n - 1 else 0.0
        c[i] = cl
        yl = (rhs[i] - lower[i] * yl) * inv
        y[i] = yl
        if periodic:
            ui = upper[n - 1] if i == n - 1 else 0.0
            zl = (ui - lower[i] * zl) * inv
            z[i] = zl
    for i in range(n - 2, -1, -1):
        yl = y[i] - c[i] * yl
        y[i] = yl
        if periodic:
            zl = z[i] - c[i] * zl
            z[i] = zl
    if periodic:
        # v = (1, 0, ..., 0, lower_0 / gamma)
        vy = y[0] + lower[0] / gamma * y[n - 1]
        vz = z[0] + lower[0] / gamma * z[n - 1]
        fac = vy / (1.0 + vz)
        for i in range(n):
            out[i] = y[i] - fac * z[i]
    else:
        for i in range(n):
            out[i] = y[i]


def solve_tridiagonal_numpy(lower, diag, upper, rhs, periodic):
    """Numpy twin of ``solve_tridiagonal`` (dense solve)."""
    n = diag.size
    A = np.diag(diag) + np.diag(lower[1:], -1) + np.diag(upper[:-1], 1)
    if periodic:
        A[0, n - 1] += lower[0]
        A[n - 1, 0] += upper[n - 1]
    return np.linalg.solve(A, rhs)


# ------------------------------------------------------------------ linear-cost sweeps helpers
@jit
def stencil_matvec(vals, nb, x, out):
    """``out = M x`` for the stencil matrix M (vals, nb)."""
    n, w = vals.shape
    for i in range(n):
        s = 0.0
        for c in range(w):
            j = nb[i, c]
            if j >= 0:
                s += vals[i, c] * x[j]
        out[i] = s


@jit
def stencil_rmatvec(vals, nb, x, out):
    """``out = M^T x`` for the stencil matrix M (vals, nb)."""
    n, w = vals.shape
    for i in range(n):
        out[i] = 0.0
    for i in range(n):
        for c in range(w):
            j = nb[i, c]
            if j >= 0:
                out[j] += vals[i, c] * x[i]


def stencil_matvec_numpy(vals, nb, x):
    """Numpy twin of ``stencil_matvec``."""
    return np.where(nb >= 0, vals * x[np.where(nb >= 0, nb, 0)], 0.0).sum(axis=1)


def stencil_rmatvec_numpy(vals, nb, x):
    """Numpy twin of ``stencil_rmatvec``."""
    out = np.zeros(x.size)
    ok = nb >= 0
    np.add.at(out, nb[ok], (vals * x[:, None])[ok])
    return out


# ------------------------------------------------------------------ whole sweeps in 1D
@jit
def _tridiagonal_of(vals, transpose, lower, diag, upper, scale):
    n = vals.shape[0]
    for i in range(n):
        diag[i] = scale * vals[i, 0]
        if transpose:
            lower[i] = scale * vals[(i - 1) % n, 1]
            upper[i] = scale * vals[(i + 1) % n, 2]
        else:
            lower[i] = scale * vals[i, 2]
            upper[i] = scale * vals[i, 1]


@jit
def hjb_backward_1d(f, b, g, nb, h, nu, dt, bound, periodic, tol, max_iter, warm, u, vals):
    """The nonlinear backward sweep in 1D: u[nt] = g, then F(u[n]; u[n+1], f[n], b[n]) = 0 by Newton.

    Newton at step n starts from u[n + 1], or with ``warm`` from the guess that u[n] holds on entry
    (close to an equilibrium the guess is within the tolerance, and one stencil evaluation confirms it).
    Fills u (nt+1, N) and the Jacobian stencils vals (nt, N, 3); returns the largest number of
    Newton iterations a step needed, or -1 if a step did not converge.
    """
    nt, n = f.shape
    u[nt, :] = g
    res = np.empty(n)
    lower = np.empty(n)
    diag = np.empty(n)
    upper = np.empty(n)
    step = np.empty(n)
    worst = 0
    for k in range(nt - 1, -1, -1):
        if not warm:
            u[k, :] = u[k + 1, :]
        done = False
        for it in range(max_iter):
            hjb_stencil(u[k], u[k + 1], f[k], b[k], nb, h, nu, dt, bound, res, vals[k])
            big = 1.0
            err = 0.0
            for i in range(n):
                big = max(big, abs(u[k, i]))
                err = max(err, abs(res[i]))
            if dt * err <= tol * big:
                worst = max(worst, it)
                done = True
                break
            _tridiagonal_of(vals[k], False, lower, diag, upper, 1.0)
            solve_tridiagonal(lower, diag, upper, res, periodic, step)
            for i in range(n):
                u[k, i] -= step[i]
        if not done:
            return -1
    return worst


@jit
def fp_forward_1d(vals, m0, periodic, dt, m):
    """The forward sweep in 1D: m[0] = m0, J_n^T m[n+1] = m[n] / dt."""
    nt, n, _ = vals.shape
    m[0, :] = m0
    lower = np.empty(n)
    diag = np.empty(n)
    upper = np.empty(n)
    rhs = np.empty(n)
    for k in range(nt):
        _tridiagonal_of(vals[k], True, lower, diag, upper, 1.0)
        for i in range(n):
            rhs[i] = m[k, i] / dt
        solve_tridiagonal(lower, diag, upper, rhs, periodic, m[k + 1])


@jit_parallel
def factor_sweep_1d(vals, transpose, scale, periodic, lo, cp, den, z, sm):
    """Factor the tridiagonal matrices ``scale * J_n`` (or their transposes) of a whole sweep once.

    Two-ended ("twisted") Thomas elimination per step n with middle row p = N // 2: rows i < p are
    eliminated downwards from the top (``x_i = y_i - cp_i x_{i+1}``), rows i > p upwards from the
    bottom (``x_i = y_i - cp_i x_{i-1}``), and row p is solved last. The two halves are independent
    chains of dependent multiply-adds, so the CPU overlaps them: substitution is latency-bound and
    this halves its length. Stored per step n: ``den[n, i]`` reciprocal pivots, ``lo[n, i]`` the
    elimination multiplier already divided by the pivot, ``cp[n, i]`` the eliminated off-diagonal
    (at i = p: ``lo`` and ``cp`` hold the row's own sub- and super-diagonal). On a torus also the
    Sherman-Morrison data ``z[n]`` and ``sm[n] = (lower_0/gamma, 1/(1 + v.z))``.
    ``solve_factored`` then costs one elimination and one back substitution, both two-ended.
    The steps are independent: they are factored in parallel.
    """
    nt, n, _ = vals.shape
    for k in numba.prange(nt):
        lower = np.empty(n)
        diag = np.empty(n)
        upper = np.empty(n)
        e = np.zeros(n)
        zero = np.zeros(n)
        _tridiagonal_of(vals[k], transpose, lower, diag, upper, scale)
        gamma = 0.0
        if periodic:
            gamma = -diag[0]
            diag[0] -= gamma
            diag[n - 1] -= lower[0] * upper[n - 1] / gamma
        _twisted_factor(lower, diag, upper, lo[k], cp[k], den[k])
        if periodic:
            e[0] = gamma
            e[n - 1] += upper[n - 1]
            _twisted_solve(lo[k], cp[k], den[k], e, zero, z[k])
            sm[k, 0] = lower[0] / gamma
            sm[k, 1] = 1.0 / (1.0 + z[k, 0] + sm[k, 0] * z[k, n - 1])


@jit
def _twisted_factor(lower, diag, upper, lo, cp, den):
    """Two-ended elimination of one tridiagonal matrix (``lower_0``, ``upper_{n-1}`` ignored)."""
    n = diag.shape[0]
    p = n // 2
    den[0] = 1.0 / diag[0]
    cp[0] = upper[0] * den[0]
    lo[0] = 0.0
    if p < n - 1:
        den[n - 1] = 1.0 / diag[n - 1]
        cp[n - 1] = lower[n - 1] * den[n - 1]
        lo[n - 1] = 0.0
    # rows 0..p-1 downwards and rows n-1..p+1 upwards in one loop (two independent chains; the bottom
    # half has p - 1 rows for even n, p for odd n, so row n-1-i exists whenever i < p does)
    ca = cp[0]  # the chains' last values in locals (registers), as in _twisted_solve
    cb = cp[n - 1] if p < n - 1 else 0.0
    for i in range(1, p):
        d = 1.0 / (diag[i] - lower[i] * ca)
        den[i] = d
        ca = upper[i] * d
        cp[i] = ca
        lo[i] = lower[i] * d
        j = n - 1 - i
        if j > p:
            d = 1.0 / (diag[j] - upper[j] * cb)
            den[j] = d
            cb = lower[j] * d
            cp[j] = cb
            lo[j] = upper[j] * d
    if p > 0:
        piv = diag[p] - lower[p] * cp[p - 1]
        if p < n - 1:
            piv -= upper[p] * cp[p + 1]
        den[p] = 1.0 / piv
        lo[p] = lower[p]
        cp[p] = upper[p] if p < n - 1 else 0.0


@jit
def _twisted_solve(lo, cp, den, r1, r2, out):
    """Solve the matrix factored by ``_twisted_factor`` for the right-hand side r1 + r2.

    The last value of each chain is carried in a local (a register), not re-read from ``out``: a
    store-to-load round trip would lengthen the dependency chain, which bounds the speed here."""
    n = den.shape[0]
    p = n // 2
    a = (r1[0] + r2[0]) * den[0]
    out[0] = a
    b = 0.0
    if p < n - 1:
        b = (r1[n - 1] + r2[n - 1]) * den[n - 1]
        out[n - 1] = b
    for i in range(1, n - 1 - p):  # rows i downwards and n-1-i upwards: two independent chains
        a = (r1[i] + r2[i]) * den[i] - lo[i] * a
        out[i] = a
        j = n - 1 - i
        b = (r1[j] + r2[j]) * den[j] - lo[j] * b
        out[j] = b
    if 1 < p and n - 1 - p < p:  # even n: the top half has one more row
        i = p - 1
        a = (r1[i] + r2[i]) * den[i] - lo[i] * a
        out[i] = a
    if p > 0:
        s = r1[p] + r2[p] - lo[p] * out[p - 1]
        if p < n - 1:
            s -= cp[p] * out[p + 1]
        out[p] = s * den[p]
    a = out[p]
    b = out[p]
    if 0 < p and n - 1 - p < p:
        a = out[p - 1] - cp[p - 1] * a
        out[p - 1] = a
    for j in range(p + 1, n):  # back substitution, outwards from row p, both halves at once
        i = n - 1 - j
        b = out[j] - cp[j] * b
        out[j] = b
        a = out[i] - cp[i] * a
        out[i] = a


@jit
def solve_factored(lo, cp, den, z, sm, k, periodic, rhs, add, out):
    """Solve the system factored by ``factor_sweep_1d`` at step k for the right-hand side rhs + add."""
    n = rhs.shape[0]
    _twisted_solve(lo[k], cp[k], den[k], rhs, add, out)
    if periodic:
        fac = (out[0] + sm[k, 0] * out[n - 1]) * sm[k, 1]
        zk = z[k]
        for i in range(n):
            out[i] -= fac * zk[i]


@jit
def linear_backward_1d(lo, cp, den, z, sm, periodic, rhs, terminal, x):
    """x[nt] = terminal; (dt J_n) x[n] = rhs[n] + x[n+1], with ``dt J_n`` factored (the u-block of Newton)."""
    nt, n = rhs.shape
    x[nt, :] = terminal
    for k in range(nt - 1, -1, -1):
        solve_factored(lo, cp, den, z, sm, k, periodic, rhs[k], x[k + 1], x[k])


@jit
def linear_backward_scaled_1d(lo, cp, den, z, sm, periodic, coef, v, coef2, v2, two, terminal, x):
    """``linear_backward_1d`` with the right-hand side ``coef * v`` (``+ coef2 * v2`` when ``two``)
    formed one time step at a time."""
    nt, n = v.shape
    x[nt, :] = terminal
    r = np.empty(n)
    for k in range(nt - 1, -1, -1):
        if two:
            for i in range(n):
                r[i] = coef[k, i] * v[k, i] + coef2[k, i] * v2[k, i]
        else:
            for i in range(n):
                r[i] = coef[k, i] * v[k, i]
        solve_factored(lo, cp, den, z, sm, k, periodic, r, x[k + 1], x[k])


@jit
def linear_forward_1d(lo, cp, den, z, sm, periodic, rhs, x):
    """x[0] = 0; (dt J_n^T) x[n+1] = rhs[n] + x[n], with ``dt J_n^T`` factored (the m-block of Newton)."""
    nt, n = rhs.shape
    x[0, :] = 0.0
    for k in range(nt):
        solve_factored(lo, cp, den, z, sm, k, periodic, rhs[k], x[k], x[k + 1])


@jit_inline
def _edge_row_1d(nb, wp, wm, x, r):
    """r = the 1D ``edge_apply`` of one time step, gathered by row: the edge (i, i+1) carries wp[i] (from
    cell i) and wm[i+1] (from cell i+1), so row i needs no scattered updates. Interior rows address their
    neighbours i - 1, i + 1 directly (a loop the compiler vectorises); the end rows read the table
    (a torus wraps, a wall has none)."""
    n = x.shape[0]
    for i in range(1, n - 1):
        r[i] = (wp[i] + wm[i + 1]) * (x[i] - x[i + 1]) + (wm[i] + wp[i - 1]) * (x[i] - x[i - 1])
    for i in (0, n - 1):
        s = 0.0
        j = nb[i, 1]
        if j >= 0:
            s += (wp[i] + wm[j]) * (x[i] - x[j])
        j = nb[i, 2]
        if j >= 0:
            s += (wm[i] + wp[j]) * (x[i] - x[j])
        r[i] = s


@jit
def linear_forward_edges_1d(lo, cp, den, z, sm, periodic, nb, wp, wm, du, extra, has_extra, dm, out, weights,
                            with_dot):
    """out[n] = dm[n] - x[n+1] for the x of ``linear_forward_1d`` (the product of Newton's reduced
    operator, I - phi), with the right-hand side ``edge_apply(nb, wp, wm, du) - extra`` built one
    time step at a time (in cache) instead of as a whole field, and x held in two rows only.
    Returns ``sum weights * dm * out`` when ``with_dot`` (conjugate gradients' curvature, taken while
    the rows are in cache), else 0."""
    nt, n = dm.shape
    prev = np.zeros(n)
    cur = np.empty(n)
    r = np.empty(n)
    dot = 0.0
    for k in range(nt):
        _edge_row_1d(nb, wp[k, 0], wm[k, 0], du[k], r)
        if has_extra:
            for i in range(n):
                r[i] -= extra[k, i]
        solve_factored(lo, cp, den, z, sm, k, periodic, r, prev, cur)
        if with_dot:
            for i in range(n):
                o = dm[k, i] - cur[i]
                out[k, i] = o
                dot += weights[k, i] * dm[k, i] * o
        else:
            for i in range(n):
                out[k, i] = dm[k, i] - cur[i]
        prev, cur = cur, prev
    return dot


@jit_parallel
def system_residual(u, m, f, b, nb, h, nu, dt, bound, hjb, fp, vals):
    """Time-step form of the discrete system at (u, m): hjb[n] = dt F_n(u), fp[n] = dt J_n^T m[n+1] - m[n]
    (time steps in parallel)."""
    nt, n = f.shape
    for k in numba.prange(nt):
        res = np.empty(n)
        tmp = np.empty(n)
        hjb_stencil(u[k], u[k + 1], f[k], b[k], nb, h, nu, dt, bound, res, vals[k])
        stencil_rmatvec(vals[k], nb, m[k + 1], tmp)
        for i in range(n):
            hjb[k, i] = dt * res[i]
            fp[k, i] = dt * tmp[i] - m[k, i]


def system_residual_numpy(u, m, f, b, nb, h, nu, dt, bound):
    """Numpy twin of ``system_residual``: returns (hjb, fp, vals)."""
    nt = f.shape[0]
    hjb, fp, vals = [], [], []
    for k in range(nt):
        r, v = hjb_stencil_numpy(u[k], u[k + 1], f[k], b[k], nb, h, nu, dt, bound)
        hjb.append(dt * r)
        fp.append(dt * stencil_rmatvec_numpy(v, nb, m[k + 1]) - m[k])
        vals.append(v)
    return np.array(hjb), np.array(fp), np.array(vals)


# ------------------------------------------------------------------ iterative solve (2D)
@jit
def dilu_pivots(vals, nb, d):
    """Pivots of the D-ILU factorisation M = (D + L) D^{-1} (D + U) of a stencil matrix A
    (L, U the strict lower/upper parts of A; diag(M) = diag(A)):
    ``d_i = a_ii - sum_{j < i} a_ij a_ji / d_j``. A^T has the same pivots."""
    n, w = vals.shape
    for i in range(n):
        s = vals[i, 0]
        for c in range(1, w):
            j = nb[i, c]
            if 0 <= j < i:
                for c2 in range(1, w):
                    if nb[j, c2] == i:
                        s -= vals[i, c] * vals[j, c2] / d[j]
        d[i] = s


@jit
def dilu_apply(vals, nb, d, transpose, r, z):
    """z = M^{-1} r for the D-ILU preconditioner of A (or of A^T)."""
    n, w = vals.shape
    y = r.copy()
    if not transpose:
        for i in range(n):
            s = y[i]
            for c in range(1, w):
                j = nb[i, c]
                if 0 <= j < i:
                    s -= vals[i, c] * y[j]
            y[i] = s / d[i]
        for i in range(n - 1, -1, -1):
            s = 0.0
            for c in range(1, w):
                j = nb[i, c]
                if j > i:
                    s += vals[i, c] * z[j]
            z[i] = y[i] - s / d[i]
    else:
        for i in range(n):
            y[i] /= d[i]
            for c in range(1, w):
                k = nb[i, c]
                if k > i:
                    y[k] -= vals[i, c] * y[i]
        for i in range(n):
            z[i] = d[i] * y[i]
        for i in range(n - 1, -1, -1):
            z[i] /= d[i]
            for c in range(1, w):
                k = nb[i, c]
                if 0 <= k < i:
                    z[k] -= vals[i, c] * z[i]


@jit
def bicgstab_stencil(vals, nb, rhs, transpose, rtol, max_iter, x):
    """Solve A x = rhs (or A^T x = rhs) for a stencil M-matrix A by BiCGSTAB with a D-ILU preconditioner.

    ``x`` holds the initial guess and receives the solution. Returns the iteration count, or
    -1 when ``max_iter`` iterations did not bring the max-norm residual below ``rtol * |rhs|``.
    """
    n = rhs.shape[0]
    d = np.empty(n)
    dilu_pivots(vals, nb, d)
    r = np.empty(n)
    if transpose:
        stencil_rmatvec(vals, nb, x, r)
    else:
        stencil_matvec(vals, nb, x, r)
    bnorm = 0.0
    for i in range(n):
        r[i] = rhs[i] - r[i]
        bnorm = max(bnorm, abs(rhs[i]))
    if bnorm == 0.0:
        for i in range(n):
            x[i] = 0.0
        return 0
    r0 = r.copy()
    p = np.zeros(n)
    v = np.zeros(n)
    y = np.empty(n)
    z = np.empty(n)
    t = np.empty(n)
    s = np.empty(n)
    rho, alpha, omega = 1.0, 1.0, 1.0
    for it in range(max_iter):
        err = 0.0
        for i in range(n):
            err = max(err, abs(r[i]))
        if err <= rtol * bnorm:
            return it
        rho_new = 0.0
        for i in range(n):
            rho_new += r0[i] * r[i]
        if rho_new == 0.0:
            return -1
        beta = (rho_new / rho) * (alpha / omega)
        rho = rho_new
        for i in range(n):
            p[i] = r[i] + beta * (p[i] - omega * v[i])
        dilu_apply(vals, nb, d, transpose, p, y)
        if transpose:
            stencil_rmatvec(vals, nb, y, v)
        else:
            stencil_matvec(vals, nb, y, v)
        den = 0.0
        for i in range(n):
            den += r0[i] * v[i]
        alpha = rho / den
        for i in range(n):
            s[i] = r[i] - alpha * v[i]
        dilu_apply(vals, nb, d, transpose, s, z)
        if transpose:
            stencil_rmatvec(vals, nb, z, t)
        else:
            stencil_matvec(vals, nb, z, t)
        tt = 0.0
        ts = 0.0
        for i in range(n):
            tt += t[i] * t[i]
            ts += t[i] * s[i]
        omega = ts / tt if tt > 0.0 else 0.0
        for i in range(n):
            x[i] += alpha * y[i] + omega * z[i]
            r[i] = s[i] - omega * t[i]
        if omega == 0.0:
            err = 0.0
            for i in range(n):
                err = max(err, abs(r[i]))
            return it + 1 if err <= rtol * bnorm else -1
    return -1


# ------------------------------------------------------------------ Newton-Krylov helpers
@jit
def edge_apply(nb, wp, wm, x, out):
    """out[n] = C_n x[n] for C_n = sum over edges w (e_i - e_j)(e_i - e_j)^T; wp/wm (nt, d, N) as in
    ``fp_edge_weights`` (edge (i, i+e_a) carries wp[n, a, i], edge (i-e_a, i) carries wm[n, a, i])."""
    nt, d, n = wp.shape
    for k in range(nt):
        for i in range(n):
            out[k, i] = 0.0
        for i in range(n):
            for a in range(d):
                # no test for zero weights: the upwind side changes from cell to cell, and a
                # mispredicted branch costs more than the product it would skip
                j = nb[i, 1 + 2 * a]
                if j >= 0:
                    flux = wp[k, a, i] * (x[k, i] - x[k, j])
                    out[k, i] += flux
                    out[k, j] -= flux
                j = nb[i, 2 + 2 * a]
                if j >= 0:
                    flux = wm[k, a, i] * (x[k, i] - x[k, j])
                    out[k, i] += flux
                    out[k, j] -= flux


def edge_apply_numpy(nb, wp, wm, x):
    """Numpy twin of ``edge_apply``."""
    out = np.zeros_like(x)
    for a in range(wp.shape[1]):
        for w, col in ((wp[:, a], 1 + 2 * a), (wm[:, a], 2 + 2 * a)):
            j = nb[:, col]
            ok = j >= 0
            i = np.nonzero(ok)[0]
            flux = w[:, i] * (x[:, i] - x[:, j[ok]])
            np.add.at(out, (slice(None), i), flux)
            np.add.at(out, (slice(None), j[ok]), -flux)
    return out


@jit
def _gs_pass(w, c1, x1, c2, x2, two_sub, y1, y2, two_dot):
    """One pass over memory: w -= c1 x1 (+ c2 x2), then the products of the new w with y1 (and y2),
    two partial sums each (independent chains); the new values stay in locals."""
    n = w.shape[0]
    m = n // 2
    a0 = 0.0
    a1 = 0.0
    b0 = 0.0
    b1 = 0.0
    for t in range(m):
        p = 2 * t
        w0 = w[p] - c1 * x1[p]
        w1 = w[p + 1] - c1 * x1[p + 1]
        if two_sub:
            w0 -= c2 * x2[p]
            w1 -= c2 * x2[p + 1]
        w[p] = w0
        w[p + 1] = w1
        a0 += y1[p] * w0
        a1 += y1[p + 1] * w1
        if two_dot:
            b0 += y2[p] * w0
            b1 += y2[p + 1] * w1
    for p in range(2 * m, n):
        w0 = w[p] - c1 * x1[p]
        if two_sub:
            w0 -= c2 * x2[p]
        w[p] = w0
        a0 += y1[p] * w0
        if two_dot:
            b0 += y2[p] * w0
    return a0 + a1, b0 + b1


@jit
def arnoldi_orthogonalize(V, j, w, h):
    """Gram-Schmidt of w against V[0..j] in blocks of two; h[0..j] = coefficients, h[j+1] = |w| after;
    w is normalised.

    Pass k subtracts the coefficients of rows 2k-2 and 2k-1 and takes the products with rows 2k and
    2k+1 (classical Gram-Schmidt inside a block of two, modified between blocks; the products of a
    block differ from MGS's by h times V[2k].V[2k+1], zero up to round-off), so (j + 1) / 2 + 2 passes
    over memory instead of MGS's j + 3: GMRES on this system is bound by memory traffic (the vectors
    hold 10^6 values and more). Each pass streams its chunks on all cores (``_gs_pass_chunked``).
    """
    two = j >= 1
    a, b = _gs_pass_chunked(w, 0.0, V[0], 0.0, V[0], False, V[0], V[1] if two else V[0], two)
    h[0] = a
    if two:
        h[1] = b
    first, count = 0, (2 if two else 1)  # the block whose coefficients are known but not yet subtracted
    i = count
    while i <= j:
        two = i + 1 <= j
        a, b = _gs_pass_chunked(w, h[first], V[first], h[first + 1] if count == 2 else 0.0,
                        V[first + 1] if count == 2 else V[first], count == 2,
                        V[i], V[i + 1] if two else V[i], two)
        h[i] = a
        if two:
            h[i + 1] = b
        first, count = i, (2 if two else 1)
        i += count
    ss, _ = _gs_pass_chunked(w, h[first], V[first], h[first + 1] if count == 2 else 0.0,
                     V[first + 1] if count == 2 else V[first], count == 2, w, w, False)
    s = np.sqrt(ss)
    h[j + 1] = s
    if s > 0.0:
        _scale_chunked(w, 1.0 / s)


@jit_parallel
def _gs_pass_chunked(w, c1, x1, c2, x2, two_sub, y1, y2, two_dot):
    """``_gs_pass`` on PARALLEL_CHUNKS slices of the vectors in parallel; the partial products are
    added in slice order (the same numbers with any number of threads)."""
    n = w.shape[0]
    pa = np.zeros(PARALLEL_CHUNKS)
    pb = np.zeros(PARALLEL_CHUNKS)
    for c in numba.prange(PARALLEL_CHUNKS):
        s = c * n // PARALLEL_CHUNKS
        e = (c + 1) * n // PARALLEL_CHUNKS
        pa[c], pb[c] = _gs_pass(w[s:e], c1, x1[s:e], c2, x2[s:e], two_sub, y1[s:e], y2[s:e], two_dot)
    return _chunk_sum(pa), _chunk_sum(pb)


@jit_inline
def _chunk_sum(parts):
    """Partial sums of a parallel reduction, added in chunk order (the same numbers with any number of
    threads)."""
    total = 0.0
    for c in range(parts.shape[0]):
        total += parts[c]
    return total


@jit_parallel
def _scale_chunked(w, factor):
    """w *= factor, on all cores."""
    n = w.shape[0]
    for c in numba.prange(PARALLEL_CHUNKS):
        for p in range(c * n // PARALLEL_CHUNKS, (c + 1) * n // PARALLEL_CHUNKS):
            w[p] *= factor


def arnoldi_orthogonalize_numpy(V, j, w):
    """Numpy twin of ``arnoldi_orthogonalize``: returns (w normalised, h)."""
    w = w.copy()
    h = np.zeros(j + 2)
    for i in range(j + 1):
        h[i] = V[i] @ w
        w -= h[i] * V[i]
    h[j + 1] = np.sqrt(w @ w)
    return (w / h[j + 1] if h[j + 1] > 0 else w), h


@jit_parallel
def basis_combine(V, y, x):
    """x += sum_i y[i] V[i] (the GMRES update from its Krylov basis), in blocks of x so that each block
    of x stays in cache while the rows of V stream past (one pass over memory, not one per row);
    blocks in parallel."""
    m = y.shape[0]
    n = x.shape[0]
    block = 2048
    for b in numba.prange((n + block - 1) // block):
        start = b * block
        stop = min(start + block, n)
        for i in range(m):
            yi = y[i]
            for p in range(start, stop):
                x[p] += yi * V[i, p]


def basis_combine_numpy(V, y, x):
    """Numpy twin of ``basis_combine``: returns the new x."""
    return x + y @ V[: y.size]



# ------------------------------------------------------------ conjugate gradients (weighted)
@jit_parallel
def weighted_dot(a, b, w):
    """sum_i w_i a_i b_i, on all cores (partial sums by chunk, added in chunk order)."""
    n = a.shape[0]
    part = np.zeros(PARALLEL_CHUNKS)
    for c in numba.prange(PARALLEL_CHUNKS):
        s0 = 0.0
        s1 = 0.0
        lo_, hi_ = c * n // PARALLEL_CHUNKS, (c + 1) * n // PARALLEL_CHUNKS
        half = lo_ + (hi_ - lo_) // 2 * 2
        for p in range(lo_, half, 2):  # two partial sums: independent chains
            s0 += w[p] * a[p] * b[p]
            s1 += w[p + 1] * a[p + 1] * b[p + 1]
        for p in range(half, hi_):
            s0 += w[p] * a[p] * b[p]
        part[c] = s0 + s1
    return _chunk_sum(part)


@jit_parallel
def cg_step(x, r, p, q, w, alpha):
    """x += alpha p, r -= alpha q in one pass; returns (sum w r^2, sum r^2) of the new r."""
    n = x.shape[0]
    pw = np.zeros(PARALLEL_CHUNKS)
    pe = np.zeros(PARALLEL_CHUNKS)
    for c in numba.prange(PARALLEL_CHUNKS):
        sw = 0.0
        se = 0.0
        for i in range(c * n // PARALLEL_CHUNKS, (c + 1) * n // PARALLEL_CHUNKS):
            x[i] += alpha * p[i]
            ri = r[i] - alpha * q[i]
            r[i] = ri
            sw += w[i] * ri * ri
            se += ri * ri
        pw[c] = sw
        pe[c] = se
    return _chunk_sum(pw), _chunk_sum(pe)


@jit_parallel
def cg_direction(p, r, beta):
    """p = r + beta p."""
    n = p.shape[0]
    for c in numba.prange(PARALLEL_CHUNKS):
        for i in range(c * n // PARALLEL_CHUNKS, (c + 1) * n // PARALLEL_CHUNKS):
            p[i] = r[i] + beta * p[i]


def cg_step_numpy(x, r, p, q, w, alpha):
    """Numpy twin of ``cg_step``: returns (x, r, sum w r^2, sum r^2) (new arrays)."""
    x = x + alpha * p
    r = r - alpha * q
    return x, r, float(np.sum(w * r * r)), float(np.sum(r * r))
