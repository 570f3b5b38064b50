"""Particle environment: Gymnasium contract, seeding, input validation, and agreement with the PDE.

The particle system with a fixed feedback control must reproduce, within Monte Carlo error, the
Fokker–Planck flow and the cost that ``reference_solvers.pde.policy.evaluate_control`` computes
for the same control. The PDE's own (first-order) discretisation error is estimated in the test
by the change from a grid twice as coarse.
"""
import numpy as np
import pytest

import mfgbench as mb
from mfgbench.learners.neural.env import Interpolator, ParticleEnv
from reference_solvers.pde.grid import Grid
from reference_solvers.pde.policy import evaluate_control


def _ks_bound(n, family_alpha, n_tests):
    """Critical Kolmogorov–Smirnov distance for n samples at family-wise level alpha (Bonferroni, DKW)."""
    return np.sqrt(np.log(2 * n_tests / family_alpha) / (2 * n))


def _cdf_gap(samples, density, grid):
    """sup over cell edges of |empirical CDF - CDF of the grid density|."""
    edges = np.array(grid.lo[0]) + np.arange(1, grid.size + 1) * grid.h[0]
    F = np.cumsum(density) * grid.dv
    Fn = np.searchsorted(np.sort(samples), edges, side="right") / len(samples)
    return np.abs(F - Fn).max()


def _run(env, control, seed):
    obs, _ = env.reset(seed=seed)
    xs, ret = [obs["x"]], [np.zeros(env.n_agents) for _ in range(env.K)]
    for n in range(env.n_steps):
        acts = tuple(control[k](n * env.dt, obs["x"][k].T) for k in range(env.K))
        obs, rewards, terminated, truncated, _ = env.step(acts)
        xs.append(obs["x"])
        for k in range(env.K):
            ret[k] += rewards[k]
    return xs, ret


