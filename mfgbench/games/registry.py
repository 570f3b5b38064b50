"""Registry of games under versioned ids ("crowd-1d-v0").

A registered id names a frozen definition: a factory (usually the game class) whose
keyword parameters, with their defaults, are the game's parameters. ``make(id,
**params)`` builds an instance; an unknown id or parameter raises a clear error, and so
does a game too large for the memory available (see ``check_memory``): a factory that
declares ``array_dims(**params)`` is checked before it allocates anything, every finite
and stationary game is checked once built, before any policy is evaluated on it.
"""
from __future__ import annotations

import inspect
import os
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
    full = dict(allowed)
    full.update(params)
    declared = getattr(s.factory, "array_dims", None)
    if declared is not None:
        horizon, dims = declared(**full)
        check_memory(game_id, params, horizon, dims, getattr(s.factory, "static_transitions", False))
    try:
        game = s.factory(**params)
    except MemoryError as exc:
        raise ValueError(f"game {game_id}{_shown(params)}: not enough memory to build it ({exc})") from None
    game.id = game_id
    game.params = full
    if declared is None and s.kind in ("finite", "stationary"):
        dims = [(p.n_states, p.n_actions, 1) for p in game.populations]
        check_memory(game_id, params, getattr(game, "horizon", None) or 1, dims,
                     getattr(game, "static_transitions", False), at_least=True)
    if not game.description:
        game.description = s.description
    if not game.source:
        game.source = s.source
    return game


def evaluation_bytes(horizon: int, dims, static_transitions: bool) -> int:
    """Bytes the exact evaluation of a policy holds at once, per population of ``dims`` =
    ``[(S, A, B), ...]`` (states, actions, successors per state-action): the policy and the
    best-response Q-values (``T x S x A`` floats each), the values, best-response values and flow
    (``(T + 1) x S`` each) and the transitions (``S x A x B`` successor indices and probabilities,
    for every step unless they are static). Learners hold a few more arrays of the same sizes."""
    steps = 1 if static_transitions else horizon
    return sum(8 * (2 * horizon * S * A + 3 * (horizon + 1) * S + 2 * steps * S * A * B) for S, A, B in dims)


def available_memory() -> int | None:
    """Bytes of memory this process can still use: the kernel's estimate of available memory,
    capped by a cgroup (container) limit; None where neither is known."""
    found = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        with open("/sys/fs/cgroup/memory.current") as fh:
            used = int(fh.read().strip())
        if limit != "max":
            found.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_memory(game_id, params, horizon, dims, static_transitions, at_least=False) -> None:
    """Raise ValueError, saying how much memory is needed, when evaluating a policy on the game
    needs more than is available (``evaluation_bytes``)."""
    need = evaluation_bytes(int(horizon), [tuple(map(int, d)) for d in dims], static_transitions)
    have = available_memory()
    if have is not None and need > have:
        raise ValueError(f"game {game_id}{_shown(params)}: evaluating a policy needs "
                         f"{'at least ' if at_least else 'about '}{_gb(need)} of memory, "
                         f"more than the {_gb(have)} available")


def _gb(n: int) -> str:
    return f"{n / 1e9:.3g} GB"


def _shown(params) -> str:
    return " (" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")" if params else ""


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
