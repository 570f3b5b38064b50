"""What an agent of a finite game observes: the pair (t, s), or s alone in a stationary game.

In a finite game of horizon T an agent's situation is its time t (0..T) and state s
(0..S-1): an optimal policy depends on both. In a stationary discounted game the optimal
policy is stationary, so the agent observes its state alone (the time limit of an episode
is a truncation, not part of the problem). Three encodings, as Gymnasium spaces:

- ``"multidiscrete"``: ``MultiDiscrete([T + 1, S])``, the vector ``(t, s)`` (stationary: ``[S]``, ``(s,)``);
- ``"discrete"``: ``Discrete((T + 1) S)``, the index ``t S + s`` (stationary: ``Discrete(S)``, ``s``);
- ``"onehot"``: ``Box(0, 1, ((T + 1) + S,))`` float32, one-hot of t followed by one-hot of s
  (stationary: one-hot of s). It equals Gymnasium's ``FlattenObservation`` of the multidiscrete form.

``ObservationEncoding.of_space`` recognises an encoding from a space (duck-typed on ``n``,
``nvec`` and ``shape``, so scoring a trained model needs no Gymnasium import).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgbench.errors import PolicyError

MODES = ("multidiscrete", "discrete", "onehot")


@dataclass(frozen=True)
class ObservationEncoding:
    """One encoding of (t, s): ``n_times`` = T + 1 in a finite game, None in a stationary one."""

    mode: str
    n_times: int | None
    n_states: int

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"observation must be one of {', '.join(MODES)}, got {self.mode!r}")

    @classmethod
    def for_game(cls, game, population: int, mode: str) -> "ObservationEncoding":
        n_times = None if getattr(game, "kind", "finite") == "stationary" else game.horizon + 1
        return cls(mode, n_times, game.populations[population].n_states)

    @property
    def size(self) -> int:
        """Length of the one-hot vector."""
        return (self.n_times or 0) + self.n_states

    def space(self):
        """The Gymnasium space of the encoded observations."""
        from mfgbench.envs._optional import require
        spaces = require("gymnasium.spaces", "an mfgbench environment")
        if self.mode == "multidiscrete":
            nvec = [self.n_states] if self.n_times is None else [self.n_times, self.n_states]
            return spaces.MultiDiscrete(np.array(nvec, dtype=np.int64))
        if self.mode == "discrete":
            return spaces.Discrete((self.n_times or 1) * self.n_states)
        return spaces.Box(0.0, 1.0, (self.size,), dtype=np.float32)

    def encode(self, t: int, s: int):
        """One observation of time t and state s (t is ignored in a stationary game)."""
        return self.encode_batch(np.array([t]), np.array([s]))[0]

    def encode_batch(self, t: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Observations of the pairs ``(t[i], s[i])``, stacked along the first axis."""
        t, s = np.asarray(t, dtype=np.int64), np.asarray(s, dtype=np.int64)
        stationary = self.n_times is None
        if self.mode == "multidiscrete":
            return s[:, None].copy() if stationary else np.stack([t, s], axis=1)
        if self.mode == "discrete":
            return s.copy() if stationary else t * self.n_states + s
        out = np.zeros((len(s), self.size), dtype=np.float32)
        rows = np.arange(len(s))
        if stationary:
            out[rows, s] = 1.0
        else:
            out[rows, t] = 1.0
            out[rows, self.n_times + s] = 1.0
        return out

    @classmethod
    def of_space(cls, space, n_times: int | None, n_states: int, where: str) -> "ObservationEncoding":
        """The encoding whose space is ``space`` for this game and population, or PolicyError."""
        nvec = getattr(space, "nvec", None)
        n = getattr(space, "n", None)
        shape = getattr(space, "shape", None)
        expected = {m: cls(m, n_times, n_states) for m in MODES}
        if nvec is not None:
            want = [n_states] if n_times is None else [n_times, n_states]
            if list(np.asarray(nvec).ravel()) == want:
                return expected["multidiscrete"]
        elif n is not None:
            if int(n) == (n_times or 1) * n_states:
                return expected["discrete"]
        elif shape is not None and tuple(shape) == (expected["onehot"].size,):
            return expected["onehot"]
        t_part = "" if n_times is None else f"T + 1 = {n_times} times, "
        raise PolicyError(f"{where}: the model observes {space}, which is none of the BestResponseEnv encodings "
                          f"of this population ({t_part}{n_states} states): "
                          + "; ".join(f"{m}: {expected[m].describe()}" for m in MODES))

    def describe(self) -> str:
        if self.mode == "multidiscrete":
            return f"MultiDiscrete({[self.n_states] if self.n_times is None else [self.n_times, self.n_states]})"
        if self.mode == "discrete":
            return f"Discrete({(self.n_times or 1) * self.n_states})"
        return f"Box of shape ({self.size},)"
