"""The MFGLib classics: definitions at hand-computed points, and exploitability in MFGLib's convention.

MFGLib's exploitability of pi is ``<mu0, V^*_0 - V^pi_0>`` where values sum
``r_t(s, a, L_t)`` over t = 0..T_m (the last time included) along the flow of pi, with
transitions only for t < T_m. ``mfglib_exploitability`` below computes exactly that with
dense matrices, time by time, independently of the core's time mapping.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mfgbench as mb
from mfgbench.games.base import MeanField

CLASSICS = ["beach-bar-v0", "rps-v0", "sis-v0", "crowd-motion-v0", "left-right-v0", "lq-small-v0",
            "building-evacuation-v0", "equilibrium-price-v0", "treasure-hunting-v0"]


def dense(game, t, mf):
    succ, prob = game.transitions(0, t, mf)
    S, A, _ = succ.shape
    P = np.zeros((S, A, S))
    for b in range(succ.shape[2]):
        np.add.at(P, (np.arange(S)[:, None], np.arange(A)[None, :], succ[:, :, b]), prob[:, :, b])
    return P


def mfglib_exploitability(game, pi):
    """MFGLib's definition: reward times t = 0..T_m, transitions for t < T_m, no terminal reward."""
    T_m = game.T_mfglib
    mu = [game.populations[0].mu0]
    R, P = [], []
    for t in range(T_m + 1):
        mf = MeanField(t, (mu[t],), (mu[t][:, None] * pi[t],))
        R.append(game.rewards(0, t, mf))
        if t < T_m:
            P.append(dense(game, t, mf))
            mu.append(np.einsum("s,sa,sab->b", mu[t], pi[t], P[t]))
    v_pi = (pi[T_m] * R[T_m]).sum(axis=1)
    v_br = R[T_m].max(axis=1)
    for t in range(T_m - 1, -1, -1):
        v_pi = (pi[t] * (R[t] + P[t] @ v_pi)).sum(axis=1)
        v_br = (R[t] + P[t] @ v_br).max(axis=1)
    return float(mu[0] @ (v_br - v_pi))


def random_policy(game, rng, concentration=1.0):
    p = game.populations[0]
    return rng.dirichlet(np.full(p.n_actions, concentration), size=(game.horizon, p.n_states))


@pytest.mark.parametrize("game_id", CLASSICS)
def test_time_mapping_matches_mfglib_convention(game_id, rng):
    game = mb.make(game_id)
    assert game.horizon == game.T_mfglib + 1
    assert game.kind == "finite" and game.description and game.source
    for concentration in (1.0, 0.2):
        pi = random_policy(game, rng, concentration)
        assert mb.exploitability(game, pi) == pytest.approx(mfglib_exploitability(game, pi), rel=1e-10, abs=1e-10)
    for k in range(1):
        mf = MeanField(game.horizon, (game.populations[0].mu0,), (None,))
        assert np.all(game.terminal(0, mf) == 0.0)


def test_rps_uniform_exploitability_by_hand():
    # t = 0: all at start, reward 0; uniform choice gives mu_1 = (0, 1/3, 1/3, 1/3), so at t = 1
    # r(R) = 2/3 - 1/3 = 1/3, r(P) = 4/3 - 2/3 = 2/3, r(S) = 6/3 - 3/3 = 1: V^pi = (1/3 + 2/3 + 1)/3 = 2/3,
    # the best response picks scissors: 1. Exploitability 1/3.
    game = mb.make("rps-v0")
    assert mb.exploitability(game, mb.uniform_policy(game)) == pytest.approx(1.0 / 3.0, abs=1e-14)


def test_rps_pure_scissors_by_hand():
    game = mb.make("rps-v0")
    pi = np.zeros((2, 4, 3))
    pi[:, :, 2] = 1.0  # everybody scissors: r(R) = -3 mu(R) + ... = 2*1 - 0 = 2 for rock, r(S) = 0
    assert mb.exploitability(game, pi) == pytest.approx(2.0, abs=1e-14)


def left_right_exploitability(p):
    """Going left with probability p: r(L) = -p, r(R) = -2(1-p)."""
    left, right = -p, -2.0 * (1.0 - p)
    return max(left, right) - (p * left + (1.0 - p) * right)


