"""The small classic finite MFGs of MFGLib 0.3.0, in our timing convention.

Each game is a finite mean field game (states S, actions A, initial law mu0) given by
rewards ``r_t(s, a, L_t)`` and transitions ``P_t(s' | s, a, L_t)`` that depend on the
state-action measure ``L_t(s, a) = mu_t(s) pi_t(a | s)`` (most only on
``mu_t = sum_a L_t``); definitions from GAMES-MFGLIB.md.

Time mapping (the one quirk shared by all of them). MFGLib has decision times
``t = 0..T_m``, *each* paying ``r_t(s, a, L_t)`` -- the action's cost included, also at
``t = T_m`` -- and transitions for ``t < T_m``; no terminal reward, no discount. Here
that is a game of horizon ``T = T_m + 1`` decision times with zero terminal reward:
our ``R_t = r_t`` for t = 0..T_m, and the transition taken after the last decision
time leads nowhere that pays (we return the same formula, it is never used for a
value). The parameter ``T`` of every game below is MFGLib's ``T_m``, and a policy is
an array ``pi[t, s, a]`` for t = 0..T_m, exactly MFGLib's policy shape (states and
actions of tuple-shaped spaces flattened row-major, as ``torch.flatten`` does). So the
same policy has the same flow, values and exploitability as in MFGLib's definitions.

Log-density terms use ``log(mu + eps)`` with the eps of each game (building evacuation:
``log(max(mu, eps))``).
"""
from __future__ import annotations

import numpy as np

from mfgbench._jit import jit
from mfgbench.core.kernels import PAIRWISE_BLOCK, numpy_sum, push_forward_into
from mfgbench.errors import GameError
from mfgbench.games.base import Game, LogCoupling, Population
from mfgbench.games.registry import register

SOURCE = "MFGLib 0.3.0 Environment."


def _dense(P: np.ndarray):
    """Successor list of a dense kernel ``P[s, a, s']`` (width B = S)."""
    S, A, _ = P.shape
    succ = np.broadcast_to(np.arange(S, dtype=np.int64), (S, A, S)).copy()
    return succ, np.ascontiguousarray(P, dtype=np.float64)


def _deterministic(nxt: np.ndarray):
    """Successor list of a deterministic move ``nxt[s, a]`` (width B = 1)."""
    return nxt.astype(np.int64)[:, :, None].copy(), np.ones(nxt.shape + (1,))


def _repeat_actions(r: np.ndarray, A: int) -> np.ndarray:
    """``R[t, s, a] = r[t, s]`` for every action (action-independent rewards over time)."""
    return np.repeat(r[:, :, None], A, axis=2)


# -- compiled flows of the games whose transitions read the mean field ---------------------------
# Each is the step-by-step construction (the game's ``transitions`` at t, then
# ``kernels.push_forward``) written as one loop over t, with the same floating-point operations
# in the same order, so the flow and tables are the same bit for bit (tests/games check it).

@jit
def _sis_flow(mu0, pi, p_meet):
    T = pi.shape[0]
    mu = np.zeros((T + 1, 2))
    mu[0] = mu0
    succ = np.empty((T, 2, 2, 2), dtype=np.int64)
    prob = np.empty((T, 2, 2, 2))
    for t in range(T):
        p_inf = p_meet * mu[t, 1]
        for s in range(2):
            for a in range(2):
                succ[t, s, a, 0] = 0
                succ[t, s, a, 1] = 1
        prob[t, 0, 0, 0] = 1.0 - p_inf
        prob[t, 0, 0, 1] = p_inf
        prob[t, 0, 1, 0] = 1.0
        prob[t, 0, 1, 1] = 0.0
        for a in range(2):
            prob[t, 1, a, 0] = 0.3
            prob[t, 1, a, 1] = 0.7
        push_forward_into(mu[t], pi[t], succ[t], prob[t], mu[t + 1])
    return mu, succ, prob


@jit
def _treasure_distances(L):
    """``TreasureHunting._distances``: ``||L||_F^2 - 2 L[s, s] + 1`` for each s."""
    n = L.shape[0]
    total = numpy_sum((L * L).ravel())
    D = np.empty(n)
    for s in range(n):
        D[s] = total - 2.0 * L[s, s] + 1.0
    return D


