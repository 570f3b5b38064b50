"""Policy profiles: one array ``pi[t, s, a]`` per population (``pi[s, a]`` in stationary games).

``pi[t, s, :]`` is the distribution of the action drawn at time t in state s; every
row is non-negative and sums to 1. A profile is a tuple indexed by population;
public functions also accept a list of arrays or, for a single-population game, one
array. Arrays of a lower precision than float64 (float32, float16) are accepted when
their rows sum to 1 within that precision, and renormalised in float64; complex arrays
are refused.
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
        where = f"game {game.id}, population {k} ({game.populations[k].name})"
        pi, tol = _as_float64(pi, where)
        shape = policy_shape(game, k)
        if pi.shape != shape:
            axes = "[s, a]" if len(shape) == 2 else "[t, s, a]"
            raise PolicyError(f"{where}: policy has shape {pi.shape}, expected {shape} ({axes})")
        _check_rows(pi, where, tol)
        if tol > ROW_SUM_TOL:
            pi = pi / pi.sum(axis=-1, keepdims=True)
        out.append(pi)
    return tuple(out)


def _as_float64(pi, where) -> tuple:
    """``pi`` as a contiguous float64 array, and the tolerance its rows' sums are held to: a
    lower-precision float array is only as normalised as its precision allows."""
    raw = np.asarray(pi)
    if np.iscomplexobj(raw):
        raise PolicyError(f"{where}: policy has complex dtype {raw.dtype}; probabilities are real numbers")
    if raw.dtype.kind not in "fiub":
        raise PolicyError(f"{where}: policy has dtype {raw.dtype}; expected floating-point probabilities")
    tol = ROW_SUM_TOL
    if raw.dtype.kind == "f" and raw.dtype.itemsize < 8 and raw.ndim:
        tol = max(ROW_SUM_TOL, 2.0 * raw.shape[-1] * float(np.finfo(raw.dtype).eps))
    return np.ascontiguousarray(raw, dtype=np.float64), tol


def _is_one_array(policy, ndim) -> bool:
    try:
        return np.ndim(policy) == ndim
    except ValueError:  # ragged nesting: a sequence of per-population arrays
        return False


def _check_rows(pi, where, tol=ROW_SUM_TOL):
    names = ("time", "state", "action")[-pi.ndim:]
    bad = ~np.isfinite(pi) | (pi < 0)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise PolicyError(f"{where}, {_at(names, idx)}: probability {float(pi[tuple(idx)])} "
                          f"is negative or not finite")
    rows = pi.sum(axis=-1)
    off = np.abs(rows - 1.0) > tol
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
    names, or a single array - in a ``.npz`` or a ``.npy`` file - for a single-population
    game) and validate it."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays, single = {"array": loaded}, True
        else:
            with loaded as data:
                arrays, single = {key: data[key] for key in data.files}, False
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # noqa: BLE001  (empty, truncated or foreign files raise many kinds of error)
        raise PolicyError(f"cannot read policy file {path}: not a readable .npz or .npy file (empty, truncated "
                          f"or another format: {str(exc) or type(exc).__name__})") from None
    K = game.n_populations
    if single and K > 1:
        raise PolicyError(f"policy file {path} holds one array, the game {game.id} has {K} populations: "
                          f"save them in one .npz with keys policy_0 .. policy_{K - 1}")
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
