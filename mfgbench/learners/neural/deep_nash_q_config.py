"""Hyperparameters of deep mean-field Nash-Q (``deep_nash_q``), importable without torch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DeepNashQConfig:
    """Deep mean-field Nash-Q (``deep_nash_q``). The defaults learn within the standard suite's budget:
    measured (``benchmarks/out/neural_speed.txt``, seeds 0-2, 150 iterations) crowd-1d-v0 from the uniform
    policy's 2.79 to 0.20-0.28 (5.7 CPU-s; below 2.79 / 3 after 60-70 iterations), predator-prey-v0 from
    37.0 to 2.3-2.7 (22 CPU-s)."""

    n_agents: int = 1000
    """Simulated agents per population (the mean field is their histogram)."""
    episodes_per_iteration: int = 2
    """Episodes (every agent from mu0 to T) per call of step(); under fictitious play the agents face the
    same averaged mean field in all of them (the source's slow population updates: the Q-networks learn
    the answer to a mean field before it moves)."""
    lr: float = 3e-3
    """Adam learning rate of the Q-networks."""
    batch_size: int = 128
    """Transitions per gradient step."""
    buffer_size: int = 10_000
    """Replay buffer capacity (transitions per population); the oldest are overwritten. Small, so that the
    transitions replayed were collected against recent mean fields (about 9 episodes of a T = 9 game)."""
    transitions_per_step: int = 128
    """Agents per population, drawn at random, whose transitions are stored at each time step."""
    updates_per_step: int = 2
    """Gradient steps per population after each time step of an episode."""
    learning_starts: int = 500
    """Stored transitions per population before the first gradient step."""
    hidden: int = 64
    """Width of the two hidden layers of the Q-network's head."""
    encoder_width: int = 16
    """Width of the two layers of each population's histogram encoder."""
    activation: str = "silu"
    """Hidden activation: "relu", "silu" or "tanh"."""
    double_q: bool = False
    """Double Q-learning target ``Q'(s', argmax_a' Q(s', a'))`` instead of ``max_a' Q'(s', a')`` (less
    overestimation of rarely tried actions)."""
    target_update: str = "polyak"
    """"polyak": theta' <- tau theta + (1 - tau) theta' after every gradient step; "periodic": theta' <- theta
    every ``target_period`` gradient steps (DQN)."""
    tau: float = 0.02
    """Polyak rate of the target network."""
    target_period: int = 100
    """Gradient steps between copies of the "periodic" target network."""
    exploration: str = "epsilon"
    """Behaviour of the simulated agents: "epsilon" (greedy in Q, uniform with probability epsilon) or
    "softmax" (Boltzmann in Q at ``temperature``, in reward units: a temperature that suits one game's
    reward scale is near-uniform or near-greedy on another, e.g. the discretized games' rewards scale
    with dt; epsilon-greedy does not depend on the scale)."""
    mean_field: str = "fictitious"
    """The mean field the agents face (rewards, transitions, network input): "current" (the episode's own
    empirical one) or "fictitious" (fictitious play over episodes, the source's stabiliser against
    non-stationarity: the weighted average ``mbar`` of past episodes' empirical mu and L)."""
    averaging_power: float = 1.0
    """Exponent p of the fictitious-play weights (j + 1)^-p (1: the plain average)."""
    epsilon_start: float = 1.0
    """epsilon of the first episode."""
    epsilon_final: float = 0.05
    """epsilon once ``epsilon_decay_episodes`` episodes have run."""
    epsilon_decay_episodes: int = 40
    """Episodes over which epsilon decreases linearly to ``epsilon_final``."""
    temperature: float = 0.1
    """Temperature of the "softmax" behaviour, in reward units."""
    policy_output: str = "average"
    """The tabular policy the learner reports: "average" (with ``mean_field="fictitious"``: the policy of
    the averaged state-action measure, fictitious play's output), the agents' "behaviour" at the faced
    mean field, or "greedy" in Q."""
    eval_agents: int = 5000
    """Agents of the noise-free rollout that gives the mean field of the policy read-out."""
    threads: int = 1
    """torch intra-op threads, set process-wide when the learner is built."""

    def __post_init__(self):
        for name in ("n_agents", "episodes_per_iteration", "batch_size", "buffer_size", "transitions_per_step",
                     "updates_per_step", "hidden", "encoder_width", "target_period", "epsilon_decay_episodes",
                     "eval_agents", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"deep-nash-q: {name} must be a positive integer, got {v!r}")
        if isinstance(self.learning_starts, bool) or not isinstance(self.learning_starts, (int, np.integer)) \
                or self.learning_starts < 0:
            raise ValueError(f"deep-nash-q: learning_starts must be an integer >= 0, got {self.learning_starts!r}")
        for name in ("lr", "temperature"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"deep-nash-q: {name} must be a positive number, got {v!r}")
        if not (np.isfinite(self.averaging_power) and 0 < self.averaging_power <= 1):
            raise ValueError(f"deep-nash-q: averaging_power must be in (0, 1], got {self.averaging_power!r}")
        if not 0 < self.tau <= 1:
            raise ValueError(f"deep-nash-q: tau must be in (0, 1], got {self.tau!r}")
        for name in ("epsilon_start", "epsilon_final"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"deep-nash-q: {name} must be in [0, 1], got {getattr(self, name)!r}")
        choices = {"activation": ("relu", "silu", "tanh"), "target_update": ("polyak", "periodic"),
                   "exploration": ("epsilon", "softmax"),
                   "mean_field": ("current", "fictitious"), "policy_output": ("average", "behaviour", "greedy")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"deep-nash-q: {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.policy_output == "average" and self.mean_field != "fictitious":
            raise ValueError("deep-nash-q: policy_output 'average' (fictitious play's output) needs "
                             "mean_field='fictitious'; use 'behaviour' or 'greedy' with mean_field='current'")
        if self.transitions_per_step > self.n_agents:
            raise ValueError(f"deep-nash-q: transitions_per_step ({self.transitions_per_step}) cannot exceed "
                             f"n_agents ({self.n_agents})")
