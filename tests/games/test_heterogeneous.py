"""The heterogeneous games (predator-prey-capture-v0, traffic-3type-v0, sir-types-v0): types with
their own state spaces, actions and dynamics; their rules checked against hand computations, their
declared couplings against the games, the geometry of their populations."""
import numpy as np
import pytest

import mfgbench as mb
from mfgbench.errors import GameError
from mfgbench.games import check_game
from mfgbench.games.base import MeanField, Population, state_edges
from mfgbench.games.conformance import random_profile

HETEROGENEOUS = ["predator-prey-capture-v0", "traffic-3type-v0", "sir-types-v0"]


def test_the_types_have_their_own_state_and_action_spaces():
    pp = mb.make("predator-prey-capture-v0")            # 6 x 6, wall with 2 doors: 32 free cells, 6 safe
    assert [(p.name, p.n_states, p.n_actions) for p in pp.populations] == [("predators", 26, 4), ("prey", 33, 4)]
    tr = mb.make("traffic-3type-v0", length=10, lanes=3)
    assert [(p.name, p.n_states, p.n_actions) for p in tr.populations] == [
        ("cars", 3 * 10 + 1, 4), ("trucks", 2 * 10 + 1, 3), ("motorcycles", 5 * 10 + 1, 5)]
    sir = mb.make("sir-types-v0", stages=2)
    assert [(p.name, p.n_states, p.n_actions) for p in sir.populations] == [("young", 4, 2), ("old", 5, 3)]
    assert sir.populations[1].state_labels == ("S", "I1", "I2", "H", "R")


@pytest.mark.parametrize("game_id", HETEROGENEOUS)
def test_conformance_at_the_defaults(game_id):
    """Shapes per type, stochastic rows, mass conservation, exact values = Monte Carlo (uniform and
    random profiles)."""
    report = check_game(mb.make(game_id), rng=np.random.default_rng(3))
    assert report.profiles == 3 and len(report.comparisons) == 3 * mb.make(game_id).n_populations


