"""Stationary discounted games and their exact core, against closed forms, hand computation,
brute force, independent iterations and truncated-horizon Monte Carlo."""
import itertools

import numpy as np
import pytest

import mfgbench as mb
from mfgbench.core import stationary as st
from mfgbench.core.kernels import push_forward
from mfgbench.errors import GameError
from mfgbench.games.base import MeanField, Population
from mfgbench.games.stationary import StationaryGame


class TwoRooms(StationaryGame):
    """2 states; action 0 stays, 1 switches; reward -mu(s) (crowd aversion), any action."""

    id = "two-rooms-test"
    static_transitions = True

    def __init__(self, gamma=0.9):
        super().__init__(gamma, Population("p", 2, 2, np.array([0.5, 0.5])))

    def rewards(self, k, mf):
        return np.repeat(-mf.mu[0][:, None], 2, axis=1)

    def transitions(self, k, mf):
        succ = np.array([[[0], [1]], [[1], [0]]])
        return succ, np.ones((2, 2, 1))


class Herding(StationaryGame):
    """2 states; everyone moves to the state that holds at least ``threshold`` of the mass
    (or away from it when ``avoid``): a kernel that depends on the mean field."""

    id = "herding-test"

    def __init__(self, mu0, avoid=False):
        self.avoid = avoid
        super().__init__(0.9, Population("p", 2, 1, np.asarray(mu0, dtype=float)))

    def rewards(self, k, mf):
        return np.zeros((2, 1))

    def transitions(self, k, mf):
        crowded = 0 if mf.mu[0][0] >= 0.5 else 1
        target = 1 - crowded if self.avoid else crowded
        return np.full((2, 1, 1), target), np.ones((2, 1, 1))


def test_q_values_kernel_matches_numpy_twin(rng):
    game = mb.make("garnet-stationary-v0", S=30, A=4, B=5)
    succ, prob = game.static_transition(0)
    R, V = rng.standard_normal((30, 4)), rng.standard_normal(30)
    np.testing.assert_allclose(st.q_values(R, succ, prob, V, 0.9), st.q_values_numpy(R, succ, prob, V, 0.9),
                               rtol=0, atol=1e-12)


