"""Equilibria of log-coupled games: the KKT system of the game's potential (or of its monotone
variational inequality), by a primal–dual interior-point method.

The games (declared by :class:`mfgbench.games.base.LogCoupling`, checked here): populations on
one state space, transitions independent of the mean field, rewards

    R_k,t(s, a) = B_k,t(s, a) + c_k(mu_t(s)),   c_k(mu) = -eta log(mu_k + eps) + sum_j C_kj mu_j,

and terminal ``g_k(s) + w_T c_k(mu_T(s))`` (or ``g_k(s)``; ``w_T`` the declared ``terminal_weight``).
Write the flow of a policy as its
state-action measures ``rho_t(s, a) = mu_t(s) pi_t(a|s) >= 0``, which satisfy the linear flow
equations ``sum_a rho_0(s, a) = mu0(s)``, ``sum_a rho_t(y, a) = mu_t(y) = sum_{s,a} P(y|s,a)
rho_{t-1}(s, a)``. With ``G = -(reward field)``, i.e. ``-B`` on rho, ``-c(mu)`` on mu (and
``-g`` on mu_T), a profile is an equilibrium iff its rho solves the variational inequality
``<G(rho), rho' - rho> >= 0`` for every feasible rho' — whose KKT conditions are the
best-response conditions, the multipliers being value functions. When C is symmetric, G is
the gradient of the negated potential

    Phi(rho) = sum_t <rho_t, B_t> + sum_{t>=1} w_t sum_s [F(mu_t(s)) + 1/2 mu_t(s)' C mu_t(s)] + <g, mu_T>,  F' = f,

(Lasry & Lions 2007; for finite MFGs Guo et al. 2022, MF-OMO; Geist et al. 2022) and the
equilibria are its KKT points: its maximisers when it is concave (C negative semidefinite),
and still its KKT points when it is not (segregation, where either population prefers the
other's absence: the method then finds one equilibrium among several, and the exact
exploitability says whether it is one); when ``C + C'`` is negative semidefinite (predator-prey:
antisymmetric) G is strictly monotone. In the monotone cases the equilibrium *flow* is unique, but the
policy is not (many splits of rho give one flow), which is what makes the indifference
equations of :mod:`.newton` singular on crowd games. A log barrier does not mind: Mehrotra's
predictor–corrector method (Nocedal & Wright, Numerical Optimization, ch. 14 and 19; for
monotone complementarity problems, Wright 1997, ch. 8) follows the central path
``rho z = nu`` towards the analytic centre of the solution set. At a feasible point with zero
KKT residual ``z_t(s, a) = V_t(s) - Q_t(s, a)`` is the action gap and the exploitability of
``pi = rho / mu`` is ``sum rho z = n nu``; the exact exploitability decides when to stop.
(At t = 0, ``c(mu0)`` is a constant and left out.)

States that no policy reaches (walls, cells further than t moves from mu0's support) carry
no variable; there the returned policy is uniform (irrelevant to the exploitability).
Each iteration solves one linear system (the KKT matrix, used by predictor and corrector)
by the cheapest of three solvers that still gives it to 1e-9 after iterative refinement:
the normal equations ``A M^-1 A' dy = r`` (no cross terms), the system with the rho block
eliminated, or one sparse LU of the whole matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mfgbench.core.evaluate import model_of_profile
from mfgbench.core.kernels import best_response_values
from mfgbench.core.policy import uniform_policy
from mfgbench.errors import GameError
from mfgbench.games.conformance import random_profile
from reference_solvers.discrete import iterative
from reference_solvers.discrete.problem import analyse, clock

CHECK_TOL = 1e-9
"""How closely the game's rewards must follow its declared coupling (relative to their size)."""


@dataclass
class PotentialProblem:
    """The equilibrium problem of a log-coupled game over ``w = (rho, mu)`` (all populations'
    rho first): ``A w = b``, ``rho >= 0`` and the KKT conditions of the operator
    ``G(w) = cost + lin @ w - f(mu)`` (``-f(mu)`` on the mu entries), where ``G`` is minus the
    reward field; ``G`` is the gradient of the negated potential when ``cross`` is symmetric."""

    game: object
    coupling: object
    A: sp.csr_matrix
    b: np.ndarray
    cost: np.ndarray          # constant part of G (rho: -B; mu_T: -g)
    lin: sp.csr_matrix        # linear part of G: -cross couplings between mu entries
    n_rho: int
    rho_index: list           # [k][t]: (S, A) array of variable indices, -1 where unreachable
    mu_slices: list           # (slice into w, reachable states, coupling weight) of every mu block
    start_dual: np.ndarray    # multipliers of the best response to the start flow (see below)
    scale: np.ndarray         # D = the start flow's w: the variables are w~ = w / D

    @property
    def start(self) -> np.ndarray:
        """The start flow (strictly feasible) in the scaled variables: all ones."""
        return np.ones(self.scale.size)


