"""Equilibria of log-coupled potential games: the maximiser of the game's potential, by a
primal–dual interior-point method.

The games (declared by :class:`mfgbench.games.base.LogCoupling`, checked here): one
population, transitions independent of the mean field, rewards
``R_t(s, a) = B_t(s, a) + f(mu_t(s))`` and terminal ``g(s) + f(mu_T(s))`` (or ``g(s)``), with
``f(m) = -eta log(m + eps)`` decreasing. Write the flow of a policy as its state-action
measures ``rho_t(s, a) = mu_t(s) pi_t(a|s) >= 0``, which satisfy the linear flow equations

    sum_a rho_0(s, a) = mu0(s),      sum_a rho_t(y, a) = mu_t(y) = sum_{s,a} P(y|s,a) rho_{t-1}(s, a).

Such a game is a *potential game* (Lasry & Lions 2007; for finite MFGs e.g. Guo et al. 2022,
MF-OMO, and Geist et al. 2022, "Concave utility RL: the mean-field game viewpoint"): with
``F' = f`` (``F(m) = -eta ((m + eps) log(m + eps) - m)``), the concave potential

    Phi(rho) = sum_{t<T} <rho_t, B_t> + sum_{t=1}^{T} sum_s F(mu_t(s)) + <g, mu_T>

(at t = 0, ``f(mu0)`` is a constant and left out; the mu_T terms only when the terminal reward
is coupled) has ``dPhi / drho_t(s, a) = R_t(s, a)`` (plus the expected future terms through
mu), and its KKT conditions over the flow polytope are exactly the best-response
conditions, the multipliers being value functions. So the equilibria are the maximisers.
F is strictly concave, so the equilibrium *flow* is unique; the policy is not (many splits of
rho give one flow), which is what makes the indifference equations of :mod:`.newton` singular
on crowd games. A log barrier does not mind: the Mehrotra predictor–corrector method
(Nocedal & Wright, Numerical Optimization, ch. 14 and 19) follows the central path
``rho z = nu`` towards the analytic centre of the optimal face. At a primal-feasible point
with zero dual residual, ``z_t(s, a) = V_t(s) - Q_t(s, a) >= 0`` is the action gap and the
exploitability of ``pi = rho / mu`` is ``sum rho z = n nu``; it is driven to round-off.

States that no policy reaches (walls, cells further than t moves from mu0's support) carry
no variable; there the returned policy is uniform (irrelevant to the exploitability).
Each iteration solves the normal equations ``A M^-1 A^T dy = r`` (M diagonal: the barrier
term ``z / rho`` and ``-f'(mu)``) by one sparse LU (scipy), used by predictor and corrector.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mfgbench.core.evaluate import model_of_profile
from mfgbench.core.kernels import best_response_values
from mfgbench.errors import GameError
from reference_solvers.discrete.problem import analyse, clock

CHECK_TOL = 1e-9
"""How closely the game's rewards must follow its declared coupling (relative to their size)."""


@dataclass
class PotentialProblem:
    """The potential maximisation of a log-coupled game, as ``min c(w) s.t. A w = b, rho >= 0``
    over ``w = (rho, mu)``: the constraint matrix, the linear costs, where each variable sits."""

    game: object
    coupling: object
    A: sp.csr_matrix
    b: np.ndarray
    cost: np.ndarray          # linear part of c over w (rho: -B; mu_T: -g)
    n_rho: int
    rho_index: list           # per t < T: (S, A) int array of variable indices, -1 where unreachable
    mu_slices: list           # per coupled time t >= 1: (slice into w, reachable states)
    start: np.ndarray         # w of the uniform policy (strictly feasible)
    start_dual: np.ndarray    # multipliers of the best response to that flow (see dual_start)


@dataclass
class InteriorPointResult:
    """The best profile ``pi = rho / mu`` seen and its exact exploitability, the iterations, the
    final central-path parameter, and why the method stopped."""

    profile: tuple
    iterations: int
    nu: float
    exploitability: float
    reason: str


def _random_profile(game, rng):
    p = game.populations[0]
    pi = rng.dirichlet(np.ones(p.n_actions), size=(game.horizon, p.n_states))
    return (np.ascontiguousarray(pi),)


