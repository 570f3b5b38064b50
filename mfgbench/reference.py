"""Certified reference equilibria of finite and stationary games, and their cache.

A reference for a game is a policy profile pi with its exact exploitability

    E(pi) = sum_k E_k(pi),   E_k(pi) = <m_k, V^BR_k - V^pi_k>

(m_k = mu0_k for finite games, the stationary distribution of pi for stationary ones; both
value functions along the flow pi itself induces), recomputed by
:func:`mfgbench.core.evaluate` on the returned profile. It is **certified** when
``E(pi) <= tol``, with ``tol`` absolute, in the game's reward units (no rescaling): a
certified reference is a ``tol``-Nash equilibrium in the plain sense. When the solver
cannot reach ``tol`` the best profile found is returned with ``certified=False`` and the
``reason``. The solvers live in :mod:`reference_solvers.discrete`.

Cache: ``<cache_dir>/<game id>/<key>.npz`` (the profile) and ``<key>.json`` (metadata),
``key`` a hash of the game id, its parameters and the solver's code version (a hash of
the solver sources, and for a discretized continuous game, of the discretization). Registered
games and discretized registered continuous games (ids ``<id>@nx..-nt..-a..-v..``, see
:mod:`reference_solvers.pde.discretize`) are cached; games built by hand are not (their id
does not name their definition). ``cache_dir`` is the argument, else the environment variable
``MFGBENCH_CACHE``, else ``results/references`` under the working directory. Files are
written atomically (temporary file + ``os.replace``). A cached profile is never trusted:
it is re-verified by one exact evaluation when loaded, and used only if it certifies the
requested tolerance; an entry that cannot be read (truncated, empty, wrong shapes) is
solved again and overwritten.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfgbench.core import as_profile, evaluate

DEFAULT_CACHE = Path("results") / "references"
_ROOT = Path(__file__).resolve().parent.parent
_SOLVER_FILES = tuple(f"reference_solvers/discrete/{name}.py"
                      for name in ("certified", "iterative", "newton", "problem", "potential", "complementarity"))
_BRIDGE_FILES = ("reference_solvers/pde/discretize.py", "mfgbench/games/continuous.py")


@dataclass(frozen=True)
class Reference:
    """A reference equilibrium and its certificate.

    ``policy``, ``flow`` (``mu[t, s]``, or ``mu[s]`` for stationary games), ``values``
    (``V^pi``) are tuples indexed by population; ``exploitability`` (total) and
    ``per_population`` come from one exact evaluation of ``policy``; ``certified`` is
    ``exploitability <= tolerance``; ``reason`` says why not (None when certified);
    ``iterations`` and ``method`` describe the solve (for a cached reference, the solve
    that produced it); ``time`` is the wall time of this call in seconds.
    """

    game_id: str
    params: dict
    policy: tuple
    flow: tuple
    values: tuple
    exploitability: float
    per_population: np.ndarray
    iterations: int
    method: str
    tolerance: float
    certified: bool
    reason: str | None
    time: float
    cached: bool = False


def code_version(bridged: bool = False) -> str:
    """Hash of the solver sources (and of the discretization for a discretized continuous
    game): a cached reference from other code is not reused."""
    h = hashlib.sha256()
    for name in _SOLVER_FILES + (_BRIDGE_FILES if bridged else ()):
        p = _ROOT / name
        h.update(name.encode())
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()[:16]


def cache_dir(path=None) -> Path:
    """The cache directory: ``path``, else ``$MFGBENCH_CACHE``, else ``results/references``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("MFGBENCH_CACHE")
    return Path(env) if env else DEFAULT_CACHE


def _bridged(game) -> bool:
    return getattr(game, "continuous", None) is not None and "@" in game.id