@dataclass
class InteriorPointResult:
    """The analysis (flow, values, exact exploitability) of the best profile ``pi = rho / mu``
    seen, the iterations, the final central-path parameter, and why the method stopped."""

    analysis: object          # reference_solvers.discrete.problem.Analysis of the best profile
    iterations: int
    nu: float
    reason: str

    @property
    def profile(self) -> tuple:
        return self.analysis.policy

    @property
    def exploitability(self) -> float:
        return self.analysis.exploitability


def _checked_parts(game, cp, seed, start_profile=None):
    """``(model along the start flow, B[k], g[k], state terms c_k along it)`` after checking the
    declaration: rewards, terminal and transitions along a random policy's flow must follow.
    ``B[k][t]`` excludes the mean-field terms, except at t = 0 where mu0 is fixed and the full
    reward minus the state term is kept (an action term of mu0 is a fixed reward)."""
    K, T = game.n_populations, game.horizon
    if len({p.n_states for p in game.populations}) != 1:
        raise GameError(f"game {game.id}: a log coupling needs all populations on one state space")
    mod = model_of_profile(game, uniform_policy(game) if start_profile is None else start_profile)
    other = model_of_profile(game, random_profile(game, np.random.default_rng(seed)))

    def terms(k, flow):   # the mean-field part of the rewards (t < T) and of the terminal reward
        c = cp.state_reward(k, flow)
        d = cp.action_terms(k, flow)
        run = c[:T, :, None] + (d[:T] if d is not None else 0.0)
        return run, (cp.terminal_weight * c[T] if cp.terminal else 0.0), c, d

    B, g, c_start = [], [], []
    for k in range(K):
        run, term, c, d = terms(k, mod.flow)
        run_o, term_o, _, _ = terms(k, other.flow)
        Bk = mod.rewards[k] - run
        g.append(mod.terminal[k] - term)
        scale = max(1.0, float(np.abs(mod.rewards[k]).max()))
        bad = np.abs(other.rewards[k] - (Bk + run_o)) > CHECK_TOL * scale
        if bad.any():
            t, s, a = (int(i[0]) for i in np.nonzero(bad))
            raise GameError(f"game {game.id}: rewards do not follow the declared log coupling "
                            f"(population {k}, time {t}, state {s}, action {a})")
        bad = np.abs(other.terminal[k] - (g[k] + term_o)) > CHECK_TOL * scale
        if bad.any():
            raise GameError(f"game {game.id}: terminal reward does not follow the declared log coupling "
                            f"(population {k}, state {int(np.nonzero(bad)[0][0])})")
        for tab_u, tab_o, what in ((mod.succ[k], other.succ[k], "successors"),
                                   (mod.prob[k], other.prob[k], "probabilities")):
            if tab_u.shape != tab_o.shape or not np.array_equal(tab_u, tab_o):
                raise GameError(f"game {game.id}: transition {what} of population {k} depend on the mean "
                                f"field; the potential formulation needs them fixed")
        if d is not None:
            Bk[0] += d[0]
        B.append(Bk)
        c_start.append(c)
    return mod, B, g, c_start


