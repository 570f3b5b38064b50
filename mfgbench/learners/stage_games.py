"""Nash equilibria of two-player bimatrix (stage) games, solved exactly.

A bimatrix game is a pair of payoff matrices ``A[i, j]`` (row player) and ``B[i, j]``
(column player), i = 0..m-1, j = 0..n-1. Mixed strategies ``x`` (over rows) and ``y``
(over columns) form a Nash equilibrium when neither player gains by deviating:

    x^T A y >= max_i (A y)_i   and   x^T B y >= max_j (x^T B)_j.

Equivalently every row in the support of ``x`` is a best response to ``y`` and every
column in the support of ``y`` a best response to ``x``. Solved by **support
enumeration** (Nash's characterisation; see von Stengel, "Computing equilibria for
two-person games", Handbook of Game Theory 3, 2002):

1. pure profiles (i, j) that are mutual best responses;
2. for every pair of supports (I, J) with |I| = |J| = k >= 2, the indifference
   equations ``A[I, J] y_J = v 1``, ``sum y_J = 1`` and ``B[I, J]^T x_I = u 1``,
   ``sum x_I = 1``; a solution is kept when both strategies are non-negative and no
   action outside the supports does better. In a nondegenerate game this finds every
   equilibrium.
3. Degenerate games (ties; equilibria whose supports differ in size) may have no
   equilibrium of kinds 1-2: then every pair of supports (I, J) is tried with a
   feasibility linear program (rows of I are best responses to a y supported in J,
   and columns of J best responses to an x supported in I), which always succeeds by
   Nash's theorem.

All comparisons use the tolerance ``tol`` relative to the payoff scale.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from mfgbench._jit import jit


@dataclass(frozen=True)
class StageEquilibrium:
    """A Nash equilibrium ``(x, y)`` of a bimatrix game and its payoffs ``(x^T A y, x^T B y)``."""

    x: np.ndarray
    y: np.ndarray
    values: tuple


def _scale(A, B) -> float:
    return max(1.0, float(np.abs(A).max(initial=0.0)), float(np.abs(B).max(initial=0.0)))


def _checked(A, B):
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.ndim != 2 or A.shape != B.shape or A.size == 0:
        raise ValueError(f"bimatrix game: A and B must be non-empty matrices of the same shape, "
                         f"got {A.shape} and {B.shape}")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(B))):
        raise ValueError("bimatrix game: payoffs must be finite")
    return A, B


def is_nash(A, B, x, y, tol: float = 1e-9) -> bool:
    """True when no pure deviation gains more than ``tol`` (times the payoff scale)."""
    A, B = _checked(A, B)
    eps = tol * _scale(A, B)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if np.any(x < -eps) or np.any(y < -eps) or abs(x.sum() - 1) > 1e-9 or abs(y.sum() - 1) > 1e-9:
        return False
    Ay, xB = A @ y, x @ B
    return bool(x @ Ay >= Ay.max() - eps and xB @ y >= xB.max() - eps)


def _pure(A, B, eps):
    row_best = A >= A.max(axis=0, keepdims=True) - eps
    col_best = B >= B.max(axis=1, keepdims=True) - eps
    return np.argwhere(row_best & col_best)


def _indifferent(M, support_rows, support_cols):
    """y on ``support_cols`` making the rows in ``support_rows`` of M indifferent; None if singular."""
    k = len(support_rows)
    lhs = np.zeros((k + 1, k + 1))
    lhs[:k, :k] = M[np.ix_(support_rows, support_cols)]
    lhs[:k, k] = -1.0
    lhs[k, :k] = 1.0
    rhs = np.zeros(k + 1)
    rhs[k] = 1.0
    try:
        sol = np.linalg.solve(lhs, rhs)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(sol)):
        return None
    return sol[:k]


def _equal_supports(A, B, eps):
    m, n = A.shape
    for k in range(2, min(m, n) + 1):
        for I in itertools.combinations(range(m), k):
            for J in itertools.combinations(range(n), k):
                yJ = _indifferent(A, I, J)
                if yJ is None or np.any(yJ < -eps):
                    continue
                xI = _indifferent(B.T, J, I)
                if xI is None or np.any(xI < -eps):
                    continue
                x = np.zeros(m)
                y = np.zeros(n)
                x[list(I)] = np.clip(xI, 0.0, None)
                y[list(J)] = np.clip(yJ, 0.0, None)
                x /= x.sum()
                y /= y.sum()
                Ay, xB = A @ y, x @ B
                if Ay.max() <= x @ Ay + eps and xB.max() <= xB @ y + eps:
                    yield x, y


def _lp_strategy(M, best_rows, support_cols):
    """y >= 0 supported in ``support_cols``, sum 1, with rows ``best_rows`` of M y maximal."""
    from scipy.optimize import linprog
    m, n = M.shape
    J = list(support_cols)
    # variables: y_J and v; (M y)_i - v = 0 on best_rows, (M y)_i - v <= 0 elsewhere
    others = [i for i in range(m) if i not in best_rows]
    A_eq = np.zeros((len(best_rows) + 1, len(J) + 1))
    A_eq[:-1, :-1] = M[np.ix_(list(best_rows), J)]
    A_eq[:-1, -1] = -1.0
    A_eq[-1, :-1] = 1.0
    b_eq = np.zeros(len(best_rows) + 1)
    b_eq[-1] = 1.0
    A_ub = b_ub = None
    if others:
        A_ub = np.zeros((len(others), len(J) + 1))
        A_ub[:, :-1] = M[np.ix_(others, J)]
        A_ub[:, -1] = -1.0
        b_ub = np.zeros(len(others))
    bounds = [(0, None)] * len(J) + [(None, None)]
    res = linprog(np.zeros(len(J) + 1), A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds,
                  method="highs")
    if res.status != 0:
        return None
    y = np.zeros(n)
    y[J] = np.clip(res.x[:-1], 0.0, None)
    return y / y.sum()


def _degenerate(A, B, eps):
    m, n = A.shape
    for ki in range(1, m + 1):
        for I in itertools.combinations(range(m), ki):
            for kj in range(1, n + 1):
                for J in itertools.combinations(range(n), kj):
                    y = _lp_strategy(A, I, J)
                    if y is None:
                        continue
                    x = _lp_strategy(B.T, J, I)
                    if x is None:
                        continue
                    if is_nash(A, B, x, y, tol=10 * eps / _scale(A, B)):
                        return x, y
    raise RuntimeError("bimatrix game: no Nash equilibrium found (cannot happen by Nash's theorem)")


def nash_equilibria(A, B, tol: float = 1e-10) -> list[StageEquilibrium]:
    """Nash equilibria of the bimatrix game (A, B) by support enumeration (module docstring).

    Order: pure equilibria in row-major order, then mixed ones by support size and
    lexicographic supports. Complete for nondegenerate games; for a degenerate game
    without pure or equal-support equilibria it returns one equilibrium (LP step).
    """
    A, B = _checked(A, B)
    eps = tol * _scale(A, B)
    m, n = A.shape
    found = []
    for i, j in _pure(A, B, eps):
        x = np.zeros(m)
        y = np.zeros(n)
        x[i] = 1.0
        y[j] = 1.0
        found.append((x, y))
    for x, y in _equal_supports(A, B, eps):
        if not any(np.allclose(x, fx, atol=1e-9) and np.allclose(y, fy, atol=1e-9) for fx, fy in found):
            found.append((x, y))
    if not found:
        found.append(_degenerate(A, B, eps))
    return [StageEquilibrium(x, y, (float(x @ A @ y), float(x @ B @ y))) for x, y in found]


SELECTIONS = ("first", "welfare")


@functools.lru_cache(maxsize=64)
def _support_tables(m: int, n: int):
    """Supports of size k = 2..min(m, n) in itertools.combinations order, padded with -1:
    (row_sets, col_sets, sizes_start) with pairs enumerated k by k."""
    rows, cols, ks = [], [], []
    for k in range(2, min(m, n) + 1):
        rows.extend(itertools.combinations(range(m), k))
        cols.extend(itertools.combinations(range(n), k))
        ks.append(k)
    width = max(2, min(m, n))
    R = np.full((max(1, len(rows)), width), -1, dtype=np.int64)
    C = np.full((max(1, len(cols)), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        R[i, :len(r)] = r
    for i, c in enumerate(cols):
        C[i, :len(c)] = c
    return R, C, len(rows), len(cols)


@jit
def _solve_indifference(M, rows, cols, k, out):
    """out[:k] = z on ``cols`` with (M[rows, cols] z)_i equal for all i and sum z = 1;
    returns False when the system is singular (Gaussian elimination, partial pivoting)."""
    n = k + 1
    lhs = np.zeros((n, n + 1))
    for i in range(k):
        for j in range(k):
            lhs[i, j] = M[rows[i], cols[j]]
        lhs[i, k] = -1.0
    for j in range(k):
        lhs[k, j] = 1.0
    lhs[k, n] = 1.0
    for c in range(n):
        p = c
        for r in range(c + 1, n):
            if abs(lhs[r, c]) > abs(lhs[p, c]):
                p = r
        if abs(lhs[p, c]) < 1e-13:
            return False
        if p != c:
            for j in range(n + 1):
                tmp = lhs[c, j]
                lhs[c, j] = lhs[p, j]
                lhs[p, j] = tmp
        for r in range(n):
            if r != c:
                f = lhs[r, c] / lhs[c, c]
                if f != 0.0:
                    for j in range(c, n + 1):
                        lhs[r, j] -= f * lhs[c, j]
    for j in range(k):
        out[j] = lhs[j, n] / lhs[j, j]
    return True


@jit
def support_enumeration_kernel(A, B, eps, row_sets, col_sets, n_row_sets, n_col_sets, welfare):
    """Equilibrium of (A, B) among pure profiles and equal-size supports (module docstring).

    Pure profiles are tried first (row-major); if one exists the first (or, with
    ``welfare``, the largest payoff sum) is returned. Otherwise supports of size k = 2.. are
    tried in the order of ``_support_tables``. Returns (x, y, found).
    """
    m, n = A.shape
    x = np.zeros(m)
    y = np.zeros(n)
    best = -np.inf
    bi = -1
    bj = -1
    for i in range(m):
        for j in range(n):
            ok = True
            for i2 in range(m):
                if A[i2, j] > A[i, j] + eps:
                    ok = False
                    break
            if ok:
                for j2 in range(n):
                    if B[i, j2] > B[i, j] + eps:
                        ok = False
                        break
            if ok:
                w = A[i, j] + B[i, j]
                if bi < 0 or (welfare and w > best + eps):
                    best = w
                    bi = i
                    bj = j
    if bi >= 0:
        x[bi] = 1.0
        y[bj] = 1.0
        return x, y, True
    found = False
    xs = np.zeros(m)
    ys = np.zeros(n)
    zy = np.zeros(min(m, n))
    zx = np.zeros(min(m, n))
    Ay = np.zeros(m)
    xB = np.zeros(n)
    for p in range(n_row_sets):
        k = 0
        while k < row_sets.shape[1] and row_sets[p, k] >= 0:
            k += 1
        I = row_sets[p, :k]
        for q in range(n_col_sets):
            if col_sets[q, k - 1] < 0 or (k < col_sets.shape[1] and col_sets[q, k] >= 0):
                continue
            J = col_sets[q, :k]
            if not _solve_indifference(A, I, J, k, zy):
                continue
            neg = False
            for j in range(k):
                if zy[j] < -eps:
                    neg = True
            if neg:
                continue
            if not _solve_indifference(B.T, J, I, k, zx):
                continue
            for j in range(k):
                if zx[j] < -eps:
                    neg = True
            if neg:
                continue
            xs[:] = 0.0
            ys[:] = 0.0
            sx = 0.0
            sy = 0.0
            for j in range(k):
                xs[I[j]] = max(zx[j], 0.0)
                ys[J[j]] = max(zy[j], 0.0)
                sx += xs[I[j]]
                sy += ys[J[j]]
            xs /= sx
            ys /= sy
            Ay[:] = A @ ys
            xB[:] = xs @ B
            vx = xs @ Ay
            vy = xB @ ys
            if Ay.max() > vx + eps or xB.max() > vy + eps:
                continue
            w = vx + xs @ B @ ys
            if not found or (welfare and w > best + eps):
                best = w
                x[:] = xs
                y[:] = ys
                found = True
                if not welfare:
                    return x, y, True
    return x, y, found


def solve_bimatrix(A, B, selection: str = "first", tol: float = 1e-10) -> StageEquilibrium:
    """One Nash equilibrium of (A, B).

    ``"first"``: the first found (pure equilibria first, row-major, then mixed ones by
    support size and lexicographic supports); ``"welfare"``: the pure equilibrium with
    the largest payoff sum ``A[i, j] + B[i, j]`` when the game has one, else the mixed
    equilibrium with the largest ``x^T (A + B) y`` (ties to the first). Compiled kernel;
    degenerate games it cannot settle go to the LP step of ``nash_equilibria``.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"solve_bimatrix: selection must be one of {SELECTIONS}, got {selection!r}")
    A, B = _checked(A, B)
    eps = tol * _scale(A, B)
    rows, cols, nr, nc = _support_tables(*A.shape)
    x, y, found = support_enumeration_kernel(A, B, eps, rows, cols, nr, nc, selection == "welfare")
    if not found:
        x, y = _degenerate(A, B, eps)
    return StageEquilibrium(x, y, (float(x @ A @ y), float(x @ B @ y)))


def solve_bimatrix_python(A, B, selection: str = "first", tol: float = 1e-10) -> StageEquilibrium:
    """Plain numpy twin of ``solve_bimatrix`` through ``nash_equilibria`` (same selection rule)."""
    A, B = _checked(A, B)
    eqs = nash_equilibria(A, B, tol)
    if selection == "first":
        return eqs[0]
    pure = [i for i, e in enumerate(eqs) if np.max(e.x) == 1.0 and np.max(e.y) == 1.0]
    pool = pure if pure else list(range(len(eqs)))
    best = max(pool, key=lambda i: (eqs[i].values[0] + eqs[i].values[1], -i))
    return eqs[best]
