"""Certified equilibria of finite and stationary mean field games.

``solve(game, tol)`` runs the pipeline of :mod:`.certified`; the first-order solvers
(damped fixed point, fictitious play, online mirror descent, best-response iteration)
and the active-set Newton polish are available on their own.
"""
from reference_solvers.discrete.certified import Solution, solve
from reference_solvers.discrete.iterative import (SolverResult, best_response_iteration, damped_fixed_point,
                                                  fictitious_play, mirror_descent)
from reference_solvers.discrete.newton import PolishResult, logit_homotopy, newton_polish, regularised_path
from reference_solvers.discrete.problem import Analysis, analyse

__all__ = ["Analysis", "PolishResult", "Solution", "SolverResult", "analyse", "best_response_iteration",
           "damped_fixed_point", "fictitious_play", "logit_homotopy", "mirror_descent", "newton_polish", "regularised_path", "solve"]