def potential_problem(game, seed: int = 0) -> PotentialProblem:
    """Build the program for ``game``; raise GameError when the game does not declare a
    :class:`LogCoupling`, or its rewards, terminal or transitions do not follow it (checked
    along the uniform policy's flow and a random policy's, drawn from ``seed``)."""
    cp = getattr(game, "log_coupling", None)
    if cp is None or game.n_populations != 1:
        raise GameError(f"game {game.id}: not a single-population game with a declared log-density coupling")
    pop = game.populations[0]
    T, S, nA = game.horizon, pop.n_states, pop.n_actions
    uniform = (np.full((T, S, nA), 1.0 / nA),)
    mod = model_of_profile(game, uniform)
    other = model_of_profile(game, _random_profile(game, np.random.default_rng(seed)))
    mu_u = mod.flow[0]
    B = mod.rewards[0] - cp.f(mu_u[:T])[:, :, None]
    g = mod.terminal[0] - (cp.f(mu_u[T]) if cp.terminal else 0.0)
    # the declaration is a claim about the game's code: check it on another flow
    mu_o = other.flow[0]
    scale = max(1.0, float(np.abs(mod.rewards[0]).max()))
    bad = np.abs(other.rewards[0] - (B + cp.f(mu_o[:T])[:, :, None])) > CHECK_TOL * scale
    if bad.any():
        t, s, a = (int(i[0]) for i in np.nonzero(bad))
        raise GameError(f"game {game.id}: rewards do not follow the declared log coupling "
                        f"(time {t}, state {s}, action {a})")
    g_other = g + (cp.f(mu_o[T]) if cp.terminal else 0.0)
    bad = np.abs(other.terminal[0] - g_other) > CHECK_TOL * scale
    if bad.any():
        raise GameError(f"game {game.id}: terminal reward does not follow the declared log coupling "
                        f"(state {int(np.nonzero(bad)[0][0])})")
    for tab_u, tab_o, what in ((mod.succ[0], other.succ[0], "successors"), (mod.prob[0], other.prob[0], "probabilities")):
        if tab_u.shape != tab_o.shape or not np.array_equal(tab_u, tab_o):
            raise GameError(f"game {game.id}: transition {what} depend on the mean field; the potential "
                            f"formulation needs them fixed")
    succ, prob = mod.succ[0], mod.prob[0]

    def table(t):
        tt = 0 if succ.shape[0] == 1 else t
        return succ[tt], prob[tt]

    reach = mu_u > 0.0
    # variable layout: rho_t (t < T) on reachable states, then mu_t (t = 1..T-1, and T if coupled)
    rho_index, n = [], 0
    for t in range(T):
        idx = np.full((S, nA), -1, dtype=np.int64)
        states = np.nonzero(reach[t])[0]
        idx[states] = n + np.arange(states.size * nA).reshape(states.size, nA)
        n += states.size * nA
        rho_index.append(idx)
    n_rho = n
    coupled_times = list(range(1, T)) + ([T] if cp.terminal else [])
    mu_slices, mu_index = [], {}
    for t in coupled_times:
        states = np.nonzero(reach[t])[0]
        mu_slices.append((slice(n, n + states.size), states))
        idx = np.full(S, -1, dtype=np.int64)
        idx[states] = n + np.arange(states.size)
        mu_index[t] = idx
        n += states.size

    cost = np.zeros(n)
    for t in range(T):
        Bt = B[t].copy()
        if t == T - 1 and not cp.terminal:
            # an uncoupled terminal reward is a linear reward of the last move
            s_tab, p_tab = table(t)
            Bt += (p_tab * g[s_tab]).sum(axis=-1)
        states = np.nonzero(reach[t])[0]
        cost[rho_index[t][states].ravel()] = -Bt[states].ravel()
    if cp.terminal:
        sl, states = mu_slices[-1]
        cost[sl] = -g[states]

    # the dual start: with U the best-response values against the uniform flow (U_T = g +
    # f(mu_T), or no mu_T at all), the multiplier of "sum_a rho_t(s, .) = mu_t(s)" is
    # -(U_t(s) - f(mu_t(s))) and that of "mu_t = P' rho_{t-1}" is -U_t: then the
    # dual residual vanishes on mu and the reduced costs of rho are the best response's gaps
    U, _ = best_response_values(mod.rewards[0], succ, prob, mod.terminal[0])
    rows, cols, vals, rhs, dual = [], [], [], [], []
    r = 0
    for t in range(T):   # sum_a rho_t(s, a) - mu_t(s) = [t == 0] mu0(s)
        states = np.nonzero(reach[t])[0]
        dual.append(-(U[t][states] - cp.f(mu_u[t][states])))
        ids = rho_index[t][states]
        rows.append(np.repeat(r + np.arange(states.size), nA)); cols.append(ids.ravel())
        vals.append(np.ones(ids.size))
        if t == 0:
            rhs.append(pop.mu0[states])
        else:
            rows.append(r + np.arange(states.size)); cols.append(mu_index[t][states])
            vals.append(-np.ones(states.size)); rhs.append(np.zeros(states.size))
        r += states.size
    for t in range(1, T + 1):   # mu_t(y) - sum P(y|s,a) rho_{t-1}(s, a) = 0
        if t not in mu_index:
            continue
        states = np.nonzero(reach[t])[0]
        row_of = np.full(S, -1, dtype=np.int64)
        row_of[states] = r + np.arange(states.size)
        rows.append(row_of[states]); cols.append(mu_index[t][states]); vals.append(np.ones(states.size))
        dual.append(-U[t][states])
        s_tab, p_tab = table(t - 1)
        prev = np.nonzero(reach[t - 1])[0]
        ids = np.broadcast_to(rho_index[t - 1][prev][:, :, None], s_tab[prev].shape)
        y = s_tab[prev]
        keep = p_tab[prev] > 0.0
        rows.append(row_of[y[keep]]); cols.append(ids[keep]); vals.append(-p_tab[prev][keep])
        rhs.append(np.zeros(states.size))
        r += states.size
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, n))
    start = np.empty(n)
    for t in range(T):
        states = np.nonzero(reach[t])[0]
        start[rho_index[t][states]] = mu_u[t][states, None] / nA
    for (sl, states), t in zip(mu_slices, coupled_times):
        start[sl] = mu_u[t][states]
    return PotentialProblem(game, cp, A, np.concatenate(rhs), cost, n_rho, rho_index, mu_slices, start,
                            np.concatenate(dual))


