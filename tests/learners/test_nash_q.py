"""Nash-Q: the stage-game solver (independent no-deviation check, classic games), the
mean-field learner (kernels vs twins, predator-prey exploitability falls >= 5x), classic
Nash-Q on Grid Game 1 (known equilibrium values of Hu & Wellman 2003), and seeding."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mfgbench as mb
from mfgbench.learners.grid_game import DOWN, LEFT, RIGHT, UP, GridGame1
from mfgbench.learners.nash_q import (MeanFieldNashQ, NashQ, NashQ2PConfig, NashQConfig, draw_actions,
                                      draw_actions_python, draw_states, draw_states_python, move_agents,
                                      move_agents_python, q_update, q_update_python)
from mfgbench.learners.fictitious_play import softmax
from mfgbench.learners.stage_games import nash_equilibria, solve_bimatrix, solve_bimatrix_python


# -- stage games ------------------------------------------------------------------------------
def no_profitable_deviation(A, B, x, y, tol=1e-7):
    """Independent check: every pure deviation of either player gains at most tol."""
    x, y = np.asarray(x), np.asarray(y)
    assert np.all(x >= -1e-12) and np.all(y >= -1e-12)
    assert abs(x.sum() - 1) < 1e-9 and abs(y.sum() - 1) < 1e-9
    v1 = sum(x[i] * A[i, j] * y[j] for i in range(A.shape[0]) for j in range(A.shape[1]))
    v2 = sum(x[i] * B[i, j] * y[j] for i in range(A.shape[0]) for j in range(A.shape[1]))
    scale = max(1.0, np.abs(A).max(), np.abs(B).max())
    for i in range(A.shape[0]):
        if sum(A[i, j] * y[j] for j in range(A.shape[1])) > v1 + tol * scale:
            return False
    for j in range(A.shape[1]):
        if sum(x[i] * B[i, j] for i in range(A.shape[0])) > v2 + tol * scale:
            return False
    return True


payoffs = st.integers(2, 4).flatmap(lambda m: st.integers(2, 4).flatmap(lambda n: st.tuples(
    arrays(np.float64, (m, n), elements=st.floats(-10, 10, allow_nan=False, width=32)),
    arrays(np.float64, (m, n), elements=st.floats(-10, 10, allow_nan=False, width=32)))))


@settings(deadline=None, max_examples=150)
@given(payoffs, st.sampled_from(["first", "welfare"]))
def test_stage_solver_returns_a_nash_equilibrium(game, selection):
    A, B = game
    eq = solve_bimatrix(A, B, selection)
    assert no_profitable_deviation(A, B, eq.x, eq.y)
    assert eq.values[0] == pytest.approx(eq.x @ A @ eq.y)
    for e in nash_equilibria(A, B):
        assert no_profitable_deviation(A, B, e.x, e.y)


degenerate_payoffs = st.integers(2, 4).flatmap(lambda m: st.integers(2, 4).flatmap(lambda n: st.tuples(
    arrays(np.float64, (m, n), elements=st.integers(-2, 2).map(float)),
    arrays(np.float64, (m, n), elements=st.integers(-2, 2).map(float)))))


@settings(deadline=None, max_examples=150)
@given(degenerate_payoffs, st.sampled_from(["first", "welfare"]))
def test_stage_solver_on_degenerate_games(game, selection):
    # small integer payoffs: ties everywhere, equilibria with supports of unequal size
    A, B = game
    eq = solve_bimatrix(A, B, selection)
    assert no_profitable_deviation(A, B, eq.x, eq.y)


@settings(deadline=None, max_examples=100)
@given(payoffs, st.sampled_from(["first", "welfare"]))
@example(game=(np.array([[4., 4.], [4., 4.], [4., 0.], [4., 0.]]),
               np.array([[0., 0.], [-1., 0.], [0., 0.], [0., 0.]])), selection="welfare")
def test_stage_kernel_matches_numpy_twin(game, selection):
    A, B = game
    # generic games only: on ties the two may return different (equally valid) equilibria; the
    # perturbations of A and B must not sum to a constant, or welfare ties between equilibria survive
    A = A + np.arange(A.size).reshape(A.shape) * 1e-3
    B = B + np.arange(B.size)[::-1].reshape(B.shape) * 2e-3
    e, f = solve_bimatrix(A, B, selection), solve_bimatrix_python(A, B, selection)
    np.testing.assert_allclose(e.x, f.x, atol=1e-9)
    np.testing.assert_allclose(e.y, f.y, atol=1e-9)


def test_matching_pennies():
    A = np.array([[1.0, -1.0], [-1.0, 1.0]])
    (eq,) = nash_equilibria(A, -A)
    np.testing.assert_allclose(eq.x, [0.5, 0.5])
    np.testing.assert_allclose(eq.y, [0.5, 0.5])
    assert eq.values == pytest.approx((0.0, 0.0))


def test_battle_of_the_sexes():
    A = np.array([[2.0, 0.0], [0.0, 1.0]])
    B = np.array([[1.0, 0.0], [0.0, 2.0]])
    eqs = nash_equilibria(A, B)
    assert len(eqs) == 3
    got = sorted((tuple(np.round(e.x, 12)), tuple(np.round(e.y, 12))) for e in eqs)
    want = sorted([((1.0, 0.0), (1.0, 0.0)), ((0.0, 1.0), (0.0, 1.0)),
                   ((round(2 / 3, 12), round(1 / 3, 12)), (round(1 / 3, 12), round(2 / 3, 12)))])
    assert got == want
    mixed = [e for e in eqs if 0 < e.x[0] < 1][0]
    assert mixed.values == pytest.approx((2 / 3, 2 / 3))
    assert solve_bimatrix(A, B, "welfare").values in ((2.0, 1.0), (1.0, 2.0))


def test_rock_paper_scissors_and_prisoners_dilemma():
    A = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    eq = solve_bimatrix(A, -A)
    np.testing.assert_allclose(eq.x, np.full(3, 1 / 3))
    np.testing.assert_allclose(eq.y, np.full(3, 1 / 3))
    A = np.array([[-1.0, -3.0], [0.0, -2.0]])  # row 1 = defect dominates
    eq = solve_bimatrix(A, A.T)
    assert eq.x.tolist() == [0.0, 1.0] and eq.y.tolist() == [0.0, 1.0]


def test_degenerate_game_without_pure_or_equal_support_equilibrium():
    # matching pennies with a duplicated column: the equilibria mix 2 rows against 3 columns
    A = np.array([[1.0, -1.0, -1.0], [-1.0, 1.0, 1.0]])
    eq = solve_bimatrix(A, -A)
    assert no_profitable_deviation(A, -A, eq.x, eq.y)


# -- mean-field Nash-Q ------------------------------------------------------------------------------
def test_agent_kernels_match_python_twins(rng):
    S, A, B, N = 6, 3, 4, 500
    mu0 = rng.dirichlet(np.ones(S))
    pi_t = softmax(rng.normal(size=(S, A)), 0.5)
    succ = rng.integers(0, S, size=(S, A, B))
    prob = rng.dirichlet(np.ones(B), size=(S, A))
    u = rng.random((3, N))
    s = draw_states(mu0, u[0])
    assert np.array_equal(s, draw_states_python(mu0, u[0]))
    for epsilon, count_all in [(0.0, True), (0.2, True), (0.2, False)]:
        on1 = rng.random(N) < 0.7
        on2 = on1.copy()
        mu1, mu2, L1, L2 = np.zeros(S), np.zeros(S), np.zeros((S, A)), np.zeros((S, A))
        a = draw_actions(pi_t, s, u[1], epsilon, count_all, on1, mu1, L1)
        assert np.array_equal(a, draw_actions_python(pi_t, s, u[1], epsilon, count_all, on2, mu2, L2))
        assert np.array_equal(on1, on2)
        np.testing.assert_allclose(mu1, mu2, atol=1e-12)
        np.testing.assert_allclose(L1, L2, atol=1e-12)
        np.testing.assert_allclose([mu1.sum(), L1.sum()], 1.0)
    s2 = move_agents(s, a, succ, prob, u[2])
    assert np.array_equal(s2, move_agents_python(s, a, succ, prob, u[2]))
    R, V = rng.normal(size=(S, A)), rng.normal(size=S)
    Q1, Q2 = rng.normal(size=(S, A)), None
    Q2 = Q1.copy()
    n1, n2 = np.ones((S, A)), np.ones((S, A))
    spread1, spread2, dof1, dof2 = np.zeros((S, A)), np.zeros((S, A)), np.zeros((S, A)), np.zeros((S, A))
    for floor, tolerance2 in ((0.0, 0.0), (0.5, 0.0), (0.5, 0.05), (0.5, 0.05)):
        q_update(Q1, n1, s, a, R, s2, V, 0.6, floor, tolerance2, spread1, dof1)
        q_update_python(Q2, n2, s, a, R, s2, V, 0.6, floor, tolerance2, spread2, dof2)
        np.testing.assert_allclose(Q1, Q2, rtol=0, atol=1e-12)
        np.testing.assert_allclose(spread1, spread2, rtol=1e-12, atol=1e-12)
        assert np.array_equal(n1, n2) and np.array_equal(dof1, dof2)


def test_empirical_flow_matches_exact_flow():
    # at the start Q = 0, so agents act uniformly: the empirical flow of N agents is the
    # uniform policy's exact flow up to sampling error (std <= 0.5 / sqrt(N))
    game = mb.make("predator-prey-v0")
    learner = MeanFieldNashQ(game, NashQConfig(n_agents=20_000, epsilon=0.0), np.random.default_rng(0))
    flow = learner.episode()
    exact = mb.distribution(game, mb.uniform_policy(game))
    for k in range(3):
        assert np.abs(flow[k] - exact[k]).max() < 5 * 0.5 / np.sqrt(20_000)


def test_predator_prey_exploitability_falls_5x():
    game = mb.make("predator-prey-v0")
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    learner = MeanFieldNashQ(game, NashQConfig(), np.random.default_rng(0))
    for _ in range(30):
        info = learner.step()
    assert info["samples"] == 30 * 5 * 1000 * game.horizon * 3
    assert mb.exploitability(game, learner.policy) < uniform / 5


def test_mean_field_nash_q_same_seed_same_numbers():
    game = mb.make("predator-prey-v0")
    cfg = NashQConfig(n_agents=300, episodes_per_iteration=2)
    runs = []
    for _ in range(2):
        learner = MeanFieldNashQ(game, cfg, np.random.default_rng(7))
        for _ in range(3):
            learner.step()
        runs.append(learner.q_values)
    for x, y in zip(*runs):
        assert np.array_equal(x, y)


def test_noise_tolerance_sets_the_stationary_noise_of_q():
    # one cell, c = 4 agents per batch, each landing on a next state of value +1 or -1 with
    # probability 1/2 (target variance sigma^2 = 1, mean 0): with the tolerance the floor is the
    # constant step whose stationary variance step / (2 - step) sigma^2 / c is tolerance^2, and
    # Monte Carlo over 20,000 batches finds that variance; deterministic targets keep alpha_floor
    rng = np.random.default_rng(3)
    c, tolerance2, batches = 4, 0.01, 20_000
    states, actions = np.zeros(c, dtype=np.int64), np.zeros(c, dtype=np.int64)
    R, V = np.zeros((1, 1)), np.array([1.0, -1.0])
    Q, n, spread, dof = np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1))
    trace = np.empty(batches)
    for i in range(batches):
        q_update(Q, n, states, actions, R, rng.integers(0, 2, size=c), V, 1.0, 0.5, tolerance2, spread, dof)
        trace[i] = Q[0, 0]
    assert dof[0, 0] == batches * (c - 1)
    assert spread[0, 0] / dof[0, 0] == pytest.approx(1.0, rel=0.02)     # pooled within-batch variance
    assert trace[batches // 10:].var() == pytest.approx(tolerance2, rel=0.15)
    without = np.zeros((1, 1))
    q_update(without, np.full((1, 1), 1e6), states, actions, R, np.zeros(c, dtype=np.int64), V, 1.0, 0.5,
             tolerance2, np.zeros((1, 1)), np.zeros((1, 1)))
    assert without[0, 0] == pytest.approx(0.5)          # sigma = 0: the step is alpha_floor


def test_linear_average_weighting_weighs_episode_n_by_n():
    # after three episodes the averaged mean field is (1 f1 + 2 f2 + 3 f3) / 6 of the episodes'
    # empirical flows with linear weights, their plain mean with uniform ones
    game = mb.make("crowd-1d-v0")
    for weighting, w in ((1.0, np.array([1.0, 2.0, 3.0])), (0.0, np.ones(3))):
        learner = MeanFieldNashQ(game, NashQConfig(n_agents=200, average_weighting=weighting), np.random.default_rng(0))
        flows = [learner.episode()[0] for _ in range(3)]
        expected = sum(wi * f for wi, f in zip(w, flows)) / w.sum()
        np.testing.assert_allclose(learner._flow_sum[0] / learner._weight_sum, expected, atol=1e-12)


def test_default_beats_uniform_on_sir_types_where_the_old_default_did_not():
    # sir-types-v0 (two types; an old agent's stay in hospital is a rare, very noisy cell): at a
    # small budget the default (noise tolerance, linear averaging) ends well below the uniform
    # policy's exact exploitability and at most half of the old default's (floor 1/2 everywhere,
    # uniform averages), which hovers near uniform there
    game = mb.make("sir-types-v0")
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    for seed in (0, 1):
        final = {}
        for label, cfg in (("new", NashQConfig()),
                           ("old", NashQConfig(noise_tolerance=None, average_weighting=0.0))):
            learner = MeanFieldNashQ(game, cfg, np.random.default_rng(seed))
            for _ in range(50):
                learner.step()
            final[label] = mb.exploitability(game, learner.policy)
        assert final["new"] < uniform / 1.5
        assert final["new"] < final["old"] / 2


# -- classic Nash-Q on Grid Game 1 ---------------------------------------------------------------
def test_grid_game_known_equilibrium_values():
    game = GridGame1()
    V = game.nash_values()
    s0 = game.initial_state
    assert V[:, s0] == pytest.approx([100 * 0.99 ** 3] * 2, abs=1e-9)
    Q = game.stage_game(V, s0)
    # both moving into the middle bottom cell: bounce (-1), then the start again
    assert Q[:, RIGHT, LEFT] == pytest.approx([-1 + 0.99 * 100 * 0.99 ** 3] * 2, abs=1e-9)
    assert Q[:, UP, UP] == pytest.approx([100 * 0.99 ** 3] * 2, abs=1e-9)
    # one step before both goals (player 1 below 8, player 2 right of 6): both earn 100
    s = game.state(5, 7)
    assert game.rewards[:, s, UP, LEFT].tolist() == [100.0, 100.0]
    assert game.terminal[game.succ[s, UP, LEFT, 0]]
    assert game.succ[game.state(0, 2), DOWN, DOWN, 0] == game.state(0, 2)


def test_nash_q_reaches_grid_game_values_within_5_percent():
    game = GridGame1()
    learner = NashQ(game, NashQ2PConfig(episodes_per_iteration=1000), np.random.default_rng(0))
    for _ in range(5):
        info = learner.step()
    target = game.VALUE_AT_START
    assert info["values"][0] == pytest.approx(target, rel=0.05)
    assert info["values"][1] == pytest.approx(target, rel=0.05)
    x, y = learner.policy(game.initial_state)
    Q = learner.Q[:, game.initial_state]
    assert no_profitable_deviation(Q[0], Q[1], x, y)


def test_classic_nash_q_same_seed_same_numbers():
    game = GridGame1()
    runs = []
    for _ in range(2):
        learner = NashQ(game, NashQ2PConfig(episodes_per_iteration=50), np.random.default_rng(11))
        learner.step()
        runs.append(learner.Q.copy())
    assert np.array_equal(runs[0], runs[1])


def test_config_validation():
    with pytest.raises(ValueError, match="alpha_power"):
        NashQConfig(alpha_power=0.4)
    with pytest.raises(ValueError, match="n_agents"):
        NashQConfig(n_agents=0)
    with pytest.raises(ValueError, match="selection"):
        NashQ2PConfig(selection="random")
    with pytest.raises(ValueError, match="behaviour"):
        NashQConfig(behaviour="epsilon-greedy")
    with pytest.raises(ValueError, match="epsilon"):
        NashQConfig(epsilon=1.0)
    with pytest.raises(ValueError, match="noise_tolerance"):
        NashQConfig(noise_tolerance=0.0)
    with pytest.raises(ValueError, match="average_weighting"):
        NashQConfig(average_weighting=-1.0)


def test_game_output_is_validated():
    from mfgbench.errors import GameError
    from mfgbench.games.predator_prey import PredatorPrey3

    class Broken(PredatorPrey3):
        def rewards(self, k, t, mf):
            R = super().rewards(k, t, mf)
            R[0, 0] = np.inf
            return R

    with pytest.raises(GameError, match="not finite"):
        MeanFieldNashQ(Broken(), NashQConfig(n_agents=10)).step()
