"""Scores of a learned feedback in a continuous game, against the PDE equilibrium.

- **Exploitability** (exact to the grid): the learner's feedback ``alpha_k(t_n, x_j)`` at the
  points and times of the PDE grid is evaluated by
  ``reference_solvers.pde.policy.evaluate_control``: the flow it induces, its cost
  ``J_k = int u_k^alpha(0) m0_k`` and the best-response cost against that flow;
  ``E = sum_k (J_k - J_k^BR)`` (also per population).
- **Distribution error** of the particle density ``m_k^N`` (histogram of a noise-free rollout on
  the PDE grid, at the particle times) against the PDE equilibrium density ``m_k^*`` (linearly
  interpolated in time), averaged over the particle times t_0..T, per population:
  ``L1 = sum_j |m^N - m^*|(x_j) dv``, and W1 in the domain's length units: on a line
  ``h sum_j |F^N_j - F^*_j|`` (F the cumulative masses), on a circle the same after removing the
  median of ``F^N - F^*``, in 2D the exact transport cost with the Manhattan distance on the
  grid graph (``mfgbench.metrics.w1_grid``, times h) at up to ``W1_TIMES_2D`` times.
  The game's value is the mean over populations.

``pde_reference(game)`` is the PDE equilibrium on the game's scoring grid (``env.default_grid``),
computed once per game and parameters and kept in memory.
"""
from __future__ import annotations

import numpy as np

from mfgbench.learners.neural.env import default_grid
from mfgbench.metrics import w1_grid

W1_TIMES_2D = 6
"""In 2D, W1 (a linear program per time) is averaged over this many evenly spaced times."""

_REFERENCES: dict = {}


def _key(game):
    params = getattr(game, "params", None)
    if params:
        return game.id, tuple(sorted((k, repr(v)) for k, v in params.items()))
    return game.id, id(game)


def pde_reference(game, nx=None, nt=None):
    """The PDE equilibrium (``reference_solvers.pde.SolveResult``) on the game's scoring grid; cached."""
    if getattr(game, "kind", None) != "continuous":
        raise ValueError(f"pde_reference needs a continuous game, got {game!r}")
    dnx, dnt = default_grid(game)
    nx, nt = dnx if nx is None else nx, dnt if nt is None else nt
    key = _key(game) + (nx, nt)
    if key not in _REFERENCES:
        from reference_solvers.pde import solve
        _REFERENCES[key] = solve(game, nx=nx, nt=nt)
    return _REFERENCES[key]


def _in_time(m: np.ndarray, times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """m (len(times), N) linearly interpolated to the times ``at``."""
    i = np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(times) - 2)
    w = ((at - times[i]) / (times[i + 1] - times[i]))[:, None]
    return (1 - w) * m[i] + w * m[i + 1]


def w1_density(m: np.ndarray, ref: np.ndarray, grid) -> np.ndarray:
    """W1 per time between densities m, ref (T, N) on a grid, in length units (module docstring)."""
    dv = grid.dv
    if grid.dim == 1:
        diff = np.cumsum((m - ref) * dv, axis=-1)
        if grid.periodic:
            diff = diff - np.median(diff, axis=-1, keepdims=True)
        return grid.h[0] * np.abs(diff).sum(axis=-1)
    if not np.allclose(grid.h, grid.h[0]):
        raise ValueError(f"W1 on a 2D grid needs square cells, got spacings {grid.h}")
    return np.array([grid.h[0] * w1_grid(a * dv, b * dv, grid.shape, grid.periodic) for a, b in zip(m, ref)])


def distribution_errors(flow, times, reference) -> dict:
    """W1 and L1 of particle densities ``flow`` (per population, (len(times), N)) against the PDE solution."""
    grid = reference.grid
    w1s, l1s = [], []
    for k, mk in enumerate(flow):
        if mk.shape[1] != grid.size:
            raise ValueError(f"population {k}: particle density has {mk.shape[1]} cells but the PDE grid has "
                             f"{grid.size}; build the learner on the reference grid (config nx)")
        ref = _in_time(reference.m[k], reference.times, times)
        l1s.append(float(np.mean(np.abs(mk - ref).sum(axis=1) * grid.dv)))
        sel = np.arange(len(times))
        if grid.dim == 2:
            sel = np.unique(np.linspace(0, len(times) - 1, W1_TIMES_2D).round().astype(int))
        w1s.append(float(np.mean(w1_density(mk[sel], ref[sel], grid))))
    return {"w1": float(np.mean(w1s)), "w1_per_population": w1s, "l1": float(np.mean(l1s)), "l1_per_population": l1s}


def score_continuous(game, learner, reference=None) -> dict:
    """Exploitability (PDE policy evaluation) and distribution errors of a neural learner's current policy.

    ``reference``: a ``SolveResult`` of the game (default ``pde_reference(game)``); its grid is
    the scoring grid. Returns ``exploitability``, ``per_population``, ``w1``, ``w1_per_population``,
    ``l1``, ``l1_per_population``, ``flow`` (the particle densities, per population
    (n_steps+1, N)), ``times`` (the particle times), ``pde_flow`` (the densities the feedback
    induces in the PDE, per population (nt+1, N)) and ``reference_exploitability`` (the
    PDE equilibrium's own feedback scored the same way: the grid's floor).
    """
    from reference_solvers.pde.policy import evaluate_control

    if getattr(game, "kind", None) != "continuous":
        raise ValueError(f"score_continuous needs a continuous game, got {game!r}")
    for name in ("rollout", "feedback"):
        if not callable(getattr(learner, name, None)):
            raise TypeError(f"score_continuous: learner {getattr(learner, 'name', learner)!r} has no {name}(); "
                            f"it needs a neural learner (ddpg, maddpg)")
    ref = pde_reference(game) if reference is None else reference
    problem = ref.problem
    rollout = learner.rollout()
    controls = learner.feedback(problem.times[:-1], problem.x, rollout)
    ev = evaluate_control(game, tuple(controls), None, None, problem=problem)
    out = {"exploitability": ev.exploitability, "per_population": ev.exploitability_per_population.tolist()}
    out.update(distribution_errors(rollout.flow, rollout.times, ref))
    out.update({"flow": tuple(rollout.flow), "times": rollout.times, "pde_flow": tuple(ev.m),
                "reference_exploitability": reference_exploitability(game, ref)})
    return out


_FLOORS: dict = {}


def reference_exploitability(game, reference) -> float:
    """Exploitability of the PDE equilibrium's own feedback (``SolveResult.control``) on its grid."""
    key = id(reference)
    if key not in _FLOORS:
        from reference_solvers.pde.policy import evaluate_control
        controls = tuple(reference.control(k) for k in range(game.n_populations))
        _FLOORS[key] = (reference, evaluate_control(game, controls, None, None, problem=reference.problem).exploitability)
    return _FLOORS[key][1]