@pytest.mark.parametrize("game_id", HETEROGENEOUS)
def test_the_declared_coupling_follows_the_game(game_id):
    """The AffineCoupling reproduces the game's own rewards and probabilities along a random flow."""
    game = mb.make(game_id)
    cp = game.affine_coupling
    pi = random_profile(game, np.random.default_rng(5))
    flow = mb.distribution(game, pi)
    for t in (1, game.horizon // 2, game.horizon - 1):
        mus = tuple(f[t] for f in flow)
        mf = MeanField(t, mus, tuple(m[:, None] * p[t] for m, p in zip(mus, pi)))
        mf0 = MeanField(t, tuple(np.full_like(m, 1.0 / m.size) for m in mus), None)
        for k, pop in enumerate(game.populations):
            R, R0 = game.rewards(k, t, mf), game.rewards(k, t, mf0)
            # the mean-field-free part is the same at both mean fields
            free = R - cp.reward_terms(k, mus, pop.n_actions)
            free0 = R0 - cp.reward_terms(k, mf0.mu, pop.n_actions)
            np.testing.assert_allclose(free, free0, atol=1e-10)
            succ, P = game.transitions(k, t, mf)
            succ0, P0 = game.transitions(k, t, mf0)
            np.testing.assert_array_equal(succ, succ0)
            terms = cp.transition_terms(k, mus, succ.shape)
            terms0 = cp.transition_terms(k, mf0.mu, succ.shape)
            if terms is None:
                np.testing.assert_array_equal(P, P0)
            else:
                np.testing.assert_allclose(P - terms, P0 - terms0, atol=1e-12)


def test_capture_moves_prey_to_caught_with_the_predators_share():
    game = mb.make("predator-prey-capture-v0")
    n = game.size
    pred, prey = game.populations
    mu_pred = np.zeros(pred.n_states)
    door = (1, n // 2)                                   # the upper door, in the wall's column
    s_pred = game.state_of[0][door[0] * n + door[1]]
    mu_pred[s_pred] = 0.4
    mu_pred[0] = 0.6
    mu_prey = np.full(prey.n_states, 1.0 / prey.n_states)
    mf = MeanField(1, (mu_pred, mu_prey), None)
    succ, prob = game.transitions(1, 1, mf)
    s_prey = game.state_of[1][door[0] * n + door[1]]
    caught = prob[s_prey][succ[s_prey] == game.caught].reshape(4, -1).sum(axis=1)
    np.testing.assert_allclose(caught, 0.4 * game.kappa)
    # prey in the safe zone and caught prey stay put; predators never stand on a safe cell
    safe_state = int(np.flatnonzero(game.prey_safe)[0])
    for s in (safe_state, game.caught):
        assert (prob[s][succ[s] != s] == 0).all()
    pred_cells = np.asarray(pred.cells)
    assert not game.safe.ravel()[pred_cells].any()
    # rewards: prey lose catch_cost per unit caught; predators gain capture_reward per unit of prey on their cell
    R_prey = game.rewards(1, 1, mf)
    R_pred = game.rewards(0, 1, mf)
    crowd_prey = -game.eta * np.log(mu_prey[s_prey] + 1e-12)
    assert R_prey[s_prey, 0] == pytest.approx(-100.0 * 0.4 + crowd_prey)          # "up" from the door: no safe cell
    crowd_pred = -game.eta * np.log(0.4 + 1e-12)
    assert R_pred[s_pred, 0] == pytest.approx(10.0 * mu_prey[s_prey] - 0.1 + crowd_pred)


def test_a_prey_next_to_the_safe_zone_is_paid_on_reaching_it():
    game = mb.make("predator-prey-capture-v0", noise=0.0)
    n = game.size
    s = game.state_of[1][0 * n + n - 2]                  # row 0, next to the safe column
    mus = (game.populations[0].mu0, game.populations[1].mu0)
    R = game.rewards(1, 1, MeanField(1, mus, None))
    right = 3
    crowd = -game.eta * np.log(mus[1][s] + 1e-12)
    on_pred = game.state_of[0][0 * n + n - 2]
    caught = game.kappa * mus[0][on_pred]
    assert R[s, right] == pytest.approx(-100.0 * caught + 10.0 * (1.0 - caught) + crowd)


def test_trucks_keep_to_the_right_lanes_and_motorcycles_split():
    game = mb.make("traffic-3type-v0")
    cars, trucks, motos = game.populations
    L = game.length
    # trucks' cells are the first two lanes of the road grid
    cells = np.asarray(trucks.cells[:-1])
    assert trucks.grid_shape == (game.lanes, L) and cells.max() < 2 * L
    succ, prob = game.static_transition(1)
    assert succ.max() == trucks.n_states - 1
    # a motorcycle between lanes 0 and 1 occupies half its footprint on each
    s_gap = 1 * L + 3
    np.testing.assert_allclose(game.footprint[2][:, s_gap].nonzero()[0], [3, L + 3])
    np.testing.assert_allclose(game.footprint[2][[3, L + 3], s_gap], 0.25)
    # the density counts everybody's occupancy: trucks alone on one cell
    mus = [np.zeros(p.n_states) for p in game.populations]
    mus[0][-1] = mus[2][-1] = 1.0
    mus[1][0] = 1.0
    D = game.density(mus)
    assert D[0] == pytest.approx(game.n_cells * 0.3 * 2.5) and D[1:].sum() == 0.0


def test_infection_probability_and_its_limit():
    game = mb.make("sir-types-v0")
    young, old = game.populations
    mu_y = np.array([0.8, 0.2, 0.0])
    mu_o = np.array([0.9, 0.05, 0.05, 0.0])
    lam = game.infection_probability(1, (mu_y, mu_o))
    pressure = 0.6 * (0.5 * 0.7 * 0.2 + 0.5 * 0.3 * 0.05)     # beta (M_old . n I); H is not infectious
    np.testing.assert_allclose(lam, pressure * np.array([1.0, 0.4, 0.1]))
    succ, prob = game.transitions(1, 3, MeanField(3, (mu_y, mu_o), None))
    np.testing.assert_allclose(prob[0, :, 1], lam)
    assert (succ[0, :, 1] == 1).all()
    with pytest.raises(ValueError, match="infection probability"):
        mb.make("sir-types-v0", beta=1.5)


def test_the_populations_geometry():
    pp = mb.make("predator-prey-capture-v0")
    prey = pp.populations[1]
    tails, heads, lengths = state_edges(prey)
    caught_edges = (heads == pp.caught) | (tails == pp.caught)
    assert caught_edges.sum() == (~pp.prey_safe).sum()          # joined to every cell where capture happens
    assert set(lengths[caught_edges]) == {np.ceil(_maze_diameter(pp) / 2)}
    sir = mb.make("sir-types-v0")
    assert sir.populations[0].grid_shape is None and len(sir.populations[1].links) == 4


def _maze_diameter(game):
    """The longest shortest path between free cells, by breadth-first search on the grid."""
    n, free = game.size, game.free
    best = 0
    for start in zip(*np.nonzero(free)):
        dist = {start: 0}
        frontier = [start]
        while frontier:
            nxt = []
            for r, c in frontier:
                for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    q = (r + dr, c + dc)
                    if 0 <= q[0] < n and 0 <= q[1] < n and free[q] and q not in dist:
                        dist[q] = dist[(r, c)] + 1
                        nxt.append(q)
            frontier = nxt
        best = max(best, max(dist.values()))
    return best


def test_population_geometry_is_validated():
    from mfgbench.games.base import _checked_population
    mu0 = np.array([0.5, 0.5, 0.0])
    _checked_population("g", 0, Population("p", 3, 1, mu0, grid_shape=(2, 2), cells=(0, 3, -1),
                                           links=((1, 2, 1.0), (0, 2, 1.0))))
    bad = [dict(cells=(0, 1, -1)),                                  # no grid_shape
           dict(grid_shape=(2, 2), cells=(0, 4, -1)),               # off the grid
           dict(grid_shape=(2, 2), cells=(0, 0, -1)),               # two states on one cell
           dict(grid_shape=(2, 2), cells=(0, 3, -1)),               # not connected: 0 and 3 are diagonal
           dict(links=((0, 0, 1.0),)),                              # a loop
           dict(links=((0, 1, -1.0), (1, 2, 1.0))),                 # negative length
           dict(state_labels=("a", "b"))]
    for kwargs in bad:
        with pytest.raises(GameError):
            _checked_population("g", 0, Population("p", 3, 1, mu0, **kwargs))
