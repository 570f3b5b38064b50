"""QM iteration (QMI): one online agent learns a mean field equilibrium from its own samples
(Zhang, Chen & Di, "A Single Online Agent Can Efficiently Learn Mean Field Games",
ECAI 2024, arXiv 2405.03718).

Objects. A value estimate ``Q(s, a)`` and a mean-field estimate ``M`` (a distribution
over states). The agent sees only its own stream ``(s, a, r, s')``; its rewards are the
game's rewards evaluated at the *estimated* mean field. Outer iteration k:

1. freeze the mean field used for the rewards: ``Mbar_k = M`` (``mean_field="freeze"``),
   or the running average of the estimates so far, ``Mbar_k = (1 - 1/(k+1)) Mbar_{k-1}
   + M / (k+1)`` (``mean_field="average"``, fictitious-play style); build the rewards
   ``r(s, a; Mbar_k)`` and transitions ``P(. | s, a; Mbar_k)`` once through the game's
   functions;
2. run ``samples_per_iteration`` transitions of the agent. From each ``(s, a, r, s')``:

       Q(s, a) <- Q(s, a) + alpha (r + gamma max_a' Q(s', a') - Q(s, a))      (Q-learning)
       M       <- (1 - beta) M + beta e_{s'}                                  (mean field)

   The behaviour policy is ``Gamma(Q) = softmax(Q / temperature)``:
   - ``variant="off-policy"``: Gamma of Q as it was at the start of the outer iteration,
     fixed during the iteration (so the visited states, hence M, follow the flow of
     that policy while Q learns the optimal values against ``Mbar_k``);
   - ``variant="on-policy"``: Gamma of the current Q at every sample.

The behaviour is not an arbitrary exploration policy (e.g. uniform) because the same
stream estimates M: the states the agent visits must follow the policy whose mean field
is being learned. The temperature keeps every action explored.

Stationary discounted games (``game.kind == "stationary"``, discount gamma): one
endless trajectory (continued across outer iterations), ``Q[s, a]``, ``M[s]``.
Finite-horizon games: time-indexed ``Q[t, s, a]`` and ``M[t, s]`` (t = 0..T), episodes
of length T restarted from ``mu0``; the bootstrap at t = T-1 is the terminal reward
``g(s'; Mbar_T)``, gamma = 1, and ``M[t] <- (1 - beta) M[t] + beta e_{s_t}`` at every
visited time. ``samples`` counts transitions (T per episode).

The learner's ``policy`` is ``Gamma(Q)`` (``policy_output="softmax"``, the policy QMI
plays) or the greedy policy of Q (``"greedy"``, ties to the lowest action).

Several populations: one agent per population, each with its own Q and M; population
k's rewards use the joint estimate ``(Mbar_0, ..., Mbar_{K-1})``. The estimates start
uniform over states (the agent knows nothing of the game). The state-action measure
passed to the game's functions is ``Mbar_t(s) Gamma(Q)(a | t, s)``.

The sampling loops are Numba kernels on uniforms pre-drawn from the learner's
Generator; each has a plain Python twin (``*_python``) that the tests hold equal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgbench._jit import jit
from mfgbench.core.policy import greedy_policy
from mfgbench.games.base import MeanField, check_rewards, check_transitions
from mfgbench.learners.base import Learner, register_learner
from mfgbench.learners.fictitious_play import softmax

REBASE = 40.0
"""On-policy stationary kernel: softmax weights are stored as exp((Q - shift) / tau) and the
row's shift is reset when the largest exponent leaves [-REBASE, REBASE]."""


