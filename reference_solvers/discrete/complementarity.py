"""Equilibria of games whose types have their own state spaces and meet through affine features of
the flows (:class:`mfgbench.games.coupling.AffineCoupling`): the equilibrium's complementarity
system, by a primal–dual interior-point Newton method.

The games: population k on its own states s (S_k) and actions a (A_k) earns
``R_k,t(s, a) = B_k,t(s, a) + (G_k phi_t)(s, a) - eta_k(s) log(mu_k,t(s) + eps)`` and moves by
``P_k,t(succ | s, a) = p_k,t + (H_k phi_t)``, where ``phi_t = sum_j F_j mu_j,t`` are features of
all populations' distributions (a road cell's joint occupancy, the predators' density where a
prey stands, every age group's infected mass), and the terminal reward is
``g_k = g0_k + J_k phi_T (- eta_k log(mu_k,T + eps))``.

**The system.** Write each population's flow as state-action measures ``rho_k,t(s, a) >= 0`` with
``mu_k,t(s) = sum_a rho_k,t(s, a)``, and its value function ``U_k,t(s)``. With the mean field
frozen at the equilibrium, population k's best response is a linear program over rho_k whose
dual variables are U_k and whose reduced costs are the action gaps
``z_k,t(s, a) = U_k,t(s) - Q_k,t(s, a)``, ``Q_k,t = R_k,t + P_k,t U_k,t+1`` (``U_k,T = g_k``).
A profile is an equilibrium iff, at the flow it induces, for every population:

    (a) sum_a rho_t(s, a) = mu_t(s)                                      (mu_0 = mu0),
    (b) mu_t(y) = sum_{s, a} P_t-1(y | s, a; phi_t-1) rho_t-1(s, a)            (t >= 1),
    (c) z_t(s, a) = U_t(s) - R_t(s, a; phi_t, mu_t) - sum_y P_t(y | s, a; phi_t) U_t+1(y),
    (d) rho >= 0, z >= 0, rho z = 0,

the KKT conditions of every population's program (complementary slackness says that every
action played is a best one) with the consistency "the frozen mean field is the flow". This is
the complementarity form of MF-OMO (Guo et al. 2022) extended to types with their own state
spaces; for a single state space and static transitions it is the system
:mod:`.potential` solves. Here (b) is bilinear when the transitions depend on the features,
and nothing makes the system monotone in general, so no theorem guarantees convergence: the
exact exploitability of ``pi = rho / mu`` decides whether the result is certified.

**The method.** Mehrotra's predictor–corrector path following on ``rho z = nu`` (Nocedal &
Wright, ch. 14 and 19; for nonlinear complementarity, Wright 1997, ch. 8): Newton's method on
(a)-(c) and the perturbed (d), with ``dz`` eliminated, which leaves one sparse unsymmetric
system in ``(drho, dmu, dU)`` per iteration (one LU, used by predictor and corrector), scaled by
the current rho and mu and equilibrated by rows. Steps keep rho, z and mu strictly positive
(the log terms need mu > 0) and every product ``rho z`` within a wide neighbourhood of the
central path; where Mehrotra's step is short, a plainly centred direction is taken instead (the
path bends where the system is not monotone). The start is the flow of 50 fictitious-play
iterations mixed with the uniform policy, and values from the Bellman recursion along it with a
margin ``start_nu / mu_t(s)`` added at each state: (a)-(c) hold exactly at the start, and every
gap is the best response's plus the margin. A path that stalls (steps below 1e-3, or nu not
halved in 15 iterations) is restarted with the next margin. It stops on the exact
exploitability of ``rho / mu``.

Measured limits: on sir-types-v0 with cheap distancing for the young (their indifference
lasting many days), the Newton matrix turns singular along every path tried (a fold of the
path near nu ~ 1e-4) and the result is not certified; the pipeline then goes on to its other
methods.

States that no policy reaches (given the successor lists and the entries the features can make
positive) carry no variable; there the returned policy is uniform (irrelevant to the
exploitability).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mfgbench.core.evaluate import model_of_profile
from mfgbench.core.policy import uniform_policy
from mfgbench.errors import GameError
from mfgbench.games.conformance import random_profile
from reference_solvers.discrete import iterative
from reference_solvers.discrete.potential import InteriorPointResult
from reference_solvers.discrete.problem import analyse, clock

SHORT_STEP = 0.1
"""A step shorter than this makes the iteration try the centred directions of ``CENTERING``."""
CENTERING = (0.5, 0.8)
NEIGHBOURHOOD = 0.05
"""Every product rho z is kept at least this fraction of their mean (a wide neighbourhood of the
central path; less if the start is less central): Mehrotra's unguarded steps left it on
sir-types-v0 and stalled."""
STALLED_STEP = 1e-3
"""Five steps shorter than this in a row: the path has stalled."""
SLOW_ITERATIONS = 15
"""nu not halved in this many iterations: the path has stalled."""
START_NUS = (1e-2, 1e-1, 1e-3)
"""Start margins tried in turn (see :func:`complementarity_problem`): the path from one start can
stall where the system is not monotone while the path from another gets through (sir-types-v0
with mixed distancing: measured)."""
START_FLOOR = 1e-12
"""Mass given at the start to states a policy may reach but the start flow misses."""
CHECK_TOL = 1e-9
"""How closely the game's rewards and transitions must follow its declared coupling (relative to their size)."""