def potential_problem(game, seed: int = 0, start_profile: tuple | None = None) -> PotentialProblem:
    """Build the problem for ``game``; raise GameError when the game does not declare a
    :class:`LogCoupling`, or its rewards, terminal or transitions do not follow it (checked
    along the uniform policy's flow and a random policy's, drawn from ``seed``)."""
    cp = getattr(game, "log_coupling", None)
    if cp is None:
        raise GameError(f"game {game.id}: no declared log-density coupling")
    mod, B, g, c_u = _checked_parts(game, cp, seed, start_profile)
    K, T, S = game.n_populations, game.horizon, game.populations[0].n_states
    C = cp.cross_matrix(K)

    reach = [f > 0.0 for f in mod.flow]
    # variable layout: every population's rho_t (t < T) on reachable states, then every
    # population's mu_t (t = 1..T-1, and T if the terminal reward is coupled)
    rho_index, n = [], 0
    for k, pop in enumerate(game.populations):
        rho_index.append([])
        for t in range(T):
            idx = np.full((S, pop.n_actions), -1, dtype=np.int64)
            states = np.nonzero(reach[k][t])[0]
            idx[states] = n + np.arange(states.size * pop.n_actions).reshape(states.size, pop.n_actions)
            n += idx[states].size
            rho_index[k].append(idx)
    n_rho = n
    coupled_times = list(range(1, T)) + ([T] if cp.terminal else [])
    mu_slices, mu_index = [], [dict() for _ in range(K)]
    for k in range(K):
        for t in coupled_times:
            states = np.nonzero(reach[k][t])[0]
            mu_slices.append((slice(n, n + states.size), states, cp.weight(t, T)))
            idx = np.full(S, -1, dtype=np.int64)
            idx[states] = n + np.arange(states.size)
            mu_index[k][t] = idx
            n += states.size

    cost = np.zeros(n)
    for k in range(K):
        for t in range(T):
            Bt = B[k][t].copy()
            if t == T - 1 and not cp.terminal:
                # an uncoupled terminal reward is a linear reward of the last move
                s_tab, p_tab = mod.transition_at(k, t)
                Bt += (p_tab * g[k][s_tab]).sum(axis=-1)
            states = np.nonzero(reach[k][t])[0]
            cost[rho_index[k][t][states].ravel()] = -Bt[states].ravel()
        if cp.terminal:
            idx = mu_index[k][T]
            cost[idx[idx >= 0]] = -g[k][idx >= 0]
    lr, lc, lv = [], [], []
    for k in range(K):   # d(-c_k) / d mu_j = -cross[k][j] (the log part is handled apart)
        for j in range(K):
            if C[k, j] == 0.0:
                continue
            for t in coupled_times:
                both = (mu_index[k][t] >= 0) & (mu_index[j][t] >= 0)
                lr.append(mu_index[k][t][both]); lc.append(mu_index[j][t][both])
                lv.append(np.full(int(both.sum()), -C[k, j] * cp.weight(t, T)))
    if cp.action_cross is not None:   # d(-d_k(a, mu_t(s))) / d mu_j,t(s) on rho_k,t(s, a), t = 1..T-1
        for k in range(K):
            for j in range(K):
                phi = np.asarray(cp.action_cross[k][j], dtype=np.float64)
                for t in range(1, T):
                    both = (rho_index[k][t][:, 0] >= 0) & (mu_index[j][t] >= 0)
                    rows_k = rho_index[k][t][both]                       # (states, A_k)
                    lr.append(rows_k.ravel())
                    lc.append(np.repeat(mu_index[j][t][both], phi.size))
                    lv.append(np.tile(-phi, int(both.sum())))
    lin = sp.csr_matrix((np.concatenate(lv), (np.concatenate(lr), np.concatenate(lc))), shape=(n, n)) if lv \
        else sp.csr_matrix((n, n))

    # the dual start: with U the best-response values against the uniform flow, the
    # multiplier of "sum_a rho_t(s, .) = mu_t(s)" is -(U_t(s) - c(mu_t(s))) and that of
    # "mu_t = P' rho_{t-1}" is -U_t: then the residual of the KKT conditions vanishes on mu
    # and the reduced costs of rho are the best response's action gaps
    rows, cols, vals, rhs, dual = [], [], [], [], []
    r = 0
    for k, pop in enumerate(game.populations):
        U, _ = best_response_values(mod.rewards[k], mod.succ[k], mod.prob[k], mod.terminal[k])
        for t in range(T):   # sum_a rho_t(s, a) - mu_t(s) = [t == 0] mu0(s)
            states = np.nonzero(reach[k][t])[0]
            dual.append(-(U[t][states] - c_u[k][t][states]))
            ids = rho_index[k][t][states]
            rows.append(np.repeat(r + np.arange(states.size), pop.n_actions)); cols.append(ids.ravel())
            vals.append(np.ones(ids.size))
            if t == 0:
                rhs.append(pop.mu0[states])
            else:
                rows.append(r + np.arange(states.size)); cols.append(mu_index[k][t][states])
                vals.append(-np.ones(states.size)); rhs.append(np.zeros(states.size))
            r += states.size
        for t in coupled_times:   # mu_t(y) - sum P(y|s,a) rho_{t-1}(s, a) = 0
            states = np.nonzero(reach[k][t])[0]
            row_of = np.full(S, -1, dtype=np.int64)
            row_of[states] = r + np.arange(states.size)
            rows.append(row_of[states]); cols.append(mu_index[k][t][states]); vals.append(np.ones(states.size))
            dual.append(-U[t][states])
            s_tab, p_tab = mod.transition_at(k, t - 1)
            prev = np.nonzero(reach[k][t - 1])[0]
            ids = np.broadcast_to(rho_index[k][t - 1][prev][:, :, None], s_tab[prev].shape)
            keep = p_tab[prev] > 0.0
            rows.append(row_of[s_tab[prev][keep]]); cols.append(ids[keep]); vals.append(-p_tab[prev][keep])
            rhs.append(np.zeros(states.size))
            r += states.size
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, n))
    start = np.empty(n)
    for k, pop in enumerate(game.populations):
        for t in range(T):
            states = np.nonzero(reach[k][t])[0]
            start[rho_index[k][t][states]] = mod.flow[k][t][states, None] / pop.n_actions
        for t in coupled_times:
            idx = mu_index[k][t]
            start[idx[idx >= 0]] = mod.flow[k][t][idx >= 0]
    # Scaled variables w = D w~ (D = the start, so w~ starts at 1) and rows scaled by the mass
    # they balance: the uniform flow reaches far cells with masses down to 1e-70 (maze), and
    # unscaled, the KKT matrices' entries span more than the double range.
    D = start
    A = (A @ sp.diags(D)).tocsr()
    row = 1.0 / np.abs(A).max(axis=1).toarray().ravel()
    A = (sp.diags(row) @ A).tocsr()
    lin = (sp.diags(D) @ lin @ sp.diags(D)).tocsr()
    return PotentialProblem(game, cp, A, row * np.concatenate(rhs), D * cost, lin, n_rho, rho_index, mu_slices,
                            np.concatenate(dual) / row, D)


