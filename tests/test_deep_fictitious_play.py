"""Fictitious play with an external best responder (best_response="external").

With a responder that returns the exact best response of its environment, the external path must
reproduce exact fictitious play (an independent implementation: the fused compiled kernels, or the
stationary path). With Stable-Baselines3's DQN as responder, a tiny budget must bring crowd-1d-v0's
exploitability below the uniform policy's, and the same seed must give the same numbers.
"""
import functools

import numpy as np
import pytest

pytest.importorskip("gymnasium")

import mfgbench as mb  # noqa: E402
from mfgbench.envs.external import resolve_best_responder  # noqa: E402


def exact_responder(env, seed):
    return env.best_response()[0]


@pytest.mark.parametrize("game_id", ["crowd-1d-v0", "predator-prey-v0", "garnet-stationary-v0", "beach-bar-v0"])
def test_external_exact_best_responses_reproduce_exact_fictitious_play(game_id):
    kw = dict(iterations=6, seed=0, checkpoints=range(1, 7), reference=False)
    external = mb.run_trial(game_id, "fictitious-play", best_response="external", best_responder=exact_responder, **kw)
    exact = mb.run_trial(game_id, "fictitious-play", **kw)
    got = [h["exploitability"] for h in external.history]
    want = [h["exploitability"] for h in exact.history]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    for a, b in zip(external.policy, exact.policy):
        np.testing.assert_allclose(a, b, atol=1e-12)
    assert external.history[-1]["samples"] == 0   # the exact responder samples nothing


def test_the_responder_gets_an_environment_facing_the_current_flow_and_its_steps_count():
    game = mb.make("crowd-1d-v0")
    seen = []

    def responder(env, seed):
        learner_flow = mb.distribution(game, learner.policy)[0]
        np.testing.assert_array_equal(env.model.flow[0], learner_flow)
        seen.append(seed)
        env.reset()
        for _ in range(5):
            env.step(0)
        return lambda t, s, k: 1

    learner = mb.make_learner("fictitious-play", game, rng=np.random.default_rng(3), best_response="external",
                              best_responder=responder)
    for _ in range(3):
        info = learner.step()
    assert info["samples"] == 15 and len(set(seen)) == 3


def test_best_responder_configuration_errors():
    with pytest.raises(ValueError, match="needs best_responder"):
        mb.make_learner("fictitious-play", mb.make("crowd-1d-v0"), best_response="external")
    from mfgbench.envs.sb3 import dqn_best_response
    assert resolve_best_responder("mfgbench.envs.sb3:dqn_best_response") is dqn_best_response
    with pytest.raises(ValueError, match="cannot import module 'no_such_module'"):
        resolve_best_responder("no_such_module:f")
    with pytest.raises(ValueError, match="has no attribute 'nothing'"):
        resolve_best_responder("mfgbench.envs.sb3:nothing")
    with pytest.raises(ValueError, match="import path"):
        resolve_best_responder("dqn")
    learner = mb.make_learner("fictitious-play", mb.make("crowd-1d-v0"), best_response="external",
                              best_responder=lambda env, seed: np.zeros(3))
    with pytest.raises(mb.PolicyError, match="population 0"):
        learner.step()


def test_deep_fictitious_play_with_a_tiny_dqn_budget_beats_uniform_and_repeats():
    pytest.importorskip("stable_baselines3")
    from mfgbench.envs.sb3 import dqn_best_response
    game = mb.make("crowd-1d-v0")
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    responder = functools.partial(dqn_best_response, timesteps=800)

    def run():
        return mb.run_trial(game, "fictitious-play", iterations=3, seed=0, checkpoints=[1, 2, 3], reference=False,
                            best_response="external", best_responder=responder)

    first, second = run(), run()
    assert [h["exploitability"] for h in first.history] == [h["exploitability"] for h in second.history]
    assert first.history[-1]["samples"] == 3 * 800
    # seeds 0-5 end between 0.50 and 1.38 (uniform: 2.79)
    assert first.history[-1]["exploitability"] < uniform, (first.history, uniform)
    # every checkpoint is the exact exploitability of the learner's policy at that point
    assert first.history[-1]["exploitability"] == mb.exploitability(game, first.policy)


def test_the_example_script_runs(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "examples" / "deep_fictitious_play.py"
    spec = importlib.util.spec_from_file_location("deep_fictitious_play_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["--iterations", "2", "--timesteps", "300", "--out", str(tmp_path / "curves.png")])
    out = capsys.readouterr().out
    assert "exact FP" in out and (tmp_path / "curves.png").stat().st_size > 0
