"""QM iteration (QMI): one online agent learns a mean field equilibrium from its own samples
(Zhang, Chen & Di, "A Single Online Agent Can Efficiently Learn Mean Field Games",
ECAI 2024, arXiv 2405.03718).

Objects. A value estimate ``Q(s, a)`` and a mean-field estimate ``M`` (a distribution
over states). The agent sees only its own stream ``(s, a, r, s')``; its rewards are the
game's rewards evaluated at the *estimated* mean field. Outer iteration k:

1. fix the mean field used for the rewards, ``Mbar_k`` (below), build the rewards
   ``r(s, a; Mbar_k)`` and transitions ``P(. | s, a; Mbar_k)`` once through the game's
   functions;
2. run ``samples_per_iteration`` transitions of the agent. From each ``(s, a, r, s')``:

       Q(s, a) <- Q(s, a) + alpha (r + gamma max_a' Q(s', a') - Q(s, a))      (Q-learning)
       M       <- (1 - beta) M + beta e_{s'}                                  (mean field)

   The behaviour policy is ``Gamma(Q) = softmax(Q / tau)``:
   - ``variant="off-policy"``: Gamma of Q as it was at the start of the outer iteration,
     fixed during the iteration (so the visited states, hence M, follow the flow of
     that policy while Q learns the optimal values against ``Mbar_k``);
   - ``variant="on-policy"``: Gamma of the current Q at every sample.

The behaviour is not an arbitrary exploration policy (e.g. uniform) because the same
stream estimates the mean field: the states the agent visits must follow the policy whose
mean field is being learned.

Stationary discounted games (``game.kind == "stationary"``, discount gamma): one
endless trajectory (continued across outer iterations), ``Q[s, a]``, ``M[s]``.
Finite-horizon games: time-indexed ``Q[t, s, a]`` and ``M[t, s]`` (t = 0..T), episodes
of length T restarted from ``mu0``; the bootstrap at t = T-1 is the terminal reward
``g(s'; Mbar_T)``, gamma = 1, and ``M[t] <- (1 - beta) M[t] + beta e_{s_t}`` at every
visited time. ``samples`` counts transitions (T per episode).

**Scale.** ``tau = temperature * reward_scale`` and the initial Q-value ``q_init *
reward_scale``, with ``reward_scale`` the game's (``mfgbench.learners.scale``: the uniform
policy's exploitability per population and unit of horizon) unless the config fixes it.
Q-learning is linear in the rewards, so the learner does the same thing, sample for sample,
on a game whose rewards are all multiplied by a constant.

**Stabilisers** (options; the ``"paper"`` preset switches every one off and uses the
paper's absolute temperature 1e-5 and alpha = beta = 1e-3):

- ``mean_field="average"``, ``policy_output="average"``: fictitious-play averaging
  (REFERENCES.md: "outer iterations freeze M (or average it, fictitious-play style)";
  Perrin et al. 2020 for the average). Iteration j's empirical flow ``F_j`` (the agent's
  visit frequencies, all the iteration's samples) estimates the flow of its behaviour
  ``Gamma_j``; the rewards of iteration k use ``Mbar_k = sum_{j<k} w_j F_j / sum w_j`` and
  ``L_k = sum_{j<k} w_j F_j Gamma_j / sum w_j``, and the reported policy is the
  distribution-weighted average ``sum_j w_j F_j(s) Gamma_j(a|s) / sum_j w_j F_j(s)``, whose
  flow is ``Mbar`` when the dynamics do not depend on the mean field. Weights
  ``w_j = (1 + j)^average_weighting``. With ``"freeze"`` (paper) ``Mbar_k`` is the running
  estimate M at the start of the iteration and ``L = Mbar Gamma(Q)``.
- ``temperature_decay``: annealing, ``tau_k = tau (1 + k)^-temperature_decay``. Not in the
  paper (its Gamma has a fixed temperature): a decreasing Boltzmann temperature is the GLIE
  schedule of Singh, Jaakkola, Littman & Szepesvari (2000, "Convergence results for
  single-step on-policy reinforcement-learning algorithms"); with averaging the best
  responses sharpen while the average keeps the iterates from oscillating.
- ``policy_output="greedy"``: greedy read-out, the argmax of Q (ties to the lowest action),
  the policy Q-learning's values define (Watkins & Dayan 1992); on ring-road-v0 it removes
  the softmax's error at the paper's temperature.
- ``exploration`` (finite-horizon games): each step's action is uniform with probability
  ``min(exploration / T, 1/2)`` (epsilon-greedy-style exploration, as the Nash-Q notes
  describe for their agents); the flow estimates only count an episode's states up to its
  first exploratory step, so they still follow ``Gamma``: a state's law at time t given no
  exploratory step before t is the behaviour's flow at t. Ours, not the paper's: without
  it a low-temperature agent never revisits the empty cells that -log(mu) rewards make
  attractive.
- ``alpha_schedule="harmonic"``: the n-th update of a pair steps by ``max(alpha, 1/n)``
  (Hu & Wellman's 1/n step, floored at alpha so Q keeps tracking the moving mean field).
- ``replay="backward"`` (finite-horizon games): the episode's updates are applied in
  reverse time order once it ends (Lin 1992, "Self-improving reactive agents based on
  reinforcement learning, planning and teaching", backward replay): the same samples, but a
  reward reaches Q[0] within one episode instead of T.
- ``bootstrap="tried"`` (finite-horizon games): the max of the target ``r + max_a' Q[t+1,
  s', a']`` runs over the actions already tried at (t+1, s'). Ours, not the paper's: an
  untried action still holds its initial value, which is optimistic when the rewards are
  costs, and the max carries it back through all T steps (on the 80-step discretized games
  the paper's max leaves Q[0] at a tenth of its value after an outer iteration).

Defaults: averaging on, ``temperature = 1`` annealed with exponent 1/2, exploration 2 steps
per episode, harmonic steps floored at 0.1, backward replay, bootstrap over tried actions,
1e5 samples per population and outer iteration with up to two populations, 2e5 in all with
more (about one to two CPU seconds for 100 iterations on the standard suite's games).

The learner's ``policy`` is ``Gamma(Q)`` (``policy_output="softmax"``, the policy QMI
plays), the greedy policy of Q, or the average above.

Several populations: one agent per population, each with its own Q and M; population
k's rewards use the joint estimate ``(Mbar_0, ..., Mbar_{K-1})``. The estimates start
uniform over states (the agent knows nothing of the game).

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
from mfgbench.learners.scale import check_configured_scale, resolve_scale

REBASE = 40.0
"""On-policy stationary kernel: softmax weights are stored as exp((Q - shift) / tau) and the
row's shift is reset when the largest exponent leaves [-REBASE, REBASE]."""


