"""References of discretized continuous games ("bridged" games, played by tabular learners):
their own id, a local coupling declared from the continuous game's terms, certification at
1e-8 by the interior point, and the reference cache (including damaged entries)."""
import json

import numpy as np
import pytest

import mfgbench as mb
from mfgbench.reference import cache_key, reference
from reference_solvers.pde.discretize import discretize
from tests.reference.test_potential import check_dual_start
from tests.reference.test_reference import independent_exploitability

SMALL_BRIDGE = {"nx": 10, "nt": 30, "n_actions": 3, "max_speed": 1.0}


def bridged(game_id, **bridge):
    return discretize(mb.make(game_id), **{**SMALL_BRIDGE, **bridge})


def test_a_bridged_game_has_its_own_id_and_parameters():
    game = bridged("crowd-continuous-v0")
    assert game.id == "crowd-continuous-v0@nx10-nt30-a3-v1"
    assert game.params["sigma"] == mb.make("crowd-continuous-v0").params["sigma"]
    assert {k: game.params[k] for k in SMALL_BRIDGE} == SMALL_BRIDGE
    assert cache_key(game) != cache_key(bridged("crowd-continuous-v0", nt=32))
    assert cache_key(game) != cache_key(discretize(mb.make("crowd-continuous-v0", sigma=0.4), **SMALL_BRIDGE))


@pytest.mark.parametrize("game_id, problem", [("crowd-continuous-v0", "potential"),
                                              ("segregation-2pop-v0", "potential (not concave)"),
                                              ("exit-room-2d-v0", "potential")])
def test_local_couplings_are_declared_and_follow_the_rewards(game_id, problem):
    """The declaration is derived from the continuous game's terms; building the problem checks it
    against the game's own rewards and terminal rewards along two flows, and the dual start
    checks the signs of the whole program (terminal weight 1/dt included)."""
    game = bridged(game_id, nx=6) if game_id == "exit-room-2d-v0" else bridged(game_id)
    assert game.log_coupling is not None and game.log_coupling.problem == problem
    if game_id != "exit-room-2d-v0":   # its terminal cost does not depend on the density
        assert game.log_coupling.terminal and game.log_coupling.terminal_weight == pytest.approx(1 / game.dt)
    check_dual_start(game)


def test_nonlocal_couplings_are_not_declared():
    assert bridged("lq-continuous-v0", nx=10, nt=40).log_coupling is None   # the mean enters: not local


@pytest.mark.parametrize("game_id", ["crowd-continuous-v0", "segregation-2pop-v0"])
def test_bridged_references_certify_and_are_cached(game_id, tmp_path):
    game = bridged(game_id)
    ref = reference(game, cache_path=tmp_path, max_seconds=60)
    assert ref.certified and ref.exploitability <= 1e-8 and not ref.cached
    assert "interior point" in ref.method
    assert independent_exploitability(game, ref.policy) <= 1e-8
    again = reference(bridged(game_id), cache_path=tmp_path)
    assert again.cached and again.certified
    meta = json.loads((tmp_path / game.id / f"{cache_key(game)}.json").read_text())
    assert meta["game"] == game.id and meta["params"]["nx"] == SMALL_BRIDGE["nx"]


@pytest.mark.parametrize("damage", ["empty", "truncated", "wrong shape"])
def test_a_damaged_cache_entry_is_solved_again_and_overwritten(damage, tmp_path):
    game = mb.make("left-right-v0")
    first = reference(game, cache_path=tmp_path)
    path = tmp_path / game.id / f"{cache_key(game)}.npz"
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[:len(data) // 2])
    else:
        np.savez(path, policy_0=np.ones((2, 2)))
    second = reference(game, cache_path=tmp_path)
    assert second.certified and not second.cached
    np.testing.assert_array_equal(second.policy[0], first.policy[0])
    third = reference(game, cache_path=tmp_path)   # the entry was rewritten
    assert third.cached and third.certified
