"""QMI (Zhang, Chen & Di 2024): kernels against their Python twins, the mean-field estimate
against the exact flow, Q-learning against the exact best response, the ring-road
experiment scaled down (exploitability falls >= 5x from uniform), and seeding."""
import numpy as np
import pytest

import mfgbench as mb
from mfgbench.core import best_response_along, model_along_flow
from mfgbench.learners import make_config
from mfgbench.learners.qmi import (QMI, QMIConfig, qmi_finite_kernel, qmi_finite_python, qmi_stationary_kernel,
                                   qmi_stationary_python, softmax)


def _random_finite(rng, T=4, S=6, A=3, B=3, static=False):
    R = rng.normal(size=(T, S, A))
    TT = 1 if static else T
    succ = rng.integers(0, S, size=(TT, S, A, B))
    prob = rng.dirichlet(np.ones(B), size=(TT, S, A))
    g = rng.normal(size=S)
    mu0 = rng.dirichlet(np.ones(S))
    return R, succ, prob, g, mu0


@pytest.mark.parametrize("on_policy", [False, True])
@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("epsilon,harmonic,backward", [(0.0, False, False), (0.2, True, True), (0.1, False, True)])
@pytest.mark.parametrize("tried", [False, True])
def test_finite_kernel_matches_python_twin(rng, on_policy, static, epsilon, harmonic, backward, tried):
    R, succ, prob, g, mu0 = _random_finite(rng, static=static)
    T, S, A = R.shape
    behaviour = softmax(rng.normal(size=(T, S, A)), 0.7)
    Q0 = rng.normal(size=(T, S, A))
    M0 = np.full((T + 1, S), 1.0 / S)
    u = rng.random((400, 1 + 2 * T))
    Q1, M1, Q2, M2 = Q0.copy(), M0.copy(), Q0.copy(), M0.copy()
    n1, n2, c1, c2 = np.zeros_like(Q0), np.zeros_like(Q0), np.zeros_like(M0), np.zeros_like(M0)
    qmi_finite_kernel(Q1, n1, M1, c1, R, succ, prob, g, mu0, behaviour, on_policy, 0.3, epsilon, 0.1, harmonic,
                      backward, 0.02, u, tried)
    qmi_finite_python(Q2, n2, M2, c2, R, succ, prob, g, mu0, behaviour, on_policy, 0.3, epsilon, 0.1, harmonic,
                      backward, 0.02, u, tried)
    np.testing.assert_allclose(Q1, Q2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(M1, M2, rtol=0, atol=1e-12)
    assert np.array_equal(n1, n2) and np.array_equal(c1, c2)
    np.testing.assert_allclose(M1.sum(axis=1), 1.0, atol=1e-12)
    assert n1.sum() == 400 * T                      # every transition updates Q once
    assert c1[0].sum() == 400                       # every episode starts on the behaviour's path
    if epsilon > 0:
        assert c1[T].sum() < 400                    # ... and leaves it at its first exploratory step


@pytest.mark.parametrize("on_policy", [False, True])
@pytest.mark.parametrize("temperature", [0.5, 1e-3])
def test_stationary_kernel_matches_python_twin(rng, on_policy, temperature):
    # the small temperature makes the on-policy kernel rebase its softmax weights often
    S, A, B = 7, 5, 3
    R = rng.normal(size=(S, A))
    succ = rng.integers(0, S, size=(S, A, B))
    prob = rng.dirichlet(np.ones(B), size=(S, A))
    cdf = np.cumsum(softmax(rng.normal(size=(S, A)), 0.5), axis=1)
    cdf[:, -1] = np.inf
    Q0 = rng.normal(size=(S, A))
    M0 = np.full(S, 1.0 / S)
    u = rng.random((5000, 2))
    Q1, M1, Q2, M2 = Q0.copy(), M0.copy(), Q0.copy(), M0.copy()
    for harmonic in (False, True):
        n1, n2, c1, c2 = np.zeros((S, A)), np.zeros((S, A)), np.zeros(S), np.zeros(S)
        s1 = qmi_stationary_kernel(Q1, n1, M1, c1, R, succ, prob, 0.9, cdf, on_policy, temperature, 0.2, harmonic,
                                   0.01, u, 3)
        s2 = qmi_stationary_python(Q2, n2, M2, c2, R, succ, prob, 0.9, cdf, on_policy, temperature, 0.2, harmonic,
                                   0.01, u, 3)
        assert s1 == s2
        np.testing.assert_allclose(Q1, Q2, rtol=0, atol=1e-12)
        np.testing.assert_allclose(M1, M2, rtol=0, atol=1e-12)
        assert np.array_equal(n1, n2) and np.array_equal(c1, c2) and c1.sum() == len(u)


def test_mean_field_estimate_follows_the_played_flow():
    # first outer iteration: Q = 0, so the off-policy behaviour is uniform; after many
    # episodes the exponential average M[t] is the uniform policy's exact flow up to
    # sampling noise (std ~ sqrt(beta / 2) * 0.5 < 0.012 per entry)
    game = mb.make("crowd-1d-v0")
    learner = QMI(game, QMIConfig(alpha=0.01, beta=1e-3, samples_per_iteration=90_000, temperature=1.0,
                                  exploration=0.0), np.random.default_rng(3))
    learner.step()
    flow = mb.distribution(game, mb.uniform_policy(game))[0]
    M = learner.mean_field_estimate[0]
    np.testing.assert_allclose(M.sum(axis=1), 1.0, atol=1e-12)
    assert np.abs(M - flow).max() < 0.06


def test_q_learning_reaches_best_response_to_the_frozen_estimate():
    # one outer iteration against the frozen initial estimate (uniform over states at every
    # t): Q-learning with a uniform behaviour converges to the exact optimal Q of that MDP
    game = mb.make("crowd-1d-v0")
    T, S = game.horizon, game.populations[0].n_states
    cfg = QMIConfig(alpha=0.02, alpha_schedule="constant", replay="forward", samples_per_iteration=400_000,
                    temperature=1e6)
    learner = QMI(game, cfg, np.random.default_rng(5))
    learner.step()
    frozen = (np.full((T + 1, S), 1.0 / S),)
    exact = best_response_along(model_along_flow(game, frozen)).q_values[0]
    assert np.abs(learner.q_values[0] - exact).max() < 0.3


@pytest.mark.parametrize("variant", ["off-policy", "on-policy"])
def test_ring_road_exploitability_falls_5x(variant):
    # the paper's settings (alpha = beta = 1e-3, 1e5 samples per outer iteration), 10 outer
    # iterations instead of 200
    game = mb.make("ring-road-v0")
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    learner = QMI(game, make_config("qmi", preset="paper", variant=variant), np.random.default_rng(0))
    for _ in range(10):
        info = learner.step()
    assert info["samples"] == 10 * 100_000
    assert mb.exploitability(game, learner.policy) < uniform / 5


@pytest.mark.parametrize("mean_field,output,factor", [("freeze", "softmax", 5), ("average", "average", 3)])
def test_finite_game_exploitability_falls(mean_field, output, factor):
    # time-indexed Q and M, episodes restarted from mu0, on the systemic-risk LQ game (where the
    # plain fixed-point iteration converges; the average carries the first, uniform iteration)
    game = mb.make("lq-v0")
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    learner = QMI(game, QMIConfig(mean_field=mean_field, policy_output=output, samples_per_iteration=50_000),
                  np.random.default_rng(1))
    for _ in range(10):
        learner.step()
    assert mb.exploitability(game, learner.policy) < uniform / factor


@pytest.mark.parametrize("game_id,variant", [("ring-road-v0", "on-policy"), ("ring-road-v0", "off-policy"),
                                             ("predator-prey-v0", "on-policy"), ("crowd-1d-v0", "off-policy")])
def test_same_seed_same_numbers(game_id, variant):
    game = mb.make(game_id)
    cfg = QMIConfig(variant=variant, samples_per_iteration=5000)
    runs = []
    for _ in range(2):
        learner = QMI(game, cfg, np.random.default_rng(42))
        for _ in range(3):
            learner.step()
        runs.append((learner.q_values, learner.mean_field_estimate, learner.policy))
    for a, b in zip(*runs):
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
    other = QMI(game, cfg, np.random.default_rng(43))
    other.step()
    assert not np.array_equal(other.q_values[0], runs[0][0][0]) or other.iteration != 3


def test_multi_population_one_agent_each():
    game = mb.make("predator-prey-v0")
    learner = QMI(game, QMIConfig(samples_per_iteration=900), np.random.default_rng(0))
    info = learner.step()
    assert info["samples"] == 3 * 900
    assert len(learner.policy) == 3
    for pi in mb.as_profile(game, learner.policy):
        np.testing.assert_allclose(pi.sum(axis=-1), 1.0)


def test_config_validation():
    with pytest.raises(ValueError, match="variant"):
        QMIConfig(variant="sideways")
    with pytest.raises(ValueError, match="alpha"):
        QMIConfig(alpha=0.0)
    with pytest.raises(ValueError, match="temperature"):
        QMIConfig(temperature=-1.0)
    with pytest.raises(ValueError, match="mean_field"):
        QMIConfig(mean_field="median")


def test_game_output_is_validated():
    from mfgbench.errors import GameError
    from mfgbench.games.predator_prey import PredatorPrey3

    class Broken(PredatorPrey3):
        def rewards(self, k, t, mf):
            R = super().rewards(k, t, mf)
            R[0, 0] = np.nan
            return R

    with pytest.raises(GameError, match="not finite"):
        QMI(Broken(), QMIConfig(samples_per_iteration=90)).step()


def test_two_populations_with_mean_field_dependent_kernel():
    # one agent per population; the kernel depends on the estimate (built once per iteration)
    game = mb.make("garnet-stationary-v0", K=2, kernel_coupling=0.5)
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    learner = QMI(game, QMIConfig(samples_per_iteration=50_000), np.random.default_rng(0))
    for _ in range(30):
        info = learner.step()
    assert info["samples"] == 2 * 30 * 50_000
    assert mb.exploitability(game, learner.policy) < uniform / 5


def test_kernels_renormalise_the_estimate_before_underflow(rng):
    # beta = 0.5: the running product (1 - beta)^n underflows after ~1000 steps without the rescaling
    R, succ, prob, g, mu0 = _random_finite(rng, T=3, static=True)
    T, S, A = R.shape
    behaviour = softmax(rng.normal(size=(T, S, A)), 1.0)
    u = rng.random((3000, 1 + 2 * T))
    M1, M2 = np.full((T + 1, S), 1.0 / S), np.full((T + 1, S), 1.0 / S)
    Q1, Q2 = np.zeros((T, S, A)), np.zeros((T, S, A))
    qmi_finite_kernel(Q1, np.zeros_like(Q1), M1, np.zeros_like(M1), R, succ, prob, g, mu0, behaviour, False, 1.0, 0.0,
                      0.1, False, False, 0.5, u, True)
    qmi_finite_python(Q2, np.zeros_like(Q2), M2, np.zeros_like(M2), R, succ, prob, g, mu0, behaviour, False, 1.0, 0.0,
                      0.1, False, False, 0.5, u, True)
    np.testing.assert_allclose(M1, M2, rtol=1e-9, atol=1e-12)
    cdf = np.cumsum(behaviour[0], axis=1)
    cdf[:, -1] = np.inf
    m1, m2 = np.full(S, 1.0 / S), np.full(S, 1.0 / S)
    q1, q2 = np.zeros((S, A)), np.zeros((S, A))
    v = rng.random((3000, 2))
    qmi_stationary_kernel(q1, np.zeros_like(q1), m1, np.zeros(S), R[0], succ[0], prob[0], 0.9, cdf, False, 1.0, 0.1,
                          False, 0.5, v, 0)
    qmi_stationary_python(q2, np.zeros_like(q2), m2, np.zeros(S), R[0], succ[0], prob[0], 0.9, cdf, False, 1.0, 0.1,
                          False, 0.5, v, 0)
    np.testing.assert_allclose(m1, m2, rtol=1e-9, atol=1e-12)
    assert np.all(np.isfinite(M1)) and abs(m1.sum() - 1) < 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["off-policy", "on-policy"])