def test_exploitability_by_hand():
    # state 0 switches, state 1 stays: mu = (0, 1), r = (0, -1); V^pi(1) = -1/(1-gamma).
    # best response from 1: switch once (-1), then stay at 0 for free: V*(1) = -1.
    # E = mu(1) (V*(1) - V^pi(1)) = -1 + 1/(1 - gamma) = gamma/(1 - gamma) = 9
    game = TwoRooms(0.9)
    pi = np.array([[0.0, 1.0], [1.0, 0.0]])
    ev = mb.evaluate(game, pi)
    np.testing.assert_allclose(ev.flow[0], [0.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(ev.values[0], [-0.9 / 0.1, -10.0], atol=1e-12)  # from 0: switch to 1 for ever
    np.testing.assert_allclose(ev.best_response.values[0], [0.0, -1.0], atol=1e-12)
    assert ev.exploitability == pytest.approx(9.0, abs=1e-12)
    # the uniform policy splits the mass evenly: nothing to gain
    assert abs(mb.exploitability(game, mb.uniform_policy(game))) < 1e-12


def test_ring_road_stationary_distribution_closed_form(rng):
    # a birth chain on a ring moving forward w.p. v(s): mu(s) proportional to 1 / v(s)
    game = mb.make("ring-road-v0", size=20, n_speeds=10)
    pi = rng.dirichlet(np.ones(10), size=20)
    v = pi @ (np.arange(10) / 20)
    mu = mb.distribution(game, pi)[0]
    np.testing.assert_allclose(mu, (1 / v) / (1 / v).sum(), rtol=1e-12)
    assert game.gamma == pytest.approx(1 - 1 / 20)


def test_ring_road_rewards_by_hand():
    game = mb.make("ring-road-v0")
    assert game.populations[0].n_states == 50 and game.populations[0].n_actions == 50 and game.gamma == 0.98
    mu = np.full(50, 1 / 50)
    R = game.rewards(0, MeanField(None, (mu,), (None,)))
    # s = 0: b = 0.4, density law 0.5 (1 - 1/3) = 1/3 -> target 1/3; a = 10: speed 0.2
    assert R[0, 10] == pytest.approx(-(0.2 - 1 / 3) ** 2 / 100)
    # s = 19: b = 0.2 (sin(4 pi 19/50) + 2) ~ 0.2 < 1/3 is the target
    b = 0.2 * (np.sin(4 * np.pi * 19 / 50) + 2)
    assert b < 1 / 3 and R[19, 5] == pytest.approx(-(0.1 - b) ** 2 / 100)


@pytest.mark.parametrize("game_id, params", [("ring-road-v0", dict(size=12, n_speeds=6)),
                                             ("garnet-stationary-v0", dict(S=15, A=3, K=2)),
                                             ("garnet-stationary-v0", dict(S=15, kernel_coupling=0.7, K=2))])
def test_stationary_distribution_is_invariant(game_id, params, rng):
    game = mb.make(game_id, **params)
    profile = tuple(rng.dirichlet(np.ones(p.n_actions), size=p.n_states) for p in game.populations)
    model = st.induced_model(game, profile)
    for k in range(game.n_populations):
        mu = model.distribution[k]
        assert abs(mu.sum() - 1.0) < 1e-14 and mu.min() >= 0.0
        np.testing.assert_allclose(push_forward(mu, profile[k], model.succ[k], model.prob[k]), mu, rtol=0, atol=1e-12)
    if game.static_transitions:
        assert model.iterations == 0
    else:  # the kernel read at the returned distribution is the one that keeps it invariant
        mf = MeanField(None, model.distribution, (None,) * game.n_populations)
        for k in range(game.n_populations):
            succ, prob = game.transitions(k, mf)
            np.testing.assert_allclose(push_forward(model.distribution[k], profile[k], succ, prob),
                                       model.distribution[k], rtol=0, atol=1e-12)


@pytest.mark.parametrize("game_id, params", [("ring-road-v0", dict(size=10, n_speeds=8)),
                                             ("garnet-stationary-v0", dict(S=12, kernel_coupling=0.5))])
def test_values_agree_with_truncated_monte_carlo(game_id, params, rng):
    game = mb.make(game_id, **params)
    pi = rng.dirichlet(np.ones(game.populations[0].n_actions), size=game.populations[0].n_states)
    ev = mb.evaluate(game, pi)
    model = ev.model
    horizon = int(np.ceil(np.log(1e-9) / np.log(game.gamma)))
    bias = game.gamma ** horizon * np.abs(model.rewards[0]).max() / (1 - game.gamma)
    for s0 in (0, 3):  # from a fixed state: V^pi(s0)
        start = np.eye(game.populations[0].n_states)[s0]
        mc = st.sample_discounted_returns(model, 0, pi, 20000, rng, horizon, start=start)
        assert abs(mc.mean - ev.values[0][s0]) < 4 * mc.stderr + bias
    mc = st.sample_discounted_returns(model, 0, pi, 20000, rng, horizon)
    assert abs(mc.mean - ev.flow[0] @ ev.values[0]) < 4 * mc.stderr + bias


def test_policy_value_and_best_response_against_value_iteration_and_brute_force(rng):
    game = mb.make("garnet-stationary-v0", S=4, A=2, B=2, seed=5)
    pi = rng.dirichlet(np.ones(2), size=4)
    model = st.induced_model(game, pi)
    R, succ, prob, gamma = model.rewards[0], model.succ[0], model.prob[0], game.gamma
    V = np.zeros(4)
    for _ in range(2000):  # independent: plain value iteration to round-off
        V = (pi * st.q_values_numpy(R, succ, prob, V, gamma)).sum(axis=1)
    np.testing.assert_allclose(st.policy_value(R, succ, prob, pi, gamma), V, rtol=0, atol=1e-12)
    best = np.full(4, -np.inf)
    for choice in itertools.product(range(2), repeat=4):  # all 16 deterministic policies
        det = np.eye(2)[list(choice)]
        best = np.maximum(best, st.policy_value(R, succ, prob, det, gamma))
    V_star, Q_star = st.best_response_values(R, succ, prob, gamma)
    np.testing.assert_allclose(V_star, best, rtol=0, atol=1e-12)
    np.testing.assert_allclose(Q_star.max(axis=1), V_star, rtol=0, atol=1e-12)


def test_optimal_policy_of_an_uncoupled_game_is_an_equilibrium():
    game = mb.make("garnet-stationary-v0", S=25, A=3, coupling=0.0)
    ev = mb.evaluate(game, mb.uniform_policy(game))
    assert ev.exploitability > 0.0
    br = ev.best_response.policy[0]
    assert br.shape == (25, 3)
    assert abs(mb.exploitability(game, br)) < 1e-12


def test_evaluation_shapes_and_dispatch():
    game = mb.make("garnet-stationary-v0", K=2)
    ev = mb.evaluate(game, mb.uniform_policy(game))
    assert len(ev.flow) == 2 and ev.flow[0].shape == (20,) and ev.values[1].shape == (20,)
    assert ev.best_response.q_values[0].shape == (20, 3) and ev.per_population.shape == (2,)
    assert ev.exploitability == pytest.approx(ev.per_population.sum())
    assert isinstance(ev.model, st.StationaryModel)
    np.testing.assert_array_equal(mb.distribution(game, mb.uniform_policy(game))[0], ev.flow[0])
    with pytest.raises(ValueError, match="shape"):
        mb.evaluate(game, tuple(np.full((5, 20, 3), 1 / 3) for _ in range(2)))


def test_not_unique_for_a_fixed_kernel():
    game = mb.make("ring-road-v0", size=10, n_speeds=5)
    pi = np.zeros((10, 5))
    pi[:, 0] = 1.0  # speed 0 everywhere: every cell is absorbing
    with pytest.raises(GameError, match="not unique"):
        mb.distribution(game, pi)


def test_not_unique_for_a_mean_field_kernel():
    game = Herding([0.2, 0.8])  # herding: from mu0 everybody ends in 1, from uniform in 0
    with pytest.raises(GameError, match="not unique"):
        mb.distribution(game, np.ones((2, 1)))


def test_not_reached_for_a_mean_field_kernel():
    game = Herding([0.5, 0.5], avoid=True)  # everyone leaves the crowded state: no fixed point
    with pytest.raises(GameError, match="not reached"):
        st.stationary_distribution(game, np.ones((2, 1)), max_iter=60)


@pytest.mark.parametrize("game_id, params", [("ring-road-v0", dict(size=1)), ("ring-road-v0", dict(n_speeds=60)),
                                             ("ring-road-v0", dict(gamma=1.0)),
                                             ("garnet-stationary-v0", dict(kernel_coupling=2.0)),
                                             ("garnet-stationary-v0", dict(B=30))])
def test_bad_parameters_name_the_game(game_id, params):
    with pytest.raises(ValueError, match=game_id):
        mb.make(game_id, **params)


@pytest.mark.parametrize("game_id, params", [("garnet-stationary-v0", dict(S=2500, B=4, gamma=0.95)),
                                             ("ring-road-v0", dict(size=2100, n_speeds=6))])
def test_large_chains_use_the_sparse_path_to_the_same_precision(game_id, params):
    game = mb.make(game_id, **params)
    assert game.populations[0].n_states > st.DENSE_MAX
    pi = mb.uniform_policy(game)[0]
    ev = mb.evaluate(game, pi)
    m = ev.model
    R, succ, prob = m.rewards[0], m.succ[0], m.prob[0]
    mu, V, V_star = ev.flow[0], ev.values[0], ev.best_response.values[0]
    np.testing.assert_allclose(push_forward(mu, pi, succ, prob), mu, rtol=0, atol=1e-12)
    scale = np.abs(V).max()
    np.testing.assert_allclose((pi * st.q_values(R, succ, prob, V, game.gamma)).sum(axis=1), V, rtol=0,
                               atol=1e-12 * scale)
    np.testing.assert_allclose(st.q_values(R, succ, prob, V_star, game.gamma).max(axis=1), V_star, rtol=0,
                               atol=1e-12 * scale)