def _gradient_and_curvature(prob: PotentialProblem, w):
    """``D G(D w~)`` and the diagonal of its Jacobian without ``lin`` (the log terms; 0 on rho)."""
    grad, curv = prob.cost + prob.lin @ w, np.zeros_like(w)
    cp = prob.coupling
    for sl, _, weight in prob.mu_slices:
        d = prob.scale[sl]
        grad[sl] -= weight * d * cp.f(d * w[sl])
        # Newton uses the curvature of -eta log(mu) even where mu << eps, where f is flat: the
        # solution is unchanged, and mass far below eps (which no reward notices) is not moved
        # by huge steps that block every other variable at the boundary
        curv[sl] = weight * d * cp.eta / np.maximum(w[sl], 1e-300)
    return grad, curv


def _profile(prob: PotentialProblem, rho):
    rho = rho * prob.scale[:prob.n_rho]
    out = []
    for k, pop in enumerate(prob.game.populations):
        pi = np.full((prob.game.horizon, pop.n_states, pop.n_actions), 1.0 / pop.n_actions)
        for t, idx in enumerate(prob.rho_index[k]):
            states = np.nonzero(idx[:, 0] >= 0)[0]
            r = np.maximum(rho[idx[states]], 0.0)
            pi[t, states] = r / r.sum(axis=1, keepdims=True)
        out.append(pi)
    return tuple(out)


class _NormalKKT:
    """``[diag(M), -A'; A, 0]`` (no ``lin``) by the normal equations ``A M^-1 A' dy = r - A M^-1 q``
    (symmetric positive definite: a sparse LU with a symmetric ordering)."""

    def __init__(self, M, lin, A, n_rho):
        with np.errstate(divide="ignore"):   # an entry of M that underflowed to 0: the refinement
            self.A, self.Minv = A, 1.0 / M    # check sees the non-finite step and moves on
        self.lu = spla.splu((A @ sp.diags(self.Minv) @ A.T).tocsc(), permc_spec="MMD_AT_PLUS_A",
                            diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))

    def solve(self, q, r):
        dy = self.lu.solve(r - self.A @ (self.Minv * q))
        return self.Minv * (q + self.A.T @ dy), dy


