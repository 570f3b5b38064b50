"""PDE reference solvers: finite-difference equilibria of continuous mean field games.

The implicit monotone scheme of Achdou & Capuzzo-Dolcetta (2010) on cell-centred grids of a
1D interval/torus or 2D box/torus (``grid``, ``kernels``, ``scheme``); the coupled system
and its fixed-point solvers (``coupled``); Newton's method on the whole system (``newton``);
``solve`` (``solvers``) picks one. Also closed forms (``analytic``), order studies
(``convergence``), evaluation of any feedback control (``policy``) and the Markov-chain
bridge to finite games (``discretize``).

    >>> from mfgbench.games import make
    >>> from reference_solvers.pde import solve
    >>> res = solve(make("crowd-continuous-v0"), nx=100, nt=50)
    >>> res.converged and res.mass_error < 1e-12
    True
"""
from reference_solvers.pde.coupled import Problem, SolveResult, fictitious_play, picard
from reference_solvers.pde.discretize import discretize
from reference_solvers.pde.grid import Grid
from reference_solvers.pde.newton import newton
from reference_solvers.pde.policy import ControlEvaluation, evaluate_control
from reference_solvers.pde.solvers import METHODS, solve

__all__ = ["ControlEvaluation", "Grid", "METHODS", "Problem", "SolveResult", "discretize", "evaluate_control",
           "fictitious_play", "newton", "picard", "solve"]
