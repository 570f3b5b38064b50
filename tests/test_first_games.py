"""The first games hold the definitions of REFERENCES.md (checked at hand-computed points)."""
import math

import numpy as np
import pytest

import mfgbench as mb
from mfgbench.core.evaluate import induced_model
from mfgbench.games.base import MeanField


def _flow_probability(game, k, s, a, target):
    succ, prob = game.static_transition(k)
    return float(prob[s, a][succ[s, a] == target].sum())


def test_crowd_1d_definition():
    game = mb.make("crowd-1d-v0")
    assert game.horizon == 9 and game.populations[0].n_states == 10
    # from 9, move +1 -> 0, then noise -1/0/+1 -> 9, 0, 1 with probability 1/3 each (mod 10)
    for target in (9, 0, 1):
        assert _flow_probability(game, 0, 9, 2, target) == pytest.approx(1 / 3)
    mu = np.full(10, 0.1)
    mf = MeanField(0, (mu,), (None,))
    R = game.rewards(0, 0, mf)
    # at the bar (x = 5), staying: 1 - 0 - log(0.1); moving costs 1/10
    assert R[5, 1] == pytest.approx(1.0 - math.log(0.1 + 1e-25))
    assert R[0, 0] == pytest.approx(1.0 - 5 / 5 - math.log(0.1) - 0.1)
    assert game.terminal(0, mf)[7] == pytest.approx(1.0 - 2 / 5 - math.log(0.1))


def test_lq_definition():
    game = mb.make("lq-v0")
    assert game.horizon == 10 and game.populations[0].n_actions == 7
    Phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    succ, prob = game.static_transition(0)
    # state 4, action index 5 (move +2): x -> 6 + e, P(e=0) = Phi(1/2) - Phi(-1/2), tail e=3 folded
    assert _flow_probability(game, 0, 4, 5, 6) == pytest.approx(Phi(0.5) - Phi(-0.5), abs=1e-15)
    assert _flow_probability(game, 0, 4, 5, 9) == pytest.approx(1 - Phi(2.5), abs=1e-15)
    assert _flow_probability(game, 0, 4, 5, 3) == pytest.approx(Phi(-2.5), abs=1e-15)
    mu = np.zeros(10)
    mu[[2, 6]] = 0.5  # mean 4
    mf = MeanField(0, (mu,), (None,))
    R = game.rewards(0, 0, mf)
    a, gap = 2.0, 4.0 - 1.0
    assert R[1, 5] == pytest.approx(0.5 * (-a * a + 2 * 0.01 * a * gap - 0.5 * gap * gap))
    assert game.terminal(0, mf)[9] == pytest.approx(-0.5 * 25.0)


def test_lq_mean_reversion_moves_agents_towards_the_mean():
    game = mb.make("lq-v0", K=0.5, sigma=0.1)  # almost no noise
    pi = mb.uniform_policy(game)
    pi[0][:] = 0.0
    pi[0][:, :, 3] = 1.0  # action 0: only the mean reversion moves the agent
    model = induced_model(game, pi)
    mean0 = np.arange(10) @ game.populations[0].mu0
    # x + round(0.5 (4.5 - x)) (no ties): 0->2, 1,2->3, 3,4->4, 5,6->5, 7,8->6, 9->7;
    # noise of sd 0.1 leaks only P(|e| >= 1/2) ~ 6e-7 elsewhere
    assert mean0 == pytest.approx(4.5)
    expected = np.array([0, 0, 0.1, 0.2, 0.2, 0.2, 0.2, 0.1, 0, 0])
    np.testing.assert_allclose(model.flow[0][1], expected, atol=1e-5)


def test_predator_prey_definition():
    game = mb.make("predator-prey-v0")
    assert game.n_populations == 3 and game.horizon == 9
    np.testing.assert_array_equal([int(np.argmax(p.mu0)) for p in game.populations], [0, 20, 4])
    # corner (0, 0) staying: noise none, -y and -x all clamp back: 0.2 * 3
    assert _flow_probability(game, 0, 0, 0, 0) == pytest.approx(0.6)
    assert _flow_probability(game, 0, 0, 1, 10) == pytest.approx(0.2)  # +x to (1,0), then +x noise
    mu = [np.full(25, 0.04), np.zeros(25), np.zeros(25)]
    mu[1][0] = 1.0
    R = game.rewards(0, 0, MeanField(0, tuple(mu), (None,) * 3))
    # population 0 at (0,0) with population 1 there: -log(0.04) + R_01 * 1 = -log(0.04) - 1
    assert R[0, 3] == pytest.approx(-math.log(0.04) - 1.0)
    R2 = game.rewards(2, 0, MeanField(0, tuple(mu), (None,) * 3))
    assert R2[0, 0] == pytest.approx(-math.log(1e-25) + 1.0 * 1.0 - 1.0 * 0.04)  # R_21 mu_1 + R_20 mu_0


def test_predator_prey_4pop_definition():
    game = mb.make("predator-prey-4pop-v0")
    assert game.n_populations == 4 and game.horizon == 19
    R = game.interaction
    np.testing.assert_array_equal(R + R.T, 0.0)
    assert R[0, 1] == -1 and R[0, 3] == 1 and R[0, 2] == 0


def test_garnet_is_seeded_and_monotone():
    a = mb.make("garnet-v0", S=15, K=3, seed=4)
    b = mb.make("garnet-v0", S=15, K=3, seed=4)
    c = mb.make("garnet-v0", S=15, K=3, seed=5)
    pi = mb.uniform_policy(a)
    assert mb.exploitability(a, pi) == mb.exploitability(b, pi) != mb.exploitability(c, pi)
    assert np.all(np.linalg.eigvalsh(a.weights) > 0)
    succ, _ = a.static_transition(0)
    assert all(len(set(row)) == row.size for row in succ.reshape(-1, succ.shape[-1]))