def test_left_right_equilibrium():
    game = mb.make("left-right-v0")
    pi = np.zeros((2, 3, 2))
    pi[:, :, 0] = 2.0 / 3.0
    pi[:, :, 1] = 1.0 / 3.0
    assert abs(mb.exploitability(game, pi)) < 1e-12


@settings(deadline=None, max_examples=25)
@given(p=st.floats(0.0, 1.0).filter(lambda p: abs(p - 2.0 / 3.0) > 1e-3))
def test_left_right_other_policies_are_exploitable(p):
    game = mb.make("left-right-v0")
    pi = np.zeros((2, 3, 2))
    pi[:, :, 0] = p
    pi[:, :, 1] = 1.0 - p
    e = mb.exploitability(game, pi)
    assert e == pytest.approx(left_right_exploitability(p), abs=1e-14)
    assert e > 1e-4


def test_beach_bar_definition():
    game = mb.make("beach-bar-v0")
    assert game.horizon == 3 and game.populations[0].n_states == 4
    np.testing.assert_array_equal(game.distance, [2, 1, 0, 1])
    mu = np.full(4, 0.25)
    R = game.rewards(0, 0, MeanField(0, (mu,), (None,)))
    assert R[0, 0] == pytest.approx(-2.0 - 0.25 - math.log(0.25 + 1e-20))
    assert R[3, 1] == pytest.approx(-1.0 - math.log(0.25))
    P = dense(game, 0, None)
    assert P[0, 0, 0] == pytest.approx(1.0)  # -1 - e is clamped to 0 for every noise
    np.testing.assert_allclose(P[1, 2], [0.0, 0.25, 0.5, 0.25])  # 1 + 1 + e, e = -1, 0, 1


def test_sis_definition():
    game = mb.make("sis-v0")
    assert game.horizon == 51
    pi = np.zeros((51, 2, 2))
    pi[:, :, 0] = 1.0  # always go out
    flow = mb.distribution(game, pi)[0]
    # mu_1(I) = 0.4 * 0.81 * 0.6 + 0.6 * 0.7
    assert flow[1, 1] == pytest.approx(0.4 * 0.81 * 0.6 + 0.6 * 0.7, abs=1e-15)
    R = game.rewards(0, 0, MeanField(0, (flow[0],), (None,)))
    np.testing.assert_array_equal(R, [[0.0, -0.5], [-1.0, -1.5]])


def test_crowd_motion_definition():
    game = mb.make("crowd-motion-v0")
    assert game.horizon == 4 and game.populations[0].n_states == 400
    mu = np.full(400, 1 / 400)
    mf = MeanField(0, (mu,), (None,))
    assert game.rewards(0, 0, mf)[10 * 20 + 10, 3] == pytest.approx(10.0 - math.log(1 / 400 + 1e-10))
    assert game.rewards(0, 2, mf)[9 * 20 + 11, 0] == pytest.approx(10.0 - math.log(1 / 400 + 1e-10))
    assert game.rewards(0, 2, mf)[0, 0] == pytest.approx(10 * (1 - 20 / 40) - math.log(1 / 400 + 1e-10))
    P = dense(game, 0, None)
    # at (0, 0) moving (-1, 0): every noise but (0, +1) ends clamped at (0, 0) (the sum is clamped once)
    assert P[0, 1, 0] == pytest.approx(0.125 + 0.125 + 0.125 + 0.5)
    assert P[0, 1, 1] == pytest.approx(0.125)  # noise (0, +1)