@jit
def _treasure_flow(mu0, pi, c):
    T, n, _ = pi.shape
    mu = np.zeros((T + 1, n))
    mu[0] = mu0
    succ = np.empty((T, n, n, n), dtype=np.int64)
    prob = np.empty((T, n, n, n))
    L = np.empty((n, n))
    for t in range(T):
        for s in range(n):
            for a in range(n):
                for b in range(n):
                    succ[t, s, a, b] = b
        if t == 0:
            for s in range(n):
                for a in range(n):
                    for b in range(n):
                        prob[t, s, a, b] = 1.0 if a == b else 0.0
        else:
            for s in range(n):
                for a in range(n):
                    L[s, a] = mu[t, s] * pi[t, s, a]
            D = _treasure_distances(L)
            for s in range(n):
                cD = c[t - 1] * D[s]
                base = cD / (1.0 + n * cD)
                for a in range(n):
                    for b in range(n):
                        prob[t, s, a, b] = base
                    prob[t, s, a, a] += 1.0 / (1.0 + n * cD)
        push_forward_into(mu[t], pi[t], succ[t], prob[t], mu[t + 1])
    return mu, succ, prob


@jit
def _rps_rewards(mu):
    """``RockPaperScissors.rewards`` at t = 0..T-1 of the flow ``mu[t, s]`` (t = 0..T): the same
    products and differences, one rounding each (no fused multiply-add without fastmath)."""
    T = mu.shape[0] - 1
    R = np.empty((T, 4, 3))
    for t in range(T):
        r1 = 2.0 * mu[t, 3] - mu[t, 2]
        r2 = 4.0 * mu[t, 1] - 2.0 * mu[t, 3]
        r3 = 6.0 * mu[t, 2] - 3.0 * mu[t, 1]
        for a in range(3):
            R[t, 0, a] = 0.0
            R[t, 1, a] = r1
            R[t, 2, a] = r2
            R[t, 3, a] = r3
    return R


@jit
def _left_right_rewards(mu):
    """``LeftRight.rewards`` at t = 0..T-1 of the flow ``mu[t, s]`` (t = 0..T)."""
    T = mu.shape[0] - 1
    R = np.empty((T, 3, 2))
    for t in range(T):
        left, right = -mu[t, 1], -2.0 * mu[t, 2]
        for a in range(2):
            R[t, 0, a] = 0.0
            R[t, 1, a] = left
            R[t, 2, a] = right
    return R


@jit
def _beach_bar_rewards(neg_distance, log_mu, move_cost):
    """``BeachBar.rewards`` at every t from ``log(mu_t + eps)`` (numpy's log, computed by the
    caller): ``(-d(s) - log_mu[t, s]) - move_cost[a]``, in that order."""
    T, S = log_mu.shape
    A = move_cost.shape[0]
    R = np.empty((T, S, A))
    for t in range(T):
        for s in range(S):
            state = neg_distance[s] - log_mu[t, s]
            for a in range(A):
                R[t, s, a] = state - move_cost[a]
    return R


class MFGLibGame(Game):
    """An MFGLib game of ``T_m`` steps: ``T_m + 1`` reward times, zero terminal reward."""

    def __init__(self, T_m: int, population: Population):
        if not isinstance(T_m, (int, np.integer)) or T_m < 1:
            raise ValueError(f"game {self.id}: T (MFGLib's horizon) must be an integer >= 1, got {T_m!r}")
        self.T_mfglib = int(T_m)
        super().__init__(int(T_m) + 1, population)

    def _state_action(self, mf) -> np.ndarray:
        L = mf.L[0] if mf is not None and mf.L is not None else None
        if L is None:
            raise GameError(f"game {self.id}: its rewards/transitions read the state-action measure L_t, "
                            f"but the mean field passed at time {getattr(mf, 't', None)} carries none "
                            f"(pass state_action to model_along_flow)")
        return np.asarray(L, dtype=np.float64)


