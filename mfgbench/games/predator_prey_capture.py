"""Predators and prey on a maze, with capture: two types with their own state spaces (the prey's
safe zone and "caught" state), coupled through each other's density on the maze's cells.

Source: the heterogeneous-populations design note (``/work/shared/sources/004_*``, sec. 5.1:
predators and prey on a grid with the moves up, down, left, right; predators +10 for a capture
and -0.1 per step; prey +10 on reaching a safe zone and -100 when caught; predators seek high
prey density, prey avoid high predator density). The rules below are mfgbench's finite version.

**Maze.** An ``size x size`` grid (state of cell (r, c): row-major, r the row) with a wall down
column ``size // 2`` pierced by two doors (rows 1 and size - 2). The last column is the prey's
**safe zone**: predators cannot enter it. Every agent chooses one of the four moves up, down,
left, right; with probability ``noise`` the move actually made is one of the four drawn
uniformly instead. A move into a wall, off the grid or (predators) into the safe zone stays put.

**States.** Predators: the free cells outside the safe zone. Prey: every free cell (safe cells
are absorbing: a prey there stays) and the absorbing state "caught".

**Capture.** A prey on cell z at time t is caught with probability ``kappa mu_pred,t(z)`` (the
predators' share on its cell; kappa <= 1) before it moves: caught prey leave the maze for the
state "caught". So the prey's transitions depend on the predators' distribution.

**Rewards** (both populations have the same mass), at each step t < T:

- predator on z: ``capture_reward * kappa * mu_prey,t(z) - step_cost - eta log(mu_pred,t(z) + eps)``:
  the prey mass its cell loses to capture per unit of predator mass there, times 10;
- prey on a maze cell z choosing a: ``-catch_cost * kappa * mu_pred,t(z)`` (expected loss when
  caught) ``+ safe_reward * (1 - kappa mu_pred,t(z)) * P(move into the safe zone | z, a)`` (paid on
  reaching safety, by those not caught) ``- eta log(mu_prey,t(z) + eps)``; prey in the safe zone
  earn only the last term, caught prey nothing. No terminal reward.

Both populations dislike crowding their own kind on every cell, the safe zone included
(``-eta log mu``, the entropy term of Pérolat et al.'s predator-prey): predators sharing a cell
share its prey, and prey spread out (also over the safe zone: without it, which safe cell a prey
ends in would be a matter of indifference, and the equilibrium flow not unique there).

**Equilibrium: certified, not known to be unique.** The reward coupling alone would make the
game monotone: weighted by 10 (predators) and 1 (prey), the capture payoffs ``10 kappa mu_prey``
and ``-100 kappa mu_pred`` are antisymmetric, and the log terms are strictly monotone. But the
capture acts in the prey's *dynamics* (their flow loses mass where predators are), and the safe
reward is paid only by survivors, so the Lasry–Lions argument does not apply and uniqueness is
not known. The reference solves the equilibrium's complementarity system with an interior-point
Newton method (:mod:`reference_solvers.discrete.complementarity`) and is certified by its exact
exploitability (<= 1e-8); the tests also start it from the uniform policy instead of fictitious
play and find the same flow (to 1e-6, up to the last move, where nothing coupled follows and the
moves tie).

``size`` is the size parameter (the default horizon, 12, is twice the default size).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path

from mfgbench.games.base import Game, Population
from mfgbench.games.coupling import AffineCoupling
from mfgbench.games.registry import register

LOG_EPS = 1e-12
MOVES = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)])
"""(dr, dc) of up, down, left, right."""
MOVE_NAMES = ("up", "down", "left", "right")


def maze_layout(size: int):
    """``(free, safe)`` boolean ``size x size`` arrays: the maze's free cells and its safe zone."""
    free = np.ones((size, size), dtype=bool)
    wall = size // 2
    free[:, wall] = False
    free[[1, size - 2], wall] = True
    safe = np.zeros((size, size), dtype=bool)
    safe[:, size - 1] = True
    return free, safe & free


@register("predator-prey-capture-v0", description="predators and prey on a maze: capture moves prey to "
                                                  "'caught', prey are absorbed by a safe zone predators cannot enter",
          source="heterogeneous-populations note (sources/004, sec. 5.1: predator-prey with capture and a safe "
                 "zone); mfgbench's finite version")