@dataclass
class ComplementarityProblem:
    """The system of the module docstring for one game: the mean-field-free parts of its tables
    (``B[k][t, s, a]``, ``p[k][t, s, a, b]``, ``g0[k][s]``; at t = 0 the full tables, mu0 being
    fixed), the fixed successor lists, and the layout of the unknowns ``x = (rho, mu, U)``:
    ``rho_index[k][t]`` (S_k, A_k), ``mu_index[k][t]`` (S_k, t = 1..T_mu) and
    ``u_index[k][t]`` (S_k, t < T) hold each unknown's position in x (-1 where unreachable)."""

    game: object
    coupling: object
    B: list
    p: list
    g0: list
    succ: list
    coupled_terminal: bool
    rho_index: list
    mu_index: list
    u_index: list
    n_rho: int
    n_mu: int
    n_u: int
    start_x: np.ndarray
    start_z: np.ndarray

    @property
    def mu_times(self) -> range:
        """The times whose distributions are unknowns (t = T only when the terminal reward is coupled)."""
        return range(1, self.game.horizon + (1 if self.coupled_terminal else 0))


def _checked_parts(game, cp, seed, start_profile):
    """``(model along the start profile's flow, B, p, g0)`` after checking the declaration: the
    rewards, transitions and terminal reward along a random profile's flow must follow it."""
    T = game.horizon
    mod = model_of_profile(game, uniform_policy(game) if start_profile is None else start_profile)
    other = model_of_profile(game, random_profile(game, np.random.default_rng(seed)))
    B, p, g0 = [], [], []
    for k, pop in enumerate(game.populations):
        where = f"game {game.id}, population {k} ({pop.name})"
        A = pop.n_actions
        Bk = mod.rewards[k] - cp.reward_terms(k, [f[:T] for f in mod.flow], A)
        Bk[0] = mod.rewards[k][0]
        expect = Bk + cp.reward_terms(k, [f[:T] for f in other.flow], A)
        expect[0] = Bk[0]
        scale = max(1.0, float(np.abs(mod.rewards[k]).max()))
        bad = np.abs(other.rewards[k][1:] - expect[1:]) > CHECK_TOL * scale
        if bad.any():
            t, s, a = (int(i[0]) for i in np.nonzero(bad))
            raise GameError(f"{where}: rewards do not follow the declared affine coupling (time {t + 1}, state {s}, "
                            f"action {a}: {other.rewards[k][t + 1, s, a]!r}, declared {expect[t + 1, s, a]!r})")
        g = mod.terminal[k] - cp.terminal_terms(k, [f[T] for f in mod.flow])
        bad = np.abs(other.terminal[k] - (g + cp.terminal_terms(k, [f[T] for f in other.flow]))) > CHECK_TOL * scale
        if bad.any():
            raise GameError(f"{where}: terminal reward does not follow the declared affine coupling "
                            f"(state {int(np.nonzero(bad)[0][0])})")
        succ_m = np.broadcast_to(mod.succ[k], (T,) + mod.succ[k].shape[1:])
        succ_o = np.broadcast_to(other.succ[k], (T,) + other.succ[k].shape[1:])
        if not (succ_m == succ_m[0]).all() or not np.array_equal(succ_m, succ_o):
            raise GameError(f"{where}: the successor lists change with time or the mean field; the affine "
                            f"coupling needs them fixed (only probabilities may vary)")
        shape = succ_m.shape[1:]
        if cp.transition[k] is not None and cp.transition[k].shape[0] != int(np.prod(shape)):
            raise GameError(f"{where}: the declared transition terms have {cp.transition[k].shape[0]} rows, the "
                            f"successor lists {int(np.prod(shape))} entries")
        prob_m = np.array(np.broadcast_to(mod.prob[k], (T,) + shape))
        prob_o = np.broadcast_to(other.prob[k], (T,) + shape)
        terms_m = cp.transition_terms(k, [f[:T] for f in mod.flow], shape)
        terms_o = cp.transition_terms(k, [f[:T] for f in other.flow], shape)
        pk = prob_m - (terms_m if terms_m is not None else 0.0)
        pk[0] = prob_m[0]
        expect = pk + (terms_o if terms_o is not None else 0.0)
        bad = np.abs(prob_o[1:] - expect[1:]) > CHECK_TOL
        if bad.any():
            t, s, a, b = (int(i[0]) for i in np.nonzero(bad))
            raise GameError(f"{where}: transition probabilities do not follow the declared affine coupling "
                            f"(time {t + 1}, state {s}, action {a}, successor {b})")
        B.append(Bk)
        p.append(pk)
        g0.append(g)
    return mod, B, p, g0


