"""Bad games are refused with an error naming the game, population, time, state and action."""
import numpy as np
import pytest

import mfgbench as mb
from mfgbench.games.base import Game, Population


class Broken(Game):
    """A 3-state, 2-action game whose functions can be broken one way at a time."""

    id = "broken-test"

    def __init__(self, fault=None, mu0=(0.5, 0.5, 0.0), horizon=3):
        self.fault = fault
        super().__init__(horizon, [Population("ok", 2, 2, np.array([0.5, 0.5])),
                                   Population("bad", 3, 2, np.array(mu0))])

    def rewards(self, k, t, mf):
        R = np.ones((self.populations[k].n_states, 2))
        if k == 1 and t == 2 and self.fault == "nan_reward":
            R[1, 0] = np.nan
        if k == 1 and self.fault == "reward_shape":
            R = np.ones((3, 3))
        return R

    def transitions(self, k, t, mf):
        S = self.populations[k].n_states
        succ = np.tile(np.arange(S), (S, 2, 1))
        prob = np.full((S, 2, S), 1.0 / S)
        if k == 1 and t == 1:
            if self.fault == "negative":
                prob[2, 1] = [0.5, 0.7, -0.2]
            elif self.fault == "row_sum":
                prob[0, 1] = [0.5, 0.5, 0.1]
            elif self.fault == "successor":
                succ[1, 0, 2] = 3
            elif self.fault == "succ_shape":
                prob = prob[:, :, :2]
        return succ, prob

    def terminal(self, k, mf):
        if k == 1 and self.fault == "inf_terminal":
            return np.array([0.0, np.inf, 0.0])
        return np.zeros(self.populations[k].n_states)


@pytest.mark.parametrize("fault,message", [
    ("negative", r"game broken-test, population 1 \(bad\), time 1, state 2, action 1: transition probability -0.2"),
    ("row_sum", r"population 1 \(bad\), time 1, state 0, action 1: transition probabilities sum to 1.1"),
    ("successor", r"population 1 \(bad\), time 1, state 1, action 0: successor 3 is outside 0..2"),
    ("succ_shape", r"population 1 \(bad\), time 1: probability array has shape \(3, 2, 2\)"),
    ("nan_reward", r"population 1 \(bad\), time 2, state 1, action 0: reward is not finite"),
    ("reward_shape", r"population 1 \(bad\), time 0: rewards have shape \(3, 3\), expected \(3, 2\)"),
    ("inf_terminal", r"population 1 \(bad\), time T, state 1: reward is not finite"),
])
def test_broken_game_functions_are_named_on_first_evaluation(fault, message):
    game = Broken(fault)
    with pytest.raises(mb.GameError, match=message):
        mb.exploitability(game, mb.uniform_policy(game))


def test_a_healthy_game_is_validated_once():
    game = Broken()
    assert not game._validated
    mb.exploitability(game, mb.uniform_policy(game))
    assert game._validated


@pytest.mark.parametrize("mu0,message", [
    ((0.5, 0.6, 0.0), r"game broken-test, population 1 \(bad\): mu0 sums to 1.1"),
    ((1.2, -0.2, 0.0), r"population 1 \(bad\): mu0 is negative at state 1"),
    ((0.5, np.nan, 0.5), r"population 1 \(bad\): mu0 is not finite at state 1"),
    ((0.5, 0.5), r"population 1 \(bad\): mu0 has shape \(2,\), expected \(3,\)"),
])
def test_bad_initial_distribution_is_refused_when_built(mu0, message):
    with pytest.raises(mb.GameError, match=message):
        Broken(mu0=mu0)


def test_bad_horizon_is_refused_when_built():
    with pytest.raises(mb.GameError, match="horizon must be an integer >= 1"):
        Broken(horizon=0)


def test_registry_errors_name_the_game_and_parameter():
    with pytest.raises(mb.UnknownGameError, match="unknown game 'nope'"):
        mb.make("nope")
    with pytest.raises(ValueError, match="game lq-v0: unknown parameter 'sizee'"):
        mb.make("lq-v0", sizee=3)
    with pytest.raises(ValueError, match="game lq-v0: parameter size must be int"):
        mb.make("lq-v0", size="ten")
    with pytest.raises(ValueError, match="game garnet-v0: S, A, B, T, K must be >= 1"):
        mb.make("garnet-v0", S=0)