class _FullKKT:
    """``[diag(M) + lin, -A'; A, 0]`` by one sparse LU of the whole matrix (exact, slowest)."""

    def __init__(self, M, lin, A, n_rho):
        self.lu = spla.splu(sp.bmat([[sp.diags(M) + lin, -A.T], [A, None]], format="csc"))

    def solve(self, q, r):
        sol = self.lu.solve(np.concatenate([q, r]))
        return sol[:q.size], sol[q.size:]


class _ReducedKKT:
    """The KKT system ``[diag(M) + lin, -A'; A, 0] [dw; dy] = [q; r]`` with the rho block
    (diagonal: ``lin`` has no rho rows of rho columns nor mu rows of rho columns) eliminated:

        [H_mu, -A_mu'; A_mu - A_rho D^-1 L, A_rho D^-1 A_rho'] [dmu; dy] = [q_mu; r - A_rho D^-1 q_rho],
        drho = D^-1 (q_rho - L dmu + A_rho' dy),

    with ``D = M_rho``, ``H_mu = diag(M_mu) + lin_mu,mu`` and ``L = lin_rho,mu``: one sparse LU of
    a system of the size of mu plus the constraints (the full one is 3-5x larger)."""

    def __init__(self, M, lin, A, n_rho):
        self.n_rho = n_rho
        self.Dinv = 1.0 / M[:n_rho]
        self.L = lin[:n_rho, n_rho:]
        self.Ar, self.Am = A[:, :n_rho], A[:, n_rho:]
        H = sp.diags(M[n_rho:]) + lin[n_rho:, n_rho:]
        ArD = self.Ar @ sp.diags(self.Dinv)
        self.lu = spla.splu(sp.bmat([[H, -self.Am.T], [self.Am - ArD @ self.L, ArD @ self.Ar.T]], format="csc"))

    def solve(self, q, r):
        qr, qm = q[:self.n_rho], q[self.n_rho:]
        sol = self.lu.solve(np.concatenate([qm, r - self.Ar @ (self.Dinv * qr)]))
        dmu, dy = sol[:qm.size], sol[qm.size:]
        drho = self.Dinv * (qr - self.L @ dmu + self.Ar.T @ dy)
        return np.concatenate([drho, dmu]), dy


KKT_SOLVERS = (_NormalKKT, _ReducedKKT, _FullKKT)


class _KKTSystem:
    """``[diag(M) + lin, -A'; A, 0] [dw; dy] = [q; r]`` by the cheapest of ``KKT_SOLVERS``, from
    ``level`` on, that still solves it to 1e-9 after three steps of iterative refinement on the
    full system (the last one is exact). M spans many orders of magnitude near the end, and the
    eliminations lose digits; ``level`` then moves on (factors are made once per level)."""

    def __init__(self, M, lin, A, At, n_rho, level):
        self.M, self.lin, self.A, self.At, self.n_rho, self.level = M, lin, A, At, n_rho, level
        self.factored = {}

    def _solver(self):
        while self.level not in self.factored:
            try:
                self.factored[self.level] = KKT_SOLVERS[self.level](self.M, self.lin, self.A, self.n_rho)
            except RuntimeError:   # singular to working precision: the next solver
                if self.level == len(KKT_SOLVERS) - 1:
                    raise
                self.level += 1
        return self.factored[self.level]

    def solve(self, q, r):
        size = np.abs(q).max() + np.abs(r).max()
        while True:
            solver = self._solver()
            if self.level == len(KKT_SOLVERS) - 1:
                return solver.solve(q, r)
            dw, dy = np.zeros_like(q), np.zeros_like(r)
            eq, er = q, r
            for _ in range(3):
                ddw, ddy = solver.solve(eq, er)
                dw += ddw
                dy += ddy
                eq = q - (self.M * dw + self.lin @ dw - self.At @ dy)
                er = r - self.A @ dw
            if np.isfinite(dw).all() and np.abs(eq).max() + np.abs(er).max() <= 1e-9 * size:
                return dw, dy
            self.level += 1


def _step_to_boundary(x, dx, fraction):
    neg = dx < 0
    if not neg.any():
        return 1.0
    return float(min(1.0, fraction * np.min(-x[neg] / dx[neg])))


