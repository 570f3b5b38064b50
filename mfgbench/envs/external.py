"""Best responses trained outside mfgbench: fictitious play's ``best_response="external"``.

At iteration j, fictitious play needs for every population k a best response ``BR_j`` to the flow
of its current average policy ``pibar_j``. With an external best responder that flow is handed to
a user callable as a ``BestResponseEnv`` facing it,

    best_responder(env, seed) -> policy,

which trains an agent on the environment (a deep RL algorithm, say; ``seed`` comes from the
learner's Generator, and ``env`` has just been reset with it) and returns its policy in any form
``mb.score`` accepts for one population: a function ``policy(t, state, population)``, a trained
model with ``predict`` (Stable-Baselines3), or an array ``pi[t, s, a]``. The policy is tabulated
(``mfgbench.envs.scoring``) and averaged into ``pibar`` exactly as the exact best responses are.
The transitions the responder samples from the environments count as the learner's samples.

``best_responder`` is a callable or the import path ``"module:function"`` of one (a path can be
written in suite files and sent to worker processes); ``mfgbench.envs.sb3:dqn_best_response`` trains
Stable-Baselines3's DQN.
"""
from __future__ import annotations

import importlib

import numpy as np

from mfgbench.core import as_profile, stationary
from mfgbench.core.evaluate import induced_model
from mfgbench.envs.scoring import population_policy


def resolve_best_responder(spec):
    """The callable named by ``spec`` (a callable, or ``"module:function"``), or ValueError."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"fictitious-play: best_responder must be a callable (env, seed) -> policy or an import "
                         f"path 'module:function', got {spec!r}")
    module_name, _, attr = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"fictitious-play: best_responder {spec!r}: cannot import module {module_name!r} "
                         f"({exc})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"fictitious-play: best_responder {spec!r}: {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"fictitious-play: best_responder {spec!r} is not callable")
    return target


class ExternalBestResponse:
    """One ``BestResponseEnv`` per population, kept for the learner's lifetime (a responder may keep
    its agent bound to the same environment from one iteration to the next)."""

    def __init__(self, game, best_responder, observation: str = "multidiscrete"):
        from mfgbench.envs.best_response import BestResponseEnv
        self.game = game
        self.responder = resolve_best_responder(best_responder)
        self.envs = [BestResponseEnv(game, population=k, observation=observation)
                     for k in range(game.n_populations)]

    def __call__(self, profile, rng: np.random.Generator) -> tuple:
        """``(best responses, transitions sampled)`` against the flow that ``profile`` induces."""
        game = self.game
        stationary_game = getattr(game, "kind", "finite") == "stationary"
        model = stationary.induced_model(game, profile) if stationary_game else induced_model(game, profile)
        responses, samples = [], 0
        for k, env in enumerate(self.envs):
            env.set_flow(model)
            seed = int(rng.integers(2 ** 31 - 1))
            env.reset(seed=seed)
            before = env.steps_taken
            policy = self.responder(env, seed)
            samples += env.steps_taken - before
            responses.append(population_policy(game, k, policy))
        return as_profile(game, responses), samples
