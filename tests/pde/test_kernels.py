"""Numba kernels of the PDE scheme against their numpy twins and against finite differences."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference_solvers.pde import kernels
from reference_solvers.pde.grid import Grid
from reference_solvers.pde.scheme import Scheme

GRIDS = [Grid((0.0,), (1.0,), (7,), True), Grid((-1.0,), (2.0,), (6,), False),
         Grid((0.0, 0.0), (1.0, 2.0), (4, 5), False), Grid((0.0, 0.0), (1.0, 1.0), (3, 4), True)]
BOUNDS = [np.inf, 0.7, 0.0]


def _random_state(rng, grid):
    n, d = grid.size, grid.dim
    return (rng.normal(size=n), rng.normal(size=n), rng.normal(size=n), rng.normal(size=(d, n)),
            rng.uniform(0.1, 2.0, size=n))


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2 ** 32 - 1), g=st.sampled_from(range(len(GRIDS))), bound=st.sampled_from(BOUNDS),
       nu=st.floats(0.0, 1.0), dt=st.floats(1e-3, 1.0))
def test_hjb_stencil_matches_numpy_twin(seed, g, bound, nu, dt):
    grid = GRIDS[g]
    u, un, f, b, _ = _random_state(np.random.default_rng(seed), grid)
    res = np.empty(grid.size)
    vals = np.empty((grid.size, 1 + 2 * grid.dim))
    kernels.hjb_stencil(u, un, f, b, grid.neighbours, grid.h, nu, dt, bound, res, vals)
    res2, vals2 = kernels.hjb_stencil_numpy(u, un, f, b, grid.neighbours, grid.h, nu, dt, bound)
    np.testing.assert_allclose(res, res2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(vals, vals2, rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2 ** 32 - 1), g=st.sampled_from(range(len(GRIDS))), bound=st.sampled_from(BOUNDS))
def test_fp_edge_weights_match_numpy_twin(seed, g, bound):
    grid = GRIDS[g]
    u, _, _, _, m = _random_state(np.random.default_rng(seed), grid)
    wp, wm = np.empty((grid.dim, grid.size)), np.empty((grid.dim, grid.size))
    kernels.fp_edge_weights(u, m, grid.neighbours, grid.h, bound, wp, wm)
    wp2, wm2 = kernels.fp_edge_weights_numpy(u, m, grid.neighbours, grid.h, bound)
    np.testing.assert_allclose(wp, wp2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(wm, wm2, rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(3, 30), periodic=st.booleans())
def test_tridiagonal_solve_matches_dense_twin(seed, n, periodic):
    rng = np.random.default_rng(seed)
    lower, upper = -rng.uniform(0, 1, n), -rng.uniform(0, 1, n)
    diag = -(lower + upper) + rng.uniform(0.01, 1.0, n)  # a diagonally dominant M-matrix, as in the scheme
    rhs = rng.normal(size=n)
    out = np.empty(n)
    kernels.solve_tridiagonal(lower, diag, upper, rhs, periodic, out)
    np.testing.assert_allclose(out, kernels.solve_tridiagonal_numpy(lower, diag, upper, rhs, periodic),
                               rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(3, 40), periodic=st.booleans(), transpose=st.booleans())
def test_twisted_factor_solve_matches_dense_twin(seed, n, periodic, transpose):
    """The two-ended Thomas factors of ``factor_sweep_1d`` (even and odd n, torus or not, J or J^T) solve
    the same systems as the dense twin, for right-hand sides given as a sum."""
    rng = np.random.default_rng(seed)
    nt, scale = 2, 0.3
    vals = np.empty((nt, n, 3))
    vals[:, :, 1], vals[:, :, 2] = -rng.uniform(0, 1, (nt, n)), -rng.uniform(0, 1, (nt, n))
    if not periodic:  # no neighbour across the ends, as the scheme's stencils
        vals[:, -1, 1], vals[:, 0, 2] = 0.0, 0.0
    vals[:, :, 0] = -(vals[:, :, 1] + vals[:, :, 2]) + rng.uniform(0.01, 1.0, (nt, n))
    f = (np.empty((nt, n)), np.empty((nt, n)), np.empty((nt, n)), np.zeros((nt, n)), np.zeros((nt, 2)))
    kernels.factor_sweep_1d(vals, transpose, scale, periodic, *f)
    for k in range(nt):
        lower, diag, upper = scale * vals[k, :, 2], scale * vals[k, :, 0], scale * vals[k, :, 1]
        if transpose:
            lower, upper = np.roll(upper, 1), np.roll(lower, -1)
        r1, r2, out = rng.normal(size=n), rng.normal(size=n), np.empty(n)
        kernels.solve_factored(*f, k, periodic, r1, r2, out)
        np.testing.assert_allclose(out, kernels.solve_tridiagonal_numpy(lower, diag, upper, r1 + r2, periodic),
                                   rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("g", range(len(GRIDS)))
def test_stencil_matvecs_match_numpy_twins(g, rng=np.random.default_rng(3)):
    grid = GRIDS[g]
    vals = rng.normal(size=(grid.size, 1 + 2 * grid.dim))
    x = rng.normal(size=grid.size)
    out = np.empty(grid.size)
    kernels.stencil_matvec(vals, grid.neighbours, x, out)
    np.testing.assert_allclose(out, kernels.stencil_matvec_numpy(vals, grid.neighbours, x), rtol=1e-12, atol=1e-12)
    kernels.stencil_rmatvec(vals, grid.neighbours, x, out)
    np.testing.assert_allclose(out, kernels.stencil_rmatvec_numpy(vals, grid.neighbours, x), rtol=1e-12, atol=1e-12)


def _fd_jacobian(F, u, eps=1e-6):
    cols = []
    for j in range(u.size):
        e = np.zeros(u.size)
        e[j] = eps
        cols.append((F(u + e) - F(u - e)) / (2 * eps))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("g", range(len(GRIDS)))
@pytest.mark.parametrize("bound", [np.inf, 0.7])
def test_fp_matrix_is_transpose_of_linearised_hjb(g, bound):
    """The FP step's matrix (recovered from fp_step) equals the transposed finite-difference Jacobian of F."""
    grid = GRIDS[g]
    rng = np.random.default_rng(11 + g)
    u, un, f, b, _ = _random_state(rng, grid)
    # keep every difference quotient away from the kinks (0 and +-bound) so F is smooth at u
    sch = Scheme(grid, nt=4, horizon=1.0, nu=0.3, control_bound=None if bound == np.inf else bound)

    def F(v):
        res = np.empty(grid.size)
        vals = np.empty((grid.size, sch.width))
        kernels.hjb_stencil(v, un, f, b, sch.nb, sch.h, sch.nu, sch.dt, sch.bound, res, vals)
        return res

    J_fd = _fd_jacobian(F, u)
    vals = np.empty((grid.size, sch.width))
    kernels.hjb_stencil(u, un, f, b, sch.nb, sch.h, sch.nu, sch.dt, sch.bound, np.empty(grid.size), vals)
    # columns of (J^T)^{-1} from FP steps with m_prev = dt e_j
    inv = np.stack([sch.fp_step(vals, sch.dt * e) for e in np.eye(grid.size)], axis=1)
    fp_matrix = np.linalg.inv(inv)
    np.testing.assert_allclose(fp_matrix, J_fd.T, rtol=1e-6, atol=1e-6)
    # M-matrix: FP preserves mass and positivity
    m_prev = rng.uniform(0, 1, grid.size)
    m = sch.fp_step(vals, m_prev)
    assert abs(m.sum() - m_prev.sum()) <= 1e-12 * m_prev.sum()
    assert m.min() >= 0


