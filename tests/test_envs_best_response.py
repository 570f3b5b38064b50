"""BestResponseEnv: Gymnasium's env checker, and episode returns against the exact values along the flow.

The expected returns come from the core's exact evaluation (``mb.policy_value``, ``mb.best_response``,
``values_along``), which tests/test_core.py checks against Monte Carlo on its own; here the
environment's sampled episodes must reproduce them within 4 standard errors, and exactly on a game
with deterministic transitions.
"""
import warnings

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")
from gymnasium.utils.env_checker import check_env  # noqa: E402

import mfgbench as mb  # noqa: E402
from mfgbench.core import induced_model, values_along  # noqa: E402
from mfgbench.envs import BestResponseEnv  # noqa: E402

# one single-population game, one multi-population game (an agent of its third population), one stationary game
GAMES = [("crowd-1d-v0", 0), ("predator-prey-v0", 2), ("garnet-stationary-v0", 0)]


@pytest.mark.parametrize("observation", ["multidiscrete", "discrete", "onehot"])
@pytest.mark.parametrize("game_id,population", GAMES)
def test_check_env_passes_without_warnings(game_id, population, observation):
    env = BestResponseEnv(mb.make(game_id), population=population, seed=0, observation=observation)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)   # no render modes to check
    assert [str(w.message) for w in caught] == []


def _episode_returns(env, policy, n_episodes, rng, gamma=1.0):
    """Returns of n episodes where the agent draws a ~ policy[t, s] (policy[s] stationary)."""
    returns = np.empty(n_episodes)
    for i in range(n_episodes):
        _, info = env.reset()
        total, discount, done = 0.0, 1.0, False
        while not done:
            row = policy[info["state"]] if env.stationary else policy[info["t"], info["state"]]
            a = int(rng.choice(len(row), p=row))
            _, r, terminated, truncated, info = env.step(a)
            total += discount * r
            discount *= gamma
            done = terminated or truncated
        returns[i] = total
    return returns


@pytest.mark.parametrize("game_id,population", GAMES)
def test_uniform_random_return_matches_the_exact_value(game_id, population, rng):
    game = mb.make(game_id)
    k = population
    uniform = mb.uniform_policy(game)
    if game.kind == "stationary":
        env = BestResponseEnv(game, population=k, seed=1, horizon=120)
        # discounted returns of episodes truncated at H miss at most gamma^H max|R| / (1 - gamma)
        exact = float(mb.distribution(game, uniform)[k] @ mb.policy_value(game, uniform)[k])
        bias = game.gamma ** env.horizon * np.abs(env.model.rewards[k]).max() / (1 - game.gamma)
        returns = _episode_returns(env, uniform[k], 1000, rng, gamma=env.gamma)
    else:
        env = BestResponseEnv(game, population=k, seed=1)   # default flow: the uniform profile's
        exact = float(game.populations[k].mu0 @ mb.policy_value(game, uniform)[k][0])
        bias = 0.0
        returns = _episode_returns(env, uniform[k], 2000, rng)
    se = returns.std(ddof=1) / np.sqrt(len(returns))
    assert abs(returns.mean() - exact) <= 4 * se + bias, (returns.mean(), exact, se, bias)
    assert env.exact_return(uniform[k]) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("game_id,population", GAMES)
def test_exact_best_response_return_matches_v_br(game_id, population, rng):
    game = mb.make(game_id)
    k = population
    uniform = mb.uniform_policy(game)
    br = mb.best_response(game, uniform)
    if game.kind == "stationary":
        env = BestResponseEnv(game, population=k, seed=2, horizon=120)
        exact = float(mb.distribution(game, uniform)[k] @ br.values[k])
        bias = game.gamma ** env.horizon * np.abs(env.model.rewards[k]).max() / (1 - game.gamma)
        returns = _episode_returns(env, br.policy[k], 1000, rng, gamma=env.gamma)
    else:
        env = BestResponseEnv(game, population=k, seed=2)
        exact = float(game.populations[k].mu0 @ br.values[k][0])
        bias = 0.0
        returns = _episode_returns(env, br.policy[k], 2000, rng)
    se = returns.std(ddof=1) / np.sqrt(len(returns))
    assert abs(returns.mean() - exact) <= 4 * se + bias, (returns.mean(), exact, se, bias)
    env_br, env_value = env.best_response()
    assert env_value == pytest.approx(exact, rel=1e-12)
    assert env.exact_return(env_br) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("game_id", ["left-right-v0", "braess-v0", "equilibrium-price-v0"])
def test_best_response_return_is_v_br_exactly_with_deterministic_transitions(game_id):
    """Deterministic transitions and a greedy policy: every episode from s earns V^BR[0, s] itself."""
    game = mb.make(game_id)
    uniform = mb.uniform_policy(game)
    br = mb.best_response(game, uniform)
    env = BestResponseEnv(game, seed=0)
    for s in np.flatnonzero(game.populations[0].mu0 > 0):
        _, info = env.reset(options={"state": int(s)})
        total, done = 0.0, False
        while not done:
            a = int(np.argmax(br.policy[0][info["t"], info["state"]]))
            _, r, done, truncated, info = env.step(a)
            assert not truncated
            total += r
        assert total == pytest.approx(br.values[0][0, s], rel=1e-12, abs=1e-12)


