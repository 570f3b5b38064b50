"""The PDE solutions against closed forms: LQ (REFERENCES.md), ergodic solutions, manufactured solution order."""
import numpy as np
import pytest

from mfgbench.games.continuous import (ContinuousGame, ContinuousPopulation, Domain, LogDensity, Potential)
from reference_solvers.pde import solve
from reference_solvers.pde.analytic import (ErgodicGaussian, TravellingWave, ergodic_torus_first_order, lq_eta,
                                            lq_solution)
from reference_solvers.pde.convergence import lq_errors, order_table


@pytest.mark.parametrize("params", [dict(), dict(K=0.3, q=0.2, kappa=1.0, c=0.5, horizon=2.0)])
def test_lq_eta_solves_its_riccati_equation(params):
    p = dict(horizon=1.0, K=0.0, q=0.01, kappa=0.5, c=1.0)
    p.update(params)
    t = np.linspace(0, p["horizon"], 101)[1:-1]
    eps = 1e-6
    eta = lq_eta(t, **p)
    deta = (lq_eta(t + eps, **p) - lq_eta(t - eps, **p)) / (2 * eps)
    K, q = p["K"], p["q"]
    np.testing.assert_allclose(deta, 2 * (K + q) * eta + eta ** 2 - (p["kappa"] - q ** 2), rtol=1e-6, atol=1e-8)
    assert lq_eta(p["horizon"], **p) == pytest.approx(p["c"], rel=1e-14)


def test_lq_closed_form_value_solves_hjb():
    """u = eta/2 (x - mbar)^2 + chi solves -u_t - nu u_xx + u_x^2/2 - (K+q) z u_x = (kappa - q^2)/2 z^2."""
    sol = lq_solution(K=0.2, q=0.1)
    nu = 0.5 * sol.sigma ** 2
    x = np.linspace(-2, 3, 11)
    t, e = 0.4, 1e-5
    u_t = (sol.value(t + e, x) - sol.value(t - e, x)) / (2 * e)
    u_x = sol.eta(t) * (x - sol.x0)
    z = sol.x0 - x
    lhs = -u_t - nu * sol.eta(t) + 0.5 * u_x ** 2 - (sol.K + sol.q) * z * u_x
    np.testing.assert_allclose(lhs, 0.5 * (sol.kappa - sol.q ** 2) * z ** 2, atol=1e-7)
    np.testing.assert_allclose(sol.feedback(t, x), (sol.q + sol.eta(t)) * z)


def test_lq_numerical_solution_matches_closed_form_at_order_one():
    rows = order_table("lq", (60, 120, 240))
    print("\n n   feedback    order   density_L1  order   mean")
    for r in rows:
        print(f"{r['n']:4d} {r['feedback']:.3e} {r.get('order_feedback', float('nan')):6.2f} "
              f"{r['density_L1']:.3e} {r.get('order_density_L1', float('nan')):6.2f} {r['mean']:.1e}")
    assert rows[-1]["feedback"] < 0.02 and rows[-1]["density_L1"] < 0.02
    for r in rows[1:]:
        assert r["order_feedback"] >= 0.8
        assert r["order_density_L1"] >= 0.8
    # the mean stays at x0 (closed form) up to the walls' negligible influence
    assert max(r["mean"] for r in rows) < 1e-6


def test_lq_with_mean_reversion_and_cross_term():
    """K and q enter through a mean-dependent drift; the closed form still holds."""
    e = lq_errors(120, K=0.5, q=0.3, kappa=1.0)
    assert e["residual"] <= 1e-10
    assert e["feedback"] < 0.05 and e["density_L1"] < 0.05


def test_manufactured_solution_order():
    rows = order_table("wave", (40, 80, 160))
    print("\n n   u error    order   m error    order")
    for r in rows:
        print(f"{r['n']:4d} {r['u']:.3e} {r.get('order_u', float('nan')):6.2f} {r['m']:.3e} "
              f"{r.get('order_m', float('nan')):6.2f}")
    for r in rows[1:]:
        assert r["order_u"] >= 0.8 and r["order_m"] >= 0.8