@register("beach-bar-v0", description="MFGLib beach bar: 4 beach cells, bar at 2, crowd aversion",
          source=SOURCE + "beach_bar (Perrin et al. 2020)")
class BeachBar(MFGLibGame):
    """Beach bar on ``n`` cells of a line (MFGLib ``beach_bar``).

    Actions a = 0, 1, 2 move by a - 1; then a noise e = -1, 0, +1 of probability
    ``(1-p)/2, p, (1-p)/2``; ``s' = clip(s + (a - 1) + e, 0, n - 1)``. Reward
    ``-d(s) - |a - 1| / n - log(mu_t(s) + 1e-20)`` with ``d`` the *cyclic* distance to the
    bar -- quirk: the moves are clamped at the ends although the distance is cyclic
    (for n = 4, bar 2: d = 2, 1, 0, 1). Defaults T = 2 (three reward times), p = 0.5,
    mu0 uniform.
    """

    id = "beach-bar-v0"
    static_transitions = True
    LOG_EPS = 1e-20
    log_coupling = LogCoupling(eta=1.0, eps=LOG_EPS, floor="add", terminal=False)

    def __init__(self, n: int = 4, bar: int = 2, p_still: float = 0.5, T: int = 2):
        if n < 2:
            raise ValueError(f"game {self.id}: n must be >= 2, got {n}")
        if not 0 <= bar < n:
            raise ValueError(f"game {self.id}: bar must lie in 0..n-1, got {bar}")
        if not 0.0 <= p_still <= 1.0:
            raise ValueError(f"game {self.id}: p_still must lie in [0, 1], got {p_still}")
        self.n, self.bar, self.p_still = int(n), int(bar), float(p_still)
        super().__init__(T, Population("beachgoers", self.n, 3, np.full(self.n, 1.0 / self.n),
                                       grid_shape=(self.n,)))
        s = np.arange(self.n)
        gap = np.abs(s - self.bar)
        self.distance = np.minimum(gap, self.n - gap).astype(np.float64)
        self._move_cost = np.abs(np.arange(3) - 1) / self.n
        self._neg_distance = -self.distance

    def rewards(self, k, t, mf):
        state = -self.distance - np.log(mf.mu[0] + self.LOG_EPS)
        return state[:, None] - self._move_cost[None, :]

    def rewards_over_time(self, k, flows, measures):
        return _beach_bar_rewards(self._neg_distance, np.log(flows[0][:-1] + self.LOG_EPS), self._move_cost)

    def transitions(self, k, t, mf):
        s = np.arange(self.n)[:, None, None]
        move = (np.arange(3) - 1)[None, :, None]
        noise = np.array([-1, 0, 1])[None, None, :]
        succ = np.clip(s + move + noise, 0, self.n - 1)
        q = (1.0 - self.p_still) / 2.0
        prob = np.broadcast_to(np.array([q, self.p_still, q]), succ.shape).copy()
        return succ.astype(np.int64), prob


@register("rps-v0", description="MFGLib rock-paper-scissors: one move from a start state, generalized RPS payoffs",
          source=SOURCE + "rock_paper_scissors (Cui & Koeppl 2021, after Shapley 1964)")
class RockPaperScissors(MFGLibGame):
    """Generalized rock-paper-scissors (MFGLib ``rock_paper_scissors``).

    States 0 = start, 1 = R, 2 = P, 3 = S; action a (rock, paper, scissors) leads to
    ``s' = 1 + a`` from every state. Reward, independent of the action:
    ``r(start) = 0``, ``r(R) = 2 mu(S) - mu(P)``, ``r(P) = 4 mu(R) - 2 mu(S)``,
    ``r(S) = 6 mu(P) - 3 mu(R)``. T = 1: reward times 0 (everyone at start, reward 0)
    and 1 (the choice pays); the action at time 1 has no effect. mu0 = start.
    """

    id = "rps-v0"
    static_transitions = True

    def __init__(self, T: int = 1):
        super().__init__(T, Population("players", 4, 3, np.array([1.0, 0.0, 0.0, 0.0]),
                                       state_labels=("start", "R", "P", "S")))

    def rewards(self, k, t, mf):
        mu = mf.mu[0]
        r = np.array([0.0, 2 * mu[3] - mu[2], 4 * mu[1] - 2 * mu[3], 6 * mu[2] - 3 * mu[1]])
        return np.repeat(r[:, None], 3, axis=1)

    def rewards_over_time(self, k, flows, measures):
        return _rps_rewards(flows[0])

    def transitions(self, k, t, mf):
        return _deterministic(np.broadcast_to(1 + np.arange(3), (4, 3)))


