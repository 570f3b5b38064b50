"""The learner protocol: an iterative algorithm that produces a policy profile for a game.

``Learner(game, config, rng)`` builds the learner; each ``step()`` runs one iteration
and returns a dict with at least ``iteration`` (iterations done) and ``samples`` (game
transitions sampled so far; 0 for learners that use the exact model); ``.policy`` is
the current profile (one ``pi[t, s, a]`` per population, ``pi[s, a]`` in stationary
games). Configs are dataclasses with a docstring per field; the same dataclass feeds
the command line and the metadata written with results. All randomness comes from
the ``numpy.random.Generator`` passed in.
"""
from __future__ import annotations

import dataclasses

import numpy as np


class Learner:
    """Base class: subclasses set ``name``, ``Config`` and implement ``step`` and ``policy``."""

    name: str = "learner"
    Config: type = None
    model_free: bool = False
    kinds: tuple = ("finite",)
    """Game kinds the learner plays ("finite", "stationary")."""
    PRESETS: dict = {}
    """Named configs, e.g. ``{"paper": {...}}``: the source paper's exact hyperparameters, as
    overrides of the default config (``make_config(name, preset="paper")``)."""

    def __init__(self, game, config=None, rng: np.random.Generator | None = None):
        kind = getattr(game, "kind", "finite")
        if kind not in self.kinds:
            raise ValueError(f"learner {self.name} does not play {kind} games like {game.id} "
                             f"(it plays: {', '.join(self.kinds)})")
        self.game = game
        self.config = config if config is not None else self.Config()
        if not isinstance(self.config, self.Config):
            raise TypeError(f"learner {self.name}: config must be {self.Config.__name__}, "
                            f"got {type(self.config).__name__}")
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.iteration = 0
        self.samples = 0

    def step(self) -> dict:
        raise NotImplementedError

    @property
    def policy(self) -> tuple:
        raise NotImplementedError


_LEARNERS: dict[str, type] = {}


def register_learner(cls):
    """Class decorator: make ``cls`` available under ``cls.name``."""
    if cls.name in _LEARNERS:
        raise ValueError(f"learner {cls.name!r} is already registered")
    _LEARNERS[cls.name] = cls
    return cls


def list_learners() -> list[str]:
    return sorted(_LEARNERS)


def learner_class(name: str) -> type:
    try:
        return _LEARNERS[name]
    except KeyError:
        raise KeyError(f"unknown learner {name!r}; registered learners: {', '.join(list_learners())}") from None


def make_config(name: str, preset: str | None = None, **overrides):
    """The learner's default config, or its named ``preset`` (e.g. ``"paper"``), with ``overrides``
    applied (an unknown preset or field is an error)."""
    cls = learner_class(name)
    if preset is not None:
        if preset not in cls.PRESETS:
            known = ", ".join(sorted(cls.PRESETS)) or "none"
            raise ValueError(f"learner {name}: unknown preset {preset!r}; its presets are: {known}")
        overrides = {**cls.PRESETS[preset], **overrides}
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"learner {name}: unknown config field {unknown[0]!r}; its fields are: "
                         f"{', '.join(sorted(fields))}")
    return cls.Config(**overrides)


def make_learner(name: str, game, config=None, rng=None, **overrides):
    """Build learner ``name`` for ``game``: ``config`` or the default config with ``overrides``."""
    if config is None:
        config = make_config(name, **overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    return learner_class(name)(game, config, rng)


def config_dict(config) -> dict:
    return dataclasses.asdict(config)

