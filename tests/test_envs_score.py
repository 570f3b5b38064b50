"""mb.score: tabulating external policies (functions, SB3 models) and scoring them exactly."""
import subprocess
import sys

import numpy as np
import pytest

import mfgbench as mb
from mfgbench.envs import tabulate_policy


def _random_profile(game, rng):
    shape = (lambda p: (p.n_states, p.n_actions)) if game.kind == "stationary" else \
        (lambda p: (game.horizon, p.n_states, p.n_actions))
    return tuple(rng.dirichlet(np.ones(p.n_actions), size=shape(p)[:-1]) for p in game.populations)


@pytest.mark.parametrize("game_id", ["crowd-1d-v0", "predator-prey-v0", "garnet-stationary-v0"])
def test_score_of_a_function_wrapping_a_tabular_policy_equals_evaluate_exactly(game_id, rng):
    game = mb.make(game_id)
    pi = _random_profile(game, rng)
    calls = []

    def policy(t, state, population):
        calls.append((t, state, population))
        return pi[population][state] if t is None else pi[population][t, state]

    sc = mb.score(game, policy, reference=False)
    ev = mb.evaluate(game, pi)
    assert sc.exploitability == ev.exploitability
    np.testing.assert_array_equal(sc.per_population, ev.per_population)
    for a, b in zip(sc.flow, ev.flow):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(sc.policy, pi):
        np.testing.assert_array_equal(a, b)
    times = [None] if game.kind == "stationary" else range(game.horizon)
    assert sorted(calls, key=str) == sorted([(t, s, k) for k, p in enumerate(game.populations) for t in times
                                             for s in range(p.n_states)], key=str)
    assert sc.distance is None


def test_actions_are_one_hot_and_the_reference_distance_is_measured():
    game = mb.make("crowd-1d-v0")
    ref = mb.reference(game)
    sc = mb.score(game, lambda t, s, k: np.int64(1))   # always stay: an action, not probabilities
    stay = np.zeros((game.horizon, 10, 3))
    stay[:, :, 1] = 1.0
    assert sc.exploitability == mb.exploitability(game, stay)
    assert sc.reference_exploitability == ref.exploitability
    tv = np.mean(0.5 * np.abs(sc.flow[0] - ref.flow[0]).sum(axis=1))
    assert sc.distance.tv == pytest.approx(tv, rel=1e-12) and sc.distance.tv > 0.01
    at_ref = mb.score(game, ref.policy)
    assert at_ref.distance.tv == 0.0 and at_ref.distance.w1 == 0.0
    assert at_ref.exploitability == pytest.approx(ref.exploitability, abs=1e-15)
    assert set(sc.as_dict()) >= {"exploitability", "per_population", "tv", "w1", "reference_exploitability"}


def test_float32_probabilities_are_renormalised_and_rows_within_tolerance_kept():
    game = mb.make("crowd-1d-v0")
    rows = np.array([0.2, 0.3, 0.5], dtype=np.float32)
    pi = tabulate_policy(game, lambda t, s, k: rows)[0]
    np.testing.assert_allclose(pi.sum(axis=-1), 1.0, atol=1e-15)
    np.testing.assert_allclose(pi[0, 0], rows, rtol=1e-6)


def test_bad_policies_name_where_they_fail():
    game = mb.make("predator-prey-v0")
    with pytest.raises(mb.PolicyError, match=r"population 1 \(pop1\), time 0, state 0: .*shape \(4,\)"):
        mb.score(game, lambda t, s, k: np.full(4, 0.25) if k == 1 else 0, reference=False)
    with pytest.raises(mb.PolicyError, match=r"time 3, state 7: action probabilities sum to 0.9"):
        mb.score(game, lambda t, s, k: np.array([0.5, 0.4, 0, 0, 0]) if (t, s) == (3, 7) else 0, reference=False)
    with pytest.raises(mb.PolicyError, match="action 5, outside 0..4"):
        mb.score(game, lambda t, s, k: 5, reference=False)
    with pytest.raises(mb.PolicyError, match="returned 0.5"):
        mb.score(game, lambda t, s, k: 0.5, reference=False)
    with pytest.raises(mb.PolicyError, match="2 per-population entries, the game has 3"):
        mb.score(game, [lambda t, s, k: 0] * 2, reference=False)
    with pytest.raises(ValueError, match="continuous"):
        mb.score(mb.make("lq-continuous-v0"), lambda t, s, k: 0)