@register("sis-v0", description="MFGLib susceptible-infected: go out or keep distance, infection grows with mu(I)",
          source=SOURCE + "susceptible_infected (Cui & Koeppl 2021)")
class SusceptibleInfected(MFGLibGame):
    """Susceptible-infected epidemic (MFGLib ``susceptible_infected``).

    States 0 = S, 1 = I; actions 0 = go out, 1 = keep distance. From I: to S with
    probability 0.3, stay I with 0.7 (either action). From S going out: infected with
    probability ``0.81 mu_t(I)`` (0.9^2 in MFGLib), else stay S; keeping distance: stay S.
    Rewards ``r(S, out) = 0``, ``r(S, distance) = -0.5``, ``r(I, out) = -1``,
    ``r(I, distance) = -1.5``. T = 50, mu0 = (0.4, 0.6).
    """

    id = "sis-v0"

    def __init__(self, T: int = 50):
        super().__init__(T, Population("people", 2, 2, np.array([0.4, 0.6]), state_labels=("S", "I")))
        self._reward = np.array([[0.0, -0.5], [-1.0, -1.5]])

    P_MEET = 0.9 ** 2

    def rewards(self, k, t, mf):
        return self._reward

    def rewards_over_time(self, k, flows, measures):
        return np.broadcast_to(self._reward, (self.horizon, 2, 2)).copy()

    def flow_and_transitions(self, pi):
        return _sis_flow(self.populations[0].mu0, pi, self.P_MEET)

    def transitions(self, k, t, mf):
        p_inf = self.P_MEET * mf.mu[0][1]
        prob = np.array([[[1.0 - p_inf, p_inf], [1.0, 0.0]],
                         [[0.3, 0.7], [0.3, 0.7]]])
        return _dense(prob)


@register("crowd-motion-v0", description="MFGLib crowd motion: 20x20 grid, moving bar, crowd aversion",
          source=SOURCE + "crowd_motion (Perolat et al. 2021)")
