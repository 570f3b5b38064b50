"""Flow distances against independent computations (scipy's 1D W1, a full coupling LP)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.stats import wasserstein_distance

import mfgbench as mb
from mfgbench.metrics import distribution_error, total_variation, w1_grid, w1_line


def coupling_w1(mu, nu, points, cost):
    """W1 as the LP over couplings with marginals mu and nu (independent of the edge-flow form)."""
    n = len(points)
    C = np.array([[cost(p, q) for q in points] for p in points])
    A = np.zeros((2 * n, n * n))
    for i in range(n):
        A[i, i * n:(i + 1) * n] = 1.0
        A[n + i, i::n] = 1.0
    return linprog(C.ravel(), A_eq=A, b_eq=np.r_[mu, nu], bounds=(0, None), method="highs").fun


dists = st.integers(0, 2**31).map(lambda seed: np.random.default_rng(seed))


@settings(max_examples=25, deadline=None)
@given(rng=dists, n=st.integers(2, 12))
def test_w1_on_a_line_matches_scipy(rng, n):
    mu, nu = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
    x = np.arange(n)
    assert w1_line(mu, nu) == pytest.approx(wasserstein_distance(x, x, mu, nu), abs=1e-12)
    assert w1_grid(mu, nu, (n,)) == pytest.approx(wasserstein_distance(x, x, mu, nu), abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(rng=dists, n=st.integers(3, 9))
def test_w1_on_a_circle_matches_the_coupling_lp(rng, n):
    mu, nu = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
    circ = lambda p, q: min(abs(p - q), n - abs(p - q))  # noqa: E731
    assert w1_line(mu, nu, periodic=True) == pytest.approx(coupling_w1(mu, nu, list(range(n)), circ), abs=1e-9)


@settings(max_examples=10, deadline=None)
@given(rng=dists, nx=st.integers(2, 4), ny=st.integers(2, 4), periodic=st.booleans())
def test_w1_on_a_grid_matches_the_coupling_lp(rng, nx, ny, periodic):
    mu, nu = rng.dirichlet(np.ones(nx * ny)), rng.dirichlet(np.ones(nx * ny))
    pts = [(i, j) for i in range(nx) for j in range(ny)]

    def dist(p, q):
        d = [abs(p[0] - q[0]), abs(p[1] - q[1])]
        if periodic:
            d = [min(d[0], nx - d[0]) if nx > 2 else d[0], min(d[1], ny - d[1]) if ny > 2 else d[1]]
        return d[0] + d[1]

    assert w1_grid(mu, nu, (nx, ny), periodic) == pytest.approx(coupling_w1(mu, nu, pts, dist), abs=1e-9)


def test_total_variation_and_distribution_error():
    game = mb.make("predator-prey-v0")
    flow = mb.distribution(game, mb.uniform_policy(game))
    assert distribution_error(game, flow, flow).tv == 0.0
    shifted = tuple(np.roll(f, 1, axis=1) for f in flow)
    err = distribution_error(game, flow, shifted)
    expected = [np.mean(0.5 * np.abs(f - g).sum(axis=1)) for f, g in zip(flow, shifted)]
    assert err.tv_per_population == pytest.approx(expected, abs=1e-15)
    assert err.tv == pytest.approx(np.mean(expected))
    assert all(w >= tv - 1e-12 for w, tv in zip(err.w1_per_population, err.tv_per_population))  # W1 >= TV on grids
    np.testing.assert_allclose(total_variation([1.0, 0.0], [0.0, 1.0]), 1.0)
