"""Two-player general-sum discounted stochastic games, and Grid Game 1 of Hu & Wellman
(2003, "Nash Q-learning for general-sum stochastic games", JMLR 4, sec. 5.1).

A game holds states s = 0..S-1, actions a1, a2 = 0..A-1 for both players, rewards
``rewards[i, s, a1, a2]`` of player i, a fixed-width successor list
``succ[s, a1, a2, b]`` / ``prob[s, a1, a2, b]``, a discount ``gamma``, an initial state
and terminal states (absorbing, value 0). A Nash equilibrium of the stochastic game
(stationary strategies) has values ``V_i`` with ``V_i(s) = NashQ_i(s)``, the
equilibrium payoffs of the stage game ``Q_i(s, a1, a2) = r_i + gamma sum P V_i``.

**Grid Game 1.** A 3x3 grid, cells numbered row by row from the bottom left
(cell = 3 y + x). Player 1 starts in the bottom-left cell 0 with goal the top-right
cell 8; player 2 starts in the bottom-right cell 2 with goal the top-left cell 6.
Actions: left, up, right, down (a move off the grid leaves the player in place).
Players move simultaneously and deterministically. If both would end in the same cell
they bounce back to their cells and each earns -1; otherwise they move, and a player
entering its goal earns 100. The game ends as soon as a player reaches its goal
(both may reach theirs in the same step). Discount 0.99. Players swapping cells do not
collide.

Known values: Hu & Wellman report a unique equilibrium Q-function for this game; each
player's equilibrium value at the start is that of a shortest collision-free path of
4 moves for both players (e.g. player 1 up, up, right, right and player 2 up, left,
left, up), ``V_1(s0) = V_2(s0) = 100 * 0.99^3 = 97.0299``; at the start, both moving
into cell 1 costs a bounce: ``Q_i(s0, right, left) = -1 + 0.99 * 97.0299``. Nash value
iteration on the model (``nash_values``) reproduces these numbers. Some stage games off
the equilibrium path have several equilibria; with the ``"first"`` selection the value
iteration cycles between them, with ``"welfare"`` (the default) it converges.
"""
from __future__ import annotations

import numpy as np

from mfgbench.learners.stage_games import solve_bimatrix

LEFT, UP, RIGHT, DOWN = 0, 1, 2, 3
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
"""(dx, dy) of left, up, right, down."""


class TwoPlayerGame:
    """A finite two-player general-sum discounted stochastic game (module docstring)."""

    name = "two-player-game"

    def __init__(self, rewards, succ, prob, gamma, initial_state, terminal):
        self.rewards = np.ascontiguousarray(rewards, dtype=np.float64)
        self.succ = np.ascontiguousarray(succ, dtype=np.int64)
        self.prob = np.ascontiguousarray(prob, dtype=np.float64)
        self.gamma = float(gamma)
        self.initial_state = int(initial_state)
        self.terminal = np.asarray(terminal, dtype=bool)
        _, S, A, A2 = self.rewards.shape
        if self.rewards.shape[0] != 2 or A != A2:
            raise ValueError(f"{self.name}: rewards must have shape (2, S, A, A), got {self.rewards.shape}")
        if self.succ.shape[:3] != (S, A, A) or self.prob.shape != self.succ.shape:
            raise ValueError(f"{self.name}: successor list must have shape (S, A, A, B), got {self.succ.shape}")
        if not np.allclose(self.prob.sum(axis=-1), 1.0, atol=1e-12):
            raise ValueError(f"{self.name}: transition probabilities must sum to 1")
        if not 0.0 < self.gamma < 1.0:
            raise ValueError(f"{self.name}: gamma must lie in (0, 1), got {gamma}")
        self.n_states, self.n_actions = S, A

    def stage_game(self, V, s):
        """``Q_i(s, a1, a2) = r_i(s, a1, a2) + gamma sum_b prob V_i(succ)`` for both players."""
        cont = (self.prob[s] * V[:, self.succ[s]]).sum(axis=-1)
        return self.rewards[:, s] + self.gamma * cont

    def nash_values(self, tol: float = 1e-12, max_iter: int = 10_000, selection: str = "welfare"):
        """Equilibrium values by Nash value iteration on the known model (Shapley-style):
        ``V_i(s) <- NashQ_i(s)`` until the largest change is below ``tol``."""
        V = np.zeros((2, self.n_states))
        for _ in range(max_iter):
            new = np.zeros_like(V)
            for s in range(self.n_states):
                if not self.terminal[s]:
                    Q = self.stage_game(V, s)
                    new[:, s] = solve_bimatrix(Q[0], Q[1], selection).values
            change = float(np.abs(new - V).max())
            V = new
            if change < tol:
                return V
        raise RuntimeError(f"{self.name}: Nash value iteration did not converge in {max_iter} sweeps")


class GridGame1(TwoPlayerGame):
    """Grid Game 1 of Hu & Wellman (2003); see the module docstring."""

    name = "grid-game-1"
    SIZE = 3
    STARTS = (0, 2)
    GOALS = (8, 6)
    GOAL_REWARD = 100.0
    COLLISION_REWARD = -1.0
    VALUE_AT_START = 100.0 * 0.99 ** 3
    """Known equilibrium value of each player at the start (4-move paths, no collision)."""

    def __init__(self, gamma: float = 0.99):
        n = self.SIZE
        cells = n * n
        S, A = cells * cells, len(MOVES)
        rewards = np.zeros((2, S, A, A))
        succ = np.zeros((S, A, A, 1), dtype=np.int64)
        prob = np.ones((S, A, A, 1))
        terminal = np.zeros(S, dtype=bool)
        for p1 in range(cells):
            for p2 in range(cells):
                s = self.state(p1, p2)
                terminal[s] = p1 == p2 or p1 == self.GOALS[0] or p2 == self.GOALS[1]
                for a1 in range(A):
                    for a2 in range(A):
                        if terminal[s]:
                            succ[s, a1, a2, 0] = s
                            continue
                        q1, q2 = self._move(p1, a1), self._move(p2, a2)
                        if q1 == q2:
                            q1, q2 = p1, p2
                            rewards[:, s, a1, a2] = self.COLLISION_REWARD
                        else:
                            rewards[0, s, a1, a2] = self.GOAL_REWARD * (q1 == self.GOALS[0])
                            rewards[1, s, a1, a2] = self.GOAL_REWARD * (q2 == self.GOALS[1])
                        succ[s, a1, a2, 0] = self.state(q1, q2)
        super().__init__(rewards, succ, prob, gamma, self.state(*self.STARTS), terminal)

    @classmethod
    def state(cls, p1: int, p2: int) -> int:
        return p1 * cls.SIZE * cls.SIZE + p2

    @classmethod
    def _move(cls, cell: int, action: int) -> int:
        n = cls.SIZE
        x, y = cell % n, cell // n
        dx, dy = MOVES[action]
        x2, y2 = x + dx, y + dy
        if not (0 <= x2 < n and 0 <= y2 < n):
            return cell
        return y2 * n + x2