class CrowdMotion(MFGLibGame):
    """Crowd motion towards a moving bar on an ``l x w`` grid (MFGLib ``crowd_motion``).

    State (x, y), index ``x * w + y``. Actions a = 0..4 move by (+1,0), (-1,0), (0,+1),
    (0,-1), (0,0); then a noise displacement from the same list with probability
    ``(1-p)/4`` for each of the four moves and p for none (p = 0.5); the sum is clamped
    to the grid once: ``s' = clip(s + a + e)`` per coordinate. Reward, independent of
    the action: ``c (1 - ||s - b_t||_1 / (l + w)) - log(mu_t(s) + 1e-10)``, c = 10.
    Quirk: MFGLib draws the bar's moves from torch's seeded generator; its default seed
    gives ``b_t = (10, 10)`` for t = 0, 1 and (9, 11) for t = 2, 3, which is
    ``bar_path`` here (held at its last cell for later times if T > 3). T = 3, mu0
    uniform.
    """

    id = "crowd-motion-v0"
    static_transitions = True
    LOG_EPS = 1e-10
    log_coupling = LogCoupling(eta=1.0, eps=LOG_EPS, floor="add", terminal=False)
    MOVES = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (0, 0)])

    def __init__(self, length: int = 20, width: int = 20, c: float = 10.0, p_still: float = 0.5,
                 bar_path: tuple = ((10, 10), (10, 10), (9, 11), (9, 11)), T: int = 3):
        if length < 1 or width < 1:
            raise ValueError(f"game {self.id}: length and width must be >= 1, got {length}, {width}")
        if not 0.0 <= p_still <= 1.0:
            raise ValueError(f"game {self.id}: p_still must lie in [0, 1], got {p_still}")
        path = np.asarray(bar_path, dtype=np.int64)
        if path.ndim != 2 or path.shape[1] != 2 or len(path) < 1:
            raise ValueError(f"game {self.id}: bar_path must be a sequence of (x, y) cells, got {bar_path!r}")
        self.length, self.width, self.c, self.p_still = int(length), int(width), float(c), float(p_still)
        S = self.length * self.width
        super().__init__(T, Population("crowd", S, 5, np.full(S, 1.0 / S), grid_shape=(self.length, self.width)))
        steps = np.minimum(np.arange(self.horizon), len(path) - 1)
        self.bars = path[steps]
        xy = np.stack(np.unravel_index(np.arange(S), (self.length, self.width)), axis=1)
        self._xy = xy
        self._position = [self.c * (1.0 - np.abs(xy - b).sum(axis=1) / (self.length + self.width))
                          for b in self.bars]
        self._positions = np.array(self._position)

    def rewards(self, k, t, mf):
        r = self._position[t] - np.log(mf.mu[0] + self.LOG_EPS)
        return np.repeat(r[:, None], 5, axis=1)

    def rewards_over_time(self, k, flows, measures):
        return _repeat_actions(self._positions - np.log(flows[0][:-1] + self.LOG_EPS), 5)

    def transitions(self, k, t, mf):
        pos = self._xy[:, None, None, :] + self.MOVES[None, :, None, :] + self.MOVES[None, None, :, :]
        x = np.clip(pos[..., 0], 0, self.length - 1)
        y = np.clip(pos[..., 1], 0, self.width - 1)
        q = (1.0 - self.p_still) / 4.0
        prob = np.broadcast_to(np.array([q, q, q, q, self.p_still]), x.shape).copy()
        return (x * self.width + y).astype(np.int64), prob


@register("left-right-v0", description="MFGLib left-right: one choice, crowded side costs (right twice as much)",
          source=SOURCE + "left_right (Cui & Koeppl 2021)")
class LeftRight(MFGLibGame):
    """Left or right (MFGLib ``left_right``).

    States 0 = center, 1 = L, 2 = R; action 0 = left, 1 = right leads to ``s' = 1 + a``
    from every state. Rewards (action-independent) ``r(center) = 0``, ``r(L) = -mu(L)``,
    ``r(R) = -2 mu(R)``. T = 1, mu0 = center. The equilibrium goes left with
    probability 2/3 (then ``mu(L) = 2 mu(R)`` and both sides pay -2/3).
    """

    id = "left-right-v0"
    static_transitions = True

    def __init__(self, T: int = 1):
        super().__init__(T, Population("players", 3, 2, np.array([1.0, 0.0, 0.0]),
                                       state_labels=("center", "L", "R")))

    def rewards(self, k, t, mf):
        mu = mf.mu[0]
        return np.repeat(np.array([0.0, -mu[1], -2.0 * mu[2]])[:, None], 2, axis=1)

    def rewards_over_time(self, k, flows, measures):
        return _left_right_rewards(flows[0])

    def transitions(self, k, t, mf):
        return _deterministic(np.broadcast_to(1 + np.arange(2), (3, 2)))


@register("lq-small-v0", description="MFGLib linear-quadratic: x in -5..5, a in -2..2, mean reversion",
          source=SOURCE + "linear_quadratic (Perrin et al. 2020)")
