"""Neural learners: DDPG and MADDPG (mean-field forms) on particle versions of the continuous games,
and deep mean-field Nash-Q (``deep_nash_q``) on finite games, the discretized continuous games included.

``env.ParticleEnv`` simulates N agents per population by Euler–Maruyama; ``ddpg`` and ``maddpg``
learn feedback controls ``alpha_k(t, x, m)`` on it; ``scoring.score_continuous`` scores them
exactly (to the grid) against the PDE: exploitability of the feedback through
``reference_solvers.pde.policy.evaluate_control``, and W1 / L1 distance of the particle density
to the PDE equilibrium density over time.

torch is an optional extra. Without it this package still imports, the environment and scoring
work, and the learners ``ddpg``, ``maddpg`` and ``deep-nash-q`` stay registered but unavailable: building one
raises ImportError with the install command ``pip install "mfgbench[neural]"``.
"""
from mfgbench.learners.neural.config import PRESETS, DDPGConfig, MADDPGConfig
from mfgbench.learners.neural.deep_nash_q_config import DeepNashQConfig
from mfgbench.learners.neural.env import ParticleEnv
from mfgbench.learners.neural.scoring import pde_reference, score_continuous

INSTALL = 'pip install "mfgbench[neural]"'

try:
    import torch  # noqa: F401
except ImportError:
    AVAILABLE = False
    from mfgbench.learners.base import Learner, register_learner

    def _unavailable(name, config, kinds=("continuous",), presets=PRESETS):
        class Unavailable(Learner):
            Config = config
            PRESETS = presets
            available = False
            install = INSTALL

            def __init__(self, game=None, config=None, rng=None):
                raise ImportError(f"learner {name!r} needs torch, which is not installed; install it with: {INSTALL}")

        Unavailable.name, Unavailable.kinds = name, kinds
        Unavailable.__doc__ = f"{name}: unavailable, needs torch ({INSTALL})."
        Unavailable.__name__ = Unavailable.__qualname__ = name.upper()
        return register_learner(Unavailable)

    DDPG = _unavailable("ddpg", DDPGConfig)
    MADDPG = _unavailable("maddpg", MADDPGConfig)
    DeepNashQ = _unavailable("deep-nash-q", DeepNashQConfig, ("finite",), {})
else:
    AVAILABLE = True
    from mfgbench.learners.neural.ddpg import DDPG
    from mfgbench.learners.neural.deep_nash_q import DeepNashQ
    from mfgbench.learners.neural.maddpg import MADDPG

__all__ = ["AVAILABLE", "DDPG", "DDPGConfig", "DeepNashQ", "DeepNashQConfig", "INSTALL", "MADDPG", "MADDPGConfig", "ParticleEnv", "pde_reference",
           "score_continuous"]