@dataclass
class QMIConfig:
    variant: str = "off-policy"
    """"off-policy": behaviour Gamma(Q) frozen at the start of each outer iteration;
    "on-policy": behaviour Gamma(Q) of the current Q at every sample."""
    alpha: float = 1e-3
    """Q-learning step size (paper: 1e-3)."""
    beta: float = 1e-3
    """Mean-field estimate step size, M <- (1 - beta) M + beta e_{s'} (paper: 1e-3)."""
    samples_per_iteration: int = 100_000
    """Transitions the agent samples per outer iteration (paper: 1e5)."""
    temperature: float = 1e-5
    """Temperature of Gamma(Q) = softmax(Q / temperature), the behaviour (and, with
    policy_output="softmax", the output) policy. It must be small against the gaps
    between Q-values: 1e-5 suits ring-road-v0, whose rewards are O(1e-3); games with O(1)
    rewards want O(0.1-1) (and mean_field="average" when plain fixed-point iteration
    oscillates, e.g. crowd-1d-v0)."""
    mean_field: str = "freeze"
    """Mean field the rewards use in an outer iteration: "freeze" (the current estimate M)
    or "average" (running average of the estimates at the start of every iteration)."""
    policy_output: str = "softmax"
    """Policy the learner reports: "softmax" (Gamma(Q)) or "greedy" (argmax of Q)."""
    q_init: float = 0.0
    """Initial value of every Q(s, a). An optimistic value (above the achievable returns)
    makes the single agent try every action before settling, which finite-horizon games
    with rewards like -log mu need: a state the agent never visits keeps its initial
    value (predator-prey-v0: q_init = 30, temperature = 0.5, alpha = 0.01, beta = 1e-3,
    mean_field = "average" reach ~4 from 37 for uniform in 4e6 samples)."""

    def __post_init__(self):
        if self.variant not in ("off-policy", "on-policy"):
            raise ValueError(f"qmi: variant must be off-policy or on-policy, got {self.variant!r}")
        if self.mean_field not in ("freeze", "average"):
            raise ValueError(f"qmi: mean_field must be freeze or average, got {self.mean_field!r}")
        if self.policy_output not in ("softmax", "greedy"):
            raise ValueError(f"qmi: policy_output must be softmax or greedy, got {self.policy_output!r}")
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise ValueError(f"qmi: {name} must lie in (0, 1], got {v}")
        if self.temperature <= 0:
            raise ValueError(f"qmi: temperature must be positive, got {self.temperature}")
        if self.samples_per_iteration < 1:
            raise ValueError(f"qmi: samples_per_iteration must be >= 1, got {self.samples_per_iteration}")
        if not np.isfinite(self.q_init):
            raise ValueError(f"qmi: q_init must be finite, got {self.q_init}")


# -- kernels: finite horizon ---------------------------------------------------------------
@jit
def _draw_row(weights, total, u):
    """Index of the first entry whose cumulative weight exceeds u * total (last one if none)."""
    target = u * total
    c = 0.0
    n = weights.shape[0]
    for i in range(n):
        c += weights[i]
        if c > target:
            return i
    for i in range(n - 1, -1, -1):  # u * total rounded past the sum: last positive weight
        if weights[i] > 0.0:
            return i
    return n - 1


@jit
def qmi_finite_kernel(Q, M, R, succ, prob, g, mu0, behaviour, on_policy, temperature, alpha, beta, u):
    """Run ``u.shape[0]`` episodes of QMI in a finite-horizon game; update Q and M in place.

    Q[t, s, a] (t < T), M[t, s] (t <= T), R[t, s, a], succ/prob[tt, s, a, b] (tt = 0 when
    static), g[s], mu0[s], behaviour[t, s, a] (used when not on_policy), u[e, 1 + 2 T].
    """
    T, S, A = Q.shape
    static = succ.shape[0] == 1
    w = np.empty(A)
    # M[t] is kept as scale[t] * Mt[t] (scale[t] the running product of (1 - beta)): O(1) per step
    scale = np.ones(T + 1)
    for e in range(u.shape[0]):
        s = _draw_row(mu0, 1.0, u[e, 0])
        for t in range(T):
            _decay_and_add(M, scale, t, s, beta)
            if on_policy:
                qmax = Q[t, s, 0]
                for a in range(1, A):
                    if Q[t, s, a] > qmax:
                        qmax = Q[t, s, a]
                tot = 0.0
                for a in range(A):
                    w[a] = np.exp((Q[t, s, a] - qmax) / temperature)
                    tot += w[a]
                a = _draw_row(w, tot, u[e, 1 + 2 * t])
            else:
                a = _draw_row(behaviour[t, s], 1.0, u[e, 1 + 2 * t])
            tt = 0 if static else t
            b = _draw_row(prob[tt, s, a], 1.0, u[e, 2 + 2 * t])
            s2 = succ[tt, s, a, b]
            if t + 1 < T:
                nxt = Q[t + 1, s2, 0]
                for a2 in range(1, A):
                    if Q[t + 1, s2, a2] > nxt:
                        nxt = Q[t + 1, s2, a2]
            else:
                nxt = g[s2]
            Q[t, s, a] += alpha * (R[t, s, a] + nxt - Q[t, s, a])
            s = s2
        _decay_and_add(M, scale, T, s, beta)
    for t in range(T + 1):
        for i in range(S):
            M[t, i] *= scale[t]


