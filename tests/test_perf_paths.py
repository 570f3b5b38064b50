"""The fast paths of the exact core and of the exact learners against the slow, obvious ones.

Whole-horizon and fused kernels against their numpy twins (built from the per-sweep twins),
and the learners' fused steps against the step-by-step algorithm written out with the public
core functions.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mfgbench as mb
from mfgbench.core import kernels
from mfgbench.core.evaluate import best_response_along, induced_model, values_along
from mfgbench.core.policy import greedy_policy
from mfgbench.learners.fictitious_play import FictitiousPlay, FictitiousPlayConfig
from mfgbench.learners.mirror_descent import MirrorDescent, MirrorDescentConfig


def _model_arrays(rng, T, S, A, B, static, ties):
    n = 1 if static else T
    succ = rng.integers(0, S, size=(n, S, A, B)).astype(np.int64)
    prob = rng.dirichlet(np.ones(B), size=(n, S, A))
    R = rng.standard_normal((T, S, A))
    if ties:  # whole rows of equal rewards and successors: exact ties in Q
        R[:, ::2, :] = 1.0
        succ[:, ::2, :, :] = succ[:, ::2, :1, :]
        prob[:, ::2, :, :] = prob[:, ::2, :1, :]
    g = rng.standard_normal(S)
    pi = rng.dirichlet(np.ones(A), size=(T, S))
    pi[rng.random((T, S)) < 0.2] = np.eye(A)[0]
    return R, succ, prob, g, pi


shapes = dict(T=st.integers(1, 5), S=st.integers(1, 15), A=st.integers(1, 4), B=st.integers(1, 5),
              static=st.booleans(), ties=st.booleans(), seed=st.integers(0, 2**31))


@settings(max_examples=40, deadline=None)
@given(**shapes)
def test_whole_horizon_and_fused_kernels_match_their_twins(T, S, A, B, static, ties, seed):
    rng = np.random.default_rng(seed)
    R, succ, prob, g, pi = _model_arrays(rng, T, S, A, B, static, ties)
    mu0 = rng.dirichlet(np.ones(S))
    np.testing.assert_allclose(kernels.push_flow(mu0, pi, succ, prob),
                               kernels.push_flow_numpy(mu0, pi, succ, prob), rtol=0, atol=1e-12)
    for fast, slow in zip(kernels.flow_and_measure(mu0, pi, succ, prob),
                          kernels.flow_and_measure_numpy(mu0, pi, succ, prob)):
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)

    V, W, Q, br = kernels.evaluation_sweep(R, succ, prob, g, pi)
    V_np, W_np, Q_np, br_np = kernels.evaluation_sweep_numpy(R, succ, prob, g, pi)
    for fast, slow in ((V, V_np), (W, W_np), (Q, Q_np)):
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(br, greedy_policy(Q))        # same tie rule as the public greedy
    np.testing.assert_array_equal(br, br_np)
    np.testing.assert_allclose(V, kernels.policy_value(R, succ, prob, g, pi), rtol=0, atol=1e-12)

    weighted = rng.random((T, S, A))
    weights = weighted.sum(axis=-1)
    weights[0, 0] = weighted[0, 0] = 0.0   # a (t, s) no best response has visited yet
    w_np, ws_np = weighted.copy(), weights.copy()
    new = kernels.fictitious_play_update(R, succ, prob, g, mu0, weighted, weights, pi)
    new_np = kernels.fictitious_play_update_numpy(R, succ, prob, g, mu0, w_np, ws_np, pi)
    np.testing.assert_allclose(new, new_np, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weighted, w_np, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights, ws_np, rtol=0, atol=1e-12)
    w_np, ws_np = weighted.copy(), weights.copy()
    buffers = [np.full((T + 1, S), np.nan), np.full((T, S, A), np.nan)]
    buffers_np = [np.empty((T + 1, S)), np.empty((T, S, A))]
    fused = kernels.fictitious_play_update_and_flow(R, succ, prob, g, mu0, weighted, weights, pi, *buffers)
    twin = kernels.fictitious_play_update_and_flow_numpy(R, succ, prob, g, mu0, w_np, ws_np, pi, *buffers_np)
    for fast, slow in zip([fused] + buffers, [twin] + buffers_np):
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(buffers[0], kernels.push_flow(mu0, fused, succ, prob))   # the same pass
    np.testing.assert_array_equal(buffers[1], kernels.flow_and_measure(mu0, fused, succ, prob)[1])

    score = rng.standard_normal((T, S, A))
    score_np = score.copy()
    new = kernels.mirror_descent_update(R, succ, prob, g, pi, score, 0.3)
    new_np = kernels.mirror_descent_update_numpy(R, succ, prob, g, pi, score_np, 0.3)
    np.testing.assert_allclose(new, new_np, rtol=0, atol=1e-12)
    np.testing.assert_allclose(score, score_np, rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(**shapes)
def test_best_response_and_averaging_kernels_are_the_numpy_code_bit_for_bit(T, S, A, B, static, ties, seed):
    """The fictitious-play step for flow-dependent transitions must not change a bit: the greedy
    best response and the averaging against the numpy code they replace (rows of up to 20 actions,
    so that numpy's pairwise row sums are exercised)."""
    rng = np.random.default_rng(seed)
    R, succ, prob, g, pi = _model_arrays(rng, T, S, A, B, static, ties)
    br = kernels.greedy_best_response(R, succ, prob, g)
    np.testing.assert_array_equal(br, greedy_policy(kernels.best_response_values(R, succ, prob, g)[1]))
    np.testing.assert_array_equal(br, kernels.greedy_best_response_numpy(R, succ, prob, g))
    for A_wide in (A, A + 8, 20):
        pi = rng.dirichlet(np.ones(A_wide), size=(T, S)) * 10.0 ** rng.integers(-3, 3, (T, S, A_wide))
        pi /= pi.sum(axis=-1, keepdims=True)
        mu = rng.dirichlet(np.ones(S), size=T)
        mu[rng.random((T, S)) < 0.3] = 0.0
        br = rng.dirichlet(np.ones(A_wide), size=(T, S))
        weighted = rng.random((T, S, A_wide)) * 10.0 ** rng.integers(-5, 5, (T, S, A_wide))
        weights = weighted.sum(axis=-1)
        weights[mu == 0] = weighted[mu == 0] = 0.0   # (t, s) no best response has visited yet
        w_np, ws_np = weighted.copy(), weights.copy()
        new = kernels.fictitious_play_average(weighted, weights, pi, mu, br)
        np.testing.assert_array_equal(new, kernels.fictitious_play_average_numpy(w_np, ws_np, pi, mu, br))
        np.testing.assert_array_equal(weighted, w_np)
        np.testing.assert_array_equal(weights, ws_np)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 128), scale=st.integers(-12, 12), seed=st.integers(0, 2**31))
