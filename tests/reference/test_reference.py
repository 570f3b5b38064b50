"""mb.reference: known equilibria, an independently recomputed certificate, the cache."""
import json

import numpy as np
import pytest

import mfgbench as mb
from mfgbench.core import kernels as ck
from mfgbench.games.base import MeanField
from mfgbench.reference import cache_key, reference, reference_summary


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("MFGBENCH_CACHE", str(tmp_path / "refs"))


def independent_exploitability(game, profile):
    """E(pi) from the game's functions and the numpy twins only (no core.evaluate)."""
    K, T = game.n_populations, game.horizon
    mu = [[p.mu0.copy()] for p in game.populations]
    R = [[] for _ in range(K)]
    P = [[] for _ in range(K)]
    for t in range(T):
        mf = MeanField(t, tuple(m[t] for m in mu), tuple(m[t][:, None] * profile[k][t] for k, m in enumerate(mu)))
        for k in range(K):
            R[k].append(np.asarray(game.rewards(k, t, mf), dtype=float))
            succ, prob = game.transitions(k, t, mf)
            succ, prob = np.asarray(succ, dtype=np.int64), np.asarray(prob, dtype=float)
            P[k].append((succ, prob))
        for k in range(K):
            mu[k].append(ck.push_forward_numpy(mu[k][t], profile[k][t], *P[k][t]))
    mfT = MeanField(T, tuple(m[T] for m in mu), (None,) * K)
    total = 0.0
    for k in range(K):
        succ = np.stack([s for s, _ in P[k]])
        prob = np.stack([p for _, p in P[k]])
        g = np.asarray(game.terminal(k, mfT), dtype=float)
        v_pi = ck.policy_value_numpy(np.stack(R[k]), succ, prob, g, profile[k])
        v_br, _ = ck.best_response_values_numpy(np.stack(R[k]), succ, prob, g)
        total += float(game.populations[k].mu0 @ (v_br[0] - v_pi[0]))
    return total


def test_left_right_goes_left_with_probability_two_thirds():
    game = mb.make("left-right-v0")
    ref = reference(game)
    assert ref.certified and ref.exploitability <= 1e-8
    center = 0  # states: center, L, R; actions: left, right
    np.testing.assert_allclose(ref.policy[0][0, center], [2 / 3, 1 / 3], atol=1e-8)


def test_braess_reference_is_an_equilibrium():
    game = mb.make("braess-v0")
    ref = reference(game)
    assert ref.certified
    assert independent_exploitability(game, ref.policy) <= 1e-8


def test_braess_travel_time_is_three_point_seven_five():
    """Wardrop/Nash travel time of Braess's network. (The discretised game also has other
    equilibria: an earlier solver version certified one with travel time 3.625.)"""
    game = mb.make("braess-v0")
    ref = reference(game)
    assert ref.certified
    np.testing.assert_allclose(game.travel_time(ref.policy), [3.75], atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_uncoupled_garnet_reference_is_the_backward_induction_optimum(seed):
    game = mb.make("garnet-v0", S=12, A=3, B=3, T=6, K=2, coupling=0.0, seed=seed)
    ref = reference(game)
    assert ref.certified
    for k in range(game.n_populations):
        succ, prob = game.transitions(k, 0, None)
        R = np.broadcast_to(game.rewards(k, 0, None), (game.horizon, 12, 3)).copy()
        v_opt, _ = ck.best_response_values_numpy(R, succ[None], prob[None], np.zeros(12))
        np.testing.assert_allclose(ref.values[k][0], v_opt[0], atol=1e-10)


@pytest.mark.parametrize("game_id, params", [("crowd-1d-v0", {}), ("garnet-v0", {}), ("left-right-v0", {}),
                                             ("beach-bar-v0", {}), ("rps-v0", {}),
                                             ("garnet-v0", {"K": 2, "S": 10, "seed": 3})])
def test_certificate_recomputed_with_numpy_twins(game_id, params):
    game = mb.make(game_id, **params)
    ref = reference(game, cache=False)
    assert ref.certified
    e = independent_exploitability(game, ref.policy)
    assert abs(e - ref.exploitability) <= 1e-10
    assert e <= 1e-8
    assert abs(ref.per_population.sum() - ref.exploitability) <= 1e-12


def test_uncertified_result_says_why():
    game = mb.make("crowd-1d-v0")
    ref = reference(game, tol=1e-300, cache=False, max_seconds=1.0)
    assert not ref.certified
    assert ref.reason
    assert ref.exploitability == pytest.approx(mb.exploitability(game, ref.policy), abs=1e-15)


def test_cache_roundtrip_and_reverification(tmp_path):
    game = mb.make("left-right-v0")
    first = reference(game, cache_path=tmp_path)
    assert not first.cached
    files = sorted(p.name for p in (tmp_path / "left-right-v0").iterdir())
    key = cache_key(game)
    assert files == [f"{key}.json", f"{key}.npz"]
    meta = json.loads((tmp_path / "left-right-v0" / f"{key}.json").read_text())
    assert meta["game"] == "left-right-v0" and meta["certified"] is True
    second = reference(game, cache_path=tmp_path)
    assert second.cached and second.certified
    np.testing.assert_array_equal(second.policy[0], first.policy[0])
    # a tampered cache entry is not trusted: the exact re-verification rejects it
    bad = np.zeros_like(first.policy[0])
    bad[..., 1] = 1.0
    np.savez(tmp_path / "left-right-v0" / f"{key}.npz", policy_0=bad)
    third = reference(game, cache_path=tmp_path)
    assert not third.cached and third.certified


def test_cache_key_depends_on_parameters():
    assert cache_key(mb.make("garnet-v0", seed=1)) != cache_key(mb.make("garnet-v0", seed=2))


def test_environment_variable_sets_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MFGBENCH_CACHE", str(tmp_path / "elsewhere"))
    reference(mb.make("rps-v0"))
    assert any((tmp_path / "elsewhere" / "rps-v0").glob("*.npz"))
    assert not list((tmp_path / "elsewhere").rglob("*.tmp"))


def test_summary_fields():
    s = reference_summary(reference(mb.make("rps-v0")))
    assert {"method", "iterations", "exploitability", "certified", "time", "reason"} <= set(s)
    assert s["certified"] is True and s["reason"] is None
    json.dumps(s)


@pytest.mark.parametrize("tol", [0.0, -1.0, float("nan"), "1e-8"])
def test_bad_tolerance_raises(tol):
    with pytest.raises(ValueError, match="tol"):
        reference(mb.make("rps-v0"), tol=tol)


def test_continuous_game_is_refused():
    game_id = next(iter(mb.list_games(kind="continuous")), None)
    if game_id is None:
        pytest.skip("no continuous game registered")
    with pytest.raises(ValueError, match="continuous"):
        reference(mb.make(game_id))
