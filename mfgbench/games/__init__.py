"""Game specifications and the registry of versioned game ids."""
from mfgbench.games.base import Game, MeanField, Population
from mfgbench.games.registry import list_games, make, register, spec

# importing a game module registers its games
from mfgbench.games import crowd, crowd2d, garnet, lq, mfglib, predator_prey, routing, stationary, traffic  # noqa: E402,F401
from mfgbench.games import continuous  # noqa: E402,F401
from mfgbench.games import predator_prey_capture, sir_types, traffic_types  # noqa: E402,F401
from mfgbench.games.conformance import check_game  # noqa: E402

__all__ = ["Game", "MeanField", "Population", "check_game", "list_games", "make", "register", "spec"]
