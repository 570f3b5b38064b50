"""Scale-aware defaults and the learners' stabilisers (issue 16), at small budgets.

- reward_scale: its definition (the uniform policy's exploitability per population and unit
  of horizon) and its linearity; every learner does the same thing on a game whose rewards
  are all multiplied by 1000 (scale invariance), seed for seed;
- each stabiliser changes what it should against the same learner without it;
- same seed, same numbers for every new option.
"""
import numpy as np
import pytest

import mfgbench as mb
from mfgbench.core import best_response_along, model_along_flow
from mfgbench.core.evaluate import induced_model
from mfgbench.games.crowd import CrowdModelling1D
from mfgbench.games.stationary import RingRoad
from mfgbench.learners import make_config, make_learner
from mfgbench.learners.qmi import qmi_finite_kernel
from mfgbench.learners.scale import reward_scale

FACTOR = 1000.0


class ScaledCrowd(CrowdModelling1D):
    """crowd-1d-v0 with every reward (running and terminal) multiplied by 1000."""

    id = "crowd-1d-x1000"

    def rewards(self, k, t, mf):
        return FACTOR * super().rewards(k, t, mf)

    def terminal(self, k, mf):
        return FACTOR * super().terminal(k, mf)

    def rewards_over_time(self, k, flows, measures):
        R = super().rewards_over_time(k, flows, measures)
        return None if R is None else FACTOR * R


class ScaledRingRoad(RingRoad):
    id = "ring-road-x1000"

    def rewards(self, k, mf):
        return FACTOR * super().rewards(k, mf)


def test_reward_scale_is_the_uniform_exploitability_per_unit_of_horizon():
    for game_id in ["crowd-1d-v0", "predator-prey-v0", "ring-road-v0"]:
        game = mb.make(game_id)
        H = game.horizon if game.kind == "finite" else 1.0 / (1.0 - game.gamma)
        uniform = mb.exploitability(game, mb.uniform_policy(game))
        assert reward_scale(game) == pytest.approx(uniform / (game.n_populations * H), rel=1e-12)
    # performance difference: the mean gap between the best and the average action of Q^BR
    # along the uniform flow
    game = mb.make("crowd-1d-v0")
    model = induced_model(game, mb.uniform_policy(game))
    Q = best_response_along(model).q_values[0]
    gap = (model.flow[0][:-1] * (Q.max(axis=-1) - Q.mean(axis=-1))).sum() / game.horizon
    assert reward_scale(game) == pytest.approx(gap, rel=1e-10)


def test_reward_scale_is_linear_in_the_rewards():
    assert reward_scale(ScaledCrowd()) == pytest.approx(FACTOR * reward_scale(mb.make("crowd-1d-v0")), rel=1e-10)
    assert reward_scale(ScaledRingRoad()) == pytest.approx(FACTOR * reward_scale(mb.make("ring-road-v0")), rel=1e-10)


def _run(game, learner, iterations, seed=0, **config):
    agent = make_learner(learner, game, rng=np.random.default_rng(seed), **config)
    for _ in range(iterations):
        agent.step()
    return agent


@pytest.mark.parametrize("learner,config,iterations", [
    ("mirror-descent", {}, 30),
    ("fictitious-play", {"best_response": "softmax"}, 20),
    ("qmi", {"samples_per_iteration": 20_000}, 8),
    ("nash-q", {"n_agents": 300, "episodes_per_iteration": 2}, 8),
])
def test_default_behaviour_is_invariant_to_the_reward_scale(learner, config, iterations):
    base, scaled = mb.make("crowd-1d-v0"), ScaledCrowd()
    a, b = _run(base, learner, iterations, **config), _run(scaled, learner, iterations, **config)
    for p, q in zip(a.policy, b.policy):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-9)
    ea, eb = mb.exploitability(base, a.policy), mb.exploitability(scaled, b.policy)
    assert eb == pytest.approx(FACTOR * ea, rel=1e-6)
    assert ea < mb.exploitability(base, mb.uniform_policy(base))


