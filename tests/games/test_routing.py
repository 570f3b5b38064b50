"""Dynamic routing: Braess figures from theory, and the generic network machinery by hand."""
import numpy as np
import pytest

import mfgbench as mb
from mfgbench.games.routing import Demand, Link, Network, RoutingGame


def braess_policy(game, to_c, c_to_d):
    """At B go to C with probability ``to_c``; at C go on to D with probability ``c_to_d``."""
    pi = np.full((game.horizon, game.populations[0].n_states, 2), 0.5)
    B, C = game.node_index["B"], game.node_index["C"]
    assert [game.network.links[l].head for l in game.out[B]] == ["C", "D"]
    assert [game.network.links[l].head for l in game.out[C]] == ["D", "E"]
    pi[:, B] = [to_c, 1.0 - to_c]
    pi[:, C] = [c_to_d, 1.0 - c_to_d]
    return pi


def test_braess_nash_equilibrium():
    # theory: 1/4 upper (B-C-E), 1/4 lower (B-D-E), 1/2 middle (B-C-D-E): B->C carries 3/4 -> 1.75,
    # D->E receives 1/4 + 1/2 at time 2 -> 1.75; every route takes 3.75, no deviation helps
    game = mb.make("braess-v0")
    pi = braess_policy(game, 0.75, 2.0 / 3.0)
    assert game.travel_time(pi)[0] == pytest.approx(3.75, abs=1e-12)
    assert abs(mb.exploitability(game, pi)) < 1e-12


def test_braess_social_optimum():
    # theory: half upper, half lower, nobody in the middle: 1.5 + 2 = 2 + 1.5 = 3.5. A deviator
    # B-C-D-E reaches D at 1.75, before the lower half (at 2), finds D->E empty (1.0): 2.75. Gain 0.75.
    game = mb.make("braess-v0")
    pi = braess_policy(game, 0.5, 0.0)
    assert game.travel_time(pi)[0] == pytest.approx(3.5, abs=1e-12)
    assert mb.exploitability(game, pi) == pytest.approx(0.75, abs=1e-12)
    br = mb.best_response(game, pi)
    B, C = game.node_index["B"], game.node_index["C"]
    assert br.policy[0][0, B, 0] == 1.0 and br.policy[0][6, C, 0] == 1.0  # via C at t=0, on to D at t=6


def pigou(price=1.5, dt=0.25):
    net = Network(("O", "D"), (Link("O", "D", price), Link("O", "D", 1.0, capacity=1.0, alpha=1.0, beta=1.0)))
    return RoutingGame(net, [Demand("O", "D", 1.0)], dt=dt, horizon=12)


def pigou_policy(game, p_congested):
    pi = np.full((game.horizon, game.populations[0].n_states, 2), 0.5)
    pi[:, game.node_index["O"]] = [1.0 - p_congested, p_congested]
    return pi


def test_stochastic_rounding_keeps_the_expected_travel_time():
    game = pigou()
    # 0.6 on the congested link: tau = 1.6 = 6.4 steps (6 w.p. 0.6, 7 w.p. 0.4): expected 1.6 exactly
    pi = pigou_policy(game, 0.6)
    assert game.travel_time(pi)[0] == pytest.approx(0.4 * 1.5 + 0.6 * 1.6, abs=1e-12)
    ev = mb.evaluate(game, pi)
    assert ev.exploitability == pytest.approx(0.6 * (1.6 - 1.5), abs=1e-12)  # those on it could save 0.1


def test_pigou_equilibrium():
    game = pigou()
    pi = pigou_policy(game, 0.5)  # 1 + 0.5 = 1.5 on both links
    assert game.travel_time(pi)[0] == pytest.approx(1.5, abs=1e-12)
    assert abs(mb.exploitability(game, pi)) < 1e-12


def test_two_populations_share_a_link():
    # O1 -> M and O2 -> M take 1; M -> D takes 1 + v with v the mass entering together
    net = Network(("O1", "O2", "M", "D"), (Link("O1", "M", 1.0), Link("O2", "M", 1.0),
                                           Link("M", "D", 1.0, capacity=2.0, alpha=1.0, beta=2.0)))
    game = RoutingGame(net, [Demand("O1", "D", 0.5), Demand("O2", "D", 1.5)], dt=0.5, horizon=10)
    assert game.n_populations == 2
    pi = mb.uniform_policy(game)
    # v = 0.5 + 1.5 = 2: tau = 1 (1 + (2/2)^2) = 2; arrival 1 + 2 = 3 for both
    np.testing.assert_allclose(game.travel_time(pi), [3.0, 3.0], atol=1e-12)


def test_vehicles_that_never_arrive_pay_the_horizon():
    net = Network(("O", "X", "D"), (Link("O", "X", 1.0), Link("O", "D", 5.0)))
    game = RoutingGame(net, [Demand("O", "D")], dt=1.0, horizon=4)
    pi = mb.uniform_policy(game)
    pi[0][:, game.node_index["O"]] = [1.0, 0.0]  # into the dead end X
    assert game.travel_time(pi)[0] == pytest.approx(4.0)
    assert mb.exploitability(game, pi) == pytest.approx(0.0)  # via O->D one also pays the horizon (5 > 4)


@pytest.mark.parametrize("links, demand, match", [
    ((Link("O", "D", 0.0),), Demand("O", "D"), "free-flow time"),
    ((Link("O", "Z", 1.0),), Demand("O", "D"), "not in the network"),
    ((Link("O", "D", 1.0),), Demand("O", "O"), "distinct"),
    ((Link("O", "D", 1.0),), Demand("O", "D", -1.0), "positive mass"),
    ((Link("O", "D", 1.0, capacity=0.0),), Demand("O", "D"), "capacity"),
])
def test_bad_networks_raise(links, demand, match):
    with pytest.raises(ValueError, match=match):
        RoutingGame(Network(("O", "D"), links), [demand], dt=0.5, horizon=5)


def test_braess_bad_dt_names_the_game():
    with pytest.raises(ValueError, match="braess-v0"):
        mb.make("braess-v0", dt=2.0)  # C->D (0.25) would be shorter than a step


def test_volume_counts_vehicles_already_on_the_link():
    # half go O->M (1 step), half O->P->M (2 steps); M->D takes 4 (1 + v). The first half enters M->D
    # at t=1 with v = 0.5 (6 steps, arrives at 7); the second enters at t=2 with v = 0.5 entering + 0.5
    # still on the link = 1 (8 steps, arrives at 10). Mean arrival 8.5.
    net = Network(("O", "P", "M", "D"), (Link("O", "M", 1.0), Link("O", "P", 1.0), Link("P", "M", 1.0),
                                         Link("M", "D", 4.0, capacity=1.0, alpha=1.0, beta=1.0)))
    game = RoutingGame(net, [Demand("O", "D")], dt=1.0, horizon=14)
    pi = mb.uniform_policy(game)
    assert game.travel_time(pi)[0] == pytest.approx(8.5, abs=1e-12)