@pytest.mark.parametrize("g", range(len(GRIDS)))
@pytest.mark.parametrize("transpose", [False, True])
def test_bicgstab_stencil_matches_dense_solve(g, transpose):
    grid = GRIDS[g]
    rng = np.random.default_rng(5 + g)
    u, un, f, b, _ = _random_state(rng, grid)
    sch = Scheme(grid, nt=4, horizon=1.0, nu=0.3)
    res, vals = np.empty(grid.size), np.empty((grid.size, sch.width))
    kernels.hjb_stencil(u, un, f, 3 * b, sch.nb, sch.h, sch.nu, sch.dt, sch.bound, res, vals)
    M = sch.matrix(vals).toarray()
    x = np.zeros(grid.size)
    assert kernels.bicgstab_stencil(vals, sch.nb, res, transpose, 1e-14, 200, x) >= 0
    np.testing.assert_allclose(x, np.linalg.solve(M.T if transpose else M, res), rtol=1e-12, atol=1e-12)
    # D-ILU pivots: diag(M) of the preconditioner equals diag(A) (dense check of the definition)
    d = np.empty(grid.size)
    kernels.dilu_pivots(vals, sch.nb, d)
    L, U = np.tril(M, -1), np.triu(M, 1)
    P = (np.diag(d) + L) @ np.diag(1 / d) @ (np.diag(d) + U)
    np.testing.assert_allclose(np.diag(P), np.diag(M), rtol=1e-12)
    z = np.empty(grid.size)
    kernels.dilu_apply(vals, sch.nb, d, transpose, res, z)
    np.testing.assert_allclose(z, np.linalg.solve(P.T if transpose else P, res), rtol=1e-10, atol=1e-12)