@pytest.mark.parametrize("game_id,controls,nx,nt", [
    ("lq-continuous-v0", (lambda t, x: -0.8 * (x[0] - 0.5) + 0.5 * np.sin(3 * t),), 480, 200),
    ("lq-2pop-continuous-v0", (lambda t, x: 0.5 - 0.7 * x[0],
                               lambda t, x: -0.3 - 0.5 * x[0] + 0.2 * np.sin(2 * t)), 480, 200),
    ("segregation-2pop-v0", (lambda t, x: 0.6 * np.sin(2 * np.pi * x[0]),
                             lambda t, x: -0.4 * np.cos(2 * np.pi * x[0]) + 0.3), 400, 200),
])
def test_particle_flow_and_cost_match_the_pde(game_id, controls, nx, nt):
    game = mb.make(game_id)
    N, steps = 20_000, 100
    fine = evaluate_control(game, controls if game.n_populations > 1 else controls[0], nx, nt)
    coarse = evaluate_control(game, controls if game.n_populations > 1 else controls[0], nx // 2, nt // 2)
    env = ParticleEnv(game, n_agents=N, n_steps=steps, nx=nx)
    xs, returns = _run(env, controls, seed=3)
    grid = fine.problem.grid
    check_steps = (0, 25, 50, 100)
    bound = _ks_bound(N, 1e-3, len(check_steps) * game.n_populations)
    for k in range(game.n_populations):
        for j in check_steps:
            n = j * nt // steps
            # PDE error estimate: the CDF change from the grid twice as coarse (first-order scheme).
            Fc = np.repeat(np.cumsum(coarse.m[k][n * (nt // 2) // nt]) * coarse.problem.dv, 2)
            Ff = np.cumsum(fine.m[k][n]) * grid.dv
            pde_err = np.abs(Ff - Fc).max()
            gap = _cdf_gap(xs[j][k][:, 0], fine.m[k][n], grid)
            assert gap <= bound + pde_err, (k, j, gap, bound, pde_err)
        # cost: mean return of the agents against J(alpha) = int u^alpha(0) m0
        se = returns[k].std() / np.sqrt(N)
        pde_err = abs(fine.cost[k] - coarse.cost[k])
        assert abs(-returns[k].mean() - fine.cost[k]) <= 4 * se + pde_err, \
            (k, -returns[k].mean(), fine.cost[k], se, pde_err)


def test_gymnasium_contract_and_histogram():
    game = mb.make("segregation-2pop-v0")
    env = ParticleEnv(game, n_agents=500, n_steps=4, nx=50)
    obs, info = env.reset(seed=0)
    assert set(obs) == {"t", "x", "m"} and obs["t"] == 0.0
    for k in range(2):
        assert obs["x"][k].shape == (500, 1)
        assert np.all((obs["x"][k] >= 0) & (obs["x"][k] < 1))
        assert obs["m"][k].shape == (50,)
        assert np.isclose(obs["m"][k].sum() * env.dv, 1.0)
    zeros = (np.zeros(500), np.zeros((500, 1)))
    for n in range(4):
        obs, rewards, terminated, truncated, info = env.step(zeros)
        assert terminated == (n == 3) and truncated is False
        assert len(rewards) == 2 and rewards[0].shape == (500,) and np.all(np.isfinite(rewards[0]))
        assert np.isclose(obs["t"], (n + 1) * game.horizon / 4)
    with pytest.raises(RuntimeError, match="terminated"):
        env.step(zeros)


def test_box_reflects_into_the_domain():
    game = mb.make("lq-continuous-v0", half_width=2.0, x0=0.5, s0=0.5)
    env = ParticleEnv(game, n_agents=2000, n_steps=10, nx=40)
    env.reset(seed=1)
    for _ in range(10):
        obs, *_ = env.step((np.full(2000, 3.0),))  # push everyone into the right wall
        assert np.all((obs["x"][0] >= -2.0) & (obs["x"][0] <= 2.0))
        assert np.isclose(obs["m"][0].sum() * env.dv, 1.0)


def test_same_seed_same_particles_and_rewards():
    game = mb.make("lq-continuous-v0")
    a, b = ParticleEnv(game, 300, 5), ParticleEnv(game, 300, 5)
    oa, _ = a.reset(seed=42)
    ob, _ = b.reset(seed=42)
    np.testing.assert_array_equal(oa["x"][0], ob["x"][0])
    for _ in range(5):
        oa, ra, *_ = a.step((np.ones(300),))
        ob, rb, *_ = b.step((np.ones(300),))
        np.testing.assert_array_equal(oa["x"][0], ob["x"][0])
        np.testing.assert_array_equal(ra[0], rb[0])
    assert not np.array_equal(a.reset(seed=43)[0]["x"][0], b.reset(seed=42)[0]["x"][0])


def test_step_validates_actions():
    game = mb.make("exit-room-2d-v0", control_bound=1.0)
    env = ParticleEnv(game, n_agents=10, n_steps=3, nx=8)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step((np.zeros((10, 2)),))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step((np.zeros(10),))
    with pytest.raises(ValueError, match="finite"):
        env.step((np.full((10, 2), np.nan),))
    with pytest.raises(ValueError, match="control bound"):
        env.step((np.full((10, 2), 1.5),))
    with pytest.raises(ValueError, match="continuous"):
        ParticleEnv(mb.make("crowd-1d-v0"))
    with pytest.raises(ValueError, match="n_agents"):
        ParticleEnv(game, n_agents=0)


@pytest.mark.parametrize("periodic", [False, True])
def test_interpolation_is_exact_on_linear_functions_inside(periodic, rng):
    grid = Grid((0.0, 0.0), (1.0, 2.0), (8, 10), periodic)
    pts = grid.points
    vals = 2.0 * pts[0] - 0.5 * pts[1] + 1.0
    X = np.stack([rng.uniform(grid.h[0] / 2, 1 - grid.h[0] / 2, 50),
                  rng.uniform(grid.h[1] / 2, 2 - grid.h[1] / 2, 50)], axis=1)
    np.testing.assert_allclose(Interpolator(grid)(vals, X), 2.0 * X[:, 0] - 0.5 * X[:, 1] + 1.0, atol=1e-12)


def test_frozen_flow_sets_the_costs_and_leaves_the_observed_densities_empirical():
    """segregation-2pop-v0 pays cross * m_other + self_aversion * m_own (running and terminal): facing
    uniform densities (1 on the unit torus) every agent pays (1 + 0.2) per unit time and 1.2 at T,
    whatever the particles do."""
    game = mb.make("segregation-2pop-v0")
    env = ParticleEnv(game, n_agents=300, n_steps=4)
    env.set_flow(tuple(np.ones((5, env.grid.size)) for _ in range(2)))
    obs, _ = env.reset(seed=3)
    zeros = tuple(np.zeros((300, 1)) for _ in range(2))
    for n in range(4):
        obs, rewards, terminated, _, _ = env.step(zeros)
        expected = -env.dt * 1.2 - (1.2 if n == 3 else 0.0)
        for k in range(2):
            np.testing.assert_allclose(rewards[k], expected, rtol=1e-12)
            np.testing.assert_allclose(obs["m"][k], env.histogram(obs["x"][k]))
    env.set_flow(None)
    env.reset(seed=3)
    _, rewards, _, _, _ = env.step(zeros)
    assert np.std(rewards[0]) > 0  # empirical densities again: the cost varies from agent to agent
    with pytest.raises(ValueError, match="set_flow"):
        env.set_flow((np.ones((4, env.grid.size)), np.ones((5, env.grid.size))))
    with pytest.raises(ValueError, match="set_flow"):
        env.set_flow((-np.ones((5, env.grid.size)), np.ones((5, env.grid.size))))


def test_test_particles_move_and_pay_but_do_not_shape_the_density():
    game = mb.make("segregation-2pop-v0")
    env = ParticleEnv(game, n_agents=30, n_steps=2, nx=20, n_density=20)
    obs, _ = env.reset(seed=4)
    for k in range(2):
        np.testing.assert_array_equal(obs["m"][k], env.histogram(obs["x"][k][:20]))
    # moving only the test particles leaves the density where the first 20 agents put it
    acts = tuple(np.concatenate([np.zeros((20, 1)), np.full((10, 1), 0.7)]) for _ in range(2))
    obs, rewards, *_ = env.step(acts)
    for k in range(2):
        np.testing.assert_array_equal(obs["m"][k], env.histogram(obs["x"][k][:20]))
        assert obs["x"][k].shape == (30, 1) and rewards[k].shape == (30,)
        assert np.isclose(obs["m"][k].sum() * env.dv, 1.0)
    with pytest.raises(ValueError, match="n_density"):
        ParticleEnv(game, n_agents=30, n_steps=2, n_density=31)
