"""Every registered finite and stationary game passes check_game, with hypothesis-drawn policies;
check_game itself catches broken games; every game is listable (description, source, sizes)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mfgbench as mb
from mfgbench.games import check_game, list_games, spec
from mfgbench.games.base import Game, Population
from mfgbench.games.conformance import ConformanceError, random_profile

GAMES = list_games(kind="finite") + list_games(kind="stationary")

SMALL = {
    # keep the conformance run quick: the same definitions at smaller sizes (defaults run under --runslow)
    "ring-road-v0": dict(size=12, n_speeds=12),
    "crowd-2d-maze-v0": dict(size=9, horizon=15),
    "crowd-2d-four-rooms-v0": dict(horizon=15),
    "predator-prey-4pop-v0": dict(horizon=8),
    "sis-v0": dict(T=20),
}


def test_the_library_is_registered():
    expected = {"beach-bar-v0", "rps-v0", "sis-v0", "crowd-motion-v0", "left-right-v0", "lq-small-v0",
                "building-evacuation-v0", "equilibrium-price-v0", "treasure-hunting-v0", "crowd-2d-v0",
                "crowd-2d-four-rooms-v0", "crowd-2d-maze-v0", "braess-v0", "traffic-2type-v0",
                "ring-road-v0", "garnet-stationary-v0"}
    assert expected <= set(GAMES)
    assert {"ring-road-v0", "garnet-stationary-v0"} <= set(list_games(kind="stationary"))


@pytest.mark.parametrize("game_id", GAMES)
def test_every_game_is_listable(game_id):
    s = spec(game_id)
    assert s.description and s.source
    game = mb.make(game_id)
    assert game.kind == s.kind and game.description == s.description and game.source == s.source
    assert all(p.n_states >= 1 and p.n_actions >= 1 for p in game.populations)
    if game.kind == "finite":
        assert game.horizon >= 1
    else:
        assert 0 < game.gamma < 1 and game.horizon is None


@pytest.mark.parametrize("game_id", GAMES)
@settings(deadline=None, max_examples=3, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), concentration=st.sampled_from([0.05, 0.5, 5.0]))
def test_check_game_passes(game_id, seed, concentration):
    game = mb.make(game_id, **SMALL.get(game_id, {}))
    rng = np.random.default_rng(seed)
    report = check_game(game, rng=rng, policies=[random_profile(game, rng, concentration)], n_agents=10000)
    assert report.profiles == 1 and len(report.comparisons) == game.n_populations


@pytest.mark.slow
@pytest.mark.parametrize("game_id", GAMES)
def test_check_game_passes_at_default_parameters(game_id):
    check_game(mb.make(game_id), rng=np.random.default_rng(1))


class _Coin(Game):
    """Two states, two actions; subclasses break one rule each."""

    id = "coin-test"
    static_transitions = True

    def __init__(self):
        super().__init__(3, Population("p", 2, 2, np.array([0.5, 0.5])))

    def rewards(self, k, t, mf):
        return np.array([[1.0, 0.0], [0.0, 1.0]]) - mf.mu[0][:, None]

    def transitions(self, k, t, mf):
        return np.array([[[0, 1], [1, 0]], [[1, 0], [0, 1]]]), np.full((2, 2, 2), 0.5)


def test_a_sound_game_passes():
    report = check_game(_Coin(), rng=np.random.default_rng(0))
    assert report.profiles == 3


def test_nondeterministic_rewards_are_caught():
    class Noisy(_Coin):
        calls = 0

        def rewards(self, k, t, mf):
            Noisy.calls += 1
            return super().rewards(k, t, mf) + 1e-9 * Noisy.calls

    with pytest.raises(ConformanceError, match="not deterministic"):
        check_game(Noisy(), rng=np.random.default_rng(0))


def test_rows_that_do_not_sum_to_one_are_caught():
    class Leaky(_Coin):
        def transitions(self, k, t, mf):
            succ, prob = super().transitions(k, t, mf)
            return succ, prob * 0.9

    with pytest.raises(ValueError, match="sum to"):
        check_game(Leaky(), rng=np.random.default_rng(0))


def test_a_flow_that_disagrees_with_simulation_is_caught():
    class TwoFaced(_Coin):
        """Rewards that read a hidden mean field: the core and a fresh call see different numbers."""

        static_transitions = False

        def transitions(self, k, t, mf):
            succ, prob = super().transitions(k, t, mf)
            if mf is not None and getattr(self, "_second", False):
                prob = prob.copy()
                prob[:, :, 0], prob[:, :, 1] = 0.9, 0.1
            self._second = not getattr(self, "_second", False)
            return succ, prob

    with pytest.raises(ConformanceError):
        check_game(TwoFaced(), rng=np.random.default_rng(0))


def test_exact_return_variances_match_sample_variances():
    from mfgbench.core import stationary
    from mfgbench.core.evaluate import evaluate
    from mfgbench.core.montecarlo import sample_returns
    from mfgbench.games.conformance import _discounted_return_variance, _return_variance

    rng = np.random.default_rng(7)
    game = mb.make("crowd-1d-v0")
    pi = random_profile(game, rng)
    ev = evaluate(game, pi)
    n = 40000
    mc = sample_returns(ev.model, 0, pi[0], game.populations[0].mu0, n, rng)
    sample_var = mc.stderr ** 2 * n
    # the sample variance of n draws has relative sd about sqrt(2 / n) (more with heavy tails): 5% is ample
    assert _return_variance(ev.model, 0, pi[0], game.populations[0].mu0) == pytest.approx(sample_var, rel=0.05)
    game = mb.make("garnet-stationary-v0", S=10, gamma=0.8)
    pi = random_profile(game, rng)
    ev = stationary.evaluate(game, pi)
    mc = stationary.sample_discounted_returns(ev.model, 0, pi[0], n, rng, 120)
    assert _discounted_return_variance(ev.model, 0, pi[0], ev.values[0]) == pytest.approx(mc.stderr ** 2 * n, rel=0.05)