SWEEP_GRIDS = [Grid((0.0,), (1.0,), (9,), False), Grid((0.0,), (1.0,), (9,), True),
               Grid((0.0, 0.0), (1.0, 2.0), (4, 5), False), Grid((0.0, 0.0), (1.0, 1.0), (3, 4), True)]


@pytest.mark.parametrize("g", range(len(SWEEP_GRIDS)))
@pytest.mark.parametrize("factored", [True, False])
def test_factored_sweeps_match_stepwise_solves(g, factored, rng, monkeypatch):
    """Newton's linear sweeps (1D: Thomas factors; 2D: one LU per step, or the iterative solver when the
    LU memory cap is reached) satisfy their defining equations, checked with dense matrices."""
    grid = SWEEP_GRIDS[g]
    if not factored:
        if grid.dim == 1:
            pytest.skip("1D sweeps are always factored")
        monkeypatch.setattr("reference_solvers.pde.scheme.LU_MAX_ENTRIES", -1)  # every step iterative
    nt = 5
    sch = Scheme(grid, nt=nt, horizon=1.0, nu=0.2)
    vals = np.empty((nt, grid.size, 1 + 2 * grid.dim))
    res = np.empty(grid.size)
    for n in range(nt):
        u, un, f, b, _ = _random_state(rng, grid)
        kernels.hjb_stencil(u, un, f, b, sch.nb, sch.h, sch.nu, sch.dt, sch.bound, res, vals[n])
    rhs, term = rng.normal(size=(nt, grid.size)), rng.normal(size=grid.size)
    back = sch.newton_backward(vals, rhs, term, sch.factor(vals, False))
    fwd = sch.newton_forward(vals, rhs, sch.factor(vals, True))
    atol = 1e-11 if factored else 1e-9  # the iterative solves stop at a relative residual of 1e-11
    for n in range(nt):  # the defining equations, with dense matrices
        J = sch.matrix(sch.dt * vals[n]).toarray()
        np.testing.assert_allclose(sch.scaled_csc(vals[n], sch.dt).toarray(), J, rtol=1e-15, atol=0)
        np.testing.assert_allclose(J @ back[n], rhs[n] + back[n + 1], atol=atol)
        np.testing.assert_allclose(J.T @ fwd[n + 1], rhs[n] + fwd[n], atol=atol)
    assert np.all(fwd[0] == 0) and np.all(back[nt] == term)


@pytest.mark.parametrize("g", range(len(GRIDS)))
def test_edge_apply_and_arnoldi_match_numpy_twins(g, rng):
    grid = GRIDS[g]
    nt = 3
    wp, wm = rng.uniform(0, 1, (nt, grid.dim, grid.size)), rng.uniform(0, 1, (nt, grid.dim, grid.size))
    x = rng.normal(size=(nt, grid.size))
    out = np.empty_like(x)
    kernels.edge_apply(grid.neighbours, wp, wm, x, out)
    np.testing.assert_allclose(out, kernels.edge_apply_numpy(grid.neighbours, wp, wm, x), rtol=1e-12, atol=1e-12)
    V = np.linalg.qr(rng.normal(size=(grid.size, 3)))[0].T.copy()
    V = np.vstack([V, np.zeros(grid.size)])
    w = rng.normal(size=grid.size)
    w2, h2 = kernels.arnoldi_orthogonalize_numpy(V, 2, w)
    h = np.empty(4)
    kernels.arnoldi_orthogonalize(V, 2, w, h)
    np.testing.assert_allclose(h, h2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w, w2, rtol=1e-12, atol=1e-12)


