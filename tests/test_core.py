"""Exact core: flows, values, best responses, exploitability.

Expected values come from hand computation, Monte Carlo simulation, and the plain
numpy twins of the kernels, never from numbers the code once printed.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mfgbench as mb
from mfgbench.core import kernels
from mfgbench.core.evaluate import induced_model
from mfgbench.core.montecarlo import sample_returns
from mfgbench.games.base import Game, Population


def random_policy(game, rng, concentration=1.0):
    return tuple(rng.dirichlet(np.full(p.n_actions, concentration), size=(game.horizon, p.n_states))
                 for p in game.populations)


garnets = st.builds(dict, S=st.integers(2, 12), A=st.integers(1, 4), B=st.integers(1, 3), T=st.integers(1, 6),
                    K=st.integers(1, 3), coupling=st.floats(0.0, 3.0), monotone=st.booleans(),
                    seed=st.integers(0, 2**31))


def make_garnet(params):
    params = dict(params)
    params["B"] = min(params["B"], params["S"])
    return mb.make("garnet-v0", **params)


@settings(max_examples=40, deadline=None)
@given(params=garnets, policy_seed=st.integers(0, 2**31), concentration=st.sampled_from([0.1, 1.0, 10.0]))
def test_flow_keeps_mass_and_sign_and_exploitability_is_nonnegative(params, policy_seed, concentration):
    game = make_garnet(params)
    pi = random_policy(game, np.random.default_rng(policy_seed), concentration)
    ev = mb.evaluate(game, pi)
    for flow in ev.flow:
        assert flow.shape == (game.horizon + 1, game.populations[0].n_states)
        assert np.all(flow >= 0.0)
        np.testing.assert_allclose(flow.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(ev.per_population >= -1e-12)
    assert ev.exploitability == pytest.approx(ev.per_population.sum(), abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(params=garnets, policy_seed=st.integers(0, 2**31))
def test_best_response_is_unexploitable_without_coupling(params, policy_seed):
    params = dict(params, coupling=0.0)
    game = make_garnet(params)
    pi = random_policy(game, np.random.default_rng(policy_seed))
    assert mb.exploitability(game, pi) >= -1e-12
    br = mb.best_response(game, pi).policy
    assert mb.exploitability(game, br) == pytest.approx(0.0, abs=1e-10)


class LeftRight(Game):
    """Hand-checkable game: from the center go left or right (T = 1); then r(L) = -mu(L),
    r(R) = -2 mu(R) paid as terminal reward."""

    id = "test-left-right"

    def __init__(self):
        super().__init__(1, Population("p", 3, 2, np.array([1.0, 0.0, 0.0])))

    def rewards(self, k, t, mf):
        return np.zeros((3, 2))

    def transitions(self, k, t, mf):
        succ = np.array([[[1], [2]], [[1], [1]], [[2], [2]]], dtype=np.int64)
        return succ, np.ones((3, 2, 1))

    def terminal(self, k, mf):
        mu = mf.mu[0]
        return np.array([0.0, -mu[1], -2.0 * mu[2]])


@pytest.mark.parametrize("p_left", [0.0, 0.3, 2.0 / 3.0, 0.9, 1.0])
def test_exploitability_matches_hand_computation(p_left):
    game = LeftRight()
    pi = np.zeros((1, 3, 2))
    pi[0, :, 0] = p_left
    pi[0, :, 1] = 1.0 - p_left
    # by hand: value of the policy -p^2 - 2(1-p)^2; best response max(-p, -2(1-p))
    value = -p_left ** 2 - 2.0 * (1.0 - p_left) ** 2
    best = max(-p_left, -2.0 * (1.0 - p_left))
    ev = mb.evaluate(game, pi)
    np.testing.assert_allclose(ev.flow[0][1], [0.0, p_left, 1.0 - p_left], atol=1e-15)
    assert ev.exploitability == pytest.approx(best - value, abs=1e-14)
    assert (ev.exploitability < 1e-12) == (abs(p_left - 2.0 / 3.0) < 1e-9)


def _monte_carlo_check(game, pi, rng, n_agents):
    """Exact policy and best-response values of every population against Monte Carlo."""
    ev = mb.evaluate(game, pi)
    profile = mb.as_profile(game, pi)
    for k, pop in enumerate(game.populations):
        for name, policy_k, values in (("policy", profile[k], ev.values[k]),
                                       ("best response", ev.best_response.policy[k], ev.best_response.values[k])):
            exact = float(pop.mu0 @ values[0])
            mc = sample_returns(ev.model, k, policy_k, pop.mu0, n_agents, rng)
            assert abs(mc.mean - exact) <= 4.0 * mc.stderr + 1e-12, (game.id, k, name, exact, mc.mean, mc.stderr)
        # the sampled agents' positions at T follow the exact flow
        mc = sample_returns(ev.model, k, profile[k], pop.mu0, n_agents, rng, until=game.horizon)
        hist = mc.histogram(pop.n_states)
        se = np.sqrt(ev.flow[k][-1] * (1 - ev.flow[k][-1]) / n_agents)
        assert np.all(np.abs(hist - ev.flow[k][-1]) <= 5.0 * se + 1e-3)


@pytest.mark.parametrize("game_id,params", [
    ("crowd-1d-v0", {}),
    ("predator-prey-v0", {}),
    ("lq-v0", {}),
    ("lq-v0", {"K": 0.5, "sigma": 1.5}),  # transitions that depend on the mean field
    ("garnet-v0", {"S": 30, "A": 4, "B": 3, "T": 8, "K": 2, "coupling": 2.0}),
])
def test_exact_values_agree_with_monte_carlo(game_id, params, rng):
    game = mb.make(game_id, **params)
    pi = random_policy(game, rng)
    _monte_carlo_check(game, pi, rng, n_agents=40_000)


def _random_model_arrays(rng, T, S, A, B, static):
    Tt = 1 if static else T
    succ = rng.integers(0, S, size=(Tt, S, A, B)).astype(np.int64)
    prob = rng.random((Tt, S, A, B))
    prob /= prob.sum(axis=3, keepdims=True)
    R = rng.standard_normal((T, S, A))
    g = rng.standard_normal(S)
    pi = rng.dirichlet(np.ones(A), size=(T, S))
    pi[rng.random((T, S)) < 0.2] = np.eye(A)[0]  # exact zeros exercise the kernels' skips
    return R, succ, prob, g, pi


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 5), S=st.integers(1, 15), A=st.integers(1, 4), B=st.integers(1, 5),
       static=st.booleans(), seed=st.integers(0, 2**31))
def test_kernels_match_numpy_twins(T, S, A, B, static, seed):
    rng = np.random.default_rng(seed)
    R, succ, prob, g, pi = _random_model_arrays(rng, T, S, A, B, static)
    np.testing.assert_allclose(kernels.policy_value(R, succ, prob, g, pi),
                               kernels.policy_value_numpy(R, succ, prob, g, pi), rtol=0, atol=1e-12)
    Vq, Qq = kernels.policy_q_values(R, succ, prob, g, pi)
    Vq_np, Qq_np = kernels.policy_q_values_numpy(R, succ, prob, g, pi)
    np.testing.assert_allclose(Vq, Vq_np, rtol=0, atol=1e-12)
    np.testing.assert_allclose(Qq, Qq_np, rtol=0, atol=1e-12)
    np.testing.assert_allclose(Vq, kernels.policy_value(R, succ, prob, g, pi), rtol=0, atol=1e-12)
    V, Q = kernels.best_response_values(R, succ, prob, g)
    V_np, Q_np = kernels.best_response_values_numpy(R, succ, prob, g)
    np.testing.assert_allclose(V, V_np, rtol=0, atol=1e-12)
    np.testing.assert_allclose(Q, Q_np, rtol=0, atol=1e-12)
    mu = rng.dirichlet(np.ones(S))
    np.testing.assert_allclose(kernels.push_forward(mu, pi[0], succ[0], prob[0]),
                               kernels.push_forward_numpy(mu, pi[0], succ[0], prob[0]), rtol=0, atol=1e-12)


def test_best_response_ties_are_broken_to_the_lowest_action():
    game = mb.make("garnet-v0", S=4, A=3, B=2, T=2, coupling=0.0)
    game._base = [np.ones((4, 3))]           # every action earns the same ...
    game._kernels = [(np.zeros((4, 3, 1), dtype=np.int64), np.ones((4, 3, 1)))]  # ... and leads to state 0
    game._transition_cache.clear()
    br = mb.best_response(game, mb.uniform_policy(game))
    assert np.all(br.policy[0][..., 0] == 1.0)


def test_policy_forms_are_accepted_and_equivalent():
    game = mb.make("crowd-1d-v0")
    pi = mb.uniform_policy(game)
    ex = mb.exploitability(game, pi)
    assert mb.exploitability(game, pi[0]) == ex
    assert mb.exploitability(game, [pi[0]]) == ex
    assert mb.exploitability(game, pi[0].tolist()) == ex
    flow = mb.distribution(game, pi)
    assert isinstance(flow, tuple) and flow[0].shape == (game.horizon + 1, 10)


def test_bad_policies_are_rejected_with_their_location():
    game = mb.make("predator-prey-v0")
    pi = list(mb.uniform_policy(game))
    with pytest.raises(mb.PolicyError, match="4 population arrays, the game has 3"):
        mb.exploitability(game, pi + [pi[0]])
    bad = pi[1].copy()
    bad[4, 7, :] = [0.5, 0.5, 0.5, 0.0, 0.0]
    with pytest.raises(mb.PolicyError, match=r"population 1 \(pop1\), time 4, state 7: .*sum to 1.5"):
        mb.exploitability(game, [pi[0], bad, pi[2]])
    bad[4, 7, :] = [1.5, -0.5, 0.0, 0.0, 0.0]
    with pytest.raises(mb.PolicyError, match="time 4, state 7, action 1: probability -0.5"):
        mb.exploitability(game, [pi[0], bad, pi[2]])
    with pytest.raises(mb.PolicyError, match=r"shape \(9, 25, 4\), expected \(9, 25, 5\)"):
        mb.exploitability(game, [pi[0], pi[1][..., :4], pi[2]])


def test_induced_model_holds_static_transitions_once():
    game = mb.make("crowd-1d-v0")
    model = induced_model(game, mb.uniform_policy(game))
    assert model.succ[0].shape[0] == 1
    game = mb.make("lq-v0", K=0.5)
    model = induced_model(game, mb.uniform_policy(game))
    assert model.succ[0].shape[0] == game.horizon