def test_lq_small_definition():
    game = mb.make("lq-small-v0")
    assert game.horizon == 4 and game.populations[0].n_states == 11 and game.populations[0].n_actions == 5
    mu = np.full(11, 1 / 11)  # mean 0
    P = dense(game, 0, MeanField(0, (mu,), (None,)))
    w = np.exp(-0.5 * (3.0 * np.arange(-3, 4)) ** 2)
    w /= w.sum()
    # x = 5, a = +2: 5 + (0 - 5 + 2) 0.1 + 9 j sqrt(0.1) = 4.7 + 2.846 j: j >= 0 -> 5; j = -1 -> 1.85 -> 2
    assert P[10, 4, 10] == pytest.approx(w[3:].sum(), abs=1e-15)
    assert P[10, 4, 2 + 5] == pytest.approx(w[2], abs=1e-15)
    mu2 = np.zeros(11)
    mu2[[5 + 1, 5 + 3]] = 0.5  # mean 2
    mf = MeanField(0, (mu2,), (None,))
    R = game.rewards(0, 0, mf)
    a = 2.0
    assert R[4, 4] == pytest.approx(0.1 * (-a * a / 2 + 0.01 * a * 3.0 - 0.5 * 9.0 / 2))
    np.testing.assert_allclose(game.rewards(0, 3, mf)[4], np.full(5, -0.5 * 9.0))  # last time: terminal-like


def test_building_evacuation_definition():
    game = mb.make("building-evacuation-v0")
    S = 500
    idx = lambda f, i, j: (f * 10 + i) * 10 + j  # noqa: E731
    P = dense(game, 0, None)
    assert P[idx(2, 0, 0), 4, idx(1, 0, 0)] == 1.0  # down at (0, 0)
    assert P[idx(2, 3, 0), 4, idx(2, 3, 0)] == 1.0  # down elsewhere: stay
    assert P[idx(2, 9, 9), 5, idx(3, 9, 9)] == 1.0
    assert P[idx(0, 0, 0), 4, idx(0, 0, 0)] == 1.0  # no floor below 0
    assert P[idx(0, 9, 4), 0, idx(0, 9, 4)] == 1.0  # i+1 clamped
    assert P[idx(0, 4, 4), 2, idx(0, 4, 3)] == 1.0  # j-1
    mu = np.full(S, 1 / S)
    mu[idx(4, 0, 0)] = 0.0
    mu /= mu.sum()
    R = game.rewards(0, 0, MeanField(0, (mu,), (None,)))
    assert R[idx(0, 5, 5), 0] == pytest.approx(-math.log(mu[0]) + 10.0)
    assert R[idx(4, 0, 0), 3] == pytest.approx(-math.log(1e-20))


def test_equilibrium_price_reads_the_state_action_measure():
    game = mb.make("equilibrium-price-v0")
    L = np.full((4, 9), 1 / 36)  # uniform: mean consumption E[q] = 1, price (1 / (1 + 1))^1 = 1/2
    R = game.rewards(0, 0, MeanField(0, (L.sum(axis=1),), (L,)))
    q, h, s = 2, 1, 0  # (0.5 - 1) 2 - 4 - 1 - 2 * 2 - 0
    assert R[s, q * 3 + h] == pytest.approx(-10.0)
    assert R[3, 0] == pytest.approx(-3.0)
    L2 = np.zeros((4, 9))
    L2[:, 0] = 0.25  # nobody consumes: price 1
    R2 = game.rewards(0, 0, MeanField(0, (L2.sum(axis=1),), (L2,)))
    assert R2[3, 3] == pytest.approx(0.0 - 1.0 - 3.0)  # q = 1, h = 0, s = 3
    P = dense(game, 0, None)
    assert P[1, 2 * 3 + 2, 2] == 1.0  # 1 - min(2, 1) + 2
    assert P[3, 0 * 3 + 2, 3] == 1.0  # capped at 3


def test_treasure_hunting_definition():
    game = mb.make("treasure-hunting-v0")
    L = np.zeros((3, 3))
    L[0, 0] = 1.0
    mf = MeanField(1, (L.sum(axis=1),), (L,))
    R = game.rewards(0, 1, mf)
    assert R[0, 0] == pytest.approx(1.0)  # D_0 = 0
    assert R[1, 1] == pytest.approx(0.0)  # D_1 = 2
    assert R[0, 1] == 0.0
    P = dense(game, 1, mf)
    np.testing.assert_allclose(P[0, 2], [0, 0, 1])
    np.testing.assert_allclose(P[1, 2], [2 / 7, 2 / 7, 3 / 7])
    assert np.all(game.rewards(0, 0, mf) == 0.0)
    np.testing.assert_allclose(dense(game, 0, mf)[2, 1], [0, 1, 0])
    with pytest.raises(ValueError, match="treasure-hunting-v0"):
        game.rewards(0, 1, MeanField(1, (L.sum(axis=1),), (None,)))


