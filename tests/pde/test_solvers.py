"""Coupled solvers: Newton's Jacobian, mass and positivity, quadratic convergence, agreement of methods."""
import numpy as np
import pytest

from mfgbench.games import list_games, make
from mfgbench.games.continuous import (ContinuousGame, ContinuousPopulation, Convolution, Domain, LogDensity,
                                       MeanQuadratic, MeanReversion, Potential, PowerDensity)
from reference_solvers.pde import Problem, fictitious_play, newton, picard, solve
from reference_solvers.pde.newton import _apply, _newton_system

CONTINUOUS = ["crowd-continuous-v0", "exit-room-2d-v0", "lq-2pop-continuous-v0", "lq-continuous-v0",
              "segregation-2pop-v0"]
SMALL = {"crowd-continuous-v0": (40, 20), "exit-room-2d-v0": (12, 10), "lq-continuous-v0": (60, 20),
         "lq-2pop-continuous-v0": (60, 20),
         "segregation-2pop-v0": (40, 20)}


def test_registry_lists_the_continuous_games():
    assert sorted(list_games(kind="continuous")) == CONTINUOUS


def _convolution_game():
    pops = (ContinuousPopulation("a", lambda x: 1 + 0.5 * np.sin(2 * np.pi * x[0]), 0.4,
                                 running=(Convolution(lambda d: np.exp(-(d[0] / 0.2) ** 2), 1.0, source=1),
                                          PowerDensity(0.5, 2.0), Potential(lambda t, x: np.cos(2 * np.pi * x[0]))),
                                 terminal=(LogDensity(0.3),)),
            ContinuousPopulation("b", lambda x: 1 + 0.5 * np.cos(2 * np.pi * x[0]), 0.3,
                                 running=(LogDensity(0.5), PowerDensity(1.0, 1.0, source=0)),
                                 terminal=(PowerDensity(1.0, 1.0, source=0),)))
    g = ContinuousGame(Domain((0.0,), (1.0,), periodic=True), 0.5, pops)
    g.id = "convolution-test"
    return g


def _drift_game():
    pop = ContinuousPopulation("a", lambda x: np.exp(-(x[0] - 0.3) ** 2 / 4.0), 0.8,
                               running=(MeanQuadratic(0.7), LogDensity(0.2)), terminal=(MeanQuadratic(1.3),),
                               drift=(MeanReversion(0.6),))
    g = ContinuousGame(Domain((-2.0,), (2.0,), periodic=False), 0.5, pop, control_bound=1.5)
    g.id = "drift-test"
    return g


JACOBIAN_CASES = [
    ("crowd", lambda: make("crowd-continuous-v0"), 7, 3),
    ("segregation", lambda: make("segregation-2pop-v0"), 6, 3),
    ("lq", lambda: make("lq-continuous-v0", half_width=2.0, x0=0.3), 8, 3),
    ("lq-2pop", lambda: make("lq-2pop-continuous-v0", half_width=3.0, x0_1=-0.5, x0_2=0.5), 8, 3),
    ("convolution", _convolution_game, 6, 3),
    ("drift-bounded", _drift_game, 8, 3),
    ("exit-2d", lambda: make("exit-room-2d-v0", control_bound=2.0), 4, 2),
]