class LinearQuadraticSmall(MFGLibGame):
    """Linear-quadratic game on x = -el..el, a = -m..m (MFGLib ``linear_quadratic``).

    With ``m_t = sum_x x mu_t(x)``: noise ``eps_j = sigma j`` for j = -3..3 with
    ``P(j)`` proportional to ``exp(-eps_j^2 / 2)``, and
    ``x' = clip(round(x + (K (m_t - x) + a) delta + sigma eps_j sqrt(delta)), -el, el)``
    (round half to even, as torch.round). Quirk: sigma enters twice -- in the noise
    points and as their scale -- so with sigma = 3 the displacements are
    ``9 j sqrt(delta)`` with weights ``exp(-(3j)^2/2)``. Rewards for t < T:
    ``delta (-a^2/2 + q a (m_t - x) - kappa (m_t - x)^2 / 2)``; at t = T (MFGLib's last
    decision time, paid for every action): ``-c_term (m_T - x)^2 / 2``. Defaults el 5,
    m 2, sigma 3, delta 0.1, K 1, q 0.01, kappa 0.5, c_term 1, T 3, mu0 uniform.
    MFGLib computes in float32; we compute in float64, which can only differ where a
    rounding argument falls within float32 error of a half-integer.
    """

    id = "lq-small-v0"

    def __init__(self, el: int = 5, m: int = 2, sigma: float = 3.0, delta: float = 0.1, K: float = 1.0,
                 q: float = 0.01, kappa: float = 0.5, c_term: float = 1.0, T: int = 3):
        if el < 1 or m < 0:
            raise ValueError(f"game {self.id}: needs el >= 1 and m >= 0, got el={el}, m={m}")
        if delta <= 0:
            raise ValueError(f"game {self.id}: delta must be positive, got {delta}")
        self.el, self.m = int(el), int(m)
        self.sigma, self.delta, self.K = float(sigma), float(delta), float(K)
        self.q, self.kappa, self.c_term = float(q), float(kappa), float(c_term)
        S = 2 * self.el + 1
        super().__init__(T, Population("agents", S, 2 * self.m + 1, np.full(S, 1.0 / S), grid_shape=(S,)))
        self.x = np.arange(-self.el, self.el + 1, dtype=np.float64)
        self.a = np.arange(-self.m, self.m + 1, dtype=np.float64)
        self.eps = self.sigma * np.arange(-3, 4)
        w = np.exp(-0.5 * self.eps ** 2)
        self.eps_prob = w / w.sum()

    def _mean(self, mf):
        return float(self.x @ mf.mu[0])

    def rewards(self, k, t, mf):
        gap = self._mean(mf) - self.x[:, None]
        if t == self.T_mfglib:
            return np.broadcast_to(-0.5 * self.c_term * gap ** 2, (len(self.x), len(self.a))).copy()
        a = self.a[None, :]
        return self.delta * (-0.5 * a ** 2 + self.q * a * gap - 0.5 * self.kappa * gap ** 2)

    def transitions(self, k, t, mf):
        mean = self._mean(mf)
        x = self.x[:, None, None]
        a = self.a[None, :, None]
        e = self.eps[None, None, :]
        nxt = np.round(x + (self.K * (mean - x) + a) * self.delta + self.sigma * e * np.sqrt(self.delta))
        nxt = np.clip(nxt, -self.el, self.el)
        prob = np.broadcast_to(self.eps_prob, nxt.shape).copy()
        return (nxt + self.el).astype(np.int64), prob


@register("building-evacuation-v0",
          description="MFGLib building evacuation: 5 floors of 10x10, reach floor 0, spread out",
          source=SOURCE + "building_evacuation (Perolat et al. 2021)")
