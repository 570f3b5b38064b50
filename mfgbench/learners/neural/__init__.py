"""Neural learners: DDPG and MADDPG (mean-field forms) on particle versions of the continuous games,
and deep mean-field Nash-Q (``deep_nash_q``) on finite games, the discretized continuous games included.

``env.ParticleEnv`` simulates N agents per population by Euler–Maruyama; ``ddpg`` and ``maddpg``
learn feedback controls ``alpha_k(t, x, m)`` on it; ``scoring.score_continuous`` scores them
exactly (to the grid) against the PDE: exploitability of the feedback through
``reference_solvers.pde.policy.evaluate_control``, and W1 / L1 distance of the particle density
to the PDE equilibrium density over time.

torch is an optional extra, imported only when a neural learner is built. Without it this package
still imports, the environment and scoring work, and the learners ``ddpg``, ``maddpg`` and
``deep-nash-q`` stay registered but unavailable: building one raises ImportError with the install
command ``pip install "mfgbench[neural]"``.
"""
import importlib
import importlib.util

from mfgbench.learners.base import Learner, register_learner
from mfgbench.learners.neural.config import PRESETS, DDPGConfig, MADDPGConfig
from mfgbench.learners.neural.deep_nash_q_config import DeepNashQConfig
from mfgbench.learners.neural.env import ParticleEnv
from mfgbench.learners.neural.scoring import pde_reference, score_continuous

INSTALL = 'pip install "mfgbench[neural]"'
AVAILABLE = importlib.util.find_spec("torch") is not None

_IMPLEMENTATIONS = {"ddpg": ("ddpg", "DDPG"), "maddpg": ("maddpg", "MADDPG"), "deep-nash-q": ("deep_nash_q", "DeepNashQ")}
"""Where each neural learner lives: torch is imported only when one is built (``import mfgbench``
stays light: every worker process and every command pays it otherwise)."""


def _implementation(name):
    module, cls_name = _IMPLEMENTATIONS[name]
    return getattr(importlib.import_module(f"mfgbench.learners.neural.{module}"), cls_name)


def _register(name, config, kinds, presets):
    """Register ``name`` as a light stand-in: building it builds the torch implementation, or
    raises ImportError with the install command when torch is missing."""

    class Neural(Learner):
        Config, PRESETS = config, presets
        available = AVAILABLE
        install = INSTALL

        def __new__(cls, game=None, config=None, rng=None):
            if not AVAILABLE:
                raise ImportError(f"learner {name!r} needs torch, which is not installed; install it with: {INSTALL}")
            return _implementation(name)(game, config, rng)

    Neural.name, Neural.kinds = name, kinds
    Neural.__doc__ = f"{name} (torch implementation loaded when built; {INSTALL} when torch is missing)."
    Neural.__name__ = Neural.__qualname__ = name.upper()
    return register_learner(Neural)


_register("ddpg", DDPGConfig, ("continuous",), PRESETS)
_register("maddpg", MADDPGConfig, ("continuous",), PRESETS)
_register("deep-nash-q", DeepNashQConfig, ("finite",), {})


def __getattr__(attr):   # DDPG, MADDPG, DeepNashQ: the implementations, imported on first use
    names = {cls_name: name for name, (_, cls_name) in _IMPLEMENTATIONS.items()}
    if attr in names:
        return _implementation(names[attr])
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


__all__ = ["AVAILABLE", "DDPG", "DDPGConfig", "DeepNashQ", "DeepNashQConfig", "INSTALL", "MADDPG", "MADDPGConfig", "ParticleEnv", "pde_reference",
           "score_continuous"]