def test_facing_another_flow_and_a_game_that_reads_the_state_action_measure(rng):
    """treasure-hunting-v0's rewards and transitions read L_t: after set_population_policy(pi) the agent
    faces the flow and the state-action measures of pi; an agent playing sigma then earns <mu0, V^sigma>
    along that model."""
    game = mb.make("treasure-hunting-v0")
    T, S, A = game.horizon, game.populations[0].n_states, game.populations[0].n_actions
    pi = rng.dirichlet(np.ones(A), size=(T, S))
    sigma = rng.dirichlet(np.ones(A), size=(T, S))
    model = induced_model(game, pi)
    exact = float(game.populations[0].mu0 @ values_along(model, (sigma,))[0][0])
    env = BestResponseEnv(game, seed=3)
    env.set_population_policy(pi)
    returns = _episode_returns(env, sigma, 3000, rng)
    se = returns.std(ddof=1) / np.sqrt(len(returns))
    assert abs(returns.mean() - exact) <= 4 * se
    # the same model handed over directly, and the flow with its measures
    env.set_flow(model)
    assert env.exact_return(sigma) == pytest.approx(exact, rel=1e-12)
    L = [model.flow[0][:-1, :, None] * pi]
    env.set_flow(model.flow, state_action=L)
    assert env.exact_return(sigma) == pytest.approx(exact, rel=1e-12)
    with pytest.raises(mb.GameError, match="state-action"):
        env.set_flow(model.flow)     # the game needs L, and none was given


def test_observations_encode_time_and_state():
    game = mb.make("crowd-1d-v0")
    T, S = game.horizon, game.populations[0].n_states
    envs = {m: BestResponseEnv(game, seed=5, observation=m) for m in ("multidiscrete", "discrete", "onehot")}
    obs = {m: e.reset()[0] for m, e in envs.items()}
    for _ in range(T + 1):
        infos = []
        for m, e in envs.items():
            t, s = e._t, e._s
            infos.append((t, s))
            if m == "multidiscrete":
                assert obs[m].tolist() == [t, s]
            elif m == "discrete":
                assert obs[m] == t * S + s
            else:
                expected = np.zeros(T + 1 + S, dtype=np.float32)
                expected[t] = expected[T + 1 + s] = 1.0
                np.testing.assert_array_equal(obs[m], expected)
        assert len(set(infos)) == 1   # same seed, same actions: the same trajectory in every encoding
        if infos[0][0] == T:
            break
        obs = {m: e.step(1)[0] for m, e in envs.items()}
    stationary = BestResponseEnv(mb.make("garnet-stationary-v0"), seed=0, observation="multidiscrete")
    o, info = stationary.reset()
    assert o.tolist() == [info["state"]]   # a stationary game's agent observes its state alone


def test_episode_ends_at_the_horizon_finite_terminated_stationary_truncated():
    env = BestResponseEnv(mb.make("crowd-1d-v0"), seed=0)
    env.reset()
    flags = [env.step(0)[2:4] for _ in range(env.horizon)]
    assert flags == [(False, False)] * (env.horizon - 1) + [(True, False)]
    with pytest.raises(RuntimeError, match="ended"):
        env.step(0)
    game = mb.make("garnet-stationary-v0", gamma=0.5)
    env = BestResponseEnv(game, seed=0)
    assert env.horizon == 10 and 0.5 ** 10 <= 1e-3 < 0.5 ** 9   # the documented default truncation
    env.reset()
    flags = [env.step(0)[2:4] for _ in range(env.horizon)]
    assert flags[-1] == (False, True) and flags[:-1] == [(False, False)] * (env.horizon - 1)


def test_same_seed_same_episodes():
    game = mb.make("predator-prey-v0")

    def run(seed):
        env = BestResponseEnv(game, population=1, seed=seed)
        out = []
        for _ in range(3):
            obs, _ = env.reset()
            done = False
            while not done:
                obs, r, done, _, _ = env.step(2)
                out.append((tuple(obs), r))
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_bad_input_names_what_is_wrong():
    game = mb.make("crowd-1d-v0")
    env = BestResponseEnv(game, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset()
    with pytest.raises(ValueError, match=r"crowd-1d-v0, population 0 \(crowd\), time 0, state \d+: action"):
        env.step(3)
    with pytest.raises(ValueError, match="action"):
        env.step(1.0)
    with pytest.raises(ValueError, match="options"):
        env.reset(options={"state": 10})
    flow = mb.distribution(game, mb.uniform_policy(game))
    with pytest.raises(ValueError, match=r"shape \(9, 10\), expected \(10, 10\)"):
        env.set_flow((flow[0][:-1],))
    bad = flow[0].copy()
    bad[3, 0] += 0.5
    with pytest.raises(ValueError, match="at time 3 sums to"):
        env.set_flow((bad,))
    with pytest.raises(ValueError, match="population arrays"):
        env.set_flow((flow[0], flow[0]))
    bigger = mb.make("crowd-1d-v0", size=12)
    with pytest.raises(ValueError, match="not one of this game"):
        env.set_flow(mb.evaluate(bigger, mb.uniform_policy(bigger)).model)
    stationary = mb.make("garnet-stationary-v0")
    with pytest.raises(ValueError, match="stationary game"):
        env.set_flow(mb.evaluate(stationary, mb.uniform_policy(stationary)).model)
    with pytest.raises(ValueError, match="populations 0..2"):
        BestResponseEnv(mb.make("predator-prey-v0"), population=3)
    with pytest.raises(ValueError, match="horizon"):
        BestResponseEnv(game, horizon=5)
    with pytest.raises(ValueError, match="observation"):
        BestResponseEnv(game, observation="image")
    with pytest.raises(ValueError, match="continuous"):
        BestResponseEnv(mb.make("lq-continuous-v0"))
