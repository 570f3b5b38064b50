"""One entry point for the PDE reference: solve a continuous game on a grid by a named method."""
from __future__ import annotations

import numpy as np

from reference_solvers.pde.coupled import Problem, SolveResult, fictitious_play, picard
from reference_solvers.pde.newton import newton

METHODS = {"newton": newton, "picard": picard, "fictitious": fictitious_play}


def solve(game, nx=None, nt=None, method: str = "newton", tol: float = 1e-10, **options) -> SolveResult:
    """Solve the discrete MFG system of a continuous game on an ``nx`` (per axis) by ``nt`` grid.

    ``method`` is ``"newton"`` (default), ``"picard"`` or ``"fictitious"``; ``options`` go to
    that solver (e.g. ``damping`` for Picard, ``max_iter``). Defaults: nx = 200 in 1D and 50 in
    2D, nt = 100. Returns a ``SolveResult``; ``result.summary()`` is a JSON-able dict.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if getattr(game, "kind", None) != "continuous":
        raise ValueError(f"solve: expected a continuous game, got {game!r}")
    nx = (200 if game.dim == 1 else 50) if nx is None else nx
    nt = 100 if nt is None else nt
    return METHODS[method](Problem(game, nx, nt), tol=tol, **options)
