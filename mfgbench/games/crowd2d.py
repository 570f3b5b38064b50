"""Crowd modelling on a 2D grid (OpenSpiel ``mfg_crowd_modelling_2d``) and its walled variants.

States are the cells (x, y) of a ``size x size`` grid, index ``x * size + y``. Actions
a = 0..4 displace by (0,0), (+1,0), (-1,0), (0,+1), (0,-1); after the chosen move an
independent noise displacement drawn uniformly from the same five is added.

- ``crowd-2d-v0``: torus (moves wrap around). An agent at (x, y) at reward time t earns
  ``r_x + r_y - (|dx| + |dy|) / size - log(mu_t(x, y) + 1e-25)``,
  ``r_x = 1 - 2 |x - size//2| / size`` (same for y), for the move (dx, dy) it chose.
  mu0 uniform.
- ``crowd-2d-four-rooms-v0``, ``crowd-2d-maze-v0``: a bounded grid with forbidden
  cells (walls); a move or a noise displacement that would enter a wall or leave the
  grid is cancelled (the agent stays). Only the log-density reward
  ``-log(mu_t(x, y) + 1e-25)``; everybody starts on cell (1, 1). Forbidden cells stay
  states of the game (so the layout is a plain grid) but carry no mass.

``horizon`` counts reward times as OpenSpiel does (as for crowd-1d-v0): ``T = horizon - 1``
transitions, then a terminal reward equal to the positional and log-density terms (the
move chosen at the last reward time has no effect, so it is never charged).
Transitions are static and built vectorised (a 300 x 300 grid builds in well under a
second).
"""
from __future__ import annotations

import numpy as np

from mfgbench.games.base import Game, LogCoupling, Population
from mfgbench.games.registry import register

LOG_EPS = 1e-25
MOVES = np.array([(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)])
SOURCE = "OpenSpiel mfg_crowd_modelling_2d (Perrin et al. 2020; Lauriere et al. 2022)"


def grid_successors(walls: np.ndarray, periodic: bool):
    """Successor lists of move-then-noise on a grid: ``succ[s, a, b]``, uniform ``prob``.

    ``walls[x, y]`` marks forbidden cells: a displacement into one (or off a
    non-periodic grid) leaves the agent where it was.
    """
    n, m = walls.shape
    x, y = np.divmod(np.arange(n * m), m)

    def step(cx, cy, d):
        nx, ny = cx + MOVES[d, 0], cy + MOVES[d, 1]
        if periodic:
            nx, ny = nx % n, ny % m
            blocked = walls[nx, ny]
        else:
            inside = (nx >= 0) & (nx < n) & (ny >= 0) & (ny < m)
            nx, ny = np.where(inside, nx, cx), np.where(inside, ny, cy)
            blocked = ~inside | walls[nx, ny]
        return np.where(blocked, cx, nx), np.where(blocked, cy, ny)

    succ = np.empty((n * m, len(MOVES), len(MOVES)), dtype=np.int64)
    for a in range(len(MOVES)):
        ax, ay = step(x, y, a)
        for b in range(len(MOVES)):
            bx, by = step(ax, ay, b)
            succ[:, a, b] = bx * m + by
    prob = np.full(succ.shape, 1.0 / len(MOVES))
    return succ, prob


class GridCrowd(Game):
    """A crowd on a grid with walls: static move-then-noise transitions, log-density reward."""

    static_transitions = True
    log_coupling = LogCoupling(eta=1.0, eps=LOG_EPS, floor="add", terminal=True)

    def __init__(self, walls: np.ndarray, horizon: int, periodic: bool, mu0: np.ndarray, name="crowd"):
        if not isinstance(horizon, (int, np.integer)) or horizon < 2:
            raise ValueError(f"game {self.id}: horizon (reward times) must be an integer >= 2, got {horizon!r}")
        self.walls = np.asarray(walls, dtype=bool)
        self.size = self.walls.shape[0]
        self.periodic = bool(periodic)
        pop = Population(name, self.walls.size, len(MOVES), mu0, grid_shape=self.walls.shape, periodic=periodic)
        super().__init__(int(horizon) - 1, pop)
        self._position = np.zeros(self.walls.size)
        self._move_cost = np.zeros(len(MOVES))

    def _state_reward(self, mu):
        return self._position - np.log(mu + LOG_EPS)

    def rewards(self, k, t, mf):
        return self._state_reward(mf.mu[0])[:, None] - self._move_cost[None, :]

    def terminal(self, k, mf):
        return self._state_reward(mf.mu[0])

    def transitions(self, k, t, mf):
        return grid_successors(self.walls, self.periodic)


