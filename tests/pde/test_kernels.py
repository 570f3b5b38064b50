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
