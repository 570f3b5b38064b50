"""Registry of games under versioned ids ("crowd-1d-v0").

A registered id names a frozen definition: a factory (usually the game class) whose
keyword parameters, with their defaults, are the game's parameters. ``make(id,
**params)`` builds an instance; an unknown id or parameter raises a clear error.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from mfgbench.errors import UnknownGameError


@dataclass(frozen=True)
class GameSpec:
    """What the registry knows of a game id before building it."""

    id: str
    factory: object
    description: str
    kind: str
    source: str

    @property
    def defaults(self) -> dict:
        sig = inspect.signature(self.factory)
        return {n: p.default for n, p in sig.parameters.items()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty}


_REGISTRY: dict[str, GameSpec] = {}


def register(game_id: str, *, description: str, kind: str = "finite", source: str = ""):
    """Class decorator: register ``cls`` (or a factory function) under ``game_id``."""

    def deco(factory):
        if game_id in _REGISTRY:
            raise ValueError(f"game id {game_id!r} is already registered")
        _REGISTRY[game_id] = GameSpec(game_id, factory, description, kind, source)
        return factory

    return deco


def spec(game_id: str) -> GameSpec:
    try:
        return _REGISTRY[game_id]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownGameError(f"unknown game {game_id!r}; registered games: {known}") from None


def list_games(kind: str | None = None) -> list[str]:
    """Registered game ids, sorted (optionally only those of one kind)."""
    return sorted(g for g, s in _REGISTRY.items() if kind is None or s.kind == kind)


def make(game_id: str, **params):
    """Build the registered game ``game_id`` with its default parameters overridden by ``params``."""
    s = spec(game_id)
    allowed = s.defaults
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        names = ", ".join(f"{k}={v!r}" for k, v in allowed.items()) or "none"
        raise ValueError(f"game {game_id}: unknown parameter {unknown[0]!r}; its parameters are: {names}")
    params = {name: _coerced(game_id, name, value, allowed[name]) for name, value in params.items()}
    game = s.factory(**params)
    game.id = game_id
    full = dict(allowed)
    full.update(params)
    game.params = full
    if not game.description:
        game.description = s.description
    if not game.source:
        game.source = s.source
    return game


def _coerced(game_id, name, value, default):
    """``value`` converted to the type of the parameter's default, or a clear error."""
    if default is None or isinstance(value, type(default)) and not (isinstance(value, bool) and
                                                                    not isinstance(default, bool)):
        return value
    kind = type(default)
    ok = (kind is float and isinstance(value, (int, float)) and not isinstance(value, bool)) or \
         (kind is int and isinstance(value, (int, np.integer)) and not isinstance(value, bool)) or \
         (kind is int and isinstance(value, float) and value.is_integer())
    if ok:
        return kind(value)
    raise ValueError(f"game {game_id}: parameter {name} must be {kind.__name__} "
                     f"(default {default!r}), got {value!r}")
