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


def _random_state_graph(rng):
    """A population on some cells of a small grid, with states off the grid joined by links of
    random lengths (connected by construction: every off-grid state links to a placed one)."""
    from mfgbench.games.base import Population
    nx, ny = rng.integers(2, 5), rng.integers(2, 5)
    placed = rng.permutation(nx * ny)[:rng.integers(1, nx * ny + 1)]
    off = int(rng.integers(0, 3))
    S = placed.size + off
    cells = tuple(int(c) for c in placed) + (-1,) * off
    links = [(int(rng.integers(0, placed.size)), placed.size + i, float(rng.uniform(0.5, 3.0))) for i in range(off)]
    # join every placed state to the first one so the graph is connected whatever the grid neighbours
    links += [(0, i, float(rng.uniform(1.0, 4.0))) for i in range(1, placed.size)]
    mu0 = np.full(S, 1.0 / S)
    return Population("p", S, 1, mu0, grid_shape=(int(nx), int(ny)), cells=cells, links=tuple(links))


@settings(max_examples=15, deadline=None)
@given(rng=dists)
def test_w1_on_a_state_graph_matches_the_coupling_lp_of_shortest_paths(rng):
    """The edge-flow W1 (all times in one LP) against couplings priced by Floyd-Warshall distances."""
    from mfgbench.games.base import _checked_population, state_edges
    from mfgbench.metrics import w1_graph
    pop = _checked_population("g", 0, _random_state_graph(rng))
    tails, heads, lengths = state_edges(pop)
    D = np.full((pop.n_states,) * 2, np.inf)
    np.fill_diagonal(D, 0.0)
    for a, b, length in zip(tails, heads, lengths):
        D[a, b] = D[b, a] = min(D[a, b], length)
    for m in range(pop.n_states):   # Floyd-Warshall
        D = np.minimum(D, D[:, m:m + 1] + D[m:m + 1, :])
    mu, nu = rng.dirichlet(np.ones(pop.n_states), size=3), rng.dirichlet(np.ones(pop.n_states), size=3)
    nu[1] = mu[1]
    got = w1_graph(mu, nu, pop)
    want = [coupling_w1(m, v, list(range(pop.n_states)), lambda p, q: D[p, q]) for m, v in zip(mu, nu)]
    assert got == pytest.approx(want, abs=1e-9)
    assert got[1] == 0.0


def test_a_full_grid_given_by_cells_has_the_grid_w1():
    from mfgbench.games.base import Population
    from mfgbench.metrics import w1
    rng = np.random.default_rng(2)
    mu, nu = rng.dirichlet(np.ones(12)), rng.dirichlet(np.ones(12))
    pop = Population("p", 12, 1, mu, grid_shape=(3, 4), cells=tuple(range(12)))
    assert w1(mu, nu, pop)[0] == pytest.approx(w1_grid(mu, nu, (3, 4)), abs=1e-9)


@pytest.mark.parametrize("game_id", ["predator-prey-capture-v0", "traffic-3type-v0", "sir-types-v0"])
def test_every_type_has_a_w1_on_its_own_geometry(game_id):
    game = mb.make(game_id)
    flow = mb.distribution(game, mb.uniform_policy(game))
    other = mb.distribution(game, tuple(np.eye(p.n_actions)[np.zeros((game.horizon, p.n_states), dtype=int)]
                                        for p in game.populations))
    err = distribution_error(game, flow, other)
    assert len(err.w1_per_population) == game.n_populations
    assert all(w is not None and w >= tv - 1e-9 for w, tv in zip(err.w1_per_population, err.tv_per_population))
    assert distribution_error(game, flow, flow).w1 == 0.0