SAMPLES_PER_ITERATION = 100_000
"""Transitions per population and outer iteration by default (the paper's 1e5), up to two populations."""


@dataclass
class QMIConfig:
    variant: str = "off-policy"
    """"off-policy": behaviour Gamma(Q) frozen at the start of each outer iteration;
    "on-policy": behaviour Gamma(Q) of the current Q at every sample."""
    alpha: float = 0.1
    """Q-learning step size (paper: 1e-3); with alpha_schedule="harmonic", the floor of the
    step."""
    alpha_schedule: str = "harmonic"
    """"constant": every update steps by alpha (paper); "harmonic": the n-th update of Q(s, a)
    steps by max(alpha, 1/n), a sample average until 1/n reaches alpha (no bias from q_init,
    and a pair visited a few times per iteration is estimated as well as it can be)."""
    replay: str = "backward"
    """Finite-horizon games: "forward" (paper: each transition updates Q as it happens) or
    "backward" (the episode's transitions update Q in reverse time order once it ends, as in
    Lin's 1992 backward experience replay: a reward reaches Q[0] in one episode, not T)."""
    beta: float = 1e-3
    """Step size of the running mean-field estimate, M <- (1 - beta) M + beta e_{s'} (paper:
    1e-3); the rewards use it with mean_field="freeze"."""
    samples_per_iteration: int | None = None
    """Transitions each population's agent samples per outer iteration (paper: 1e5). None:
    ``SAMPLES_PER_ITERATION`` (1e5) with one or two populations, ``2 SAMPLES_PER_ITERATION / K``
    with K > 2: an outer iteration samples at most 2e5 transitions in all, so the cost of a
    trial does not grow with the number of populations."""
    temperature: float = 1.0
    """Temperature of Gamma(Q) = softmax(Q / tau) at the first outer iteration, in units of
    the reward scale (tau = temperature * reward_scale)."""
    temperature_decay: float = 0.5
    """Annealing exponent p: outer iteration k uses tau_k = tau (1 + k)^-p (0: fixed)."""
    exploration: float = 2.0
    """Finite-horizon games: expected number of exploratory steps per episode; each step's
    action is uniform instead of the behaviour's with probability min(exploration / T, 1/2).
    The mean-field estimates count the agent's state only while no such step has been taken
    in the episode, so they still estimate the flow of Gamma(Q). Stationary games ignore it
    (their one endless trajectory has no episode start to return to the behaviour's flow)."""
    mean_field: str = "average"
    """Mean field the rewards use in an outer iteration: "freeze" (paper: the running
    estimate M) or "average" (the average of the past iterations' empirical flows)."""
    policy_output: str = "average"
    """Policy the learner reports: "softmax" (Gamma(Q) at the current temperature), "greedy"
    (argmax of Q) or "average" (the behaviour policies of all outer iterations averaged
    with their empirical flows as weights, as fictitious play averages)."""
    average_weighting: float = 0.0
    """Weight (1 + j)^average_weighting of outer iteration j in the fictitious-play averages
    (0: plain averages; 1: linear weights, which forget the first, least informed iterations
    faster)."""
    bootstrap: str = "tried"
    """Finite-horizon games: the max of the Q-learning target r + max_a' Q[t+1, s', a'] runs over
    "all" actions (paper) or over the actions already "tried" at (t+1, s') (all of them until one
    is). With "all", an untried action's initial value enters every target below it: when the
    rewards are costs it is optimistic, and the max carries it back through the horizon (on the
    80-step grid of segregation-2pop-v0, Q[0] after one outer iteration is -0.2 with "all" and
    -2.6 with "tried", for an exact -2.4; the exploitability at the standard budget falls from
    0.52, above the uniform policy's 0.51, to 0.40)."""
    q_init: float = 0.0
    """Initial value of every Q(s, a), in units of the reward scale. An optimistic value
    (above the achievable returns) makes the single agent try every action before
    settling: a state-action pair it never tries keeps its initial value."""
    reward_scale: float | None = None
    """Unit of ``temperature`` and ``q_init``: None computes the game's reward scale
    (``mfgbench.learners.scale.reward_scale``); a number fixes it (1.0: absolute units)."""

    def __post_init__(self):
        if self.variant not in ("off-policy", "on-policy"):
            raise ValueError(f"qmi: variant must be off-policy or on-policy, got {self.variant!r}")
        if self.replay not in ("forward", "backward"):
            raise ValueError(f"qmi: replay must be forward or backward, got {self.replay!r}")
        if self.alpha_schedule not in ("constant", "harmonic"):
            raise ValueError(f"qmi: alpha_schedule must be constant or harmonic, got {self.alpha_schedule!r}")
        if self.mean_field not in ("freeze", "average"):
            raise ValueError(f"qmi: mean_field must be freeze or average, got {self.mean_field!r}")
        if self.bootstrap not in ("all", "tried"):
            raise ValueError(f"qmi: bootstrap must be all or tried, got {self.bootstrap!r}")
        if self.policy_output not in ("softmax", "greedy", "average"):
            raise ValueError(f"qmi: policy_output must be softmax, greedy or average, got {self.policy_output!r}")
        for name in ("alpha", "beta"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise ValueError(f"qmi: {name} must lie in (0, 1], got {v}")
        if not self.temperature > 0:
            raise ValueError(f"qmi: temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.temperature_decay <= 2.0:
            raise ValueError(f"qmi: temperature_decay must lie in [0, 2], got {self.temperature_decay}")
        if not 0.0 <= self.average_weighting <= 4.0:
            raise ValueError(f"qmi: average_weighting must lie in [0, 4], got {self.average_weighting}")
        if not 0.0 <= self.exploration < np.inf:
            raise ValueError(f"qmi: exploration must be a non-negative number, got {self.exploration}")
        if self.samples_per_iteration is not None and self.samples_per_iteration < 1:
            raise ValueError(f"qmi: samples_per_iteration must be >= 1, got {self.samples_per_iteration}")
        if not np.isfinite(self.q_init):
            raise ValueError(f"qmi: q_init must be finite, got {self.q_init}")
        check_configured_scale("qmi", self.reward_scale)


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
def qmi_finite_kernel(Q, visits, M, counts, R, succ, prob, g, mu0, behaviour, on_policy, temperature, epsilon, alpha,
                      harmonic, backward, beta, u, tried):
    """Run ``u.shape[0]`` episodes of QMI in a finite-horizon game; update Q and M in place.

    Q[t, s, a] (t < T), visits[t, s, a] (updates of Q so far), M[t, s] (t <= T), counts[t, s]
    (the agent's visits to s at t, added to; t <= T), R[t, s, a], succ/prob[tt, s, a, b]
    (tt = 0 when static), g[s], mu0[s], behaviour[t, s, a] (used when not on_policy),
    u[e, 1 + 2 T]. The step is alpha, or max(alpha, 1 / visits) if harmonic. With
    probability epsilon a step's action is uniform instead of the behaviour's (the action
    uniform u < epsilon picks it, u rescaled to [0, 1) otherwise draws from the behaviour); M
    and counts take s_t only while no exploratory action has been taken in the episode.
    backward: the episode's Q updates are applied once it ends, from t = T-1 down to 0.
    tried: the bootstrap max_a' Q[t+1, s', a'] runs over the actions already updated at
    (t+1, s') (over all of them while none is).
    """
    T, S, A = Q.shape
    static = succ.shape[0] == 1
    w = np.empty(A)
    states = np.empty(T + 1, dtype=np.int64)
    actions = np.empty(T, dtype=np.int64)
    # M[t] is kept as scale[t] * Mt[t] (scale[t] the running product of (1 - beta)): O(1) per step
    scale = np.ones(T + 1)
    for e in range(u.shape[0]):
        s = _draw_row(mu0, 1.0, u[e, 0])
        on_path = True
        for t in range(T):
            if on_path:
                _decay_and_add(M, scale, t, s, beta)
                counts[t, s] += 1.0
            ua = u[e, 1 + 2 * t]
            if ua < epsilon:
                a = min(int(ua / epsilon * A), A - 1)
                on_path = False
            elif on_policy:
                qmax = Q[t, s, 0]
                for a in range(1, A):
                    if Q[t, s, a] > qmax:
                        qmax = Q[t, s, a]
                tot = 0.0
                for a in range(A):
                    w[a] = np.exp((Q[t, s, a] - qmax) / temperature)
                    tot += w[a]
                a = _draw_row(w, tot, (ua - epsilon) / (1.0 - epsilon))
            else:
                a = _draw_row(behaviour[t, s], 1.0, (ua - epsilon) / (1.0 - epsilon))
            tt = 0 if static else t
            s2 = succ[tt, s, a, _draw_row(prob[tt, s, a], 1.0, u[e, 2 + 2 * t])]
            states[t] = s
            actions[t] = a
            if not backward:
                _q_step(Q, visits, R, g, t, s, a, s2, alpha, harmonic, tried)
            s = s2
        states[T] = s
        if on_path:
            _decay_and_add(M, scale, T, s, beta)
            counts[T, s] += 1.0
        if backward:
            for t in range(T - 1, -1, -1):
                _q_step(Q, visits, R, g, t, states[t], actions[t], states[t + 1], alpha, harmonic, tried)
    for t in range(T + 1):
        for i in range(S):
            M[t, i] *= scale[t]


@jit
def _q_step(Q, visits, R, g, t, s, a, s2, alpha, harmonic, tried):
    """Q[t, s, a] += step (R[t, s, a] + max_a' Q[t+1, s2, a'] - Q[t, s, a]) (g[s2] at t = T-1); with
    ``tried`` the max runs over the actions with visits[t+1, s2, a'] > 0 (over all while there is none)."""
    T, _, A = Q.shape
    if t + 1 < T:
        nxt = -np.inf
        if tried:
            for a2 in range(A):
                if visits[t + 1, s2, a2] > 0.0 and Q[t + 1, s2, a2] > nxt:
                    nxt = Q[t + 1, s2, a2]
        if nxt == -np.inf:
            for a2 in range(A):
                if Q[t + 1, s2, a2] > nxt:
                    nxt = Q[t + 1, s2, a2]
    else:
        nxt = g[s2]
    visits[t, s, a] += 1.0
    step = max(alpha, 1.0 / visits[t, s, a]) if harmonic else alpha
    Q[t, s, a] += step * (R[t, s, a] + nxt - Q[t, s, a])


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


def qmi_finite_python(Q, visits, M, counts, R, succ, prob, g, mu0, behaviour, on_policy, temperature, epsilon, alpha,
                      harmonic, backward, beta, u, tried):
    """Plain Python twin of ``qmi_finite_kernel`` (same updates, same uniforms)."""
    T, S, A = Q.shape

    def q_step(t, s, a, s2):
        if t + 1 == T:
            nxt = g[s2]
        elif tried and (visits[t + 1, s2] > 0).any():
            nxt = Q[t + 1, s2][visits[t + 1, s2] > 0].max()
        else:
            nxt = Q[t + 1, s2].max()
        visits[t, s, a] += 1.0
        step = max(alpha, 1.0 / visits[t, s, a]) if harmonic else alpha
        Q[t, s, a] += step * (R[t, s, a] + nxt - Q[t, s, a])

    for e in range(u.shape[0]):
        s = _draw_row_python(mu0, 1.0, u[e, 0])
        on_path = True
        path = []
        for t in range(T):
            if on_path:
                M[t] *= 1.0 - beta
                M[t, s] += beta
                counts[t, s] += 1.0
            ua = u[e, 1 + 2 * t]
            if ua < epsilon:
                a = min(int(ua / epsilon * A), A - 1)
                on_path = False
            else:
                w = np.exp((Q[t, s] - Q[t, s].max()) / temperature) if on_policy else behaviour[t, s]
                a = _draw_row_python(w, w.sum() if on_policy else 1.0, (ua - epsilon) / (1.0 - epsilon))
            tt = 0 if succ.shape[0] == 1 else t
            s2 = int(succ[tt, s, a, _draw_row_python(prob[tt, s, a], 1.0, u[e, 2 + 2 * t])])
            path.append((t, s, a, s2))
            if not backward:
                q_step(t, s, a, s2)
            s = s2
        if on_path:
            M[T] *= 1.0 - beta
            M[T, s] += beta
            counts[T, s] += 1.0
        if backward:
            for step_args in reversed(path):
                q_step(*step_args)


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
def qmi_stationary_kernel(Q, visits, M, counts, R, succ, prob, gamma, behaviour_cdf, on_policy, temperature, alpha,
                          harmonic, beta, u, s):
    """Run ``u.shape[0]`` samples of QMI in a stationary discounted game from state ``s``;
    update Q and M in place and return the final state.

    Q[s, a], visits[s, a], M[s], counts[s] (visits to s, added to), R[s, a], succ/prob[s, a, b],
    behaviour_cdf[s, a] (cumulative, used when not on_policy), u[n, 2]; the step as in
    ``qmi_finite_kernel``. The row maxima of Q are kept incrementally (a max over the
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
        visits[s, a] += 1.0
        step = max(alpha, 1.0 / visits[s, a]) if harmonic else alpha
        new = old + step * (R[s, a] + gamma * V[s2] - old)
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
        counts[s2] += 1.0
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


def qmi_stationary_python(Q, visits, M, counts, R, succ, prob, gamma, behaviour_cdf, on_policy, temperature, alpha,
                          harmonic, beta, u, s):
    """Plain Python twin of ``qmi_stationary_kernel`` (direct max and softmax at every sample)."""
    for n in range(u.shape[0]):
        if on_policy:
            w = np.exp((Q[s] - Q[s].max()) / temperature)
            a = _draw_row_python(w, w.sum(), u[n, 0])
        else:
            a = int(np.searchsorted(behaviour_cdf[s], u[n, 0], side="right"))
        s2 = int(succ[s, a, _draw_row_python(prob[s, a], 1.0, u[n, 1])])
        visits[s, a] += 1.0
        step = max(alpha, 1.0 / visits[s, a]) if harmonic else alpha
        Q[s, a] += step * (R[s, a] + gamma * Q[s2].max() - Q[s, a])
        counts[s2] += 1.0
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
    PRESETS = {"paper": {"variant": "off-policy", "alpha": 1e-3, "alpha_schedule": "constant", "replay": "forward",
                         "beta": 1e-3, "samples_per_iteration": None, "temperature": 1e-5,
                         "temperature_decay": 0.0, "exploration": 0.0, "mean_field": "freeze",
                         "policy_output": "softmax", "average_weighting": 0.0, "q_init": 0.0, "reward_scale": 1.0,
                         "bootstrap": "all"}}
    """Zhang, Chen & Di's ring-road settings (alpha = beta = 1e-3, 1e5 samples per outer
    iteration, softmax temperature 1e-5 in reward units, frozen mean field), no stabiliser. The
    paper has one agent: its 1e5 samples are the default's per population (``SAMPLES_PER_ITERATION``,
    2e5 in all with more than two populations)."""

    def __init__(self, game, config=None, rng=None):
        super().__init__(game, config, rng)
        self.stationary = getattr(game, "kind", "finite") == "stationary"
        cfg = self.config
        self.reward_scale = resolve_scale(game, cfg.reward_scale)
        if self.stationary:
            shapes = [(p.n_states, p.n_actions) for p in game.populations]
            self._M = [np.full(p.n_states, 1.0 / p.n_states) for p in game.populations]
            # the agent's state, drawn once: the trajectory continues across iterations
            self._state = [int(self.rng.integers(p.n_states)) for p in game.populations]
        else:
            T = game.horizon
            shapes = [(T, p.n_states, p.n_actions) for p in game.populations]
            self._M = [np.full((T + 1, p.n_states), 1.0 / p.n_states) for p in game.populations]
            self.epsilon = min(cfg.exploration / T, 0.5)
            """Probability that a step's action is exploratory (uniform)."""
        self._K = game.n_populations
        self.samples_per_iteration = (cfg.samples_per_iteration if cfg.samples_per_iteration is not None
                                      else SAMPLES_PER_ITERATION * 2 // max(2, self._K))
        """Transitions per population and outer iteration (the config's, or the default for K populations)."""
        self._Q = [np.full(shape, float(cfg.q_init) * self.reward_scale) for shape in shapes]
        self._visits = [np.zeros(shape) for shape in shapes]
        # fictitious-play sums over the finished outer iterations j: the empirical flows F_j of
        # the behaviours Gamma_j, and the state-action measures F_j(s) Gamma_j(a|s)
        self._flow_sum = [np.zeros_like(m) for m in self._M]
        self._measure_sum = [np.zeros(shape) for shape in shapes]
        self._weight_sum = 0.0
        self._Mbar = [m.copy() for m in self._M]

    # -- policy --------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """The behaviour temperature of the next outer iteration, in reward units."""
        cfg = self.config
        return cfg.temperature * self.reward_scale * (1.0 + self.iteration) ** -cfg.temperature_decay

    def behaviour_policy(self) -> tuple:
        """Gamma(Q) = softmax(Q / temperature) per population."""
        return tuple(softmax(q, self.temperature) for q in self._Q)

    def average_policy(self) -> tuple:
        """The fictitious-play average of the behaviours so far: sum_j F_j(s) Gamma_j(a|s) / sum_j F_j(s)
        (the current behaviour where no iteration visited s)."""
        out = []
        for L, F, pi in zip(self._measure_sum, self._flow_sum, self.behaviour_policy()):
            F = F if self.stationary else F[:-1]
            seen = F > 0
            avg = pi.copy()
            avg[seen] = L[seen] / F[seen][:, None]
            out.append(avg / avg.sum(axis=-1, keepdims=True))
        return tuple(out)

    @property
    def policy(self) -> tuple:
        if self.config.policy_output == "greedy":
            return tuple(greedy_policy(q) for q in self._Q)
        if self.config.policy_output == "average":
            return self.average_policy()
        return self.behaviour_policy()

    @property
    def q_values(self) -> tuple:
        return tuple(q.copy() for q in self._Q)

    @property
    def mean_field_estimate(self) -> tuple:
        """The running estimate M of the paper (exponential average of the visited states)."""
        return tuple(m.copy() for m in self._M)

    # -- one outer iteration ------------------------------------------------------------------
    def _frozen_mean_field(self, behaviour):
        """(Mbar, L) the rewards and transitions use in this iteration: the estimate M and
        M(s) Gamma(a|s) ("freeze"), or the averages of the past iterations' empirical flows and
        state-action measures ("average"; the estimate M before the first iteration)."""
        if self.config.mean_field == "average" and self.iteration > 0:
            Mbar = [F / self._weight_sum for F in self._flow_sum]
            L = [m / self._weight_sum for m in self._measure_sum]
        else:
            Mbar = [m / m.sum(axis=-1, keepdims=True) for m in self._M]
            L = [(m if self.stationary else m[:-1])[..., None] * pi for m, pi in zip(Mbar, behaviour)]
        self._Mbar = Mbar
        return Mbar, L

    def step(self) -> dict:
        cfg = self.config
        tau = self.temperature
        behaviour = self.behaviour_policy()
        Mbar, L = self._frozen_mean_field(behaviour)
        harmonic = cfg.alpha_schedule == "harmonic"
        counts = [np.zeros_like(m) for m in self._M]
        n = self.samples_per_iteration
        if self.stationary:
            for k in range(self._K):
                R, succ, prob = self._stationary_tables(k, Mbar, L)
                u = self.rng.random((n, 2))
                cdf = np.cumsum(behaviour[k], axis=1)
                cdf[:, -1] = np.inf  # a rounded-down last entry never sends a draw off the end
                self._state[k] = qmi_stationary_kernel(
                    self._Q[k], self._visits[k], self._M[k], counts[k], R, succ, prob, float(self.game.gamma), cdf,
                    cfg.variant == "on-policy", tau, cfg.alpha, harmonic, cfg.beta, u, self._state[k])
            self.samples += n * self._K
        else:
            T = self.game.horizon
            episodes = -(-n // T)
            for k, (R, succ, prob, g) in enumerate(self._finite_tables(Mbar, L)):
                u = self.rng.random((episodes, 1 + 2 * T))
                qmi_finite_kernel(self._Q[k], self._visits[k], self._M[k], counts[k], R, succ, prob, g,
                                  self.game.populations[k].mu0, behaviour[k], cfg.variant == "on-policy", tau,
                                  self.epsilon, cfg.alpha, harmonic, cfg.replay == "backward", cfg.beta, u,
                                  cfg.bootstrap == "tried")
            self.samples += episodes * T * self._K
        weight = (1.0 + self.iteration) ** cfg.average_weighting
        for k in range(self._K):
            # this iteration's empirical flow (a time no episode reached on the behaviour's path keeps M's row)
            total = counts[k].sum(axis=-1, keepdims=True)
            M = self._M[k] / self._M[k].sum(axis=-1, keepdims=True)
            F = np.where(total > 0, counts[k] / np.maximum(total, 1.0), M)
            self._flow_sum[k] += weight * F
            self._measure_sum[k] += weight * (F if self.stationary else F[:-1])[..., None] * behaviour[k]
        self._weight_sum += weight
        self.iteration += 1
        return {"iteration": self.iteration, "samples": self.samples, "temperature": tau,
                "mean_field_change": float(sum(np.abs(m - mb).sum() for m, mb in zip(self._M, Mbar)))}

    def _finite_tables(self, Mbar, L):
        """Rewards, transitions and terminal rewards of every population at the frozen mean field."""
        game, T, K = self.game, self.game.horizon, self._K
        check = self.iteration == 0  # validate what the game returns once, then trust it
        R = [np.empty_like(q) for q in self._Q]
        succ = [[] for _ in range(K)]
        prob = [[] for _ in range(K)]
        for t in range(T):
            mf = MeanField(t, tuple(Mbar[k][t] for k in range(K)), tuple(L[k][t] for k in range(K)))
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

    def _stationary_tables(self, k, Mbar, L):
        mf = MeanField(None, tuple(Mbar), tuple(L))
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