class PredatorPreyCapture(Game):
    """Predators and prey on a maze with capture and a safe zone (see the module docstring)."""

    id = "predator-prey-capture-v0"
    static_transitions = False

    def __init__(self, size: int = 6, horizon: int = 12, kappa: float = 1.0, capture_reward: float = 10.0,
                 step_cost: float = 0.1, safe_reward: float = 10.0, catch_cost: float = 100.0, eta: float = 1.0,
                 noise: float = 0.2):
        if not isinstance(size, (int, np.integer)) or size < 5:
            raise ValueError(f"game {self.id}: size must be an integer >= 5, got {size!r}")
        if not 0.0 < kappa <= 1.0:
            raise ValueError(f"game {self.id}: kappa must lie in (0, 1] (a capture probability per unit of "
                             f"predator share), got {kappa}")
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"game {self.id}: noise must lie in [0, 1], got {noise}")
        for name, value in (("capture_reward", capture_reward), ("step_cost", step_cost),
                            ("safe_reward", safe_reward), ("catch_cost", catch_cost), ("eta", eta)):
            if not value >= 0:
                raise ValueError(f"game {self.id}: {name} must be >= 0, got {value}")
        n = self.size = int(size)
        self.kappa, self.noise, self.eta = float(kappa), float(noise), float(eta)
        self.capture_reward, self.step_cost = float(capture_reward), float(step_cost)
        self.safe_reward, self.catch_cost = float(safe_reward), float(catch_cost)
        free, safe = maze_layout(n)
        self.free, self.safe = free, safe
        cells_pred = np.flatnonzero((free & ~safe).ravel())
        cells_prey = np.flatnonzero(free.ravel())
        self.cells = (cells_pred, cells_prey)
        # state of each cell per population (-1: not a state of it)
        self.state_of = []
        for cells in self.cells:
            m = np.full(n * n, -1, dtype=np.int64)
            m[cells] = np.arange(cells.size)
            self.state_of.append(m)
        self.caught = cells_prey.size                              # the prey's last state
        self.prey_safe = safe.ravel()[cells_prey]                  # per prey cell state
        col = cells_pred % n
        mu_pred = (col == n // 2 + 1).astype(float)
        mu_prey = np.r_[(cells_prey % n == 0).astype(float), 0.0]
        labels_pred = tuple(f"({c // n}, {c % n})" for c in cells_pred)
        labels_prey = tuple(("safe " if s else "") + f"({c // n}, {c % n})"
                            for c, s in zip(cells_prey, self.prey_safe)) + ("caught",)
        pops = (Population("predators", cells_pred.size, 4, mu_pred / mu_pred.sum(), grid_shape=(n, n),
                           state_labels=labels_pred, cells=tuple(int(c) for c in cells_pred)),
                Population("prey", cells_prey.size + 1, 4, mu_prey / mu_prey.sum(), grid_shape=(n, n),
                           state_labels=labels_prey, cells=tuple(int(c) for c in cells_prey) + (-1,),
                           links=self._caught_links(cells_prey)))
        super().__init__(int(horizon), pops)
        self._moves = [self._move_tables(k) for k in range(2)]
        self.affine_coupling = self._declared_coupling()

    def _caught_links(self, cells_prey):
        """"caught" joined to every maze cell where capture can happen, at half the maze's graph
        diameter: mass missing from the maze counts like mass half the maze away, and no path
        between two cells is shortened by going through "caught"."""
        n = self.size
        pos = {int(c): i for i, c in enumerate(cells_prey)}
        rows, cols = [], []
        for c, i in pos.items():
            r, q = divmod(c, n)
            for dr, dc in MOVES:
                j = pos.get((r + dr) * n + q + dc) if 0 <= r + dr < n and 0 <= q + dc < n else None
                if j is not None:
                    rows.append(i); cols.append(j)
        dist = shortest_path(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(pos),) * 2), unweighted=True)
        half = max(1.0, float(np.ceil(dist.max() / 2)))
        return tuple((i, len(cells_prey), half) for i, c in enumerate(cells_prey) if not self.safe.ravel()[c])

    def _move_tables(self, k):
        """``(dest[s, m], p_move[s, a, m])``: the state each move m leads to from state s, and the
        probability of making move m when choosing a (noise); absorbing states stay."""
        n = self.size
        cells = self.cells[k]
        state_of = self.state_of[k]
        S = self.populations[k].n_states
        dest = np.tile(np.arange(S)[:, None], (1, 4))
        for s, c in enumerate(cells):
            if k == 1 and self.prey_safe[s]:
                continue
            r, q = divmod(int(c), n)
            for m, (dr, dc) in enumerate(MOVES):
                rr, qq = r + dr, q + dc
                if 0 <= rr < n and 0 <= qq < n and state_of[rr * n + qq] >= 0:
                    dest[s, m] = state_of[rr * n + qq]
        p_move = np.full((4, 4), self.noise / 4.0) + np.eye(4) * (1.0 - self.noise)
        return dest, np.broadcast_to(p_move, (S, 4, 4))

    def _on_maze(self, k):
        """Per state: 1 where the agent is on the maze and playing (not absorbed), else 0."""
        if k == 0:
            return np.ones(self.populations[0].n_states)
        return np.r_[(~self.prey_safe).astype(float), 0.0]

    def _on_grid(self, k):
        """Per state: 1 on a grid cell (the safe zone included), 0 for "caught"."""
        out = np.ones(self.populations[k].n_states)
        if k == 1:
            out[self.caught] = 0.0
        return out

    def _capture_probability(self, mu_pred):
        """``kappa mu_pred(z)`` at every prey state (0 in the safe zone and once caught)."""
        on_pred = self.state_of[0][self.cells[1]]
        p = np.where(on_pred >= 0, self.kappa * mu_pred[np.maximum(on_pred, 0)], 0.0)
        return np.r_[p, 0.0]

    def _safe_move_probability(self):
        """``P(move into the safe zone | z, a)`` for prey on the maze."""
        dest, p_move = self._moves[1]
        to_safe = np.r_[self.prey_safe, False][dest]                       # (S, moves)
        out = (p_move * to_safe[:, None, :]).sum(axis=2)
        out[self._on_maze(1) == 0] = 0.0
        return out

    def rewards(self, k, t, mf):
        crowd = -self.eta * np.log(mf.mu[k] + LOG_EPS) * self._on_grid(k)
        if k == 0:
            on_prey = self.state_of[1][self.cells[0]]
            captured = self.capture_reward * self.kappa * mf.mu[1][on_prey]
            return np.repeat((captured - self.step_cost + crowd)[:, None], 4, axis=1)
        caught = self._capture_probability(mf.mu[0])
        survive = 1.0 - caught
        return (-self.catch_cost * caught + crowd)[:, None] + self.safe_reward * survive[:, None] * \
            self._safe_move_probability()

    def transitions(self, k, t, mf):
        dest, p_move = self._moves[k]
        S = self.populations[k].n_states
        if k == 0:
            return np.broadcast_to(dest[:, None, :], (S, 4, 4)).copy(), np.array(p_move)
        caught = self._capture_probability(mf.mu[0])
        succ = np.concatenate([np.broadcast_to(dest[:, None, :], (S, 4, 4)), np.full((S, 4, 1), self.caught)], axis=2)
        moved = p_move * (1.0 - caught)[:, None, None]
        prob = np.concatenate([moved, np.broadcast_to(caught[:, None, None], (S, 4, 1))], axis=2)
        return succ.astype(np.int64), prob

    def _declared_coupling(self):
        """Features: the predators' share and the prey's share on every grid cell (2 n^2)."""
        n2 = self.size ** 2
        pred, prey = self.populations
        F_pred = np.zeros((2 * n2, pred.n_states))
        F_pred[self.cells[0], np.arange(pred.n_states)] = 1.0
        F_prey = np.zeros((2 * n2, prey.n_states))
        F_prey[n2 + self.cells[1], np.arange(prey.n_states - 1)] = 1.0
        # predators: capture_reward kappa mu_prey(cell), the same for every action
        G_pred = np.zeros((pred.n_states * 4, 2 * n2))
        for s, c in enumerate(self.cells[0]):
            G_pred[s * 4:(s + 1) * 4, n2 + c] = self.capture_reward * self.kappa
        # prey on the maze: -kappa (catch_cost + safe_reward P(safe | z, a)) mu_pred(cell), and the
        # capture's share of the moves: -kappa p_move on the moves, +kappa on "caught"
        safe_move = self._safe_move_probability()
        _, p_move = self._moves[1]
        G_prey = np.zeros((prey.n_states * 4, 2 * n2))
        H_prey = np.zeros((prey.n_states * 4 * 5, 2 * n2))
        on_pred = self.state_of[0][self.cells[1]]
        for s, c in enumerate(self.cells[1]):
            if on_pred[s] < 0:
                continue
            for a in range(4):
                G_prey[s * 4 + a, c] = -self.kappa * (self.catch_cost + self.safe_reward * safe_move[s, a])
                row = (s * 4 + a) * 5
                H_prey[row:row + 4, c] = -self.kappa * p_move[s, a]
                H_prey[row + 4, c] = self.kappa
        return AffineCoupling.build(self.populations, [4, 5], [F_pred, F_prey], reward=[G_pred, G_prey],
                                    transition=[None, H_prey], eta=[self.eta * self._on_grid(k) for k in range(2)],
                                    eps=LOG_EPS)
