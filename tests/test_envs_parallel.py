"""parallel_env and the particle environments: PettingZoo's API and seed tests, the vector environment's
contract, and the empirical mean field against the game's own functions and the exact flow."""
import warnings

import numpy as np
import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("pettingzoo")
from gymnasium.utils import env_checker  # noqa: E402
from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

import mfgbench as mb  # noqa: E402
from mfgbench.envs import ParticleVectorEnv, parallel_env, particle_parallel_env  # noqa: E402
from mfgbench.games import MeanField  # noqa: E402
from mfgbench.learners.neural.env import ParticleEnv  # noqa: E402


def _no_warnings(check):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check()
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("observation", ["multidiscrete", "discrete", "onehot"])
@pytest.mark.parametrize("game_id", ["crowd-1d-v0", "predator-prey-v0", "garnet-stationary-v0", "beach-bar-v0"])
def test_parallel_env_passes_the_pettingzoo_api_and_seed_tests(game_id, observation):
    game = mb.make(game_id)
    horizon = 15 if game.kind == "stationary" else None
    _no_warnings(lambda: parallel_api_test(parallel_env(game, 4, seed=0, observation=observation, horizon=horizon)))
    _no_warnings(lambda: parallel_seed_test(lambda: parallel_env(game, 4, observation=observation, horizon=horizon)))


@pytest.mark.parametrize("game_id", ["predator-prey-v0", "equilibrium-price-v0", "traffic-2type-v0"])
def test_rewards_and_moves_follow_the_game_at_the_empirical_mean_field(game_id, rng):
    """Every agent earns R_t[s, a] of the game evaluated at the empirical (mu^N_t, L^N_t) of all
    populations (recounted here from the observations and actions), and moves to a successor the game
    gives positive probability there. equilibrium-price-v0 reads L_t; predator-prey and traffic couple
    populations."""
    game = mb.make(game_id)
    N = 30
    env = parallel_env(game, N, seed=4)
    obs, _ = env.reset()
    pops = game.populations
    for t in range(game.horizon):
        states = [np.array([obs[a][1] for a in env.agents if env._population_of[a][0] == k]) for k in range(len(pops))]
        actions = {a: int(rng.integers(pops[env._population_of[a][0]].n_actions)) for a in env.agents}
        acts = [np.array([actions[a] for a in env.agents if env._population_of[a][0] == k]) for k in range(len(pops))]
        mu = tuple(np.bincount(s, minlength=p.n_states) / N for s, p in zip(states, pops))
        L = []
        for s, a, p in zip(states, acts, pops):
            m = np.zeros((p.n_states, p.n_actions))
            np.add.at(m, (s, a), 1.0 / N)
            L.append(m)
        mf = MeanField(t, mu, tuple(L))
        agents = list(env.agents)
        obs, rewards, terminated, truncated, _ = env.step(actions)
        last = t == game.horizon - 1
        if last:
            mu_T = tuple(np.bincount([obs[a][1] for a in agents if env._population_of[a][0] == k],
                                     minlength=p.n_states) / N for k, p in enumerate(pops))
            g = [game.terminal(k, MeanField(game.horizon, mu_T, (None,) * len(pops))) for k in range(len(pops))]
        for a in agents:
            k, i = env._population_of[a]
            R = game.rewards(k, t, mf)
            expected = R[states[k][i], acts[k][i]] + (g[k][obs[a][1]] if last else 0.0)
            assert rewards[a] == pytest.approx(expected, rel=1e-12, abs=1e-12)
            succ, prob = game.transitions(k, t, mf)
            reachable = succ[states[k][i], acts[k][i]][prob[states[k][i], acts[k][i]] > 0]
            assert obs[a][1] in reachable and obs[a][0] == t + 1
            assert terminated[a] == last and not truncated[a]
    assert env.agents == []


def test_empirical_flow_tends_to_the_exact_flow():
    """crowd-1d-v0's moves do not depend on the mean field: with uniform actions the N agents are
    independent and #{agents in s at t} is Binomial(N, mu_t(s)) for the exact flow mu of the uniform
    policy. Every (t, s) within 4.5 binomial standard deviations (family-wise level ~1e-3)."""
    game = mb.make("crowd-1d-v0")
    N = 4000
    exact = mb.distribution(game, mb.uniform_policy(game))[0]
    env = parallel_env(game, N, seed=11)
    env.reset()
    action_rng = np.random.default_rng(12)
    for t in range(game.horizon + 1):
        mu_N = env.empirical_distribution()[0]
        sd = np.sqrt(exact[t] * (1 - exact[t]) / N)
        assert np.all(np.abs(mu_N - exact[t]) <= 4.5 * sd + 1e-12), t
        if t < game.horizon:
            env.step({a: int(action_rng.integers(3)) for a in env.agents})


def test_parallel_env_bad_input():
    game = mb.make("crowd-1d-v0")
    env = parallel_env(game, 3, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})
    env.reset()
    with pytest.raises(ValueError, match="no action for agent 'crowd_0'"):
        env.step({"crowd_1": 0, "crowd_2": 0})
    with pytest.raises(ValueError, match=r"agent 'crowd_2' \(population 0, state \d+\): action"):
        env.step({"crowd_0": 0, "crowd_1": 0, "crowd_2": 5})
    with pytest.raises(KeyError, match="no agent"):
        env.observation_space("prey_0")
    with pytest.raises(ValueError, match="n_agents"):
        parallel_env(game, 0)
    with pytest.raises(ValueError, match="continuous"):
        parallel_env(mb.make("lq-continuous-v0"), 3)


