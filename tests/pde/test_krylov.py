"""The Krylov solvers of Newton's step: conjugate gradients in the coupling inner product (when the
reduced operator is self-adjoint there), GMRES otherwise, and the direct sparse solve they must agree with."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mfgbench.games import make
from reference_solvers.pde import Problem, kernels, newton
from reference_solvers.pde.newton import _Linearisation, _direct_step, _krylov_step, _new_work, cg


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(1, 40))
def test_cg_solves_a_system_self_adjoint_in_a_weighted_inner_product(seed, n):
    # A = D^-1 S with S symmetric positive definite and D > 0 diagonal: D A = S is symmetric, so A is
    # self-adjoint in <x, y>_D, but A itself is not symmetric
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, n))
    S = B @ B.T + n * np.eye(n)
    d = rng.uniform(0.1, 10.0, size=n)
    A = S / d[:, None]
    b = rng.normal(size=n)

    def matvec(v, out):
        np.matmul(A, v, out=out)

    x, its, ok = cg(matvec, b, d, 1e-12, max_iter=10 * n + 10)
    assert ok and its <= 2 * n + 5
    np.testing.assert_allclose(A @ x, b, atol=1e-10 * np.linalg.norm(b) * np.linalg.cond(A))


def test_cg_reports_an_operator_that_is_not_positive_definite(rng):
    n = 6
    A = -np.eye(n)

    def matvec(v, out):
        np.matmul(A, v, out=out)

    x, its, ok = cg(matvec, rng.normal(size=n), np.ones(n), 1e-10)
    assert not ok and its == 1


def test_cg_kernels_match_numpy_twins(rng):
    n = 1001  # not a multiple of the chunk count
    x, r, p, q = (rng.normal(size=n) for _ in range(4))
    w = rng.uniform(0.5, 2.0, size=n)
    assert kernels.weighted_dot(p, q, w) == pytest.approx(np.sum(w * p * q), rel=1e-13)
    want = kernels.cg_step_numpy(x, r, p, q, w, 0.37)
    got = kernels.cg_step(x, r, p, q, w, 0.37)
    np.testing.assert_allclose(x, want[0], rtol=1e-15)
    np.testing.assert_allclose(r, want[1], rtol=1e-15)
    assert got == pytest.approx(want[2:], rel=1e-13)
    p2 = r + 0.8 * p
    kernels.cg_direction(p, r, 0.8)
    np.testing.assert_allclose(p, p2, rtol=1e-15)


def _linearisation(game, nx, nt):
    problem = Problem(game, nx, nt)
    res = newton(problem, tol=1e-6)
    # a point off the solution, where the step is not zero
    u = [uk + 0.01 * np.sin(np.arange(uk.size).reshape(uk.shape)) for uk in res.u]
    m = [mk.copy() for mk in res.m]
    return problem, u, m, _Linearisation(problem, u, m)


def _reduced(lin, problem, v):
    nt, n = problem.nt, problem.n
    out = np.empty((nt, n))
    lin.product([v.reshape(nt, n)], [out])
    return out.reshape(-1)


@pytest.mark.parametrize("game_id,nx,nt", [("crowd-continuous-v0", 30, 12), ("crowd-continuous-v0", 17, 9),
                                            ("exit-room-2d-v0", 7, 6)])
def test_reduced_operator_is_self_adjoint_and_positive_in_the_coupling_inner_product(game_id, nx, nt, rng):
    # crowd: log-density coupling (running and terminal), one population, no drift, 1D; exit room: congestion
    # (linear in m), 2D, walls
    problem, u, m, lin = _linearisation(make(game_id), nx, nt)
    w = lin.cg_weights()
    assert w is not None and np.all(w > 0)
    if game_id.startswith("crowd"):  # the terminal row carries dg/dm on top of dt df/dm
        assert np.all(w.reshape(nt, -1)[-1] > w.reshape(nt, -1)[-2])
    for _ in range(3):
        x, y = rng.normal(size=w.size), rng.normal(size=w.size)
        tx, ty = _reduced(lin, problem, x), _reduced(lin, problem, y)
        lhs, rhs = np.sum(w * x * ty), np.sum(w * tx * y)
        assert lhs == pytest.approx(rhs, rel=1e-10)
        # I - phi = I + (PSD in this inner product): <x, T x>_w >= <x, x>_w
        assert np.sum(w * x * tx) >= np.sum(w * x * x) * (1 - 1e-12)
    # the curvature that the fused forward sweep returns is <x, T x>_w
    x = rng.normal(size=w.size)
    out = np.empty((nt, problem.n))
    dot = lin.product([x.reshape(nt, -1)], [out], w.reshape(nt, -1))
    assert dot == pytest.approx(np.sum(w * x * out.reshape(-1)), rel=1e-12)


def test_no_cg_weights_where_the_operator_is_not_self_adjoint():
    # two populations averse to each other's density: the cross derivatives are not symmetric
    _, _, _, lin = _linearisation(make("segregation-2pop-v0"), 20, 8)
    assert lin.cg_weights() is None
    # an attractive (non-monotone) coupling has negative weights: no inner product
    _, _, _, lin = _linearisation(make("crowd-continuous-v0", congestion=0.05, terminal_weight=0.0), 20, 8)
    assert lin.cg_weights() is not None
    lin.hjb_blocks[0] = [(0, "diag", -np.abs(lin.hjb_blocks[0][0][2]))]
    assert lin.cg_weights() is None


@pytest.mark.parametrize("game_id,nx,solver", [("crowd-continuous-v0", 24, "CG"), ("exit-room-2d-v0", 8, "CG"),
                                               ("segregation-2pop-v0", 24, "GMRES")])
def test_krylov_step_matches_the_direct_sparse_step(game_id, nx, solver):
    problem, u, m, _ = _linearisation(make(game_id), nx, 10)
    parts = problem.residual_parts(u, m)
    res = problem.residual_norm(parts)
    work = _new_work((61, problem.K * problem.nt * problem.n))
    # the tightest forcing (fast observed convergence, tol far below the residual): the step must then be
    # the exact Newton step
    du, dm, its, used = _krylov_step(problem, u, m, res, 1e20 * res, 60, 1e-14 * res, work, parts)
    assert used == solver and its > 0
    du2, dm2 = _direct_step(problem, u, m)
    for k in range(problem.K):
        scale = max(np.abs(du2[k]).max(), np.abs(dm2[k]).max())
        np.testing.assert_allclose(du[k], du2[k], atol=1e-9 * scale)
        np.testing.assert_allclose(dm[k], dm2[k], atol=1e-9 * scale)


def test_newton_notes_name_the_krylov_solver():
    res = newton(Problem(make("crowd-continuous-v0"), 160, 80), tol=1e-10)
    assert res.converged and any(n.startswith("CG iterations per Newton step") for n in res.notes)
    res = newton(Problem(make("segregation-2pop-v0"), 160, 80), tol=1e-10)
    assert res.converged and any(n.startswith("GMRES iterations per Newton step") for n in res.notes)