def cache_key(game) -> str:
    """Hash of game id, parameters (for a discretized game: the continuous game's and the grid's)
    and solver code version."""
    params = json.dumps(getattr(game, "params", {}), sort_keys=True, default=repr)
    blob = json.dumps({"game": game.id, "params": params, "code": code_version(_bridged(game))}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _cacheable(game) -> bool:
    """Registered games, and discretizations of registered continuous games."""
    from mfgbench.games import list_games
    registered = list_games()
    return game.id in registered or _bridged(game) and game.id.split("@", 1)[0] in registered


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _save(folder: Path, key: str, game, profile, meta: dict) -> None:
    _atomic_write(folder / f"{key}.npz",
                  lambda fh: np.savez(fh, **{f"policy_{k}": pi for k, pi in enumerate(profile)}))
    _atomic_write(folder / f"{key}.json", lambda fh: fh.write(json.dumps(meta, indent=1, default=repr).encode()))


def _load(folder: Path, key: str, game):
    meta_path, arr_path = folder / f"{key}.json", folder / f"{key}.npz"
    if not (meta_path.exists() and arr_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        with np.load(arr_path, allow_pickle=False) as data:
            profile = [data[f"policy_{k}"] for k in range(game.n_populations)]
        return as_profile(game, profile), meta
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # truncated, empty or stale entry: solve again and overwrite


def _build(game, profile, tol, iterations, method, reason, start, cached) -> Reference:
    ev = evaluate(game, profile)
    certified = bool(ev.exploitability <= tol)
    if not certified and reason is None:
        reason = f"exact exploitability {ev.exploitability:.3g} exceeds the tolerance {tol:g}"
    return Reference(game.id, dict(getattr(game, "params", {})), tuple(profile), tuple(ev.flow), tuple(ev.values),
                     float(ev.exploitability), np.asarray(ev.per_population, dtype=np.float64), int(iterations),
                     method, float(tol), certified, None if certified else reason, time.perf_counter() - start,
                     cached)


def reference(game, tol: float = 1e-8, *, cache: bool = True, cache_path=None,
              max_seconds: float = 300.0) -> Reference:
    """A reference equilibrium of ``game`` certified at exploitability ``<= tol`` (absolute),
    or the best profile found with ``certified=False`` and a ``reason``.

    ``cache=False`` neither reads nor writes the cache; ``cache_path`` overrides the cache
    directory (see the module docstring); ``max_seconds`` bounds the solve's CPU time (a
    budget in CPU seconds buys the same work however loaded the machine is).
    """
    if getattr(game, "kind", "finite") not in ("finite", "stationary"):
        raise ValueError(f"game {getattr(game, 'id', game)!r}: references are computed for finite and "
                         f"stationary games, not kind {game.kind!r} (use reference_solvers.pde)")
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    start = time.perf_counter()
    use_cache = cache and _cacheable(game)
    folder, key = (cache_dir(cache_path) / game.id, cache_key(game)) if use_cache else (None, None)
    if use_cache:
        hit = _load(folder, key, game)
        if hit is not None:
            profile, meta = hit
            ref = _build(game, profile, tol, meta.get("iterations", 0), meta.get("method", "cached"), None,
                         start, True)
            if ref.certified:
                return ref
    from reference_solvers.discrete import solve
    from reference_solvers.discrete.problem import without_time_axis
    sol = solve(game, tol=tol, max_seconds=max_seconds)
    profile = without_time_axis(game, sol.analysis.policy)
    reason = None if sol.reason == "converged" else sol.reason
    ref = _build(game, profile, tol, sol.iterations, sol.method, reason, start, False)
    if use_cache:
        _save(folder, key, game, profile, {
            "game": game.id, "params": ref.params, "code_version": code_version(_bridged(game)), "method": ref.method,
            "iterations": ref.iterations, "exploitability": ref.exploitability, "tolerance": ref.tolerance,
            "certified": ref.certified, "reason": ref.reason, "solve_seconds": ref.time})
    return ref


def reference_summary(result: Reference) -> dict:
    """The facts the CLI prints: method, iterations, exploitability, certified, time, reason."""
    return {"method": result.method, "iterations": result.iterations,
            "exploitability": result.exploitability, "tolerance": result.tolerance,
            "certified": result.certified, "time": result.time, "reason": result.reason,
            "cached": result.cached,
            "per_population": [float(x) for x in result.per_population]}
