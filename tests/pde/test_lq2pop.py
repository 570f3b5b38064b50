"""lq-2pop-continuous-v0: its semi-analytic equilibrium, checked independently, and the PDE reference against it."""
import numpy as np
import pytest
from scipy.integrate import solve_bvp

import mfgbench as mb
from reference_solvers.pde.analytic import lq2pop_solution
from reference_solvers.pde.convergence import order_table

OTHER = dict(horizon=1.5, sigma_1=0.6, sigma_2=1.1, kappa_1=0.5, kappa_2=3.0, c_1=0.0, c_2=1.5, x0_1=0.5,
             x0_2=-1.5, s0_1=0.3, s0_2=0.5, offset=-1.0, anchor=0.7, weight=-0.8)


@pytest.mark.parametrize("params", [{}, OTHER], ids=["defaults", "other"])
def test_means_agree_with_an_independent_collocation_solver(params):
    """scipy's solve_bvp (collocation, tol 1e-10) on the forward-backward system gives the same (mbar, q)."""
    sol = lq2pop_solution(**mb.make("lq-2pop-continuous-v0", **params).params)
    assert sol.residual <= 1e-10
    (k1, k2), (c1, c2), (x1, x2) = sol.kappa, sol.c, sol.x0
    d, a, w = sol.offset, sol.anchor, sol.weight

    def rhs(t, y):
        P1, P2 = sol.riccati(0, t), sol.riccati(1, t)
        return np.vstack([-P1 * y[0] + y[2], -P2 * y[1] + y[3], P1 * y[2] - k1 * (y[1] + d),
                          P2 * y[3] - k2 * (a + w * y[0])])

    def bc(y0, yT):
        return np.array([y0[0] - x1, y0[1] - x2, yT[2] - c1 * (yT[1] + d), yT[3] - c2 * (a + w * yT[0])])

    t = np.linspace(0, sol.horizon, 200)
    bvp = solve_bvp(rhs, bc, t, np.zeros((4, t.size)), tol=1e-10, max_nodes=200_000)
    assert bvp.success
    np.testing.assert_allclose(sol.state(t), bvp.sol(t), atol=1e-8)


def test_riccati_and_terminal_conditions():
    sol = lq2pop_solution(**OTHER)
    t, e = np.linspace(0.01, sol.horizon - 0.01, 50), 1e-6
    for k in range(2):
        P = sol.riccati(k, t)
        dP = (sol.riccati(k, t + e) - sol.riccati(k, t - e)) / (2 * e)
        np.testing.assert_allclose(dP, P ** 2 - sol.kappa[k], rtol=1e-6, atol=1e-7)
        assert sol.riccati(k, sol.horizon) == pytest.approx(sol.c[k], abs=1e-14)
        # q_k' = P_k q_k - kappa_k z_k and q_k(T) = c_k z_k(T)
        dq = (sol.intercept(k, t + e) - sol.intercept(k, t - e)) / (2 * e)
        np.testing.assert_allclose(dq, P * sol.intercept(k, t) - sol.kappa[k] * sol.target(k, t), atol=1e-6)
        assert sol.intercept(k, sol.horizon) == pytest.approx(sol.c[k] * sol.target(k, sol.horizon), abs=1e-10)
    np.testing.assert_allclose(sol.target(0, t), sol.mean(1, t) + sol.offset)
    np.testing.assert_allclose(sol.target(1, t), sol.anchor + sol.weight * sol.mean(0, t))


def test_particles_under_the_feedback_have_the_predicted_means_and_variances(rng):
    """Monte Carlo: X' = q_k - P_k X + sigma_k W' from N(x0_k, s0_k^2) has mean mbar_k(t) and variance S_k(t)."""
    sol = lq2pop_solution()
    N, steps = 40_000, 400
    dt = sol.horizon / steps
    X = [x0 + s0 * rng.standard_normal(N) for x0, s0 in zip(sol.x0, sol.s0)]
    for n in range(steps):
        t = (n + 0.5) * dt  # midpoint drift: the scheme's bias is O(dt^2) in the mean
        X = [x + sol.alpha(k, t, x) * dt + sol.sigma[k] * np.sqrt(dt) * rng.standard_normal(N)
             for k, x in enumerate(X)]
    for k, x in enumerate(X):
        S = sol.variance(k, sol.horizon)
        assert abs(x.mean() - sol.mean(k, sol.horizon)) < 4 * np.sqrt(S / N) + 1e-3
        assert abs(x.var() - S) < 4 * S * np.sqrt(2 / N) + 2e-3


def test_pde_reference_matches_the_semi_analytic_solution_at_order_one():
    rows = order_table("lq2pop", (60, 120, 240))
    print("\n n   feedback    order   mean        order   density_L1  order")
    for r in rows:
        print(f"{r['n']:4d} {r['feedback']:.3e} {r.get('order_feedback', float('nan')):6.2f} {r['mean']:.3e} "
              f"{r.get('order_mean', float('nan')):6.2f} {r['density_L1']:.3e} "
              f"{r.get('order_density_L1', float('nan')):6.2f}")
    assert rows[-1]["feedback"] < 0.05 and rows[-1]["mean"] < 0.01 and rows[-1]["density_L1"] < 0.07
    for r in rows[1:]:
        assert r["residual"] <= 1e-10
        for key in ("feedback", "mean", "density_L1"):
            assert r[f"order_{key}"] >= 0.8, (key, r)


@pytest.mark.parametrize("bad,match", [(dict(kappa_1=0.0), "kappa_1"), (dict(c_2=-1.0), "c_1, c_2"),
                                       (dict(x0_2=4.0), "x0_2"), (dict(sigma_1=-0.1), "sigma_1")])
def test_bad_parameters_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        mb.make("lq-2pop-continuous-v0", **bad)