def test_mfgbench_imports_and_scores_without_gymnasium():
    """The rl extra is optional: with gymnasium, pettingzoo and SB3 hidden, mfgbench imports, mb.score
    works on functions, and asking for an environment names the install command."""
    code = (
        "import sys\n"
        "for name in ('gymnasium', 'pettingzoo', 'stable_baselines3'): sys.modules[name] = None\n"
        "import mfgbench as mb, mfgbench.envs\n"
        "g = mb.make('crowd-1d-v0')\n"
        "assert mb.score(g, lambda t, s, k: 1, reference=False).exploitability > 0\n"
        "try:\n"
        "    mfgbench.envs.BestResponseEnv\n"
        "except ImportError as e:\n"
        "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "needs the package 'gymnasium'" in out.stdout and 'pip install "mfgbench[rl]"' in out.stdout


# ---------------------------------------------------------------------- Stable-Baselines3 models
sb3 = pytest.importorskip("stable_baselines3")


@pytest.mark.parametrize("observation", ["multidiscrete", "discrete", "onehot"])
def test_a_dqn_model_is_tabulated_as_its_greedy_action(observation):
    """Untrained networks are arbitrary functions of the observation: the table must hold, at every
    (t, s), the action model.predict gives for that one observation of the environment."""
    from mfgbench.envs import BestResponseEnv
    game = mb.make("crowd-1d-v0")
    env = BestResponseEnv(game, seed=0, observation=observation)
    model = sb3.DQN("MlpPolicy", env, seed=0, learning_starts=0, policy_kwargs=dict(net_arch=[8]))
    pi = tabulate_policy(game, model)[0]
    for t in range(game.horizon):
        for s in range(10):
            action, _ = model.predict(env.encoding.encode(t, s), deterministic=True)
            assert pi[t, s].tolist() == np.eye(3)[int(action)].tolist()
    sc = mb.score(game, model, reference=False)
    assert sc.exploitability == mb.exploitability(game, pi)


def test_a_ppo_model_is_tabulated_as_its_action_distribution():
    """The tabulated distribution of a stochastic policy against the frequencies of model.predict's
    sampled actions (4.5 binomial standard deviations, 2000 draws per observation)."""
    from mfgbench.envs import BestResponseEnv
    game = mb.make("crowd-1d-v0")
    env = BestResponseEnv(game, seed=0)
    model = sb3.PPO("MlpPolicy", env, seed=0, n_steps=64, batch_size=64)
    pi = tabulate_policy(game, model)[0]
    assert np.all(pi.max(axis=-1) < 0.99)   # genuinely stochastic
    n = 2000
    for t, s in [(0, 0), (4, 7), (8, 3)]:
        actions, _ = model.predict(np.repeat(env.encoding.encode(t, s)[None], n, axis=0), deterministic=False)
        freq = np.bincount(actions, minlength=3) / n
        sd = np.sqrt(pi[t, s] * (1 - pi[t, s]) / n)
        assert np.all(np.abs(freq - pi[t, s]) <= 4.5 * sd), (t, s, freq, pi[t, s])
    greedy = tabulate_policy(game, model, deterministic=True)[0]
    np.testing.assert_array_equal(greedy.argmax(axis=-1), pi.argmax(axis=-1))


def test_models_that_do_not_fit_the_game_are_refused():
    from mfgbench.envs import BestResponseEnv
    crowd = mb.make("crowd-1d-v0")
    model = sb3.DQN("MlpPolicy", BestResponseEnv(mb.make("crowd-1d-v0", size=12), seed=0), seed=0)
    with pytest.raises(mb.PolicyError, match=r"observes MultiDiscrete\(\[10 12\]\).*MultiDiscrete\(\[10, 10\]\)"):
        mb.score(crowd, model, reference=False)
    prey = mb.make("predator-prey-v0")
    one = sb3.DQN("MlpPolicy", BestResponseEnv(prey, seed=0), seed=0)
    with pytest.raises(mb.PolicyError, match="one model cannot play 3 populations"):
        mb.score(prey, one, reference=False)
    models = [sb3.DQN("MlpPolicy", BestResponseEnv(prey, population=k, seed=0), seed=0) for k in range(3)]
    assert mb.score(prey, models, reference=False).exploitability >= 0