def complementarity_problem(game, seed: int = 0, start_profile: tuple | None = None,
                            start_nu: float = START_NUS[0]) -> ComplementarityProblem:
    """Build the system for ``game``, started from ``start_profile``'s flow (default uniform) with
    the margin ``start_nu`` (see below);
    raise GameError when the game declares no AffineCoupling or does not follow it (checked along
    the start flow and a random profile's, drawn from ``seed``)."""
    cp = getattr(game, "affine_coupling", None)
    if cp is None:
        raise GameError(f"game {game.id}: no declared affine coupling")
    profile = uniform_policy(game) if start_profile is None else start_profile
    mod, B, p, g0 = _checked_parts(game, cp, seed, profile)
    K, T = game.n_populations, game.horizon
    coupled_terminal = cp.terminal_log or any(j is not None and j.nnz for j in cp.terminal)
    succ = [np.asarray(mod.succ[k][0]) for k in range(K)]

    # states a policy may reach: successors of reached states through entries that are positive
    # along the start flow or that the features can make positive
    reach = []
    for k, pop in enumerate(game.populations):
        H = cp.transition[k]
        varying = np.zeros(succ[k].shape, dtype=bool)
        if H is not None:
            varying = (np.asarray(abs(H).sum(axis=1)).ravel() > 0).reshape(succ[k].shape)
        r = [pop.mu0 > 0]
        for t in range(T):
            pos = (mod.transition_at(k, t)[1] > 0) | varying
            nxt = np.zeros(pop.n_states, dtype=bool)
            nxt[succ[k][r[t]][pos[r[t]]]] = True
            r.append(nxt)
        reach.append(r)

    n = 0
    rho_index, mu_index, u_index = [], [], []
    for k, pop in enumerate(game.populations):
        rho_index.append([])
        for t in range(T):
            idx = np.full((pop.n_states, pop.n_actions), -1, dtype=np.int64)
            states = np.flatnonzero(reach[k][t])
            idx[states] = n + np.arange(states.size * pop.n_actions).reshape(states.size, pop.n_actions)
            n += states.size * pop.n_actions
            rho_index[k].append(idx)
    n_rho = n
    mu_times = range(1, T + (1 if coupled_terminal else 0))
    for k, pop in enumerate(game.populations):
        mu_index.append({})
        for t in mu_times:
            idx = np.full(pop.n_states, -1, dtype=np.int64)
            states = np.flatnonzero(reach[k][t])
            idx[states] = n + np.arange(states.size)
            n += states.size
            mu_index[k][t] = idx
    n_mu = n - n_rho
    for k, pop in enumerate(game.populations):
        u_index.append([])
        for t in range(T):
            idx = np.full(pop.n_states, -1, dtype=np.int64)
            states = np.flatnonzero(reach[k][t])
            idx[states] = n + np.arange(states.size)
            n += states.size
            u_index[k].append(idx)
    n_u = n - n_rho - n_mu

    # the start: the profile's flow (every action keeps weight; reached states the start flow
    # misses get a little mass), and values from the Bellman recursion along it with a margin
    # delta_t(s) = start_nu / mu_t(s) added at every state, so that (c) holds with z = gap + delta:
    # the start is feasible in (c) and every product rho z is at least pi start_nu
    x = np.empty(n)
    z = np.empty(n_rho)
    for k, pop in enumerate(game.populations):
        U = mod.terminal[k].copy()
        for t in range(T - 1, -1, -1):
            s_t, p_t = mod.transition_at(k, t)
            Q = mod.rewards[k][t] + (p_t * U[s_t]).sum(axis=2)
            mass = np.maximum(mod.flow[k][t], START_FLOOR)
            U = Q.max(axis=1) + start_nu / mass
            idx = rho_index[k][t]
            on = idx >= 0
            x[idx[on]] = np.maximum(mass[:, None] * profile[k][t], START_FLOOR)[on]
            z[idx[on]] = (U[:, None] - Q)[on]
            x[u_index[k][t][reach[k][t]]] = U[reach[k][t]]
        for t in mu_times:
            idx = mu_index[k][t]
            x[idx[idx >= 0]] = np.maximum(mod.flow[k][t][idx >= 0], START_FLOOR)
    return ComplementarityProblem(game, cp, B, p, g0, succ, coupled_terminal, rho_index, mu_index, u_index,
                                  n_rho, n_mu, n_u, x, z)


