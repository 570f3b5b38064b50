"""Finite-horizon mean field games with one or more populations.

A game holds a horizon ``T`` and populations ``k = 0..K-1``; population k has
``S_k`` states, ``A_k`` actions and an initial distribution ``mu0_k``. For every
time ``t`` and joint mean field ``mf`` (all populations' state distributions
``mu_t`` and state-action measures ``L_t = mu_t * pi_t``) it defines

- ``rewards(k, t, mf) -> R[s, a]`` (float64, finite),
- ``transitions(k, t, mf) -> (succ[s, a, b], prob[s, a, b])``: a fixed-width sparse
  successor list (int64 successor states, float64 probabilities, rows summing to 1;
  dense games use width ``B = S``),
- ``terminal(k, mf) -> g[s]`` (default 0).

Timing convention, used everywhere in the toolkit: at time ``t`` (0 <= t < T) the
population is ``mu_t``; an agent in ``s`` draws ``a ~ pi_t(.|s)``, earns
``R_t[s, a]`` computed with ``mu_t`` (and ``L_t``), and moves by
``P_t(.|s, a, mu_t)``; at ``T`` it earns ``g(s, mu_T)``. Undiscounted. A policy is
an array ``pi[t, s, a]`` for t = 0..T-1 per population; a flow is ``mu[t, s]`` for
t = 0..T.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfgbench.errors import GameError

ROW_SUM_TOL = 1e-9
"""How far a transition row or a distribution may be from summing to 1."""


@dataclass(frozen=True)
class Population:
    """One population of a game: its state and action sets and initial distribution.

    Geometry (optional; distribution metrics (W1) and figures use it):

    - ``grid_shape``: the states are the cells of a grid, row-major (``n_states`` cells), and
      ``periodic`` says whether that grid wraps around;
    - ``cells`` (with ``grid_shape``): the states are *some* cells of the grid ``grid_shape`` (a maze's
      free cells, a road's truck lanes) and possibly states with no cell (absorbing "caught",
      "arrived"): ``cells[s]`` is state s's row-major cell index, or -1 for a state with no cell;
    - ``links``: extra edges ``(s, s', length)`` of the state graph, e.g. joining the states with no
      cell to the cells they are entered from, or making the graph of a population with no grid
      (the health states of an epidemic).

    The *state graph* has an edge of length 1 between states on neighbouring grid cells (periodic
    grids wrap) and the ``links``; with ``cells`` or ``links`` it must be connected, and W1 is the
    optimal transport cost for its shortest-path distance (:func:`state_edges`). ``state_labels``
    name the states (figures, tables).
    """

    name: str
    n_states: int
    n_actions: int
    mu0: np.ndarray
    grid_shape: tuple | None = None
    periodic: bool = False
    state_labels: tuple | None = field(default=None, repr=False)
    cells: tuple | None = field(default=None, repr=False)
    links: tuple | None = field(default=None, repr=False)


@dataclass(frozen=True)
class MeanField:
    """The joint population state at one time: ``mu[k][s]`` and ``L[k][s, a]``.

    ``L[k]`` is the state-action measure ``mu_t(s) pi_t(a|s)``; it is ``None`` at the
    horizon, where no action is taken.
    """

    t: int
    mu: tuple
    L: tuple


@dataclass(frozen=True)
class LogCoupling:
    """Declares that a game's rewards depend on the mean field only through local terms:
    population k at state s choosing a earns ``B_t(s, a) + c_k(mu_t(s)) + d_k(a, mu_t(s))`` with

        c_k(mu(s)) = -eta log(mu_k(s) + eps) + sum_j cross[k][j] mu_j(s),
        d_k(a, mu(s)) = sum_j action_cross[k][j][a] mu_j(s)

    (``floor="max"``: ``-eta log(max(mu_k(s), eps))``; ``eta = 0``: no log term), and terminal
    reward ``g(s) + terminal_weight * c_k(mu_T(s))`` (``terminal=True``) or ``g(s)``, where ``B``
    and ``g`` do not depend on the mean field, and neither do the transitions. All populations
    share one state space. ``terminal_weight`` lets the terminal coupling differ in size from the
    per-step one (a discretized continuous game pays ``f dt`` per step and ``g`` once).
    With ``cross`` symmetric and no ``action_cross`` the game is a potential game (concave
    potential when also ``cross`` is negative semidefinite; otherwise its equilibria are still
    the potential's KKT points, e.g. segregation); with ``cross + cross'`` negative semidefinite
    and eta > 0 it is strictly monotone. ``action_cross`` (congestion costs that grow with the
    chosen speed) generally breaks monotonicity. ``reference_solvers.discrete.potential`` solves
    these games, after checking the declaration against the game's own rewards; the exact
    exploitability certifies the result."""

    eta: float
    eps: float
    floor: str = "add"
    terminal: bool = True
    cross: tuple | None = None
    action_cross: tuple | None = None
    terminal_weight: float = 1.0

    def __post_init__(self):
        if not (self.eta >= 0 and self.eps > 0) or self.floor not in ("add", "max"):
            raise ValueError(f"LogCoupling needs eta >= 0, eps > 0 and floor 'add' or 'max', got {self!r}")
        if not (np.isfinite(self.terminal_weight) and self.terminal_weight > 0):
            raise ValueError(f"LogCoupling: terminal_weight must be a positive number, got {self.terminal_weight!r}")
        if self.cross is not None:
            C = np.asarray(self.cross, dtype=np.float64)
            if C.ndim != 2 or C.shape[0] != C.shape[1]:
                raise ValueError(f"LogCoupling: cross must be a square matrix, got shape {C.shape}")
            if not (self.monotone_cross(C) or np.allclose(C, C.T)):
                raise ValueError("LogCoupling: cross must be symmetric (a potential game) or have cross + cross' "
                                 "negative semidefinite (a monotone game)")

    @staticmethod
    def monotone_cross(C: np.ndarray) -> bool:
        """Whether ``C + C'`` is negative semidefinite (the cross terms keep the game monotone)."""
        return bool(np.linalg.eigvalsh(C + C.T).max() <= 1e-12 * max(1.0, np.abs(C).max()))

    @property
    def monotone(self) -> bool:
        """Whether the declared coupling makes the game strictly monotone."""
        return self.eta > 0 and self.action_cross is None and (
            self.cross is None or self.monotone_cross(np.asarray(self.cross, dtype=np.float64)))

    @property
    def problem(self) -> str:
        """What the equilibrium conditions are: a potential's optimality conditions (symmetric
        cross terms, no action terms; a concave potential when monotone), a monotone variational
        inequality, or a general one."""
        if self.action_cross is None and (self.cross is None or np.allclose(self.cross, np.transpose(self.cross))):
            concave = self.cross is None or self.monotone_cross(np.asarray(self.cross, dtype=np.float64))
            return "potential" if concave else "potential (not concave)"
        return "monotone variational inequality" if self.monotone else "variational inequality (not monotone)"

    def weight(self, t: int, horizon: int) -> float:
        """Weight of the coupling ``c_k`` at time t: 1 before the horizon, ``terminal_weight`` at it."""
        return self.terminal_weight if t == horizon else 1.0

    def action_terms(self, k: int, mus) -> np.ndarray:
        """``d_k(a, mu(s))`` as an array ``[..., s, a]`` (None without ``action_cross``)."""
        if self.action_cross is None:
            return None
        phi = [np.asarray(row, dtype=np.float64) for row in self.action_cross[k]]
        return sum(mus[j][..., None] * phi[j] for j in range(len(mus)))

    def cross_matrix(self, n_populations: int) -> np.ndarray:
        """The K x K matrix ``cross`` (zeros when none is declared)."""
        if self.cross is None:
            return np.zeros((n_populations, n_populations))
        C = np.asarray(self.cross, dtype=np.float64)
        if C.shape != (n_populations, n_populations):
            raise ValueError(f"LogCoupling: cross is {C.shape}, the game has {n_populations} populations")
        return C

    def f(self, m: np.ndarray) -> np.ndarray:
        """The own-density term ``-eta log(m + eps)``."""
        if self.floor == "add":
            return -self.eta * np.log(m + self.eps)
        return -self.eta * np.log(np.maximum(m, self.eps))

    def state_reward(self, k: int, mus) -> np.ndarray:
        """``c_k`` at every state from all populations' distributions ``mus[j][..., s]``."""
        C = self.cross_matrix(len(mus))
        return self.f(mus[k]) + sum(C[k, j] * mus[j] for j in range(len(mus)))


class PopulationGame:
    """What every finite-state game kind shares: validated populations and the cache of
    transitions that do not depend on the mean field."""

    id: str = "game"

    def _set_populations(self, populations, params):
        if isinstance(populations, Population):
            populations = (populations,)
        populations = tuple(populations)
        if not populations:
            raise GameError(f"game {self.id}: needs at least one population")
        self.populations = tuple(_checked_population(self.id, k, p) for k, p in enumerate(populations))
        self.params = dict(params or {})
        self._validated = False
        self._transition_cache: dict = {}

    @property
    def n_populations(self) -> int:
        return len(self.populations)

    @property
    def mu0(self) -> tuple:
        return tuple(p.mu0 for p in self.populations)

    def _cached_transition(self, k: int, build):
        if k not in self._transition_cache:
            succ, prob = build()
            self._transition_cache[k] = (np.ascontiguousarray(succ, dtype=np.int64),
                                         np.ascontiguousarray(prob, dtype=np.float64))
        return self._transition_cache[k]


class Game(PopulationGame):
    """Base class of finite-horizon games (see the module docstring for the contract).

    Subclasses call ``Game.__init__`` with the horizon and populations, then
    implement ``rewards`` and ``transitions`` (and ``terminal`` if nonzero). Set
    ``static_transitions = True`` when the transitions depend on neither ``t`` nor
    the mean field: the core then builds them once and reuses them.
    """

    id: str = "game"
    kind: str = "finite"
    description: str = ""
    source: str = ""
    static_transitions: bool = False
    log_coupling: LogCoupling | None = None
    """Set (see :class:`LogCoupling`) on games whose only mean-field dependence is a local
    log-density reward: their references then come from the potential's interior point."""
    affine_coupling = None
    """Set (an :class:`mfgbench.games.coupling.AffineCoupling`) on games whose rewards and
    transitions are affine in linear features of the flows, populations on their own state
    spaces: their references then come from the interior point on the complementarity system."""

    def __init__(self, horizon: int, populations, params: dict | None = None):
        if not isinstance(horizon, (int, np.integer)) or isinstance(horizon, bool) or horizon < 1:
            raise GameError(f"game {self.id}: horizon must be an integer >= 1, got {horizon!r}")
        self.horizon = int(horizon)
        self._set_populations(populations, params)

    # -- the game's functions (override) ---------------------------------------------
    def rewards(self, k: int, t: int, mf: MeanField) -> np.ndarray:
        raise NotImplementedError

    def transitions(self, k: int, t: int, mf: MeanField):
        raise NotImplementedError

    def terminal(self, k: int, mf: MeanField) -> np.ndarray:
        return np.zeros(self.populations[k].n_states)

    # -- optional vectorised forms (speed only; must equal the functions above bit for bit) ------
    def rewards_over_time(self, k: int, flows: tuple, measures: tuple):
        """``rewards(k, t, .)`` for every t < T in one call, as ``R[t, s, a]``, from the flows
        ``flows[j][t, s]`` (t = 0..T) and state-action measures ``measures[j][t, s, a]`` (t < T) of
        all populations j. Optional: None (the default) means "call ``rewards`` time by time".
        An override must give exactly the per-time values (tests/games check it)."""
        return None

    def flow_and_transitions(self, pi: np.ndarray):
        """For single-population games whose transitions depend on the mean field: the flow
        ``mu[t, s]`` (t = 0..T) of ``pi[t, s, a]`` from mu0 and the transitions along it,
        ``(mu, succ[t, s, a, b], prob[t, s, a, b])`` for t < T, in one (compiled) call. Optional:
        None (the default) means "step by step through ``transitions``". An override must give
        exactly what the step-by-step construction gives (tests/games check it)."""
        return None

    @property
    def zero_terminal(self) -> bool:
        """Whether ``terminal`` is the default zero reward (the core then skips calling it)."""
        return type(self).terminal is Game.terminal

    def __repr__(self):
        sizes = ", ".join(f"{p.name}: S={p.n_states} A={p.n_actions}" for p in self.populations)
        return f"<{type(self).__name__} {self.id} T={self.horizon} ({sizes})>"

    def static_transition(self, k: int):
        """Population k's transitions when they depend on neither time nor the mean field."""
        return self._cached_transition(k, lambda: self.transitions(k, 0, None))


def _checked_population(game_id: str, k: int, p: Population) -> Population:
    where = f"game {game_id}, population {k} ({p.name})"
    if not isinstance(p, Population):
        raise GameError(f"game {game_id}, population {k}: expected a Population, got {type(p).__name__}")
    if p.n_states < 1 or p.n_actions < 1:
        raise GameError(f"{where}: needs at least one state and one action, "
                        f"got n_states={p.n_states}, n_actions={p.n_actions}")
    mu0 = np.asarray(p.mu0, dtype=np.float64)
    if mu0.shape != (p.n_states,):
        raise GameError(f"{where}: mu0 has shape {mu0.shape}, expected ({p.n_states},)")
    check_distribution(mu0, f"{where}: mu0")
    if p.cells is None and p.grid_shape is not None and int(np.prod(p.grid_shape)) != p.n_states:
        raise GameError(f"{where}: grid_shape {p.grid_shape} does not hold {p.n_states} states")
    cells = _checked_cells(where, p)
    links = _checked_links(where, p)
    if p.state_labels is not None and len(p.state_labels) != p.n_states:
        raise GameError(f"{where}: {len(p.state_labels)} state labels for {p.n_states} states")
    mu0 = mu0.copy()
    mu0.setflags(write=False)
    checked = Population(p.name, int(p.n_states), int(p.n_actions), mu0, p.grid_shape, p.periodic, p.state_labels,
                         cells, links)
    if cells is not None or links is not None:
        s = _unreachable_state(checked)
        if s is not None:
            raise GameError(f"{where}: the state graph (grid neighbours and links) is not connected: state {s} "
                            f"cannot be reached from state 0")
    return checked


def _checked_cells(where, p):
    if p.cells is None:
        return None
    if p.grid_shape is None:
        raise GameError(f"{where}: cells are given without the grid_shape they lie on")
    cells = np.asarray(p.cells)
    n_cells = int(np.prod(p.grid_shape))
    if cells.shape != (p.n_states,) or not np.issubdtype(cells.dtype, np.integer):
        raise GameError(f"{where}: cells must hold one integer per state ({p.n_states}), got shape {cells.shape}")
    bad = (cells < -1) | (cells >= n_cells)
    if bad.any():
        s = int(np.flatnonzero(bad)[0])
        raise GameError(f"{where}: state {s} lies on cell {int(cells[s])}, outside the grid {p.grid_shape} "
                        f"(-1 means no cell)")
    placed = cells[cells >= 0]
    if np.unique(placed).size != placed.size:
        raise GameError(f"{where}: two states lie on one cell")
    return tuple(int(c) for c in cells)


def _checked_links(where, p):
    if p.links is None:
        return None
    out = []
    for i, link in enumerate(p.links):
        if len(link) != 3:
            raise GameError(f"{where}: link {i} must be (state, state, length), got {link!r}")
        a, b, length = link
        if not (0 <= int(a) < p.n_states and 0 <= int(b) < p.n_states) or int(a) == int(b):
            raise GameError(f"{where}: link {i} joins states {a} and {b}: they must be two states in "
                            f"0..{p.n_states - 1}")
        if not (np.isfinite(length) and length > 0):
            raise GameError(f"{where}: link {i} has length {length!r}; lengths must be positive")
        out.append((int(a), int(b), float(length)))
    return tuple(out)


def state_edges(pop: Population):
    """The edges ``(tails, heads, lengths)`` (each undirected edge once) of ``pop``'s state graph:
    length-1 edges between states on neighbouring cells of its grid (wrapping if ``periodic``;
    every state is a cell when ``cells`` is not given) and its ``links``. None for a population
    without a grid or links."""
    if pop.grid_shape is None and pop.links is None:
        return None
    tails, heads, lengths = [], [], []
    if pop.grid_shape is not None:
        shape = tuple(pop.grid_shape)
        cells = np.arange(pop.n_states) if pop.cells is None else np.asarray(pop.cells)
        state_of = np.full(int(np.prod(shape)), -1, dtype=np.int64)
        state_of[cells[cells >= 0]] = np.flatnonzero(cells >= 0)
        grid = state_of.reshape(shape)
        for axis in range(len(shape)):
            if shape[axis] < 2:
                continue
            nxt = np.roll(grid, -1, axis=axis)
            if not (pop.periodic and shape[axis] > 2):
                keep = [slice(None)] * len(shape)
                keep[axis] = slice(0, shape[axis] - 1)
                a, b = grid[tuple(keep)].ravel(), nxt[tuple(keep)].ravel()
            else:
                a, b = grid.ravel(), nxt.ravel()
            both = (a >= 0) & (b >= 0)
            tails.append(a[both]); heads.append(b[both]); lengths.append(np.ones(int(both.sum())))
    if pop.links:
        link = np.asarray(pop.links, dtype=np.float64)
        tails.append(link[:, 0].astype(np.int64)); heads.append(link[:, 1].astype(np.int64))
        lengths.append(link[:, 2])
    return (np.concatenate(tails).astype(np.int64), np.concatenate(heads).astype(np.int64),
            np.concatenate(lengths))


def _unreachable_state(pop: Population):
    """A state the state graph does not connect to state 0, or None."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    tails, heads, _ = state_edges(pop)
    graph = coo_matrix((np.ones(tails.size), (tails, heads)), shape=(pop.n_states, pop.n_states))
    _, label = connected_components(graph, directed=False)
    apart = np.flatnonzero(label != label[0])
    return int(apart[0]) if apart.size else None


def check_distribution(mu: np.ndarray, where: str) -> None:
    """Raise GameError unless ``mu`` is finite, non-negative and sums to 1."""
    if not np.all(np.isfinite(mu)):
        s = int(np.flatnonzero(~np.isfinite(mu))[0])
        raise GameError(f"{where} is not finite at state {s}")
    if np.any(mu < 0):
        s = int(np.flatnonzero(mu < 0)[0])
        raise GameError(f"{where} is negative at state {s} ({mu[s]:.3g})")
    total = float(mu.sum())
    if abs(total - 1.0) > ROW_SUM_TOL:
        raise GameError(f"{where} sums to {total!r}, not 1")


def check_rewards(game: Game, k: int, t, R) -> np.ndarray:
    """Validate what ``game.rewards`` (or ``terminal`` when t is 'T') returned."""
    pop = game.populations[k]
    where = f"game {game.id}, population {k} ({pop.name}), time {t}"
    R = np.asarray(R, dtype=np.float64)
    shape = (pop.n_states,) if t == "T" else (pop.n_states, pop.n_actions)
    if R.shape != shape:
        what = "terminal reward" if t == "T" else "rewards"
        raise GameError(f"{where}: {what} have shape {R.shape}, expected {shape}")
    bad = ~np.isfinite(R)
    if bad.any():
        idx = np.argwhere(bad)[0]
        at = f"state {idx[0]}" + (f", action {idx[1]}" if R.ndim == 2 else "")
        raise GameError(f"{where}, {at}: reward is not finite ({R[tuple(idx)]})")
    return R


def check_transitions(game: Game, k: int, t: int, succ, prob):
    """Validate a successor list: shapes, indices in range, probabilities a distribution."""
    pop = game.populations[k]
    where = f"game {game.id}, population {k} ({pop.name}), time {t}"
    succ = np.asarray(succ)
    prob = np.asarray(prob, dtype=np.float64)
    S, A = pop.n_states, pop.n_actions
    if succ.ndim != 3 or succ.shape[:2] != (S, A):
        raise GameError(f"{where}: successor array has shape {succ.shape}, expected ({S}, {A}, B)")
    if prob.shape != succ.shape:
        raise GameError(f"{where}: probability array has shape {prob.shape}, "
                        f"successor array {succ.shape}; they must match")
    if not np.issubdtype(succ.dtype, np.integer):
        raise GameError(f"{where}: successor array must hold integers, got {succ.dtype}")
    out = (succ < 0) | (succ >= S)
    if out.any():
        s, a, b = np.argwhere(out)[0]
        raise GameError(f"{where}, state {s}, action {a}: successor {succ[s, a, b]} is outside 0..{S - 1}")
    bad = ~np.isfinite(prob) | (prob < 0)
    if bad.any():
        s, a, b = np.argwhere(bad)[0]
        raise GameError(f"{where}, state {s}, action {a}: transition probability "
                        f"{prob[s, a, b]} is negative or not finite")
    rows = prob.sum(axis=2)
    off = np.abs(rows - 1.0) > ROW_SUM_TOL
    if off.any():
        s, a = np.argwhere(off)[0]
        raise GameError(f"{where}, state {s}, action {a}: transition probabilities sum to "
                        f"{float(rows[s, a])!r}, not 1")
    return np.ascontiguousarray(succ, dtype=np.int64), np.ascontiguousarray(prob)


def grid_index(coords, shape) -> np.ndarray:
    """Row-major state index of integer grid coordinates (last axis = dimension)."""
    return np.ravel_multi_index(tuple(np.moveaxis(np.asarray(coords), -1, 0)), shape)