@pytest.mark.parametrize("game_id, params", [("beach-bar-v0", dict(bar=7)), ("beach-bar-v0", dict(p_still=2.0)),
                                             ("sis-v0", dict(T=0)), ("lq-small-v0", dict(delta=-1.0)),
                                             ("crowd-motion-v0", dict(length=0)),
                                             ("equilibrium-price-v0", dict(c=(1.0, 2.0)))])
def test_bad_parameters_name_the_game(game_id, params):
    with pytest.raises(ValueError, match=game_id):
        mb.make(game_id, **params)


# -- the vectorised forms the core uses for speed: the same numbers, bit for bit ------------------
def _policy_with_edges(rng, game):
    """A random policy with some deterministic rows, so some states get no mass."""
    p = game.populations[0]
    pi = rng.dirichlet(np.ones(p.n_actions), size=(game.horizon, p.n_states))
    pi[rng.random(pi.shape[:2]) < 0.3] = np.eye(p.n_actions)[0]
    return pi


def _step_by_step(game, pi):
    """Flow, transitions and rewards through the per-time functions, as the core steps them."""
    from mfgbench.core import kernels
    T = game.horizon
    mu = [np.asarray(game.populations[0].mu0, dtype=np.float64)]
    succ, prob, R = [], [], []
    for t in range(T):
        mf = MeanField(t, (mu[t],), (mu[t][:, None] * pi[t],))
        s_t, p_t = game.transitions(0, t, mf) if not game.static_transitions else game.static_transition(0)
        succ.append(np.asarray(s_t, dtype=np.int64))
        prob.append(np.asarray(p_t, dtype=np.float64))
        R.append(np.asarray(game.rewards(0, t, mf), dtype=np.float64))
        mu.append(kernels.push_forward(mu[t], pi[t], np.ascontiguousarray(succ[t]), np.ascontiguousarray(prob[t])))
    return np.array(mu), np.array(succ), np.array(prob), np.array(R)


@pytest.mark.parametrize("game_id", CLASSICS)
def test_vectorised_rewards_and_compiled_flows_are_the_per_time_ones_bit_for_bit(game_id, rng):
    game = mb.make(game_id)
    for _ in range(3):
        pi = _policy_with_edges(rng, game)
        mu, succ, prob, R = _step_by_step(game, pi)
        vec = game.rewards_over_time(0, (mu,), (mu[:-1, :, None] * pi,))
        if vec is not None:   # what the kernels take as it is: C-ordered float64
            assert vec.dtype == np.float64 and vec.flags.c_contiguous
            np.testing.assert_array_equal(vec, R)
        compiled = game.flow_and_transitions(pi)
        if compiled is not None:
            assert not game.static_transitions
            for fast, slow in zip(compiled, (mu, succ, prob)):
                assert fast.dtype == slow.dtype
                np.testing.assert_array_equal(fast, slow)
    if game_id in ("sis-v0", "treasure-hunting-v0"):   # the two with mean-field-dependent transitions
        assert game.flow_and_transitions(pi) is not None



@pytest.mark.parametrize("game_id", ["rps-v0", "left-right-v0", "beach-bar-v0"])
def test_vectorised_rewards_on_many_flows(game_id, rng):
    """Compiled or reordered arithmetic (a fused multiply-add, say) would show on some flow."""
    game = mb.make(game_id)
    S, A = game.populations[0].n_states, game.populations[0].n_actions
    flow = rng.dirichlet(np.ones(S), size=500) * 10.0 ** rng.integers(-6, 1, (500, S))
    flow[rng.random(flow.shape) < 0.1] = 0.0
    L = flow[:-1, :, None] * np.full(A, 1.0 / A)
    per_time = np.array([game.rewards(0, t, MeanField(t, (flow[t],), (L[t],))) for t in range(len(flow) - 1)])
    np.testing.assert_array_equal(game.rewards_over_time(0, (flow,), (L,)), per_time)
