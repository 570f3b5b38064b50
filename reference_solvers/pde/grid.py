"""Space grids: cell-centred points of a 1D interval/torus or a 2D box/torus.

Axis a of the box ``[lo_a, hi_a]`` is cut into ``n_a`` cells of width ``h_a``; the unknowns
live at the cell centres ``x_i = lo_a + (i + 1/2) h_a`` and are numbered row-major (the last
axis fastest), as in ``mfgbench.games.base.grid_index``. A density ``m`` has mass
``sum(m) * dv`` with ``dv = prod(h_a)``. Neighbours are held in one table ``nb[i, c]``:
column 0 is the point itself, column ``1 + 2a`` its neighbour in direction ``+e_a`` and
column ``2 + 2a`` in direction ``-e_a``; -1 marks a missing neighbour across a wall
(a reflecting wall: no flux crosses it). On a torus every neighbour exists.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Grid:
    """A cell-centred grid of a box or torus (see the module docstring)."""

    lo: tuple
    hi: tuple
    shape: tuple
    periodic: bool

    def __post_init__(self):
        if len(self.shape) != len(self.lo) or len(self.shape) not in (1, 2):
            raise ValueError(f"grid: shape {self.shape} does not match a {len(self.lo)}D domain")
        if any(int(n) != n or n < 3 for n in self.shape):
            raise ValueError(f"grid: need at least 3 cells per axis, got shape {self.shape}")
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))

    @classmethod
    def from_domain(cls, domain, n) -> "Grid":
        """Grid of ``domain`` (a ``mfgbench.games.continuous.Domain``) with n cells per axis (int or tuple)."""
        shape = (n,) * domain.dim if np.isscalar(n) else tuple(n)
        return cls(tuple(domain.lo), tuple(domain.hi), shape, bool(domain.periodic))

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def h(self) -> np.ndarray:
        return (np.array(self.hi) - np.array(self.lo)) / np.array(self.shape)

    @property
    def dv(self) -> float:
        return float(np.prod(self.h))

    @property
    def axes(self) -> tuple:
        """Cell-centre coordinates along each axis."""
        return tuple(lo + (np.arange(n) + 0.5) * h for lo, n, h in zip(self.lo, self.shape, self.h))

    @property
    def points(self) -> np.ndarray:
        """All cell centres, shape (d, N), row-major."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([c.ravel() for c in mesh])

    @property
    def neighbours(self) -> np.ndarray:
        """The neighbour table nb[N, 1 + 2d] (int64, -1 across a wall)."""
        idx = np.arange(self.size).reshape(self.shape)
        cols = [idx.ravel()]
        for a, n in enumerate(self.shape):
            for step in (1, -1):
                shifted = np.roll(idx, -step, axis=a)
                if not self.periodic:
                    edge = [slice(None)] * self.dim
                    edge[a] = n - 1 if step == 1 else 0
                    shifted = shifted.copy()
                    shifted[tuple(edge)] = -1
                cols.append(shifted.ravel())
        return np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.int64)

    def mass(self, m: np.ndarray) -> np.ndarray:
        """Mass ``sum(m) dv`` of a density (last axis = grid points)."""
        return np.asarray(m).sum(axis=-1) * self.dv

    def gradient(self, u: np.ndarray) -> np.ndarray:
        """Centred differences of u (one-sided at walls), shape (d, N)."""
        U = np.asarray(u).reshape(self.shape)
        out = []
        for a, h in enumerate(self.h):
            if self.periodic:
                g = (np.roll(U, -1, axis=a) - np.roll(U, 1, axis=a)) / (2 * h)
            else:
                g = np.gradient(U, h, axis=a, edge_order=1)
            out.append(g.ravel())
        return np.stack(out)
