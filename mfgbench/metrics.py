"""Distances between population flows: total variation and Wasserstein-1, per population.

For flows ``mu[t, s]`` and ``nu[t, s]`` of one population (t = 0..T; a stationary
game's flow is a single ``mu[s]``):

- total variation ``TV_t = 1/2 sum_s |mu_t(s) - nu_t(s)|`` (L1 = 2 TV), averaged over t;
- Wasserstein-1 with the grid metric, averaged over t: on a line of cells
  ``W1 = sum_i |F(i) - G(i)|`` (F, G the CDFs, unit spacing); on a circle
  ``W1 = min_c sum_i |F(i) - G(i) - c|`` (c the median of F - G); on a 2D grid (box or
  torus) the exact optimal transport cost with the Manhattan distance, solved as a
  min-cost flow along grid edges by a linear program; on any other state graph (a
  population declaring ``cells`` or ``links``: a maze's free cells, a road's truck lanes,
  absorbing states joined to the cells they are entered from, an epidemic's health states;
  see :class:`mfgbench.games.base.Population`) the optimal transport cost for the graph's
  shortest-path distance, the same min-cost flow along the graph's edges (all times in one
  linear program). States without a geometry have no W1 (None).

A game's distribution error is the mean over its populations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from mfgbench.games.base import state_edges


def total_variation(mu: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """TV distance per time (last axis = states)."""
    return 0.5 * np.abs(np.asarray(mu) - np.asarray(nu)).sum(axis=-1)


def w1_line(mu: np.ndarray, nu: np.ndarray, periodic: bool = False) -> np.ndarray:
    """W1 per time between distributions on a line (or circle) of unit-spaced cells."""
    diff = np.cumsum(np.asarray(mu) - np.asarray(nu), axis=-1)
    if periodic:
        diff = diff - np.median(diff, axis=-1, keepdims=True)
    return np.abs(diff).sum(axis=-1)


_EDGE_CACHE: dict = {}


def _grid_incidence(shape: tuple, periodic: bool):
    """Node-edge incidence matrix of the grid graph with both directions of every edge."""
    key = (tuple(shape), periodic)
    if key not in _EDGE_CACHE:
        idx = np.arange(int(np.prod(shape))).reshape(shape)
        tails, heads = [], []
        for axis in range(len(shape)):
            nxt = np.roll(idx, -1, axis=axis)
            if periodic and shape[axis] > 2:
                a, b = idx.ravel(), nxt.ravel()
            else:
                keep = [slice(None)] * len(shape)
                keep[axis] = slice(0, shape[axis] - 1)
                a, b = idx[tuple(keep)].ravel(), nxt[tuple(keep)].ravel()
            tails += [a, b]
            heads += [b, a]
        tails, heads = np.concatenate(tails), np.concatenate(heads)
        n_nodes, n_edges = idx.size, tails.size
        cols = np.arange(n_edges)
        inc = sparse.csr_matrix((np.r_[-np.ones(n_edges), np.ones(n_edges)], (np.r_[tails, heads], np.r_[cols, cols])),
                                shape=(n_nodes, n_edges))
        _EDGE_CACHE[key] = inc
    return _EDGE_CACHE[key]


def w1_grid(mu: np.ndarray, nu: np.ndarray, shape: tuple, periodic: bool = False) -> float:
    """Exact W1 (Manhattan ground distance) between two distributions on a grid of ``shape``."""
    inc = _grid_incidence(shape, periodic)
    supply = np.asarray(nu, dtype=np.float64) - np.asarray(mu, dtype=np.float64)
    if not np.any(supply):
        return 0.0
    res = linprog(np.ones(inc.shape[1]), A_eq=inc, b_eq=supply, bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"W1 transport problem failed: {res.message}")
    return float(res.fun)


_GRAPH_CACHE: dict = {}
ROUND_OFF = 1e-14


def _graph_incidence(population):
    """Node-arc incidence matrix (both directions of every edge) and arc lengths of the population's
    state graph, cached by its geometry."""
    key = (population.n_states, population.grid_shape, population.periodic, population.cells, population.links)
    if key not in _GRAPH_CACHE:
        tails, heads, lengths = state_edges(population)
        tails, heads = np.r_[tails, heads], np.r_[heads, tails]
        n_arcs = tails.size
        cols = np.arange(n_arcs)
        inc = sparse.csr_matrix((np.r_[-np.ones(n_arcs), np.ones(n_arcs)], (np.r_[tails, heads], np.r_[cols, cols])),
                                shape=(population.n_states, n_arcs))
        _GRAPH_CACHE[key] = (inc, np.r_[lengths, lengths])
    return _GRAPH_CACHE[key]


def w1_graph(mu: np.ndarray, nu: np.ndarray, population) -> np.ndarray:
    """W1 per time (rows of ``mu``, ``nu``) for the shortest-path distance of the population's state
    graph: the min-cost flow that moves ``mu_t`` onto ``nu_t`` along the graph's edges, every time
    in one linear program (the times' blocks are independent, so each block is optimal)."""
    inc, lengths = _graph_incidence(population)
    mu, nu = np.atleast_2d(np.asarray(mu, dtype=np.float64)), np.atleast_2d(np.asarray(nu, dtype=np.float64))
    supply = nu - mu
    # round-off differences (a single state's mass 1 - 1e-16) need no transport and may have no edge to use
    moving = np.flatnonzero(np.abs(supply).max(axis=1) > ROUND_OFF)
    out = np.zeros(mu.shape[0])
    if moving.size == 0 or lengths.size == 0:
        return out
    blocks = sparse.kron(sparse.identity(moving.size, format="csr"), inc, format="csr")
    res = linprog(np.tile(lengths, moving.size), A_eq=blocks, b_eq=supply[moving].ravel(), bounds=(0, None),
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"W1 transport problem on the state graph of {population.name} failed: {res.message}")
    out[moving] = (res.x.reshape(moving.size, -1) * lengths).sum(axis=1)
    return out


def w1(mu: np.ndarray, nu: np.ndarray, population) -> np.ndarray | None:
    """W1 per time for one population's flows, on its own geometry (grid, or state graph when it
    declares ``cells`` or ``links``); None without one."""
    if population.cells is not None or population.links is not None:
        return w1_graph(mu, nu, population)
    shape = population.grid_shape
    if shape is None:
        return None
    mu, nu = np.atleast_2d(mu), np.atleast_2d(nu)
    if len(shape) == 1:
        return w1_line(mu, nu, population.periodic)
    return np.array([w1_grid(m, n, shape, population.periodic) for m, n in zip(mu, nu)])


@dataclass(frozen=True)
class DistributionError:
    """Flow distances averaged over time: per population and their mean (W1 None where undefined)."""

    tv: float
    tv_per_population: tuple
    w1: float | None
    w1_per_population: tuple

    def as_dict(self) -> dict:
        return {"tv": self.tv, "tv_per_population": list(self.tv_per_population),
                "w1": self.w1, "w1_per_population": list(self.w1_per_population)}


def distribution_error(game, flow, reference_flow, with_w1: bool = True) -> DistributionError:
    """TV and W1 between two flows of ``game`` (tuples of per-population arrays), averaged over time."""
    if len(flow) != game.n_populations or len(reference_flow) != game.n_populations:
        raise ValueError(f"game {game.id}: flows must hold one array per population ({game.n_populations})")
    tv, w = [], []
    for k, pop in enumerate(game.populations):
        a, b = np.asarray(flow[k]), np.asarray(reference_flow[k])
        if a.shape != b.shape:
            raise ValueError(f"game {game.id}, population {k}: flow shapes differ: {a.shape} vs {b.shape}")
        tv.append(float(np.mean(total_variation(a, b))))
        d = w1(a, b, pop) if with_w1 else None
        w.append(None if d is None else float(np.mean(d)))
    w_known = [x for x in w if x is not None]
    return DistributionError(float(np.mean(tv)), tuple(tv), float(np.mean(w_known)) if len(w_known) == len(w) else None,
                             tuple(w))
