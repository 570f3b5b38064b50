"""crowd-2d (torus, four rooms, maze) and traffic-2type: definitions at hand-computed points."""
import math
import time

import numpy as np
import pytest

import mfgbench as mb
from mfgbench.games.base import MeanField


def reachable(succ, start):
    seen = {start}
    frontier = [start]
    while frontier:
        s = frontier.pop()
        for n in np.unique(succ[s]):
            if n not in seen:
                seen.add(int(n))
                frontier.append(int(n))
    return seen


def test_crowd_2d_definition():
    game = mb.make("crowd-2d-v0")
    assert game.horizon == 9 and game.populations[0].n_states == 100 and game.populations[0].grid_shape == (10, 10)
    mu = np.full(100, 0.01)
    mf = MeanField(0, (mu,), (None,))
    R = game.rewards(0, 0, mf)
    # (5, 5) staying: 1 + 1 - log 0.01; (0, 3) moving: (1 - 1) + (1 - 0.4) - 1/10 - log 0.01
    assert R[55, 0] == pytest.approx(2.0 - math.log(0.01 + 1e-25))
    assert R[3, 2] == pytest.approx(0.6 - 0.1 - math.log(0.01))
    assert game.terminal(0, mf)[55] == pytest.approx(2.0 - math.log(0.01))
    succ, prob = game.static_transition(0)
    # from (0, 0) moving -x wraps to (9, 0); noise then one of (9,0), (0,0), (8,0), (9,1), (9,9)
    assert sorted(succ[0, 2]) == sorted([90, 0, 80, 91, 99])
    np.testing.assert_allclose(prob, 0.2)


def test_crowd_2d_four_rooms_walls_hold_no_mass():
    game = mb.make("crowd-2d-four-rooms-v0", horizon=30)
    walls = game.walls.ravel()
    flow = mb.distribution(game, mb.uniform_policy(game))[0]
    assert np.all(flow[:, walls] == 0.0)
    succ, _ = game.static_transition(0)
    free = set(np.flatnonzero(~walls))
    assert reachable(succ, 1 * 13 + 1) == free  # the doors join the four rooms
    # by the end of the horizon the crowd has entered the far room (through two doors)
    far = [s for s in free if s // 13 > 6 and s % 13 > 6]
    assert flow[-1, far].sum() > 0.0
    R = game.rewards(0, 0, MeanField(0, (flow[0],), (None,)))
    assert R[14, 3] == pytest.approx(-math.log(1.0 + 1e-25))  # only the density term


def test_crowd_2d_maze_is_connected():
    game = mb.make("crowd-2d-maze-v0", size=15, seed=3)
    walls = game.walls.ravel()
    succ, _ = game.static_transition(0)
    assert reachable(succ, 16) == set(np.flatnonzero(~walls))
    assert walls.sum() > 0 and game.populations[0].mu0[16] == 1.0


def test_crowd_2d_scales_to_300():
    t0 = time.perf_counter()
    game = mb.make("crowd-2d-v0", size=300, horizon=50)
    succ, prob = game.static_transition(0)
    assert time.perf_counter() - t0 < 5.0
    assert succ.shape == (90000, 5, 5) and game.horizon == 49
    # (0, 0) moving +y then noise -x lands on (299, 1)
    assert 299 * 300 + 1 in succ[0, 3]


@pytest.mark.parametrize("game_id, params", [("crowd-2d-v0", dict(size=1)), ("crowd-2d-v0", dict(horizon=1)),
                                             ("crowd-2d-maze-v0", dict(size=10)),
                                             ("crowd-2d-four-rooms-v0", dict(size=5))])
def test_crowd_2d_bad_parameters(game_id, params):
    with pytest.raises(ValueError, match=game_id):
        mb.make(game_id, **params)


def test_traffic_definition():
    game = mb.make("traffic-2type-v0", size=10)
    cars, trucks = game.populations
    assert (cars.n_actions, trucks.n_actions) == (3, 2) and cars.n_states == trucks.n_states == 10
    np.testing.assert_allclose(trucks.mu0[:5], 0.2)
    mu_c, mu_t = np.full(10, 0.1), np.zeros(10)
    mu_t[0] = 1.0
    mf = MeanField(0, (mu_c, mu_t), (None, None))
    # car at 0: rho = 10 (1 * 0.7 * 0.1 + 2 * 0.3 * 1) = 6.7; speed 2: 2 - 4/4 - 0.5 * 2 * 6.7
    assert game.rewards(0, 0, mf)[0, 2] == pytest.approx(2.0 - 1.0 - 6.7)
    # car at 3: rho = 0.7; speed 1: 1 - 1/4 - 0.5 * 0.7
    assert game.rewards(0, 0, mf)[3, 1] == pytest.approx(0.75 - 0.35)
    # truck at 0: rho = 10 (0.5 * 0.7 * 0.1 + 0.3 * 1) = 3.35; speed 1: 1 - 1/2 - 0.5 * 3.35
    assert game.rewards(1, 0, mf)[0, 1] == pytest.approx(0.5 - 1.675)
    assert np.all(game.rewards(1, 0, mf)[:, 0] == 0.0)
    succ, prob = game.static_transition(0)
    assert dict(zip(succ[9, 2], prob[9, 2])) == pytest.approx({1: 0.8, 0: 0.2})  # wraps around the ring
    assert succ[4, 0, 0] == 4 and prob[4, 0, 0] == 1.0
    succ_t, prob_t = game.static_transition(1)
    assert succ_t.shape == (10, 2, 2) and dict(zip(succ_t[3, 1], prob_t[3, 1])) == pytest.approx({4: 0.8, 3: 0.2})


def test_traffic_weights_the_other_population():
    game = mb.make("traffic-2type-v0", size=10, truck_weight=3.0, car_weight=0.0)
    mu_c = np.full(10, 0.1)
    base = game.rewards(0, 0, MeanField(0, (mu_c, np.full(10, 0.1)), (None, None)))
    mu_t = np.full(10, 0.1)
    mu_t[2], mu_t[3] = 0.2, 0.0
    more = game.rewards(0, 0, MeanField(0, (mu_c, mu_t), (None, None)))
    # +0.1 trucks at cell 2 raises a car's density there by 10 * 3 * 0.3 * 0.1 = 0.9
    np.testing.assert_allclose(base[2] - more[2], 0.5 * np.arange(3) * 0.9)
    # trucks ignore cars when car_weight = 0
    t1 = game.rewards(1, 0, MeanField(0, (np.eye(10)[0], mu_t), (None, None)))
    t2 = game.rewards(1, 0, MeanField(0, (np.eye(10)[5], mu_t), (None, None)))
    np.testing.assert_array_equal(t1, t2)


@pytest.mark.parametrize("params", [dict(size=2), dict(car_share=1.0), dict(slip=-0.1), dict(kappa=-1.0)])
def test_traffic_bad_parameters(params):
    with pytest.raises(ValueError, match="traffic-2type-v0"):
        mb.make("traffic-2type-v0", **params)
