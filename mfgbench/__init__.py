"""mfgbench: benchmark learning algorithms for mean field games against exact equilibria.

    import mfgbench as mb
    game = mb.make("crowd-1d-v0")
    pi = mb.uniform_policy(game)
    mb.exploitability(game, pi)
"""
from mfgbench.core import (as_profile, best_response, distribution, evaluate, exploitability, load_policy,
                           policy_value, save_policy, uniform_policy)
from mfgbench.errors import GameError, PolicyError, UnknownGameError
from mfgbench.games import Game, MeanField, Population, list_games, make, register
from mfgbench.reference import reference
from mfgbench.learners import list_learners, make_learner
from mfgbench.trial import run_trial
from mfgbench.envs.scoring import score

__version__ = "0.1.0"

__all__ = ["Game", "GameError", "MeanField", "Population", "PolicyError", "UnknownGameError", "as_profile",
           "best_response", "distribution", "evaluate", "exploitability", "list_games", "list_learners", "load_policy",
           "make", "make_learner", "policy_value", "reference", "register", "run_trial", "save_policy", "score", "uniform_policy"]