def test_system_residual_matches_numpy_twin(rng):
    grid = GRIDS[2]
    nt = 3
    u, m = rng.normal(size=(nt + 1, grid.size)), rng.uniform(0.1, 1, (nt + 1, grid.size))
    f, b = rng.normal(size=(nt, grid.size)), rng.normal(size=(nt, grid.dim, grid.size))
    hjb, fp, vals = np.empty((nt, grid.size)), np.empty((nt, grid.size)), np.empty((nt, grid.size, 5))
    kernels.system_residual(u, m, f, b, grid.neighbours, grid.h, 0.3, 0.1, 0.8, hjb, fp, vals)
    hjb2, fp2, vals2 = kernels.system_residual_numpy(u, m, f, b, grid.neighbours, grid.h, 0.3, 0.1, 0.8)
    np.testing.assert_allclose(hjb, hjb2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fp, fp2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("periodic", [False, True])
def test_hjb_backward_kernel_matches_stepwise_twin(periodic, rng):
    grid = Grid((0.0,), (1.0,), (30,), periodic)
    nt = 10
    sch = Scheme(grid, nt=nt, horizon=1.0, nu=0.05, control_bound=None)
    f = rng.normal(size=(nt, grid.size))
    b = 0.3 * rng.normal(size=(nt, 1, grid.size))
    g = np.cos(2 * np.pi * grid.points[0])
    u1, v1 = sch.backward(f, b, g)
    u2, v2 = sch.backward_stepwise(f, b, g)
    np.testing.assert_allclose(u1, u2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v1, v2, rtol=1e-12, atol=1e-9)
    # Newton started from a guess (the solution perturbed, or something far off) finds the same u
    for guess in (u1 + 1e-3 * rng.normal(size=u1.shape), np.zeros_like(u1)):
        u3, v3 = sch.backward(f, b, g, guess)
        np.testing.assert_allclose(u3, u1, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v3, v1, rtol=1e-12, atol=1e-9)
    m0 = rng.uniform(0.1, 1, grid.size)
    np.testing.assert_allclose(sch.forward(v1, m0), sch.forward_stepwise(v1, m0), rtol=1e-12, atol=1e-12)


def test_gmres_solves_a_nonsymmetric_system(rng):
    from reference_solvers.pde.newton import gmres
    n = 60
    A = np.eye(n) * 4 + rng.normal(size=(n, n)) / np.sqrt(n)
    b = rng.normal(size=n)
    x, its, ok = gmres(lambda v: A @ v, b, 1e-12, restart=15)
    assert ok and its > 0
    np.testing.assert_allclose(A @ x, b, atol=1e-10)
    # it stops on the Arnoldi estimate of the residual: the true one must agree (to round-off)
    assert np.linalg.norm(A @ x - b) <= 2e-12 * np.linalg.norm(b)
    x, its, ok = gmres(lambda v: A @ v, b, 1e-6, restart=60)
    assert ok and np.linalg.norm(A @ x - b) <= 1.01e-6 * np.linalg.norm(b)


def test_basis_combine_matches_numpy_twin(rng):
    V = rng.normal(size=(6, 5000))  # longer than one block of the kernel, not a multiple of it
    y, x = rng.normal(size=4), rng.normal(size=5000)
    want = kernels.basis_combine_numpy(V, y, x)
    kernels.basis_combine(V, y, x)
    np.testing.assert_allclose(x, want, rtol=1e-12, atol=1e-12)


def test_gmres_in_place_product_matches_returning_one(rng):
    """``into=True`` (the product written into the next Krylov vector) is the same algorithm."""
    from reference_solvers.pde.newton import gmres
    n = 50
    A = np.eye(n) * 3 + rng.normal(size=(n, n)) / np.sqrt(n)
    b = rng.normal(size=n)
    x1, its1, ok1 = gmres(lambda v: A @ v, b, 1e-10, restart=8)
    x2, its2, ok2 = gmres(lambda v, out: np.matmul(A, v, out=out), b, 1e-10, restart=8, into=True)
    assert ok1 and ok2 and its1 == its2
    np.testing.assert_allclose(x2, x1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(A @ x2, b, atol=1e-8)


@pytest.mark.parametrize("j", range(7))
def test_blocked_gram_schmidt_matches_mgs_twin(j, rng):
    """Gram-Schmidt in blocks of two (every block layout: odd and even j) gives MGS's coefficients and
    vector against an orthonormal basis, and leaves w orthogonal to it."""
    for n in (11, 1001):  # n > j + 1: w keeps a component outside the basis
        Q = np.linalg.qr(rng.normal(size=(n, j + 1)))[0].T.copy()
        V = np.vstack([Q, np.zeros((1, n))])
        w = rng.normal(size=n) + Q.T @ rng.normal(size=j + 1) * 3
        w2, h2 = kernels.arnoldi_orthogonalize_numpy(V, j, w)
        h = np.empty(j + 2)
        kernels.arnoldi_orthogonalize(V, j, w, h)
        np.testing.assert_allclose(h, h2, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w, w2, rtol=1e-12, atol=1e-12)
        assert abs(np.linalg.norm(w) - 1) < 1e-14 and np.abs(Q @ w).max() < 1e-13


@pytest.mark.parametrize("periodic", [False, True])
def test_fused_newton_sweeps_match_their_parts(periodic, rng):
    """The sweeps that form their right-hand sides step by step (coupling times dm; -C du minus couplings)
    equal the unfused sweeps applied to the whole right-hand side fields."""
    grid = Grid((0.0,), (1.0,), (12,), periodic)
    nt = 5
    sch = Scheme(grid, nt=nt, horizon=1.0, nu=0.2)
    vals = np.empty((nt, grid.size, 3))
    res = np.empty(grid.size)
    for n in range(nt):
        u, un, f, b, _ = _random_state(rng, grid)
        kernels.hjb_stencil(u, un, f, b, sch.nb, sch.h, sch.nu, sch.dt, sch.bound, res, vals[n])
    coef, v, term = rng.normal(size=(nt, grid.size)), rng.normal(size=(nt, grid.size)), rng.normal(size=grid.size)
    fb, ft = sch.factor(vals, False), sch.factor(vals, True)
    x = np.empty((nt + 1, grid.size))
    kernels.linear_backward_scaled_1d(*fb, periodic, coef, v, coef, v, False, term, x)
    np.testing.assert_allclose(x, sch.newton_backward(vals, coef * v, term, fb), rtol=1e-12, atol=1e-12)
    coef2, v2 = rng.normal(size=(nt, grid.size)), rng.normal(size=(nt, grid.size))
    kernels.linear_backward_scaled_1d(*fb, periodic, coef, v, coef2, v2, True, term, x)
    np.testing.assert_allclose(x, sch.newton_backward(vals, coef * v + coef2 * v2, term, fb), rtol=1e-12, atol=1e-12)
    wp, wm = rng.normal(size=(nt, 1, grid.size)), rng.normal(size=(nt, 1, grid.size))
    du, extra, dm = rng.normal(size=(nt + 1, grid.size)), rng.normal(size=(nt, grid.size)), rng.normal(size=(nt, grid.size))
    weights = rng.uniform(0.5, 2.0, size=(nt, grid.size))
    for has_extra in (False, True):
        rhs = kernels.edge_apply_numpy(sch.nb, wp, wm, du[:-1]) - (extra if has_extra else 0.0)
        want = dm - sch.newton_forward(vals, rhs, ft)[1:]
        for with_dot in (False, True):
            out = np.empty((nt, grid.size))
            dot = kernels.linear_forward_edges_1d(*ft, periodic, sch.nb, wp, wm, du, extra, has_extra, dm, out,
                                                  weights, with_dot)
            np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
            assert dot == (pytest.approx(np.sum(weights * dm * want), rel=1e-12) if with_dot else 0.0)


def test_parallel_kernels_give_the_same_numbers_on_any_number_of_threads(rng):
    """Reductions go through a fixed number of chunks, never through the thread count."""
    import numba

    n = 10_007
    V = rng.normal(size=(4, n))
    w0, x0, r0, p0, q0 = (rng.normal(size=n) for _ in range(5))
    weights = rng.uniform(0.5, 2.0, size=n)

    def run():
        w, h = w0.copy(), np.zeros(5)
        kernels.arnoldi_orthogonalize(V, 3, w, h)
        x, r = x0.copy(), r0.copy()
        sums = kernels.cg_step(x, r, p0, q0, weights, 0.3)
        return w, h, x, r, np.array(sums), np.array([kernels.weighted_dot(p0, q0, weights)])

    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
    finally:
        numba.set_num_threads(threads)
    for a, b in zip(one, run()):
        assert np.array_equal(a, b)
