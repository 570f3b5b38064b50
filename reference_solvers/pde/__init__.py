"""PDE reference solvers: finite-difference equilibria of continuous mean field games.

The implicit monotone scheme of Achdou & Capuzzo-Dolcetta (2010) on cell-centred grids of a
1D interval/torus or 2D box/torus (``grid``, ``kernels``, ``scheme``), coupled by Newton,
damped Picard or fictitious play (``coupled``); closed forms (``analytic``); evaluation of
any feedback control (``policy``); and the Markov-chain bridge to finite games (``discretize``).
"""
from reference_solvers.pde.coupled import Problem, SolveResult, fictitious_play, newton, picard, solve
from reference_solvers.pde.grid import Grid

__all__ = ["Grid", "Problem", "SolveResult", "solve", "newton", "picard", "fictitious_play"]