@pytest.mark.parametrize("learner,config", [("mirror-descent", {}), ("qmi", {"samples_per_iteration": 20_000}),
                                            ("nash-q", {"n_agents": 300, "stationary_steps": 20})])
def test_stationary_default_behaviour_is_invariant_to_the_reward_scale(learner, config):
    base, scaled = mb.make("ring-road-v0"), ScaledRingRoad()
    a, b = _run(base, learner, 5, **config), _run(scaled, learner, 5, **config)
    for p, q in zip(a.policy, b.policy):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-9)


def test_absolute_units_are_not_invariant():
    # the paper preset fixes the reward scale to 1: on the scaled game its step is 1000x too large
    base, scaled = mb.make("crowd-1d-v0"), ScaledCrowd()
    a = _run(base, "mirror-descent", 10, **{"learning_rate": 0.06, "reward_scale": 1.0})
    b = _run(scaled, "mirror-descent", 10, **{"learning_rate": 0.06, "reward_scale": 1.0})
    assert not np.allclose(a.policy[0], b.policy[0], atol=1e-3)


def test_mirror_descent_default_step_needs_no_per_game_rate():
    # the absolute step 0.1 did nothing on ring-road-v0 in 100 iterations (ratio 1.0); the scale-aware
    # default moves both a game with rewards of order 1e-3 and one of order 50 in 30 iterations
    for game_id in ["ring-road-v0", "predator-prey-v0"]:
        game = mb.make(game_id)
        uniform = mb.exploitability(game, mb.uniform_policy(game))
        assert mb.exploitability(game, _run(game, "mirror-descent", 30).policy) < uniform / 2


# -- stabilisers ---------------------------------------------------------------------------------
def _curve(game, learner, iterations, seed=0, **config):
    agent = make_learner(learner, game, rng=np.random.default_rng(seed), **config)
    out = []
    for _ in range(iterations):
        agent.step()
        out.append(mb.exploitability(game, agent.policy))
    return np.array(out)


def test_nash_q_annealing_lowers_the_floor_on_crowd_1d():
    # a fixed temperature converges to the regularised equilibrium of that temperature; annealing
    # goes below it (same learner, same seed, only temperature_decay differs)
    game = mb.make("crowd-1d-v0")
    fixed = _curve(game, "nash-q", 40, temperature_decay=0.0)
    annealed = _curve(game, "nash-q", 40, temperature_decay=1.0)
    assert annealed[-10:].mean() < 0.5 * fixed[-10:].mean()


def test_qmi_averaging_stops_the_oscillation_on_crowd_1d():
    # crowd aversion: the plain fixed point (frozen estimate, softmax of the latest Q) jumps between
    # best responses; the fictitious-play averages settle
    game = mb.make("crowd-1d-v0")
    plain = _curve(game, "qmi", 30, samples_per_iteration=50_000, mean_field="freeze", policy_output="softmax",
                   temperature_decay=1.0)
    averaged = _curve(game, "qmi", 30, samples_per_iteration=50_000, temperature_decay=1.0)
    late_plain, late_avg = plain[-15:], averaged[-15:]
    assert np.abs(np.diff(late_avg)).mean() < 0.25 * np.abs(np.diff(late_plain)).mean()
    assert late_avg.mean() < 0.5 * late_plain.mean()


def test_qmi_greedy_read_out_on_ring_road():
    # the paper's settings: the softmax at temperature 1e-5 costs most of the exploitability
    game = mb.make("ring-road-v0")
    soft = _run(game, "qmi", 10, **{**make_config("qmi", preset="paper").__dict__})
    greedy = _run(game, "qmi", 10, **{**make_config("qmi", preset="paper").__dict__, "policy_output": "greedy"})
    assert mb.exploitability(game, greedy.policy) < 0.2 * mb.exploitability(game, soft.policy)


