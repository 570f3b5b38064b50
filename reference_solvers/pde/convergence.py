"""Convergence (order) studies of the PDE scheme against closed-form solutions.

The error of a solve at grid size ``n`` (cells per axis, with ``nt`` proportional to ``n``, so
h and dt are halved together) is measured against ``analytic``; the observed order between
two refinements is ``log2(e(n) / e(2n))``. Two problems:

- ``lq``: ``lq-continuous-v0`` on [-6, 6]; errors of the feedback alpha = -u_x (centred
  differences) on ``|x - mbar| <= 2`` (away from the walls, where the game on R and the game on
  the interval differ), of the mean, and of the density (L1), maximised over time.
- ``lq2pop``: ``lq-2pop-continuous-v0`` on [-6, 6] against its semi-analytic solution
  (``analytic.LQ2PopSolution``); the same three errors per population, each maximised over time and over
  the two populations (feedback on ``|x - mbar_k(t)| <= 2``).
- ``wave``: the travelling-wave manufactured solution on the torus (``analytic.TravellingWave``);
  max errors of u and m over the space-time grid.
"""
from __future__ import annotations

import numpy as np

from mfgbench.games import make
from mfgbench.games.continuous import ContinuousGame, ContinuousPopulation, Domain, LogDensity, Potential
from reference_solvers.pde.analytic import TravellingWave, lq2pop_solution, lq_solution
from reference_solvers.pde.solvers import solve


def lq_errors(n: int, nt: int | None = None, **params) -> dict:
    """Errors of the solved LQ game at n cells (nt = n // 2 by default) against the closed form."""
    game = make("lq-continuous-v0", **params)
    nt = n // 2 if nt is None else nt
    res = solve(game, nx=n, nt=nt, method="picard", damping=1.0)
    sol = lq_solution(**game.params)
    x = res.grid.points[0]
    near = np.abs(x - sol.x0) <= 2.0
    alpha = res.control(0)[:, 0, :]
    fb, mean, dens = 0.0, 0.0, 0.0
    for n_ in range(nt):
        t = res.times[n_]
        fb = max(fb, np.abs(alpha[n_, near] - sol.alpha(t, x[near])).max())
    for n_ in range(nt + 1):
        t = res.times[n_]
        m = res.m[0][n_]
        mean = max(mean, abs(x @ m * res.grid.dv - sol.x0))
        dens = max(dens, np.abs(m - sol.density(t, x)).sum() * res.grid.dv)
    return {"feedback": fb, "mean": mean, "density_L1": dens, "residual": res.residual}


def lq2pop_errors(n: int, nt: int | None = None, **params) -> dict:
    """Errors of the solved two-population LQ game at n cells (nt = n // 2) against the semi-analytic solution."""
    game = make("lq-2pop-continuous-v0", **params)
    nt = n // 2 if nt is None else nt
    res = solve(game, nx=n, nt=nt)
    sol = lq2pop_solution(**game.params)
    x = res.grid.points[0]
    fb, mean, dens = 0.0, 0.0, 0.0
    for k in range(2):
        alpha = res.control(k)[:, 0, :]
        for n_ in range(nt):
            t = res.times[n_]
            near = np.abs(x - sol.mean(k, t)) <= 2.0
            fb = max(fb, np.abs(alpha[n_, near] - sol.alpha(k, t, x[near])).max())
        for n_ in range(nt + 1):
            t, m = res.times[n_], res.m[k][n_]
            mean = max(mean, abs(x @ m * res.grid.dv - sol.mean(k, t)))
            dens = max(dens, np.abs(m - sol.density(k, t, x)).sum() * res.grid.dv)
    return {"feedback": fb, "mean": mean, "density_L1": dens, "residual": res.residual}


def wave_game(nu=0.05, speed=0.5, amplitude=0.5, horizon=0.5) -> tuple:
    """The manufactured-solution game (log-density coupling plus the potential P) and its solution."""
    wave = TravellingWave(nu, speed, amplitude)
    pop = ContinuousPopulation(
        "wave", lambda x: wave.density(0.0, x[0]), float(np.sqrt(2 * nu)),
        running=(LogDensity(1.0), Potential(lambda t, x: wave.potential(t, x[0]))),
        terminal=(Potential(lambda x: wave.value(horizon, x[0]), terminal=True),))
    game = ContinuousGame(Domain((0.0,), (1.0,), periodic=True), horizon, pop)
    game.id = "travelling-wave"
    return game, wave


def wave_errors(n: int, nt: int | None = None, **params) -> dict:
    """Max errors of u and m of the manufactured solution at n cells (nt = n by default)."""
    game, wave = wave_game(**params)
    nt = n if nt is None else nt
    res = solve(game, nx=n, nt=nt, method="newton")
    x = res.grid.points[0]
    eu = max(np.abs(res.u[0][k] - wave.value(t, x)).max() for k, t in enumerate(res.times))
    em = max(np.abs(res.m[0][k] - wave.density(t, x)).max() for k, t in enumerate(res.times))
    return {"u": eu, "m": em, "residual": res.residual}


def observed_orders(errors: list) -> list:
    """log2 of successive error ratios (for grids refined by 2)."""
    return [float(np.log2(a / b)) for a, b in zip(errors[:-1], errors[1:])]


def order_table(problem: str = "lq", sizes=(60, 120, 240)) -> list:
    """Rows ``{"n": n, <error name>: value, "order_<name>": order}`` for the given grids."""
    fn = {"lq": lq_errors, "lq2pop": lq2pop_errors, "wave": wave_errors}[problem]
    rows = [dict(n=n, **fn(n)) for n in sizes]
    for key in [k for k in rows[0] if k not in ("n", "residual")]:
        orders = observed_orders([r[key] for r in rows])
        for r, o in zip(rows[1:], orders):
            r[f"order_{key}"] = o
    return rows