def test_ring_road_paper_budget(variant):
    # the paper's full budget (200 outer iterations of 1e5 samples), three seeds
    game = mb.make("ring-road-v0")
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    for seed in range(3):
        learner = QMI(game, make_config("qmi", preset="paper", variant=variant), np.random.default_rng(seed))
        for _ in range(200):
            learner.step()
        assert mb.exploitability(game, learner.policy) < uniform / 10


@pytest.mark.slow
def test_predator_prey_with_optimistic_start():
    game = mb.make("predator-prey-v0")
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    cfg = QMIConfig()
    learner = QMI(game, cfg, np.random.default_rng(0))
    for _ in range(30):
        learner.step()
    assert mb.exploitability(game, learner.policy) < uniform / 5


@pytest.mark.slow
def test_ring_road_paper_budget_with_the_shipped_tuned_config():
    # issue 16's target: <= 3e-4 at the paper's budget (200 outer iterations of 1e5 samples)
    from mfgbench.learners.tuned import tuned_config
    game = mb.make("ring-road-v0")
    cfg = make_config("qmi", **tuned_config("qmi", "ring-road-v0", "stationary"))
    for seed in range(3):
        learner = QMI(game, cfg, np.random.default_rng(seed))
        for _ in range(200):
            learner.step()
        assert learner.samples == 200 * 100_000
        assert mb.exploitability(game, learner.policy) <= 3e-4