class BuildingEvacuation(MFGLibGame):
    """Evacuation of a building of ``n_floor`` floors of ``l x w`` cells (MFGLib ``building_evacuation``).

    State (floor, i, j), index ``(floor * l + i) * w + j``. Deterministic actions: 0: i+1,
    1: i-1, 2: j-1, 3: j+1 (clamped to the floor), 4: down one floor, only at
    (i, j) = (0, 0), 5: up one floor, only at (l-1, w-1) (otherwise, and at the bottom or
    top floor, stay). Reward ``-eta log(max(mu_t(s), 1e-20)) + evac_r [floor = 0]``,
    eta = 1, evac_r = 10 (definition of GAMES-MFGLIB.md). T = 3, mu0 uniform.
    """

    id = "building-evacuation-v0"
    static_transitions = True
    LOG_EPS = 1e-20

    def __init__(self, n_floor: int = 5, length: int = 10, width: int = 10, eta: float = 1.0,
                 evac_r: float = 10.0, T: int = 3):
        if min(n_floor, length, width) < 1:
            raise ValueError(f"game {self.id}: n_floor, length, width must be >= 1, got {(n_floor, length, width)}")
        self.shape = (int(n_floor), int(length), int(width))
        self.eta, self.evac_r = float(eta), float(evac_r)
        if self.eta > 0:
            self.log_coupling = LogCoupling(eta=self.eta, eps=self.LOG_EPS, floor="max", terminal=False)
        S = int(np.prod(self.shape))
        super().__init__(T, Population("occupants", S, 6, np.full(S, 1.0 / S), grid_shape=self.shape))
        f, i, j = np.unravel_index(np.arange(S), self.shape)
        self._bonus = self.evac_r * (f == 0)
        F, L, W = self.shape
        corner_down = (i == 0) & (j == 0)
        corner_up = (i == L - 1) & (j == W - 1)
        moves = [(f, np.minimum(i + 1, L - 1), j), (f, np.maximum(i - 1, 0), j),
                 (f, i, np.maximum(j - 1, 0)), (f, i, np.minimum(j + 1, W - 1)),
                 (np.where(corner_down, np.maximum(f - 1, 0), f), i, j),
                 (np.where(corner_up, np.minimum(f + 1, F - 1), f), i, j)]
        self._next = np.stack([np.ravel_multi_index(m, self.shape) for m in moves], axis=1)

    def rewards(self, k, t, mf):
        r = -self.eta * np.log(np.maximum(mf.mu[0], self.LOG_EPS)) + self._bonus
        return np.repeat(r[:, None], 6, axis=1)

    def rewards_over_time(self, k, flows, measures):
        return _repeat_actions(-self.eta * np.log(np.maximum(flows[0][:-1], self.LOG_EPS)) + self._bonus, 6)

    def transitions(self, k, t, mf):
        return _deterministic(self._next)


@register("equilibrium-price-v0",
          description="MFGLib equilibrium price: firms produce and restock, price set by supply",
          source=SOURCE + "equilibrium_price (Guo et al. 2022)")
class EquilibriumPrice(MFGLibGame):
    """Firms with an inventory under an endogenous price (MFGLib ``equilibrium_price``).

    State: inventory s = 0..s_inv. Action (q, h) in {0..Q} x {0..H}, index
    ``q * (H + 1) + h``: consume q, replenish h; ``s' = min(s - min(q, s) + h, s_inv)``.
    The price reads the state-action measure:
    ``p_t = (d / (sum_{s,q,h} L_t(s, q, h) q + e0))^(1/sigma)``. Reward
    ``(p_t - c0) q - c1 q^2 - c2 h - (c2 + c3) max(q - s, 0) - c4 s`` (quirk kept: the
    shortfall is charged ``c2 + c3``). Defaults s_inv 3, Q = H = 2, d = e0 = sigma = 1,
    c0..c4 = 1, T = 4, mu0 uniform.
    """

    id = "equilibrium-price-v0"
    static_transitions = True

    def __init__(self, s_inv: int = 3, Q: int = 2, H: int = 2, d: float = 1.0, e0: float = 1.0,
                 sigma: float = 1.0, c: tuple = (1.0, 1.0, 1.0, 1.0, 1.0), T: int = 4):
        if s_inv < 0 or Q < 0 or H < 0:
            raise ValueError(f"game {self.id}: s_inv, Q, H must be >= 0, got {(s_inv, Q, H)}")
        if len(c) != 5:
            raise ValueError(f"game {self.id}: c must hold the five costs c0..c4, got {c!r}")
        if e0 <= 0 or d <= 0 or sigma <= 0:
            raise ValueError(f"game {self.id}: d, e0 and sigma must be positive, got {(d, e0, sigma)}")
        self.s_inv, self.Q, self.H = int(s_inv), int(Q), int(H)
        self.d, self.e0, self.sigma = float(d), float(e0), float(sigma)
        self.c = tuple(float(v) for v in c)
        S, A = self.s_inv + 1, (self.Q + 1) * (self.H + 1)
        super().__init__(T, Population("firms", S, A, np.full(S, 1.0 / S)))
        q, h = np.divmod(np.arange(A), self.H + 1)
        self.q, self.h = q.astype(np.float64), h.astype(np.float64)
        s = np.arange(S)[:, None]
        self._next = np.minimum(s - np.minimum(q[None, :], s) + h[None, :], self.s_inv)
        c0, c1, c2, c3, c4 = self.c
        sf = s.astype(np.float64)
        self._fixed = (-c0 * self.q - c1 * self.q ** 2 - c2 * self.h)[None, :] \
            - (c2 + c3) * np.maximum(self.q[None, :] - sf, 0.0) - c4 * sf

    def price(self, L: np.ndarray) -> float:
        return (self.d / (float((L * self.q[None, :]).sum()) + self.e0)) ** (1.0 / self.sigma)

    def rewards(self, k, t, mf):
        return self.price(self._state_action(mf)) * self.q[None, :] + self._fixed

    def rewards_over_time(self, k, flows, measures):
        price = np.array([self.price(L) for L in measures[0]])   # one sum per time, numpy's order
        return price[:, None, None] * self.q[None, None, :] + self._fixed[None]

    def transitions(self, k, t, mf):
        return _deterministic(self._next)