@jit
def _decay_and_add(M, scale, t, s, beta):
    """(scale[t] M[t]) <- (1 - beta) (scale[t] M[t]) + beta e_s, renormalising before underflow."""
    scale[t] *= 1.0 - beta
    M[t, s] += beta / scale[t]
    if scale[t] < 1e-200:
        for i in range(M.shape[1]):
            M[t, i] *= scale[t]
        scale[t] = 1.0


def _draw_row_python(weights, total, u):
    c = np.cumsum(weights)
    hit = np.flatnonzero(c > u * total)
    if len(hit):
        return int(hit[0])
    return int(np.flatnonzero(weights > 0)[-1]) if np.any(weights > 0) else len(weights) - 1


def qmi_finite_python(Q, M, R, succ, prob, g, mu0, behaviour, on_policy, temperature, alpha, beta, u):
    """Plain Python twin of ``qmi_finite_kernel`` (same updates, same uniforms)."""
    T, S, A = Q.shape
    for e in range(u.shape[0]):
        s = _draw_row_python(mu0, 1.0, u[e, 0])
        for t in range(T):
            M[t] *= 1.0 - beta
            M[t, s] += beta
            if on_policy:
                w = np.exp((Q[t, s] - Q[t, s].max()) / temperature)
                a = _draw_row_python(w, w.sum(), u[e, 1 + 2 * t])
            else:
                a = _draw_row_python(behaviour[t, s], 1.0, u[e, 1 + 2 * t])
            tt = 0 if succ.shape[0] == 1 else t
            s2 = int(succ[tt, s, a, _draw_row_python(prob[tt, s, a], 1.0, u[e, 2 + 2 * t])])
            nxt = Q[t + 1, s2].max() if t + 1 < T else g[s2]
            Q[t, s, a] += alpha * (R[t, s, a] + nxt - Q[t, s, a])
            s = s2
        M[T] *= 1.0 - beta
        M[T, s] += beta


# -- kernels: stationary, discounted -----------------------------------------------------------
@jit
def _rebase_row(Q, W, shift, s, temperature):
    A = Q.shape[1]
    m = Q[s, 0]
    for a in range(1, A):
        if Q[s, a] > m:
            m = Q[s, a]
    shift[s] = m
    for a in range(A):
        W[s, a] = np.exp((Q[s, a] - m) / temperature)


@jit
def qmi_stationary_kernel(Q, M, R, succ, prob, gamma, behaviour_cdf, on_policy, temperature, alpha, beta, u, s):
    """Run ``u.shape[0]`` samples of QMI in a stationary discounted game from state ``s``;
    update Q and M in place and return the final state.

    Q[s, a], M[s], R[s, a], succ/prob[s, a, b], behaviour_cdf[s, a] (cumulative, used when
    not on_policy), u[n, 2]. The row maxima of Q are kept incrementally (a max over the
    actions only when the current argmax decreases); the on-policy softmax weights are
    kept as exp((Q - shift) / tau) per row, so a sample costs O(A) additions and one exp.
    """
    S, A = Q.shape
    B = succ.shape[2]
    V = np.empty(S)
    arg = np.empty(S, dtype=np.int64)
    for i in range(S):
        arg[i] = 0
        V[i] = Q[i, 0]
        for a in range(1, A):
            if Q[i, a] > V[i]:
                V[i] = Q[i, a]
                arg[i] = a
    W = np.empty((S, A))
    shift = np.empty(S)
    if on_policy:
        for i in range(S):
            _rebase_row(Q, W, shift, i, temperature)
    # M is kept as c * Mt with c the running product of (1 - beta): O(1) per sample
    scale = 1.0
    for n in range(u.shape[0]):
        if on_policy:
            tot = 0.0
            for a in range(A):
                tot += W[s, a]
            a = _draw_row(W[s], tot, u[n, 0])
        else:
            target = u[n, 0]
            lo = 0
            hi = A - 1
            while lo < hi:  # first a with cdf[a] > target
                mid = (lo + hi) // 2
                if behaviour_cdf[s, mid] > target:
                    hi = mid
                else:
                    lo = mid + 1
            a = lo
        target = u[n, 1]
        c = 0.0
        b = B - 1
        for j in range(B):
            c += prob[s, a, j]
            if c > target:
                b = j
                break
        s2 = succ[s, a, b]
        old = Q[s, a]
        new = old + alpha * (R[s, a] + gamma * V[s2] - old)
        Q[s, a] = new
        if new >= V[s]:
            V[s] = new
            arg[s] = a
        elif arg[s] == a:
            V[s] = Q[s, 0]
            arg[s] = 0
            for a2 in range(1, A):
                if Q[s, a2] > V[s]:
                    V[s] = Q[s, a2]
                    arg[s] = a2
        if on_policy:
            z = (new - shift[s]) / temperature
            if z > REBASE or (V[s] - shift[s]) / temperature < -REBASE:
                _rebase_row(Q, W, shift, s, temperature)
            else:
                W[s, a] = np.exp(z)
        scale *= 1.0 - beta
        M[s2] += beta / scale
        if scale < 1e-200:
            for i in range(S):
                M[i] *= scale
            scale = 1.0
        s = s2
    for i in range(S):
        M[i] *= scale
    return s