def test_compiled_sum_is_numpys_sum(n, scale, seed):
    x = np.random.default_rng(seed).standard_normal(n) * 10.0 ** scale
    x[::3] *= 1e7   # magnitudes far apart: a different order would round differently
    assert kernels.numpy_sum(x) == x.sum()


def test_evaluate_agrees_with_separate_sweeps():
    """``evaluate`` takes the fused sweep; values and best response must equal the separate
    policy-value and best-response sweeps."""
    game = mb.make("crowd-2d-v0", size=30, horizon=5)
    pi = tuple(np.random.default_rng(3).dirichlet(np.ones(5), size=(game.horizon, game.populations[0].n_states))
               for _ in game.populations)
    ev = mb.evaluate(game, pi)
    model = induced_model(game, pi)
    V = values_along(model, pi)
    br = best_response_along(model)
    np.testing.assert_allclose(ev.values[0], V[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ev.best_response.values[0], br.values[0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ev.best_response.policy[0], br.policy[0])


def _fp_by_hand(game, iterations):
    """Fictitious play written out with the public core: exact greedy BR to the average
    policy's flow, averaged with the weights of the BR flows (uniform policy = BR_0)."""
    pi = mb.uniform_policy(game)
    flow = mb.distribution(game, pi)
    weighted = [f[:-1, :, None] * p for f, p in zip(flow, pi)]
    weights = [f[:-1].copy() for f in flow]
    for _ in range(iterations):
        br = mb.best_response(game, pi).policy
        br_flow = mb.distribution(game, br)
        new = []
        for k in range(game.n_populations):
            weighted[k] += br_flow[k][:-1, :, None] * br[k]
            weights[k] += br_flow[k][:-1]
            p = pi[k].copy()
            seen = weights[k] > 0
            p[seen] = weighted[k][seen] / weights[k][seen][:, None]
            new.append(p / p.sum(axis=-1, keepdims=True))
        pi = tuple(new)
    return pi


@pytest.mark.parametrize("game_id", ["crowd-1d-v0", "predator-prey-v0", "building-evacuation-v0", "sis-v0",
                                     "treasure-hunting-v0", "beach-bar-v0", "rps-v0"])
def test_fictitious_play_fast_step_is_the_algorithm(game_id):
    game = mb.make(game_id)
    learner = FictitiousPlay(game, FictitiousPlayConfig(), rng=np.random.default_rng(0))
    for _ in range(6):
        learner.step()
    for ours, slow in zip(learner.policy, _fp_by_hand(game, 6)):
        np.testing.assert_allclose(ours, slow, rtol=0, atol=1e-12)


@pytest.mark.parametrize("game_id", ["crowd-1d-v0", "predator-prey-v0", "sis-v0"])
def test_mirror_descent_fast_step_is_the_algorithm(game_id):
    game = mb.make(game_id)
    learner = MirrorDescent(game, MirrorDescentConfig(learning_rate=0.3, reward_scale=1.0),
                           rng=np.random.default_rng(0))
    pi = mb.uniform_policy(game)
    score = [np.zeros_like(p) for p in pi]
    for _ in range(6):
        learner.step()
        model = induced_model(game, pi)
        new = []
        for k in range(game.n_populations):
            _, Q = kernels.policy_q_values_numpy(model.rewards[k], model.succ[k], model.prob[k],
                                                 model.terminal[k], pi[k])
            score[k] += 0.3 * Q
            z = np.exp(score[k] - score[k].max(axis=-1, keepdims=True))
            new.append(z / z.sum(axis=-1, keepdims=True))
        pi = tuple(new)
    for ours, slow in zip(learner.policy, pi):
        np.testing.assert_allclose(ours, slow, rtol=0, atol=1e-10)


@pytest.mark.parametrize("game_id", ["crowd-1d-v0", "predator-prey-v0", "sis-v0", "treasure-hunting-v0"])
def test_flow_without_rewards_is_the_induced_flow(game_id, rng):
    """``distribution`` skips the rewards (and, with static transitions, pushes the whole horizon
    in one call); the flow must be the one the step-by-step model records."""
    game = mb.make(game_id)
    pi = tuple(rng.dirichlet(np.ones(p.n_actions), size=(game.horizon, p.n_states)) for p in game.populations)
    for fast, slow in zip(mb.distribution(game, pi), induced_model(game, pi).flow):
        np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-14)
    if game.static_transitions:
        succ, prob = game.static_transition(0)
        step_by_step = [game.populations[0].mu0]
        for t in range(game.horizon):
            step_by_step.append(kernels.push_forward_numpy(step_by_step[-1], pi[0][t], succ, prob))
        np.testing.assert_allclose(mb.distribution(game, pi)[0], np.array(step_by_step), rtol=0, atol=1e-14)


def test_static_tables_follow_the_games_transition_cache():
    """The one-slice tables held per game are rebuilt when the game's own cache is replaced."""
    game = mb.make("garnet-v0", S=4, A=3, B=2, T=2, coupling=0.0)
    pi = mb.uniform_policy(game)
    mb.exploitability(game, pi)
    game._kernels = [(np.zeros((4, 3, 1), dtype=np.int64), np.ones((4, 3, 1)))]   # everyone goes to state 0
    game._transition_cache.clear()
    flow = mb.distribution(game, pi)[0]
    np.testing.assert_array_equal(flow[1:], np.eye(4)[[0] * game.horizon])


def test_fictitious_play_follows_a_replaced_transition_cache():
    """On tiny games the step reuses the flow its last call pushed; once the game's transition
    cache holds other tables, the step must use those (reference: a learner in the same state
    stepping on a game built with those tables)."""
    import copy
    game, other = mb.make("beach-bar-v0"), mb.make("beach-bar-v0", p_still=0.9)
    learner = FictitiousPlay(game, FictitiousPlayConfig(), rng=np.random.default_rng(0))
    for _ in range(3):
        learner.step()
    reference = copy.deepcopy(learner)
    reference.game, reference._next_model = other, None
    game._transition_cache[0] = other.static_transition(0)
    learner.step()
    reference.step()
    np.testing.assert_array_equal(learner.policy[0], reference.policy[0])