def _gradient_and_curvature(prob: PotentialProblem, w):
    """Gradient of ``c(w) = <cost, w> - sum F(mu)`` and the diagonal of its Hessian (0 on rho)."""
    grad, curv = prob.cost.copy(), np.zeros_like(w)
    cp = prob.coupling
    for sl, _ in prob.mu_slices:
        grad[sl] -= cp.f(w[sl])
        curv[sl] = -cp.df(w[sl])
    return grad, curv


def _profile(prob: PotentialProblem, rho):
    game = prob.game
    pop = game.populations[0]
    pi = np.full((game.horizon, pop.n_states, pop.n_actions), 1.0 / pop.n_actions)
    for t, idx in enumerate(prob.rho_index):
        states = np.nonzero(idx[:, 0] >= 0)[0]
        r = np.maximum(rho[idx[states]], 0.0)
        pi[t, states] = r / r.sum(axis=1, keepdims=True)
    return (pi,)


def _step_to_boundary(x, dx, fraction):
    neg = dx < 0
    if not neg.any():
        return 1.0
    return float(min(1.0, fraction * np.min(-x[neg] / dx[neg])))


def solve_potential(game, target: float = 1e-10, max_iterations: int = 150, deadline: float = np.inf,
                    seed: int = 0, trace: list | None = None) -> InteriorPointResult:
    """Maximise the potential of ``game`` (see the module docstring) by Mehrotra's
    predictor–corrector method from the uniform policy's flow and its best response's
    multipliers, until the profile ``rho / mu`` has exact exploitability at most ``target``
    (checked once the duality measure ``n nu`` is below ``10 target``), ``max_iterations``, or
    the CPU clock passes ``deadline``. Returns the best profile seen.

    The exploitability is checked instead of the dual residual because on games with states
    of tiny equilibrium mass (everybody starts in one cell) the log's curvature there keeps
    the residual of those states' multipliers slowly converging long after the policy is
    exact."""
    prob = potential_problem(game, seed)
    A, b, n_rho = prob.A, prob.b, prob.n_rho
    At = A.T.tocsr()
    w = prob.start.copy()
    y = prob.start_dual.copy()
    grad, _ = _gradient_and_curvature(prob, w)
    z = np.maximum((grad - At @ y)[:n_rho], 0.0) + 1.0   # the best response's gaps, kept off zero
    best, best_profile = np.inf, None
    augmented = False
    it, reason = 0, f"{max_iterations} iterations"
    for it in range(1, max_iterations + 1):
        grad, curv = _gradient_and_curvature(prob, w)
        r_d = grad - At @ y
        r_d[:n_rho] -= z
        r_p = A @ w - b
        rho = w[:n_rho]
        nu = float(rho @ z) / n_rho
        if n_rho * nu <= 10.0 * target:
            profile = _profile(prob, rho)
            e = analyse(game, profile, validate=False).exploitability
            if e < best:
                best, best_profile = e, profile
            if best <= target:
                reason = "converged"
                break
        if clock() > deadline:
            reason = "time budget spent"
            break
        M = curv.copy()
        M[:n_rho] += z / rho
        # normal equations A M^-1 A' dy = ..., refined on the augmented (KKT) system; M spans
        # many orders of magnitude near the end, and where the normal equations lose too many
        # digits (or turn singular) the augmented system itself is factored (exact, 5x slower)
        Minv = 1.0 / M
        kkt = None
        if not augmented:
            try:
                lu = spla.splu((A @ sp.diags(Minv) @ At).tocsc())
            except RuntimeError:
                augmented = True
        if augmented:
            kkt = spla.splu(sp.bmat([[sp.diags(M), -At], [A, None]], format="csc"))

        def kkt_solve(q, r):   # [M, -A'; A, 0] [dw; dy] = [q; r]
            nonlocal augmented, kkt
            if kkt is None:
                dw, dy = np.zeros_like(q), np.zeros(A.shape[0])
                eq, er = q, r
                for _ in range(3):
                    ddy = lu.solve(er - A @ (Minv * eq))
                    dw += Minv * (eq + At @ ddy)
                    dy += ddy
                    eq = q - (M * dw - At @ dy)
                    er = r - A @ dw
                size = np.abs(q).max() + np.abs(r).max()
                if np.isfinite(dw).all() and np.abs(eq).max() + np.abs(er).max() <= 1e-9 * size:
                    return dw, dy
                augmented = True
                kkt = spla.splu(sp.bmat([[sp.diags(M), -At], [A, None]], format="csc"))
            sol = kkt.solve(np.concatenate([q, r]))
            return sol[:q.size], sol[q.size:]

        def direction(r_c):
            q = -r_d
            q[:n_rho] -= r_c / rho
            dw, dy = kkt_solve(q, -r_p)
            dz = -(r_c + z * dw[:n_rho]) / rho
            return dw, dy, dz

        dw, dy, dz = direction(rho * z)                      # predictor (affine scaling)
        a = min(_step_to_boundary(rho, dw[:n_rho], 1.0), _step_to_boundary(z, dz, 1.0))
        nu_aff = float((rho + a * dw[:n_rho]) @ (z + a * dz)) / n_rho
        sigma = (nu_aff / nu) ** 3
        dw, dy, dz = direction(rho * z + dw[:n_rho] * dz - sigma * nu)   # corrector
        fraction = min(0.9999, max(0.9, 1.0 - nu))   # never onto the boundary
        a = min(_step_to_boundary(rho, dw[:n_rho], fraction), _step_to_boundary(z, dz, fraction))
        if trace is not None:
            trace.append((nu, float(np.abs(r_d).max()), sigma, a))
        w += a * dw
        y += a * dy
        z += a * dz
    if best_profile is None:
        best_profile = _profile(prob, w[:n_rho])
        best = analyse(game, best_profile, validate=False).exploitability
    return InteriorPointResult(best_profile, it, float(w[:n_rho] @ z) / n_rho, float(best), reason)