def test_nash_q_epsilon_exploration_keeps_unplayed_actions_up_to_date():
    # rps-v0: once the population plays one move, the other moves' Q-values are stale without
    # exploration and the average drifts to that move; explorers keep them current
    game = mb.make("rps-v0")
    none = _curve(game, "nash-q", 30, epsilon=0.0)
    explore = _curve(game, "nash-q", 30, epsilon=0.1)
    assert explore[-1] < 0.2 * none[-1]
    assert none[-1] > mb.exploitability(game, mb.uniform_policy(game))


def test_nash_q_explorers_leave_the_mean_field_unbiased():
    # Q = 0 at the start, so the greedy behaviour stays put everywhere (action 0); explorers move.
    # Out of the histogram, they leave it the behaviour's exact flow (within sampling error of the
    # 0.7^t N agents still on the path); counted, they bias it
    game = mb.make("predator-prey-v0")
    exact = mb.distribution(game, tuple(mb.core.greedy_policy(np.zeros((9, 25, 5))) for _ in range(3)))[0]
    N = 40_000
    for count, close in [(False, True), (True, False)]:
        agent = make_learner("nash-q", game, rng=np.random.default_rng(1), n_agents=N, behaviour="greedy",
                             epsilon=0.3, count_explorers=count)
        flow = agent.episode()[0]
        sigma = 0.5 / np.sqrt(0.7 ** np.arange(10) * N)      # binomial std of the on-path histogram at t
        within = np.abs(flow - exact).max(axis=1) < 5 * sigma
        assert within.all() == close


def test_qmi_exploration_counts_only_the_behaviours_path():
    # with exploration the on-path visit frequencies are still the behaviour's flow
    game = mb.make("crowd-1d-v0")
    T, S, A = game.horizon, 10, 3
    model = induced_model(game, mb.uniform_policy(game))
    R, succ, prob, g = model.rewards[0], model.succ[0], model.prob[0], model.terminal[0]
    behaviour = np.zeros((T, S, A))
    behaviour[..., 2] = 1.0      # always move right
    exact = mb.distribution(game, behaviour)[0]
    u = np.random.default_rng(2).random((60_000, 1 + 2 * T))
    counts = np.zeros((T + 1, S))
    qmi_finite_kernel(np.zeros((T, S, A)), np.zeros((T, S, A)), np.full((T + 1, S), 0.1), counts, R, succ, prob, g,
                      game.populations[0].mu0, behaviour, False, 1.0, 0.2, 0.1, True, True, 1e-3, u, True)
    F = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(F - exact).max() < 0.02
    assert counts[T].sum() < 0.3 * counts[0].sum()    # 0.8^9 of the episodes stay on the path


def test_qmi_backward_replay_learns_a_long_horizon_faster():
    # same samples, same frozen MDP (crowd-2d-four-rooms-v0, T = 39): the backward order propagates
    # the rewards through the horizon within each episode
    game = mb.make("crowd-2d-four-rooms-v0")
    model = induced_model(game, mb.uniform_policy(game))
    R, succ, prob, g = model.rewards[0], model.succ[0], model.prob[0], model.terminal[0]
    Qstar = best_response_along(model).q_values[0]
    T, S, A = R.shape
    behaviour = np.full((T, S, A), 1.0 / A)
    u = np.random.default_rng(3).random((3000, 1 + 2 * T))
    errors = {}
    for backward in (False, True):
        Q, visits = np.zeros((T, S, A)), np.zeros((T, S, A))
        qmi_finite_kernel(Q, visits, np.full((T + 1, S), 1 / S), np.zeros((T + 1, S)), R, succ, prob, g,
                          game.populations[0].mu0, behaviour, False, 1.0, 0.0, 0.1, True, backward, 1e-3, u, False)
        seen = visits[0] > 0
        errors[backward] = np.abs(Q[0] - Qstar[0])[seen].mean()
    assert errors[True] < 0.5 * errors[False]


