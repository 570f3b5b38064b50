"""The first-order solvers and the polish on small games with known structure."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mfgbench as mb
from mfgbench.reference import reference
from reference_solvers.discrete import (damped_fixed_point, fictitious_play, mirror_descent, newton_polish,
                                        best_response_iteration, solve)


@pytest.fixture(scope="module")
def garnet():
    return mb.make("garnet-v0", S=10, A=3, B=2, T=5, coupling=2.0, seed=4)


def test_fictitious_play_exploitability_falls(garnet):
    res = fictitious_play(garnet, iterations=200)
    assert res.exploitability <= res.history[0] / 10
    assert res.exploitability == pytest.approx(mb.exploitability(garnet, res.policy), abs=1e-12)


def test_mirror_descent_exploitability_falls(garnet):
    res = mirror_descent(garnet, iterations=200, learning_rate=1.0)
    assert res.exploitability <= res.history[0] / 10


def test_damped_fixed_point_with_full_step_is_best_response_iteration(garnet):
    a = damped_fixed_point(garnet, iterations=5, alpha=1.0)
    b = best_response_iteration(garnet, iterations=5)
    assert a.history[:2] == pytest.approx(b.history[:2], abs=1e-12)


def test_best_response_iteration_solves_uncoupled_game_in_one_step():
    game = mb.make("garnet-v0", S=8, A=3, B=2, T=4, coupling=0.0, seed=2)
    res = best_response_iteration(game, iterations=3, tol=1e-12)
    assert res.iterations == 1 and res.exploitability <= 1e-12


def test_polish_recovers_left_right_mixture_from_a_rough_start():
    game = mb.make("left-right-v0")
    rough = fictitious_play(game, iterations=20)
    pol = newton_polish(game, rough.analysis, tol=1e-12, gap=0.1)
    assert pol.analysis.exploitability <= 1e-12
    np.testing.assert_allclose(pol.analysis.policy[0][0, 0], [2 / 3, 1 / 3], atol=1e-10)


@pytest.mark.parametrize("call, match", [
    (lambda g: damped_fixed_point(g, alpha=0.0), "alpha"),
    (lambda g: fictitious_play(g, iterations=-1), "iterations"),
    (lambda g: mirror_descent(g, learning_rate=0.0), "learning_rate"),
    (lambda g: solve(g, tol=0.0), "tol"),
])
def test_bad_arguments_raise(garnet, call, match):
    with pytest.raises(ValueError, match=match):
        call(garnet)


@settings(max_examples=5, deadline=None)
@given(S=st.integers(3, 8), A=st.integers(2, 3), B=st.integers(1, 3), T=st.integers(1, 5), K=st.integers(1, 2),
       coupling=st.floats(0.1, 3.0), seed=st.integers(0, 10_000))
def test_random_monotone_garnet_is_certified(S, A, B, T, K, coupling, seed):
    game = mb.make("garnet-v0", S=S, A=A, B=min(B, S), T=T, K=K, coupling=coupling, monotone=True, seed=seed)
    ref = reference(game, tol=1e-8, cache=False)
    assert ref.certified, ref.reason
    assert ref.exploitability == pytest.approx(mb.exploitability(game, ref.policy), abs=1e-14)


@pytest.mark.slow
def test_big_garnet_is_certified():
    """The benchmark's scaling case: S = 10^4, A = 5, B = 5, T = 50."""
    game = mb.make("garnet-v0", S=10_000, A=5, B=5, T=50)
    ref = reference(game, tol=1e-8, cache=False, max_seconds=300)
    assert ref.certified, ref.reason