def qmi_stationary_python(Q, M, R, succ, prob, gamma, behaviour_cdf, on_policy, temperature, alpha, beta, u, s):
    """Plain Python twin of ``qmi_stationary_kernel`` (direct max and softmax at every sample)."""
    for n in range(u.shape[0]):
        if on_policy:
            w = np.exp((Q[s] - Q[s].max()) / temperature)
            a = _draw_row_python(w, w.sum(), u[n, 0])
        else:
            a = int(np.searchsorted(behaviour_cdf[s], u[n, 0], side="right"))
        s2 = int(succ[s, a, _draw_row_python(prob[s, a], 1.0, u[n, 1])])
        Q[s, a] += alpha * (R[s, a] + gamma * Q[s2].max() - Q[s, a])
        M *= 1.0 - beta
        M[s2] += beta
        s = s2
    return s


# -- the learner --------------------------------------------------------------------------
@register_learner
class QMI(Learner):
    """QM iteration: one online agent per population (see the module docstring)."""

    name = "qmi"
    Config = QMIConfig
    model_free = True
    kinds = ("finite", "stationary")

    def __init__(self, game, config=None, rng=None):
        super().__init__(game, config, rng)
        self.stationary = getattr(game, "kind", "finite") == "stationary"
        cfg = self.config
        K = game.n_populations
        if self.stationary:
            shapes = [(p.n_states, p.n_actions) for p in game.populations]
            self._M = [np.full(p.n_states, 1.0 / p.n_states) for p in game.populations]
            # the agent's state, drawn once: the trajectory continues across iterations
            self._state = [int(self.rng.integers(p.n_states)) for p in game.populations]
        else:
            T = game.horizon
            shapes = [(T, p.n_states, p.n_actions) for p in game.populations]
            self._M = [np.full((T + 1, p.n_states), 1.0 / p.n_states) for p in game.populations]
        self._Q = [np.full(shape, float(cfg.q_init)) for shape in shapes]
        self._Mbar = [m.copy() for m in self._M]
        self._K = K

    # -- policy --------------------------------------------------------------------------
    def behaviour_policy(self) -> tuple:
        """Gamma(Q) = softmax(Q / temperature) per population."""
        return tuple(softmax(q, self.config.temperature) for q in self._Q)

    @property
    def policy(self) -> tuple:
        if self.config.policy_output == "greedy":
            return tuple(greedy_policy(q) for q in self._Q)
        return self.behaviour_policy()

    @property
    def q_values(self) -> tuple:
        return tuple(q.copy() for q in self._Q)

    @property
    def mean_field_estimate(self) -> tuple:
        return tuple(m.copy() for m in self._M)

    # -- one outer iteration ------------------------------------------------------------------
    def _frozen_mean_field(self):
        if self.config.mean_field == "average":
            w = 1.0 / (self.iteration + 1)
            self._Mbar = [(1.0 - w) * mb + w * m for mb, m in zip(self._Mbar, self._M)]
        else:
            self._Mbar = [m.copy() for m in self._M]
        return [mb / mb.sum(axis=-1, keepdims=True) for mb in self._Mbar]

    def step(self) -> dict:
        cfg = self.config
        Mbar = self._frozen_mean_field()
        behaviour = self.behaviour_policy()
        n = cfg.samples_per_iteration
        if self.stationary:
            tables = [self._stationary_tables(k, Mbar, behaviour) for k in range(self._K)]
            for k, (R, succ, prob) in enumerate(tables):
                u = self.rng.random((n, 2))
                cdf = np.cumsum(behaviour[k], axis=1)
                cdf[:, -1] = np.inf  # a rounded-down last entry never sends a draw off the end
                self._state[k] = qmi_stationary_kernel(
                    self._Q[k], self._M[k], R, succ, prob, float(self.game.gamma), cdf,
                    cfg.variant == "on-policy", cfg.temperature, cfg.alpha, cfg.beta, u, self._state[k])
            self.samples += n * self._K
        else:
            T = self.game.horizon
            episodes = -(-n // T)
            tables = self._finite_tables(Mbar, behaviour)
            for k, (R, succ, prob, g) in enumerate(tables):
                u = self.rng.random((episodes, 1 + 2 * T))
                qmi_finite_kernel(self._Q[k], self._M[k], R, succ, prob, g, self.game.populations[k].mu0,
                                  behaviour[k], cfg.variant == "on-policy", cfg.temperature, cfg.alpha,
                                  cfg.beta, u)
            self.samples += episodes * T * self._K
        self.iteration += 1
        return {"iteration": self.iteration, "samples": self.samples,
                "mean_field_change": float(sum(np.abs(m - mb).sum() for m, mb in zip(self._M, Mbar)))}

    def _finite_tables(self, Mbar, behaviour):
        """Rewards, transitions and terminal rewards of every population at the frozen estimate."""
        game, T, K = self.game, self.game.horizon, self._K
        check = self.iteration == 0  # validate what the game returns once, then trust it
        R = [np.empty_like(q) for q in self._Q]
        succ = [[] for _ in range(K)]
        prob = [[] for _ in range(K)]
        for t in range(T):
            mu_t = tuple(Mbar[k][t] for k in range(K))
            mf = MeanField(t, mu_t, tuple(mu_t[k][:, None] * behaviour[k][t] for k in range(K)))
            for k in range(K):
                R[k][t] = check_rewards(game, k, t, game.rewards(k, t, mf)) if check else game.rewards(k, t, mf)
                if game.static_transitions and t > 0:
                    continue
                s_t, p_t = game.static_transition(k) if game.static_transitions else game.transitions(k, t, mf)
                if check:
                    s_t, p_t = check_transitions(game, k, t, s_t, p_t)
                succ[k].append(np.asarray(s_t, dtype=np.int64))
                prob[k].append(np.asarray(p_t, dtype=np.float64))
        mf_T = MeanField(T, tuple(Mbar[k][T] for k in range(K)), (None,) * K)
        out = []
        for k in range(K):
            g = game.terminal(k, mf_T)
            g = np.ascontiguousarray(check_rewards(game, k, "T", g) if check else g, dtype=np.float64)
            out.append((R[k], np.ascontiguousarray(np.stack(succ[k])), np.ascontiguousarray(np.stack(prob[k])), g))
        return out

    def _stationary_tables(self, k, Mbar, behaviour):
        mf = _stationary_mean_field(Mbar, behaviour)
        R = self.game.rewards(k, mf)
        if self.game.static_transitions:
            succ, prob = self.game.static_transition(k)
        else:
            succ, prob = self.game.transitions(k, mf)
        if self.iteration == 0:  # validate what the game returns once, then trust it
            R = check_rewards(self.game, k, "stationary", R)
            succ, prob = check_transitions(self.game, k, "stationary", succ, prob)
        R = np.ascontiguousarray(R, dtype=np.float64)
        return R, np.ascontiguousarray(succ, dtype=np.int64), np.ascontiguousarray(prob, dtype=np.float64)


def _stationary_mean_field(Mbar, behaviour):
    return MeanField(None, tuple(Mbar), tuple(m[:, None] * pi for m, pi in zip(Mbar, behaviour)))