# ---------------------------------------------------------------------- particle environments
@pytest.mark.parametrize("game_id", ["segregation-2pop-v0", "lq-continuous-v0", "exit-room-2d-v0"])
def test_particle_parallel_env_passes_the_pettingzoo_api_and_seed_tests(game_id):
    game = mb.make(game_id)
    _no_warnings(lambda: parallel_api_test(particle_parallel_env(game, 4, n_steps=5, nx=16, seed=0)))
    _no_warnings(lambda: parallel_seed_test(lambda: particle_parallel_env(game, 4, n_steps=5, nx=16)))


@pytest.mark.parametrize("game_id", ["lq-continuous-v0", "exit-room-2d-v0"])
def test_particle_vector_env_contract(game_id):
    """Gymnasium 1.x ships no checker for vector environments: its env checker's reset checks (return
    type, seed determinism, options), which only use the API the two kinds share, and the vector step
    contract (batched spaces, arrays of shape (num_envs,), determinism, fresh arrays, next-step autoreset)."""
    game = mb.make(game_id)
    n, steps = 6, 3
    env = ParticleVectorEnv(game, n, n_steps=steps, nx=16, seed=0)
    assert env.num_envs == n and env.observation_space.shape == (n, 1 + game.dim)
    _no_warnings(lambda: [check(env) for check in (env_checker.check_reset_return_type,
                                                   env_checker.check_reset_seed_determinism,
                                                   env_checker.check_reset_options)])

    def rollout(seed):
        env.action_space.seed(seed)
        obs, info = env.reset(seed=seed)
        out = [obs]
        assert isinstance(info, dict) and env.observation_space.contains(obs)
        for j in range(steps + 1):
            actions = env.action_space.sample()
            obs, rewards, terminated, truncated, info = env.step(actions)
            assert env.observation_space.contains(obs) and isinstance(info, dict)
            for arr, dtype in ((rewards, np.floating), (terminated, np.bool_), (truncated, np.bool_)):
                assert isinstance(arr, np.ndarray) and arr.shape == (n,) and np.issubdtype(arr.dtype, dtype)
            assert not truncated.any()
            assert terminated.all() == (j == steps - 1) and terminated.any() == terminated.all()
            if j == steps:   # the autoreset step: a new episode at t = 0, no reward
                assert np.all(obs[:, 0] == 0.0) and np.all(rewards == 0.0) and not terminated.any()
            else:
                assert np.allclose(obs[:, 0], (j + 1) * game.horizon / steps)
            out += [obs, rewards]
        return out

    first, second = rollout(5), rollout(5)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], rollout(6)[0])
    assert not np.shares_memory(first[1], first[3])


def test_particle_envs_give_the_particle_system_numbers():
    """Wrapping changes nothing: same seed and actions, the same positions and rewards as ParticleEnv."""
    game = mb.make("segregation-2pop-v0")
    n, steps = 5, 3
    plain = ParticleEnv(game, n_agents=n, n_steps=steps, nx=16, rng=np.random.default_rng(9))
    wrapped = particle_parallel_env(game, n, n_steps=steps, nx=16, seed=9)
    x, _ = plain.reset()
    obs, _ = wrapped.reset()
    act_rng = np.random.default_rng(0)
    for _ in range(steps):
        acts = tuple(act_rng.normal(size=(n, 1)) for _ in range(2))
        x, rewards, *_ = plain.step(acts)
        obs, reward, *_ = wrapped.step({f"{p.name}_{i}": acts[k][i] for k, p in enumerate(game.populations)
                                        for i in range(n)})
        for k, p in enumerate(game.populations):
            for i in range(n):
                np.testing.assert_array_equal(obs[f"{p.name}_{i}"][1:], x["x"][k][i])
                assert reward[f"{p.name}_{i}"] == rewards[k][i]
        for k in range(2):
            np.testing.assert_array_equal(wrapped.density[k], x["m"][k])
    one = mb.make("lq-continuous-v0")
    plain = ParticleEnv(one, n_agents=n, n_steps=steps, nx=16, rng=np.random.default_rng(9))
    vec = ParticleVectorEnv(one, n, n_steps=steps, nx=16, seed=9)
    x, _ = plain.reset()
    obs, _ = vec.reset()
    for _ in range(steps):
        a = act_rng.normal(size=(n, 1))
        x, rewards, *_ = plain.step((a,))
        obs, reward, *_ = vec.step(a)
        np.testing.assert_array_equal(obs[:, 1:], x["x"][0])
        np.testing.assert_array_equal(reward, rewards[0])


def test_particle_envs_bad_input():
    with pytest.raises(ValueError, match="particle_parallel_env"):
        ParticleVectorEnv(mb.make("segregation-2pop-v0"), 4)
    with pytest.raises(ValueError, match="continuous"):
        ParticleVectorEnv(mb.make("crowd-1d-v0"), 4)
    env = particle_parallel_env(mb.make("exit-room-2d-v0"), 2, n_steps=2, nx=8, seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(2,\)"):
        env.step({a: np.zeros(3) for a in env.agents})