@register("treasure-hunting-v0", description="MFGLib conservative treasure hunting: payoff and noise grow with the "
                                             "distance of L_t from one's own corner",
          source=SOURCE + "conservative_treasure_hunting (Guo et al. 2022)")
class TreasureHunting(MFGLibGame):
    """Conservative treasure hunting (MFGLib ``conservative_treasure_hunting``).

    n states and n actions. At t = 0: ``s' = a``, reward 0. For t >= 1, with
    ``D_s = ||L_t - e_s e_s^T||_F^2`` (L_t as an n x n matrix over (state, action)):
    ``P(s' | s, a) = (c_{t-1} D_s + [s' = a]) / (1 + n c_{t-1} D_s)`` and reward
    ``r_s (1 - D_s / 2)`` when a = s, else 0; r = c = all ones. T = 5, mu0 uniform.
    Quirk: the transition after our last decision time (t = T) reads ``c_{T-1}``, which
    exists; it is never used for a value.
    """

    id = "treasure-hunting-v0"

    def __init__(self, n: int = 3, T: int = 5):
        if n < 1:
            raise ValueError(f"game {self.id}: n must be >= 1, got {n}")
        self.n = int(n)
        self.r = np.ones(self.n)
        self.c = np.ones(int(T) if isinstance(T, (int, np.integer)) and T >= 1 else 1)
        super().__init__(T, Population("hunters", self.n, self.n, np.full(self.n, 1.0 / self.n)))

    def _distances(self, L):
        total = float((L ** 2).sum())
        diag = np.diag(L)
        return total - 2.0 * diag + 1.0  # ||L - e_s e_s^T||_F^2 for each s

    def rewards_over_time(self, k, flows, measures):
        L = measures[0]
        n = self.n
        total = (L ** 2).sum(axis=(1, 2))   # per t, the same pairwise order as (L_t ** 2).sum()
        D = total[:, None] - 2.0 * L[:, np.arange(n), np.arange(n)] + 1.0
        R = np.zeros((len(L), n, n))
        R[1:, np.arange(n), np.arange(n)] = self.r * (1.0 - D[1:] / 2.0)
        return R

    def flow_and_transitions(self, pi):
        if self.n * self.n > PAIRWISE_BLOCK:   # numpy_sum reproduces numpy's sums up to that length
            return None
        return _treasure_flow(self.populations[0].mu0, pi, self.c)

    def rewards(self, k, t, mf):
        R = np.zeros((self.n, self.n))
        if t == 0:
            return R
        D = self._distances(self._state_action(mf))
        R[np.arange(self.n), np.arange(self.n)] = self.r * (1.0 - D / 2.0)
        return R

    def transitions(self, k, t, mf):
        n = self.n
        if t == 0:  # s' = a; dense like the other times (the width must not change with t)
            return _dense(np.broadcast_to(np.eye(n), (n, n, n)))
        D = self._distances(self._state_action(mf))
        cD = self.c[t - 1] * D
        P = np.broadcast_to((cD / (1.0 + n * cD))[:, None, None], (n, n, n)).copy()
        P[:, np.arange(n), np.arange(n)] += (1.0 / (1.0 + n * cD))[:, None]
        return _dense(P)