class _Tables:
    """The game's tables at one iterate x: full distributions ``mu[k][t]`` (t = 0..T_mu), rewards
    ``R[k][t]``, probabilities ``prob[k][t]``, values ``U[k][t]`` (t = 0..T, ``U[k][T] = g_k``)."""

    def __init__(self, prob: ComplementarityProblem, x: np.ndarray):
        game, cp = prob.game, prob.coupling
        T = game.horizon
        pops = game.populations
        self.mu = []
        for k, pop in enumerate(pops):
            m = [pop.mu0]
            for t in prob.mu_times:
                full = np.zeros(pop.n_states)
                idx = prob.mu_index[k][t]
                full[idx >= 0] = x[idx[idx >= 0]]
                m.append(full)
            self.mu.append(m)
        self.R, self.prob, self.U = [], [], []
        for k, pop in enumerate(pops):
            R = prob.B[k].copy()
            P = prob.p[k].copy()
            for t in range(1, T):
                mus_t = [self.mu[j][t] for j in range(len(pops))]
                R[t] += cp.reward_terms(k, mus_t, pop.n_actions)
                terms = cp.transition_terms(k, mus_t, prob.succ[k].shape)
                if terms is not None:
                    P[t] += terms
            self.R.append(R)
            self.prob.append(P)
            U = np.zeros((T + 1, pop.n_states))
            for t in range(T):
                idx = prob.u_index[k][t]
                U[t][idx >= 0] = x[idx[idx >= 0]]
            U[T] = prob.g0[k]
            if prob.coupled_terminal:
                U[T] = U[T] + cp.terminal_terms(k, [self.mu[j][T] for j in range(len(pops))])
            self.U.append(U)


def _residuals(prob: ComplementarityProblem, tab: _Tables, x, z) -> np.ndarray:
    """``(c) - z`` on the rho rows, (b) on the mu rows, (a) on the U rows (see the module docstring)."""
    game = prob.game
    T = game.horizon
    r = np.zeros(x.size)
    for k, pop in enumerate(game.populations):
        succ = prob.succ[k]
        for t in range(T):
            idx = prob.rho_index[k][t]
            on = idx >= 0
            states = np.flatnonzero(on[:, 0])
            Q = tab.R[k][t] + (tab.prob[k][t] * tab.U[k][t + 1][succ]).sum(axis=2)
            r[idx[on]] = (tab.U[k][t][:, None] - Q)[on] - z[idx[on]]
            rho = np.zeros((pop.n_states, pop.n_actions))
            rho[on] = x[idx[on]]
            r[prob.u_index[k][t][states]] = rho[states].sum(axis=1) - tab.mu[k][t][states]
            if t + 1 in prob.mu_index[k]:
                nxt = prob.mu_index[k][t + 1]
                pushed = np.bincount(succ.ravel(), weights=(tab.prob[k][t] * rho[:, :, None]).ravel(),
                                     minlength=pop.n_states)
                r[nxt[nxt >= 0]] = (tab.mu[k][t + 1] - pushed)[nxt >= 0]
    return r