@register("crowd-2d-v0", description="crowd on a 2D torus drawn to the centre, averse to crowding",
          source=SOURCE)
class Crowd2D(GridCrowd):
    id = "crowd-2d-v0"

    def __init__(self, size: int = 10, horizon: int = 10):
        if not isinstance(size, (int, np.integer)) or size < 2:
            raise ValueError(f"game {self.id}: size must be an integer >= 2, got {size!r}")
        n = int(size)
        super().__init__(np.zeros((n, n), dtype=bool), horizon, True, np.full(n * n, 1.0 / (n * n)))
        r = 1.0 - 2.0 * np.abs(np.arange(n) - n // 2) / n
        self._position = (r[:, None] + r[None, :]).ravel()
        self._move_cost = np.abs(MOVES).sum(axis=1) / n


def four_rooms_walls(size: int) -> np.ndarray:
    """Border walls plus a cross splitting the grid into four rooms, one door in each arm."""
    walls = np.zeros((size, size), dtype=bool)
    walls[[0, -1], :] = True
    walls[:, [0, -1]] = True
    c = size // 2
    walls[c, :] = True
    walls[:, c] = True
    lo, hi = (c + 1) // 2, (c + size) // 2  # middle of the left/top and right/bottom halves
    for x, y in ((c, lo), (c, hi), (lo, c), (hi, c)):
        walls[x, y] = False
    return walls


def maze_walls(size: int, rng: np.random.Generator) -> np.ndarray:
    """A perfect maze (randomised depth-first search) on the odd cells of a ``size`` grid."""
    walls = np.ones((size, size), dtype=bool)
    cells = (size - 1) // 2
    seen = np.zeros((cells, cells), dtype=bool)
    stack = [(0, 0)]
    seen[0, 0] = True
    walls[1, 1] = False
    while stack:
        i, j = stack[-1]
        options = [(i + di, j + dj) for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
                   if 0 <= i + di < cells and 0 <= j + dj < cells and not seen[i + di, j + dj]]
        if not options:
            stack.pop()
            continue
        ni, nj = options[rng.integers(len(options))]
        seen[ni, nj] = True
        walls[2 * ni + 1, 2 * nj + 1] = False
        walls[i + ni + 1, j + nj + 1] = False  # the wall cell between the two
        stack.append((ni, nj))
    return walls


def _start_at(walls, cell):
    mu0 = np.zeros(walls.size)
    mu0[cell[0] * walls.shape[1] + cell[1]] = 1.0
    return mu0


@register("crowd-2d-four-rooms-v0", description="crowd spreading out of one corner through four rooms (walls)",
          source=SOURCE + ", four-rooms variant (only_distribution_reward)")
class Crowd2DFourRooms(GridCrowd):
    id = "crowd-2d-four-rooms-v0"

    def __init__(self, size: int = 13, horizon: int = 40):
        if not isinstance(size, (int, np.integer)) or size < 7:
            raise ValueError(f"game {self.id}: size must be an integer >= 7, got {size!r}")
        walls = four_rooms_walls(int(size))
        super().__init__(walls, horizon, False, _start_at(walls, (1, 1)))


@register("crowd-2d-maze-v0", description="crowd spreading through a seeded random maze (walls)",
          source=SOURCE + ", maze variant (only_distribution_reward)")
class Crowd2DMaze(GridCrowd):
    id = "crowd-2d-maze-v0"

    def __init__(self, size: int = 21, horizon: int = 50, seed: int = 0):
        if not isinstance(size, (int, np.integer)) or size < 5 or size % 2 == 0:
            raise ValueError(f"game {self.id}: size must be an odd integer >= 5, got {size!r}")
        walls = maze_walls(int(size), np.random.default_rng(seed))
        super().__init__(walls, horizon, False, _start_at(walls, (1, 1)))
