"""Policy profiles: one array ``pi[t, s, a]`` per population (``pi[s, a]`` in stationary games).

``pi[t, s, :]`` is the distribution of the action drawn at time t in state s; every
row is non-negative and sums to 1. A profile is a tuple indexed by population;
public functions also accept a list of arrays or, for a single-population game, one
array.
"""
from __future__ import annotations

import numpy as np

from mfgbench.errors import PolicyError

ROW_SUM_TOL = 1e-9


def policy_shape(game, k: int) -> tuple:
    pop = game.populations[k]
    if getattr(game, "kind", "finite") == "stationary":
        return (pop.n_states, pop.n_actions)
    return (game.horizon, pop.n_states, pop.n_actions)


def as_profile(game, policy) -> tuple:
    """Validate ``policy`` against ``game`` and return it as a tuple of float64 arrays."""
    K = game.n_populations
    if isinstance(policy, np.ndarray) or (K == 1 and _is_one_array(policy, len(policy_shape(game, 0)))):
        policy = (policy,)
    policy = tuple(policy)
    if len(policy) != K:
        raise PolicyError(f"game {game.id}: policy has {len(policy)} population arrays, the game has {K}")
    out = []
    for k, pi in enumerate(policy):
        pi = np.ascontiguousarray(pi, dtype=np.float64)
        where = f"game {game.id}, population {k} ({game.populations[k].name})"
        shape = policy_shape(game, k)
        if pi.shape != shape:
            axes = "[s, a]" if len(shape) == 2 else "[t, s, a]"
            raise PolicyError(f"{where}: policy has shape {pi.shape}, expected {shape} ({axes})")
        _check_rows(pi, where)
        out.append(pi)
    return tuple(out)


def _is_one_array(policy, ndim) -> bool:
    try:
        return np.ndim(policy) == ndim
    except ValueError:  # ragged nesting: a sequence of per-population arrays
        return False


def _check_rows(pi, where):
    names = ("time", "state", "action")[-pi.ndim:]
    bad = ~np.isfinite(pi) | (pi < 0)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise PolicyError(f"{where}, {_at(names, idx)}: probability {float(pi[tuple(idx)])} "
                          f"is negative or not finite")
    rows = pi.sum(axis=-1)
    off = np.abs(rows - 1.0) > ROW_SUM_TOL
    if off.any():
        idx = np.argwhere(off)[0]
        raise PolicyError(f"{where}, {_at(names, idx)}: action probabilities sum to "
                          f"{float(rows[tuple(idx)])!r}, not 1")


def _at(names, idx) -> str:
    return ", ".join(f"{n} {i}" for n, i in zip(names, idx))


def uniform_policy(game) -> tuple:
    """The profile that draws every action uniformly, at every time and state."""
    return tuple(np.full(policy_shape(game, k), 1.0 / game.populations[k].n_actions)
                 for k in range(game.n_populations))


def greedy_policy(Q: np.ndarray, tie_tol: float = 1e-12) -> np.ndarray:
    """Deterministic policy putting mass 1 on the lowest-index action within ``tie_tol``
    (relative) of ``max_a Q[..., a]``: ties are broken the same way every time."""
    best = Q.max(axis=-1, keepdims=True)
    near = Q >= best - tie_tol * np.maximum(1.0, np.abs(best))
    choice = near.argmax(axis=-1)
    pi = np.zeros_like(Q)
    np.put_along_axis(pi, choice[..., None], 1.0, axis=-1)
    return pi


def save_policy(path, game, policy) -> None:
    """Write a profile to ``.npz`` with keys ``policy_0``, ``policy_1``, ..."""
    profile = as_profile(game, policy)
    np.savez(path, **{f"policy_{k}": pi for k, pi in enumerate(profile)})


def load_policy(path, game) -> tuple:
    """Read a profile written by ``save_policy`` (also accepts ``arr_k`` keys, population
    names, or a single array for a single-population game) and validate it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc}") from None
    K = game.n_populations
    if K == 1 and len(arrays) == 1:
        return as_profile(game, next(iter(arrays.values())))
    profile = []
    for k, pop in enumerate(game.populations):
        for key in (f"policy_{k}", f"arr_{k}", pop.name):
            if key in arrays:
                profile.append(arrays[key])
                break
        else:
            raise PolicyError(f"policy file {path}: no array for population {k} ({pop.name}); "
                              f"expected key policy_{k}, found {sorted(arrays)}")
    return as_profile(game, profile)
