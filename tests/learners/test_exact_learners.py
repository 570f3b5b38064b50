"""Fictitious play and online mirror descent: rates from theory, convergence to the reference."""
import numpy as np
import pytest

import mfgbench as mb
from mfgbench.learners import make_learner


def exploitability_curve(game, learner, iterations, marks, **config):
    agent = make_learner(learner, game, rng=np.random.default_rng(0), **config)
    out = []
    for it in range(1, iterations + 1):
        agent.step()
        if it in marks:
            out.append(mb.exploitability(game, agent.policy))
    return np.array(out)


@pytest.mark.parametrize("game_id", ["crowd-1d-v0", "predator-prey-v0"])
def test_fictitious_play_exploitability_falls_like_one_over_k(game_id):
    game = mb.make(game_id)
    marks = [10, 20, 40, 80, 140, 200]
    ex = exploitability_curve(game, "fictitious-play", 200, marks)
    slope = np.polyfit(np.log(marks), np.log(ex), 1)[0]
    assert slope <= -0.7, (ex, slope)


@pytest.mark.parametrize("best_response", ["softmax", "sampled"])
def test_fictitious_play_variants_learn(best_response):
    game = mb.make("crowd-1d-v0")
    start = mb.exploitability(game, mb.uniform_policy(game))
    ex = exploitability_curve(game, "fictitious-play", 60, [60], best_response=best_response, temperature=0.05)
    assert ex[-1] < start / 5


def test_fictitious_play_average_policy_induces_the_average_flow():
    # with mean-field-free dynamics the distribution-weighted average policy induces exactly the
    # average of the best responses' flows (Perrin et al. 2020); check it on a garnet
    game = mb.make("garnet-v0", S=12, A=3, B=3, T=5, K=2, coupling=2.0)
    agent = make_learner("fictitious-play", game)
    flows = [mb.distribution(game, agent.policy)]
    for _ in range(6):
        br = mb.best_response(game, agent.policy).policy
        flows.append(mb.distribution(game, br))
        agent.step()
    for k in range(game.n_populations):
        avg = np.mean([f[k] for f in flows], axis=0)
        np.testing.assert_allclose(mb.distribution(game, agent.policy)[k], avg, atol=1e-12)


@pytest.mark.parametrize("game_id", ["crowd-1d-v0", "lq-v0", "garnet-v0"])
def test_mirror_descent_learns(game_id):
    game = mb.make(game_id)
    start = mb.exploitability(game, mb.uniform_policy(game))
    ex = exploitability_curve(game, "mirror-descent", 200, [200])
    assert ex[-1] < start / 10


@pytest.mark.parametrize("learner", ["mirror-descent", "fictitious-play"])
def test_exact_learners_play_stationary_games(learner):
    game = mb.make("garnet-stationary-v0")
    start = mb.exploitability(game, mb.uniform_policy(game))
    ex = exploitability_curve(game, learner, 100, [100])
    assert ex[-1] < start / 5


def test_munchausen_mirror_descent_reaches_the_regularised_equilibrium():
    # its fixed point is the entropy-regularised equilibrium: pi = softmax(Q^pi_soft / tau)
    game = mb.make("garnet-v0", S=8, A=3, B=2, T=4, coupling=1.0)
    agent = make_learner("mirror-descent", game, munchausen=0.5, temperature=0.5, reward_scale=1.0)
    for _ in range(400):
        agent.step()
    before = agent.policy[0].copy()
    agent.step()
    np.testing.assert_allclose(agent.policy[0], before, atol=1e-9)


@pytest.mark.parametrize("learner,config", [
    ("fictitious-play", {"best_response": "sampled"}),
    ("fictitious-play", {}),
    ("mirror-descent", {}),
])
def test_same_seed_same_numbers(learner, config):
    runs = []
    for _ in range(2):
        res = mb.run_trial(game="crowd-1d-v0", learner=learner, iterations=15, seed=3, reference=False, **config)
        runs.append(res)
    assert [h["exploitability"] for h in runs[0].history] == [h["exploitability"] for h in runs[1].history]
    for a, b in zip(runs[0].policy, runs[1].policy):
        assert np.array_equal(a, b)