class _Triplets:
    """COO triplets of the Newton matrix; entries with an unreachable row or column (index -1) are dropped."""

    def __init__(self):
        self.rows, self.cols, self.vals = [], [], []

    def add(self, rows, cols, vals):
        rows, cols, vals = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), np.asarray(vals, dtype=np.float64))
        rows, cols, vals = rows.ravel(), cols.ravel(), vals.ravel()
        keep = (rows >= 0) & (cols >= 0) & (vals != 0.0)
        self.rows.append(rows[keep]); self.cols.append(cols[keep]); self.vals.append(vals[keep])

    def add_block(self, matrix, row_index, col_index, sign=1.0):
        """A sparse block ``matrix[i, j]`` placed at (row_index[i], col_index[j])."""
        m = sp.coo_matrix(matrix)
        self.add(row_index[m.row], col_index[m.col], sign * m.data)

    def matrix(self, n):
        return sp.csc_matrix((np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
                             shape=(n, n))


def _newton_matrix(prob: ComplementarityProblem, tab: _Tables, x, z) -> sp.csc_matrix:
    """The Jacobian of (c), (b), (a) in ``(rho, mu, U)``, with ``z / rho`` on the rho diagonal
    (``dz`` eliminated through the linearised ``rho z = nu``)."""
    game, cp = prob.game, prob.coupling
    T, K = game.horizon, game.n_populations
    pops = game.populations
    out = _Triplets()
    n_rho = prob.n_rho
    out.add(np.arange(n_rho), np.arange(n_rho), z / x[:n_rho])
    for k, pop in enumerate(pops):
        S, A = pop.n_states, pop.n_actions
        succ = prob.succ[k]
        width = succ.shape[2]
        H = cp.transition[k]
        for t in range(T):
            ridx = prob.rho_index[k][t]
            P = tab.prob[k][t]
            # (c): dU_t(s) = +1, dU_t+1(y) = -P(y | s, a)
            out.add(ridx, np.repeat(prob.u_index[k][t][:, None], A, axis=1), 1.0)
            rows_b = np.repeat(ridx[:, :, None], width, axis=2)
            if t + 1 < T:
                out.add(rows_b, prob.u_index[k][t + 1][succ], -P)
            elif prob.coupled_terminal:   # U_T = g(mu_T): -sum_y P(y | s, a) dg(y) / dmu_j,T
                P_mat = sp.csr_matrix((P.ravel(), (np.repeat(np.arange(S * A), width), succ.ravel())), shape=(S * A, S))
                for j in range(K):
                    dg = _terminal_derivative(prob, tab, k, j)
                    if dg is not None:
                        out.add_block(P_mat @ dg, ridx.ravel(), prob.mu_index[j][T], -1.0)
            if t >= 1:   # (c): d/dmu_j,t of -R_t - P_t U_t+1 through the features, and the own log term
                u_next = tab.U[k][t + 1][succ].ravel()
                for j in range(K):
                    block = None
                    if cp.reward[k] is not None:
                        block = cp.reward[k] @ cp.features[j]
                    if H is not None and H.nnz:
                        hu = _sum_over_successors(S * A, width) @ (sp.diags(u_next) @ H) @ cp.features[j]
                        block = hu if block is None else block + hu
                    if block is not None:
                        out.add_block(block, ridx.ravel(), prob.mu_index[j][t], -1.0)
                eta = cp.eta[k]
                mu_t = tab.mu[k][t]
                out.add(ridx, np.repeat(prob.mu_index[k][t][:, None], A, axis=1),
                        np.repeat((eta / (mu_t + cp.eps))[:, None], A, axis=1))
            # (a): sum_a rho_t(s, a) - mu_t(s)
            states = np.flatnonzero(ridx[:, 0] >= 0)
            out.add(np.repeat(prob.u_index[k][t][states], A), ridx[states].ravel(), 1.0)
            if t >= 1:
                out.add(prob.u_index[k][t][states], prob.mu_index[k][t][states], -1.0)
            # (b) at t + 1: mu_t+1(y) - sum P_t(y | s, a) rho_t(s, a)
            if t + 1 in prob.mu_index[k]:
                nxt = prob.mu_index[k][t + 1]
                out.add(nxt, nxt, 1.0)
                out.add(nxt[succ], rows_b, -P)
                if t >= 1 and H is not None and H.nnz:
                    rho = np.zeros((S, A))
                    rho[ridx >= 0] = x[ridx[ridx >= 0]]
                    pushed = _push_matrix(succ, S) @ sp.diags(np.repeat(rho.ravel(), width)) @ H
                    for j in range(K):
                        out.add_block(pushed @ cp.features[j], nxt, prob.mu_index[j][t], -1.0)
    return out.matrix(x.size)


def _sum_over_successors(n_pairs, width):
    return sp.csr_matrix((np.ones(n_pairs * width), (np.repeat(np.arange(n_pairs), width), np.arange(n_pairs * width))),
                         shape=(n_pairs, n_pairs * width))


def _push_matrix(succ, S):
    """``(S, S A B)``: entry (succ[s, a, b], (s, a, b)) = 1, which sums each successor's inflow."""
    n = succ.size
    return sp.csr_matrix((np.ones(n), (succ.ravel(), np.arange(n))), shape=(S, n))


def _terminal_derivative(prob, tab, k, j):
    """``dg_k / dmu_j,T`` (S_k x S_j), or None when g_k does not depend on mu_j,T."""
    cp = prob.coupling
    out = None
    if cp.terminal[k] is not None and cp.terminal[k].nnz:
        out = cp.terminal[k] @ cp.features[j]
    if cp.terminal_log and j == k:
        d = sp.diags(np.where(cp.eta[k] > 0, -cp.eta[k] / (tab.mu[k][prob.game.horizon] + cp.eps), 0.0))
        out = d if out is None else out + d
    return out


def _profile(prob: ComplementarityProblem, x) -> tuple:
    out = []
    for k, pop in enumerate(prob.game.populations):
        pi = np.full((prob.game.horizon, pop.n_states, pop.n_actions), 1.0 / pop.n_actions)
        for t, idx in enumerate(prob.rho_index[k]):
            states = np.flatnonzero(idx[:, 0] >= 0)
            r = np.maximum(x[idx[states]], 0.0)
            pi[t, states] = r / r.sum(axis=1, keepdims=True)
        out.append(pi)
    return tuple(out)


def _step_to_boundary(v, dv, fraction):
    neg = dv < 0
    if not neg.any():
        return 1.0
    return float(min(1.0, fraction * np.min(-v[neg] / dv[neg])))


def _positive(prob):
    """Mask of the unknowns that must stay positive: rho, and mu (the log terms)."""
    mask = np.zeros(prob.start_x.size, dtype=bool)
    mask[:prob.n_rho + prob.n_mu] = True
    return mask


def solve_complementarity(game, target: float = 1e-10, max_iterations: int = 200, deadline: float = np.inf,
                          seed: int = 0, warm: int = 50, mix: float = 0.9, start_nus: tuple = START_NUS,
                          trace: list | None = None) -> InteriorPointResult:
    """Solve the complementarity system of ``game`` (see the module docstring) from the flow of
    ``warm`` fictitious-play iterations mixed with the uniform policy (weight ``mix`` on fictitious
    play), until the profile ``rho / mu`` has exact exploitability at most ``target`` (checked once
    the complementarity ``sum rho z`` is below ``10 target``), ``max_iterations`` per start, or the
    CPU clock passes ``deadline``; a path that stalls is restarted with the next margin of
    ``start_nus``. Returns the best profile seen (``iterations`` counts all starts)."""
    start_profile = None
    if warm:
        fp = iterative.fictitious_play(game, iterations=warm)
        start_profile = tuple(mix * pi + (1.0 - mix) / pi.shape[-1] for pi in fp.policy)
    best, total, reasons = None, 0, []
    for start_nu in start_nus:
        prob = complementarity_problem(game, seed, start_profile, start_nu)
        found, its, nu, reason = _follow_path(prob, target, max_iterations, deadline, trace)
        total += its
        reasons.append(f"margin {start_nu:g}: {reason}")
        if best is None or found.exploitability < best.exploitability:
            best = found
        if best.exploitability <= target or reason == "time budget spent":
            break
    reason = "converged" if best.exploitability <= target else "; ".join(reasons)
    return InteriorPointResult(best, total, nu, reason)


def _follow_path(prob: ComplementarityProblem, target, max_iterations, deadline, trace):
    """Mehrotra's predictor–corrector iterations from the problem's start: ``(analysis of the best
    profile seen, iterations, final nu, why it stopped)``."""
    game, n_rho = prob.game, prob.n_rho
    positive = _positive(prob)
    x, z = prob.start_x.copy(), prob.start_z.copy()
    best, stalled, short = None, 0, 0
    nu_history = []
    start_products = x[:n_rho] * z
    gamma = min(NEIGHBOURHOOD, 0.5 * start_products.min() / start_products.mean())
    it, reason = 0, f"{max_iterations} iterations"
    for it in range(1, max_iterations + 1):
        tab = _Tables(prob, x)
        r = _residuals(prob, tab, x, z)
        rho = x[:n_rho]
        nu = float(rho @ z) / n_rho
        nu_history.append(nu)
        if n_rho * nu <= 10.0 * target:
            current = analyse(game, _profile(prob, x), validate=False)
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
        if n_rho * nu <= 1e-250 or not np.isfinite(r).all():
            reason = f"numerical limit of the central path reached (target {target:g})"
            break
        if len(nu_history) > SLOW_ITERATIONS and nu > 0.5 * nu_history[-1 - SLOW_ITERATIONS]:
            reason = f"path following stalled at iteration {it} (nu {nu:.3g} not halved in {SLOW_ITERATIONS})"
            break
        if clock() > deadline:
            reason = "time budget spent"
            break
        J = _newton_matrix(prob, tab, x, z)
        # columns scaled by the current rho and mu, rows equilibrated: masses span many decades
        col = np.ones(x.size)
        col[positive] = x[positive]
        Js = (J @ sp.diags(col)).tocsr()
        row = 1.0 / np.maximum(abs(Js).max(axis=1).toarray().ravel(), 1e-300)
        try:
            lu = spla.splu((sp.diags(row) @ Js).tocsc())
        except RuntimeError as exc:   # singular to working precision
            reason = f"Newton matrix singular at iteration {it} ({exc})"
            break

        def direction(r_e):
            rhs = -r.copy()
            rhs[:n_rho] -= r_e / rho
            dx = col * lu.solve(row * rhs)
            dz = -(r_e + z * dx[:n_rho]) / rho
            return dx, dz

        def step(dx, dz):
            """The longest step (from the fraction to the boundary down) that keeps every product
            rho z within the wide neighbourhood of the central path, and that step."""
            fraction = min(0.9999, max(0.9, 1.0 - nu))
            a = min(_step_to_boundary(x[positive], dx[positive], fraction), _step_to_boundary(z, dz, fraction))
            while a > STALLED_STEP:
                products = (rho + a * dx[:n_rho]) * (z + a * dz)
                if products.min() >= gamma * products.mean():
                    break
                a *= 0.7
            return a

        dx, dz = direction(rho * z)                                   # predictor (affine scaling)
        a = min(_step_to_boundary(x[positive], dx[positive], 1.0), _step_to_boundary(z, dz, 1.0))
        nu_aff = float((rho + a * dx[:n_rho]) @ (z + a * dz)) / n_rho
        sigma = (nu_aff / nu) ** 3
        dx, dz = direction(rho * z + dx[:n_rho] * dz - sigma * nu)   # corrector
        a = step(dx, dz)
        for centering in CENTERING:   # a short step: a plain centred direction (where the path bends)
            if a >= SHORT_STEP:
                break
            sigma = centering
            dx, dz = direction(rho * z - sigma * nu)
            a = step(dx, dz)
        if trace is not None:
            trace.append((nu, float(np.abs(r).max()), sigma, a))
        short = short + 1 if a < STALLED_STEP else 0
        if short >= 5:
            reason = f"path following stalled at iteration {it} (steps below {STALLED_STEP:g})"
            break
        x = x + a * dx
        z = z + a * dz
    if best is None:
        best = analyse(game, _profile(prob, x), validate=False)
    return best, it, float(x[:n_rho] @ z) / n_rho, reason