@pytest.mark.parametrize("name,factory,nx,nt", JACOBIAN_CASES, ids=[c[0] for c in JACOBIAN_CASES])
def test_newton_jacobian_matches_finite_differences(name, factory, nx, nt, rng):
    """Newton's matrix (mean terms eliminated) equals central differences of the whole-system residual."""
    problem = Problem(factory(), nx, nt)
    # positive densities well away from 0, so that +-eps stays inside the domain of log and m^alpha
    m = [mk * np.exp(0.2 * rng.normal(size=mk.shape)) + 0.1 * mk.mean() for mk in problem.initial_flow()]
    u = [rng.normal(size=mk.shape) * 0.5 for mk in m]
    F, A = _newton_system(problem, u, m)
    n_main = problem.K * (2 * nt + 1) * problem.n
    A = A.toarray()
    # eliminate the extra (mean) unknowns: Schur complement on the last block
    Amm, Ame, Aem, Aee = A[:n_main, :n_main], A[:n_main, n_main:], A[n_main:, :n_main], A[n_main:, n_main:]
    J = Amm - Ame @ np.linalg.solve(Aee, Aem) if Aee.size else Amm

    def residual_vector(z):
        uu, mm = _apply(problem, u, m, z, 1.0)
        parts = problem.residual_parts(uu, mm)
        return np.concatenate([np.concatenate([h.ravel(), t, p.ravel()]) for h, t, p, *_ in parts])

    np.testing.assert_allclose(residual_vector(np.zeros(n_main)), F[:n_main], atol=1e-13)
    eps = 1e-6
    fd = np.empty_like(J)
    for j in range(n_main):
        e = np.zeros(n_main)
        e[j] = eps
        fd[:, j] = (residual_vector(e) - residual_vector(-e)) / (2 * eps)
    np.testing.assert_allclose(J, fd, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("game_id", CONTINUOUS)
@pytest.mark.parametrize("method", ["newton", "picard"])
def test_mass_and_positivity_on_every_continuous_game(game_id, method):
    nx, nt = SMALL[game_id]
    res = solve(make(game_id), nx=nx, nt=nt, method=method, max_iter=2000 if method == "picard" else 50)
    assert res.converged, res.summary()
    assert res.residual <= 1e-10
    assert res.mass_error <= 1e-12
    assert res.min_density >= 0.0
    s = res.summary()
    assert s["method"] == method and s["iterations"] >= 1 and s["seconds"] > 0


def test_newton_converges_quadratically_on_crowd():
    # exact linear solves (sparse LU), so that what we see is Newton itself, not the inexact Krylov forcing
    res = newton(Problem(make("crowd-continuous-v0"), 100, 50), tol=1e-13, coarse=False, linear="direct")
    warm = int(next(n for n in res.notes if n.startswith("warm-up")).split()[1])
    r = np.array(res.residuals[warm - 1:])  # last warm-up residual, then one per Newton step
    ratios = [(a, b) for a, b in zip(r[:-1], r[1:]) if 1e-13 < b and a < 1e-1]
    assert len(ratios) >= 2, r
    for a, b in ratios:
        # quadratic: r_{k+1} <= C r_k^2, i.e. the exponent log(r_{k+1}) / log(r_k) is close to 2
        assert b <= 50 * a ** 2, (a, b)
        assert np.log(b) / np.log(a) >= 1.7, (a, b)


def test_methods_agree_on_segregation():
    game = make("segregation-2pop-v0")
    problem = Problem(game, 40, 20)
    a = newton(problem)
    b = picard(problem, damping=0.3)
    c = fictitious_play(problem, tol=1e-5, max_iter=400)
    for k in range(2):
        np.testing.assert_allclose(a.m[k], b.m[k], atol=1e-8)
        np.testing.assert_allclose(a.u[k], b.u[k], atol=1e-8)
        # fictitious play converges like 1/j: loose agreement only
        np.testing.assert_allclose(a.m[k], c.m[k], atol=1e-2)
    assert c.method == "fictitious"


def test_solve_validates_inputs():
    game = make("crowd-continuous-v0")
    with pytest.raises(ValueError, match="method"):
        solve(game, nx=10, nt=10, method="magic")
    with pytest.raises(ValueError, match="nx"):
        solve(game, nx=2, nt=10)
    with pytest.raises(ValueError, match="nt"):
        solve(game, nx=10, nt=0)
    with pytest.raises(ValueError, match="continuous"):
        solve(object(), nx=10, nt=10)
    with pytest.raises(ValueError, match="sigma"):
        make("crowd-continuous-v0", sigma=-1.0)


@pytest.mark.parametrize("factory", [_convolution_game, _drift_game], ids=["convolution", "drift-bounded"])
def test_nonlocal_and_bounded_games_solve_consistently(factory):
    """Convolution and cross couplings, a mean-dependent drift and a control bound: Newton (Krylov and
    direct) and Picard reach the same discrete solution, with exact mass and m >= 0."""
    problem = Problem(factory(), 30, 12)
    a = newton(problem)
    b = newton(problem, linear="direct", coarse=False)
    c = picard(problem, damping=0.2, max_iter=3000)
    for r in (a, b, c):
        assert r.converged and r.mass_error <= 1e-12 and r.min_density >= 0
    for k in range(problem.K):
        np.testing.assert_allclose(a.m[k], b.m[k], atol=1e-8)
        np.testing.assert_allclose(a.m[k], c.m[k], atol=1e-8)
        np.testing.assert_allclose(a.u[k], c.u[k], atol=1e-8)


def test_2d_newton_with_and_without_lu_sweeps_agree(monkeypatch):
    """2D Newton sweeps by per-step LU factors or (past the memory cap) by the iterative solver: the same
    discrete equilibrium, exact mass, m >= 0."""
    problem = Problem(make("exit-room-2d-v0"), 12, 10)
    a = newton(problem)
    monkeypatch.setattr("reference_solvers.pde.scheme.LU_MAX_ENTRIES", -1)  # only step 0 factored
    b = newton(problem)
    for r in (a, b):
        assert r.converged and r.mass_error <= 1e-12 and r.min_density >= 0
    np.testing.assert_allclose(a.m[0], b.m[0], atol=1e-9)
    np.testing.assert_allclose(a.u[0], b.u[0], atol=1e-9)


@pytest.mark.slow
def test_2d_coarse_start_reaches_the_same_equilibrium():
    """On a grid large enough for the coarse-grid start (40 x 40 x 40, started from 20 x 20 x 20), Newton
    reaches the same discrete solution as Newton from damped Picard iterations."""
    problem = Problem(make("exit-room-2d-v0"), 40, 40)
    a = newton(problem)
    b = newton(problem, coarse=False)
    assert any("started from the solution on grid [20, 20]" in n for n in a.notes)
    for r in (a, b):
        assert r.converged and r.mass_error <= 1e-12 and r.min_density >= 0
    np.testing.assert_allclose(a.m[0], b.m[0], atol=1e-8)
    np.testing.assert_allclose(a.u[0], b.u[0], atol=1e-8)


def test_interpolation_matrix_reproduces_affine_functions():
    """Linear interpolation (the coarse-grid start) is exact on affine functions; on a torus it wraps."""
    from reference_solvers.pde.newton import _interp_matrix
    xc, xf = np.linspace(0.0, 1.0, 7), np.linspace(0.0, 1.0, 25)
    np.testing.assert_allclose(_interp_matrix(xf, xc, None) @ (2.0 - 3.0 * xc), 2.0 - 3.0 * xf, atol=1e-14)
    xc, xf = np.arange(4) / 4, np.array([0.875])  # halfway between the last point and the first (wrapped)
    np.testing.assert_allclose(_interp_matrix(xf, xc, 1.0) @ np.array([1.0, 0.0, 0.0, 3.0]), [2.0], atol=1e-14)