def test_learner_config_errors_are_clear():
    game = mb.make("crowd-1d-v0")
    with pytest.raises(ValueError, match="learner fictitious-play: unknown config field 'step'"):
        make_learner("fictitious-play", game, step=1)
    with pytest.raises(ValueError, match="best_response must be exact, softmax or sampled"):
        make_learner("fictitious-play", game, best_response="greedy")
    with pytest.raises(KeyError, match="unknown learner 'nope'"):
        make_learner("nope", game)


OMD_BEACH_BUMP = pytest.mark.xfail(strict=True, reason="OMD's TV (and W1) to the reference on beach-bar-v0 rises once "
                                   "(iterations 3-7 at lr 1, 30-60 at lr 0.1, 63+ at lr 0.05: the same bump scaled by "
                                   "1/lr, so a property of the OMD flow, not of the step) before falling; what theory "
                                   "makes monotone is the Lyapunov function of test_omd_lyapunov_decreases")


@pytest.mark.parametrize("game_id,learner,config", [
    ("left-right-v0", "fictitious-play", {}), ("beach-bar-v0", "fictitious-play", {}),
    ("left-right-v0", "mirror-descent", {"learning_rate": 1.0, "reward_scale": 1.0}),
    pytest.param("beach-bar-v0", "mirror-descent", {"learning_rate": 1.0, "reward_scale": 1.0}, marks=OMD_BEACH_BUMP),
])
def test_distribution_error_to_the_certified_reference_falls(game_id, learner, config):
    game = mb.make(game_id)
    ref = mb.reference(game, cache=False)
    assert ref.certified
    from mfgbench.metrics import distribution_error
    agent = make_learner(learner, game, rng=np.random.default_rng(0), **config)
    # MFGLib's time convention: the transition after the last decision time is a dummy (no reward
    # follows it), so the flow at T depends on an irrelevant action; compare mu_t for t < T
    ref_flow = tuple(f[:-1] for f in ref.flow)
    errors = []
    for _ in range(60):
        agent.step()
        flow = tuple(f[:-1] for f in mb.distribution(game, agent.policy))
        errors.append(distribution_error(game, flow, ref_flow).tv)
    errors = np.array(errors)
    assert errors[-1] < 0.5 * errors[0]
    # monotone along a geometric subsequence of iterations (single steps of FP can wobble)
    marks = errors[[0, 2, 6, 14, 29, 59]]
    assert np.all(np.diff(marks) <= 1e-12), marks


@pytest.mark.parametrize("learning_rate", [0.1, 1.0])
def test_omd_lyapunov_decreases(learning_rate):
    """Perolat et al. (2022), Thm 1: on a monotone game the OMD flow decreases
    H(pi) = sum_t sum_x mu*_t(x) KL(pi*_t(.|x) || pi_t(.|x)), pi* the equilibrium and mu* its flow.
    beach-bar-v0 is strictly monotone (log-density crowd aversion), and with these steps the
    discrete iteration keeps the decrease; its distribution error does not (OMD_BEACH_BUMP)."""
    game = mb.make("beach-bar-v0")
    ref = mb.reference(game, cache=False)
    assert ref.certified
    eq_policy, eq_flow = ref.policy[0], ref.flow[0][:-1]
    agent = make_learner("mirror-descent", game, rng=np.random.default_rng(0), learning_rate=learning_rate,
                         reward_scale=1.0)
    lyapunov = []
    for _ in range(60):
        agent.step()
        log_ratio = np.log(np.where(eq_policy > 0, eq_policy, 1.0)) - np.log(agent.policy[0])
        lyapunov.append(float(np.sum(eq_flow[:, :, None] * eq_policy * log_ratio)))
    lyapunov = np.array(lyapunov)
    assert np.all(np.diff(lyapunov) < 0), lyapunov
    assert lyapunov[-1] < 0.5 * lyapunov[0]