def test_qmi_harmonic_steps_remove_the_initial_bias():
    # one visit with step max(alpha, 1/1) = 1 replaces q_init by the target
    game = mb.make("left-right-v0")
    cfg = dict(samples_per_iteration=2000, q_init=50.0, exploration=2.0)
    biased = make_learner("qmi", game, rng=np.random.default_rng(0), alpha_schedule="constant", alpha=0.01, **cfg)
    harmonic = make_learner("qmi", game, rng=np.random.default_rng(0), alpha_schedule="harmonic", alpha=0.01, **cfg)
    biased.step()
    harmonic.step()
    flow = (np.full((game.horizon + 1, 3), 1 / 3),)
    exact = best_response_along(model_along_flow(game, flow)).q_values[0]
    seen = harmonic._visits[0] > 0
    assert np.abs(harmonic.q_values[0] - exact)[seen].max() < 1.0 < np.abs(biased.q_values[0] - exact)[seen].max()


def test_discounted_nash_q_plays_ring_road():
    game = mb.make("ring-road-v0")
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    agent = _run(game, "nash-q", 30)
    assert agent.samples == 30 * agent.config.stationary_steps * agent.config.n_agents
    assert mb.exploitability(game, agent.policy) < uniform / 5


def test_nash_q_mean_field_averaging_beats_the_empirical_mean_field_on_crowd_1d():
    game = mb.make("crowd-1d-v0")
    empirical = _curve(game, "nash-q", 30, mean_field="empirical", policy_output="behaviour")
    averaged = _curve(game, "nash-q", 30)
    assert averaged[-5:].mean() < 0.5 * empirical[-5:].mean()


def _segregation_grid():
    """segregation-2pop-v0 on the standard suite's grid: 80 steps, rewards that are costs."""
    from mfgbench.bench.suite import DEFAULT_BRIDGE
    from reference_solvers.pde.discretize import discretize
    return discretize(mb.make("segregation-2pop-v0"), **DEFAULT_BRIDGE)


def test_qmi_bootstrap_over_tried_actions_removes_the_initial_optimism():
    # one batch of uniform-behaviour episodes in the frozen MDP of the uniform policy's flow: with
    # the max over all actions, untried actions' initial 0 (above every cost-to-go) climbs back
    # through the 80 steps; over the tried actions, Q[0] is the sample estimate of the exact values
    game = _segregation_grid()
    model = induced_model(game, mb.uniform_policy(game))
    R, succ, prob, g = model.rewards[0], model.succ[0], model.prob[0], model.terminal[0]
    Qstar = best_response_along(model).q_values[0]
    T, S, A = R.shape
    behaviour = np.full((T, S, A), 1.0 / A)
    u = np.random.default_rng(4).random((1250, 1 + 2 * T))
    errors = {}
    for tried in (False, True):
        Q, visits = np.zeros((T, S, A)), np.zeros((T, S, A))
        qmi_finite_kernel(Q, visits, np.full((T + 1, S), 1 / S), np.zeros((T + 1, S)), R, succ, prob, g,
                          game.populations[0].mu0, behaviour, False, 1.0, 0.0, 0.1, True, True, 1e-3, u, tried)
        errors[tried] = np.abs(Q[0] - Qstar[0]).mean() / np.abs(Qstar[0]).mean()
    assert errors[False] > 0.5 and errors[True] < 0.1, errors


def test_nash_q_bootstrap_over_tried_actions():
    agent = make_learner("nash-q", mb.make("crowd-1d-v0"))
    Q = np.array([[-1.0, 0.0, -3.0], [0.0, 0.0, 0.0], [-2.0, -5.0, 0.0]])
    visits = np.array([[1, 0, 2], [0, 0, 0], [3, 1, 0]])
    np.testing.assert_array_equal(agent._values(Q, visits), [-1.0, 0.0, -2.0])   # no tried action: all of them
    agent = make_learner("nash-q", mb.make("crowd-1d-v0"), bootstrap="all")
    np.testing.assert_array_equal(agent._values(Q, visits), [0.0, 0.0, 0.0])