def solve_potential(game, target: float = 1e-10, max_iterations: int = 150, deadline: float = np.inf,
                    seed: int = 0, warm: int = 0, mix: float = 0.9, trace: list | None = None) -> InteriorPointResult:
    """Maximise the potential of ``game`` (see the module docstring) by Mehrotra's
    predictor–corrector method from the flow of the uniform policy (or of ``warm`` fictitious
    play iterations mixed with it, weight ``mix``) and its best response's multipliers, until the profile ``rho / mu`` has exact exploitability at most ``target``
    (checked once the duality measure ``n nu`` is below ``10 target``), ``max_iterations``, or
    the CPU clock passes ``deadline``. Returns the best profile seen.

    The exploitability is checked instead of the dual residual because on games with states
    of tiny equilibrium mass (everybody starts in one cell) the log's curvature there keeps
    the residual of those states' multipliers slowly converging long after the policy is
    exact."""
    start_profile = None
    if warm:   # fictitious play, mixed with the uniform policy so every action keeps weight
        fp = iterative.fictitious_play(game, iterations=warm)
        start_profile = tuple(mix * pi + (1.0 - mix) / pi.shape[-1] for pi in fp.policy)
    prob = potential_problem(game, seed, start_profile)
    A, b, n_rho = prob.A, prob.b, prob.n_rho
    At = A.T.tocsr()
    w = prob.start.copy()
    y = prob.start_dual.copy()
    grad, _ = _gradient_and_curvature(prob, w)
    z = np.maximum((grad - At @ y)[:n_rho], 0.0) + 1.0   # the best response's gaps, kept off zero
    best = None   # the analysis of the best profile seen
    level = 1 if prob.lin.nnz else 0   # index into KKT_SOLVERS
    stalled = 0
    it, reason = 0, f"{max_iterations} iterations"
    for it in range(1, max_iterations + 1):
        grad, curv = _gradient_and_curvature(prob, w)
        r_d = grad - At @ y
        r_d[:n_rho] -= z
        r_p = A @ w - b
        rho = w[:n_rho]
        nu = float(rho @ z) / n_rho
        if n_rho * nu <= 10.0 * target:
            current = analyse(game, _profile(prob, rho), validate=False)
            improved = best is None or current.exploitability < best.exploitability
            stalled = 0 if improved else stalled + 1
            if improved:
                best = current
            if best.exploitability <= target:
                reason = "converged"
                break
            if stalled >= 10:
                reason = (f"exploitability {best.exploitability:.3g} did not improve in 10 iterations "
                          f"(target {target:g})")
                break
        if n_rho * nu <= 1e-250 or not np.isfinite(r_d).all():
            reason = f"numerical limit of the central path reached (target {target:g})"
            break
        if clock() > deadline:
            reason = "time budget spent"
            break
        M = curv.copy()
        M[:n_rho] += z / rho
        kkt = _KKTSystem(M, prob.lin, A, At, n_rho, level)

        def direction(r_c):
            q = -r_d
            q[:n_rho] -= r_c / rho
            dw, dy = kkt.solve(q, -r_p)
            dz = -(r_c + z * dw[:n_rho]) / rho
            return dw, dy, dz

        try:
            dw, dy, dz = direction(rho * z)                      # predictor (affine scaling)
        except RuntimeError as exc:   # SuperLU: singular to working precision
            reason = f"KKT system singular at iteration {it} ({exc})"
            break
        a = min(_step_to_boundary(rho, dw[:n_rho], 1.0), _step_to_boundary(z, dz, 1.0))
        nu_aff = float((rho + a * dw[:n_rho]) @ (z + a * dz)) / n_rho
        sigma = (nu_aff / nu) ** 3
        dw, dy, dz = direction(rho * z + dw[:n_rho] * dz - sigma * nu)   # corrector
        level = kkt.level   # a solver once found wanting is not tried again
        fraction = min(0.9999, max(0.9, 1.0 - nu))   # never onto the boundary
        a = min(_step_to_boundary(rho, dw[:n_rho], fraction), _step_to_boundary(z, dz, fraction))
        if trace is not None:
            trace.append((nu, float(np.abs(r_d).max()), sigma, a,
                          analyse(game, _profile(prob, rho), validate=False).exploitability))
        w += a * dw
        y += a * dy
        z += a * dz
    if best is None:
        best = analyse(game, _profile(prob, w[:n_rho]), validate=False)
    return InteriorPointResult(best, it, float(w[:n_rho] @ z) / n_rho, reason)