def test_travelling_wave_is_a_solution():
    """Spot-check the manufactured pair by finite differences: FP holds without source, HJB with P."""
    w = TravellingWave(nu=0.05)
    x = np.linspace(0, 1, 23, endpoint=False)
    t, e = 0.3, 1e-4
    m = w.density(t, x)
    m_t = (w.density(t + e, x) - w.density(t - e, x)) / (2 * e)
    m_x = (w.density(t, x + e) - w.density(t, x - e)) / (2 * e)
    m_xx = (w.density(t, x + e) - 2 * m + w.density(t, x - e)) / e ** 2
    flux = m * w.gradient(t, x)
    flux_x = (w.density(t, x + e) * w.gradient(t, x + e) - w.density(t, x - e) * w.gradient(t, x - e)) / (2 * e)
    np.testing.assert_allclose(m_t - w.nu * m_xx - flux_x, 0, atol=1e-5)
    u = w.value(t, x)
    u_t = (w.value(t + e, x) - w.value(t - e, x)) / (2 * e)
    u_xx = (w.value(t, x + e) - 2 * u + w.value(t, x - e)) / e ** 2
    np.testing.assert_allclose(-u_t - w.nu * u_xx + 0.5 * w.gradient(t, x) ** 2, np.log(m) + w.potential(t, x),
                               atol=1e-5)
    np.testing.assert_allclose(w.value(t, x + 1.0), u, atol=1e-12)  # periodic
    assert np.isfinite(m_x).all() and np.isfinite(flux).all()


def _turnpike_game(pop, domain, horizon):
    g = ContinuousGame(domain, horizon, pop)
    g.id = "ergodic-test"
    return g


def test_ergodic_gaussian_reproduced_in_the_middle_of_a_long_horizon():
    """Turnpike: far from t = 0 and t = T the finite-horizon equilibrium is the ergodic one."""
    nu, beta = 0.5, 1.0
    erg = ErgodicGaussian(nu, beta)
    pop = ContinuousPopulation("g", lambda x: np.exp(-x[0] ** 2 / 2.0), np.sqrt(2 * nu),
                               running=(LogDensity(1.0), Potential(lambda t, x: 0.5 * beta * x[0] ** 2)))
    res = solve(_turnpike_game(pop, Domain((-5.0,), (5.0,)), 8.0), nx=200, nt=80)
    assert res.converged
    x = res.grid.points[0]
    mid = res.problem.nt // 2
    m = res.m[0][mid]
    assert np.abs(m - erg.density(x)).sum() * res.grid.dv < 0.02
    var = (x ** 2 * m).sum() * res.grid.dv
    assert var == pytest.approx(erg.variance, rel=0.03)
    inner = np.abs(x) < 2
    np.testing.assert_allclose(-res.control()[mid, 0, inner], erg.gradient(x[inner]), atol=0.05)
    # the ergodic constant is the slope of u(t, .) in t: u(t) ~ lambda (T - t) + w(x)
    n1, n2 = res.problem.nt // 4, 3 * res.problem.nt // 4
    slope = (res.u[0][n1] - res.u[0][n2]).mean() / (res.times[n2] - res.times[n1])
    assert slope == pytest.approx(erg.ergodic_constant, abs=0.03)


def test_ergodic_first_order_torus_limit():
    """Small nu: the equilibrium density in the middle of a long horizon approaches exp(V)/int exp(V)."""
    V = lambda x: 0.8 * np.cos(2 * np.pi * x[0])  # noqa: E731
    gaps = []
    for sigma in (0.2, 0.1):
        pop = ContinuousPopulation("c", lambda x: np.ones(x.shape[1]), sigma,
                                   running=(LogDensity(1.0), Potential(lambda t, x: -V(x))))
        res = solve(_turnpike_game(pop, Domain((0.0,), (1.0,), periodic=True), 4.0), nx=100, nt=40)
        x = res.grid.points
        m_erg, lam = ergodic_torus_first_order(V(x), x, res.grid.dv)
        gaps.append(np.abs(res.m[0][res.problem.nt // 2] - m_erg).sum() * res.grid.dv)
    assert gaps[1] < 0.08
    assert gaps[1] < 0.7 * gaps[0]  # the gap is O(nu)