def test_nash_q_episodes_per_iteration_follow_the_horizon():
    # about 60 agent time steps per iteration, at most 5 episodes: the cost of an iteration does
    # not grow with the horizon
    for game, episodes in [(mb.make("crowd-1d-v0"), 5), (mb.make("sir-types-v0"), 2), (_segregation_grid(), 1)]:
        agent = make_learner("nash-q", game)
        assert agent.episodes_per_iteration == episodes, game.id
        agent.step()
        assert agent.samples == episodes * game.horizon * game.n_populations * agent.config.n_agents
    assert make_learner("nash-q", _segregation_grid(), episodes_per_iteration=3).episodes_per_iteration == 3


def test_qmi_samples_per_iteration_are_bounded_in_all():
    # 1e5 per population up to two populations, 2e5 in all beyond
    for game_id, per_population in [("crowd-1d-v0", 100_000), ("traffic-2type-v0", 100_000),
                                    ("predator-prey-v0", 66_666), ("predator-prey-4pop-v0", 50_000)]:
        assert make_learner("qmi", mb.make(game_id)).samples_per_iteration == per_population, game_id
    assert make_learner("qmi", mb.make("predator-prey-v0"), samples_per_iteration=10).samples_per_iteration == 10


# -- seeding --------------------------------------------------------------------------------------
@pytest.mark.parametrize("learner,game_id,config", [
    ("qmi", "crowd-1d-v0", {"samples_per_iteration": 3000}),
    ("qmi", "crowd-1d-v0", {"samples_per_iteration": 3000, "replay": "forward", "alpha_schedule": "constant",
                            "average_weighting": 1.0, "policy_output": "greedy", "variant": "on-policy"}),
    ("qmi", "ring-road-v0", {"samples_per_iteration": 3000, "policy_output": "average", "temperature_decay": 1.0}),
    ("nash-q", "crowd-1d-v0", {"n_agents": 200}),
    ("nash-q", "crowd-1d-v0", {"n_agents": 200, "behaviour": "greedy", "count_explorers": True, "alpha_floor": 0.0,
                               "mean_field": "empirical", "policy_output": "greedy"}),
    ("nash-q", "ring-road-v0", {"n_agents": 200, "stationary_steps": 5}),
    ("nash-q", "traffic-2type-v0", {"n_agents": 200, "preset": "paper"}),
    ("qmi", "predator-prey-v0", {"samples_per_iteration": 3000, "preset": "paper"}),
    ("qmi", "sir-types-v0", {"samples_per_iteration": 3000, "bootstrap": "all"}),
    ("nash-q", "sir-types-v0", {"n_agents": 200, "bootstrap": "all", "episodes_per_iteration": 1}),
])
def test_same_seed_same_numbers(learner, game_id, config):
    game = mb.make(game_id)
    config = dict(config)
    preset = config.pop("preset", None)
    cfg = make_config(learner, preset=preset, **config)
    runs = []
    for seed in (5, 5, 6):
        agent = make_learner(learner, game, cfg, rng=np.random.default_rng(seed))
        for _ in range(3):
            agent.step()
        runs.append([p.copy() for p in agent.policy] + list(agent.q_values))
    assert all(np.array_equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))


def test_presets():
    assert make_config("qmi", preset="paper").temperature == 1e-5
    assert make_config("qmi", preset="paper").reward_scale == 1.0
    assert make_config("nash-q", preset="paper").count_explorers
    assert make_config("mirror-descent", preset="paper").learning_rate == 0.01
    assert make_config("fictitious-play", preset="paper").best_response == "exact"
    with pytest.raises(ValueError, match="reward_scale"):
        make_config("qmi", reward_scale=-1.0)
