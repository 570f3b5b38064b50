"""Nash Q-learning: mean-field form for K populations, and the classic two-player form
(Hu & Wellman, "Nash Q-learning for general-sum stochastic games", JMLR 4, 2003).

**Mean-field Nash-Q** (learner ``"nash-q"``; design notes ``/work/shared/sources/000``,
"Mean Field Nash Q-Learning"). Each population k is simulated by ``n_agents`` agents.
Finite-horizon games: an episode starts every agent at ``s0 ~ mu0_k``; at each time t the
empirical populations ``mu^N_k,t(s) = #{agents of k in s} / N`` and state-action measures
``L^N_k,t`` (after the agents draw their actions) make the mean field the game's functions
see (below); every agent of k earns ``R_k(t, mf_t)[s, a]`` and moves by ``P_k(t, mf_t)``;
at T it earns ``g_k(mf_T)``. From every agent's transition population k updates its table

    Q^k[t, s, a] <- Q^k[t, s, a] + alpha_n (r + V^k_{t+1}(s') - Q^k[t, s, a]),
    V^k_{t+1}(s') = max_a' Q^k[t+1, s', a']   (V^k_T = g_k),

applied once per episode as a mini-batch: the N agents' transitions from (t, s, a) in
the episode give the mean target, and ``alpha_n = n^-alpha_power`` with n the number of
episodes that visited (t, s, a) (Hu & Wellman's 1/n for ``alpha_power = 1``).
``Q^k[t, s, a]`` stands for ``Q^k(s, a | mu_t)`` along the flow actually played (in a
finite-horizon game the flow is a function of t). The stage value is the best response
(max): in the continuum limit a single agent of a type cannot move the mean field, so the
Nash equilibrium of the stage game between the types reduces, for each type, to
maximising its own Q (the notes' "symmetric MFG: Nash = max over actions"; Yang et al.
2018 take the same limit).

**Discounted Nash-Q** (stationary games such as ring-road-v0, discount gamma): the agents
never restart; every step of ``stationary_steps`` per iteration moves all of them once, the
mean field is built from their histogram as above, and

    Q^k[s, a] <- Q^k[s, a] + alpha_n (r + gamma max_a' Q^k[s', a'] - Q^k[s, a])

(mini-batch per step; n counts the steps that visited (s, a)). This is the notes' update
with the discount of their Bellman equation. The agents start from ``mu0``.

**Behaviour, scale and stabilisers** (``"paper"`` preset: the notes' algorithm as written,
epsilon-greedy agents on the empirical mean field of all of them, Hu & Wellman's 1/n step,
the greedy policy of Q as the answer):

- ``behaviour``: the population's policy, ``"softmax"`` (``softmax(Q^k / tau)``, ``tau =
  temperature * reward_scale``; ``mfgbench.learners.scale``: the same behaviour on a game
  whose rewards are all multiplied by a constant) or ``"greedy"`` (argmax of Q^k).
- ``epsilon``: epsilon-greedy exploration, as the notes' pseudocode has it ("a_t =
  epsilon_greedy(Q(s_t, ., m_t))"; "epsilon-greedy: standard exploration in action
  space"): at each step an agent's action is uniform with probability epsilon. With
  ``count_explorers=False`` (ours) the empirical mean field counts, at time t, only the
  agents that have not explored before t in the episode: their states follow the
  behaviour's flow exactly, so exploration no longer biases the mean field, and every
  agent's transition still updates Q (the explorers keep the values of actions the
  population has stopped playing up to date).
- ``temperature_decay``: annealing, iteration j uses ``tau (1 + j)^-p``. Not in the notes;
  the decreasing exploration of GLIE schedules (Singh et al. 2000). A fixed temperature
  leaves the learner at the entropy-regularised equilibrium of that temperature (a floor,
  0.69 on crowd-1d-v0 at tau = 0.5); annealing lowers it.
- ``mean_field="average"``: the rewards and transitions use the running averages of the
  empirical flows and state-action measures of all episodes so far (this one included),
  instead of this episode's histogram: the notes' first remedy for non-stationarity,
  "Fictitious Play: use historical average of populations" (and their "slow population
  updates").
- ``policy_output``: ``"behaviour"``, ``"greedy"`` (greedy read-out: the argmax of Q, ties
  to the lowest action; the notes' equilibrium condition "pi*(s, m) in argmax_a Q(s, a,
  m)"), or ``"average"`` (the behaviours of all episodes averaged with the empirical flows
  as weights, ``sum_n mu^N_n(s) pi_n(a|s) / sum_n mu^N_n(s)``: fictitious play's average
  policy (Perrin et al. 2020), whose flow is the average flow the rewards use when the
  dynamics do not depend on the mean field).
- ``alpha_floor``: the step is ``max(n^-alpha_power, alpha_floor)``, and an episode's
  mini-batch updates run from t = T-1 down to 0, so Q[t] bootstraps from the Q[t+1] the
  same episode has just updated. With many agents a mini-batch target is nearly its
  expectation; on exact expectations, floor 1 makes Q the exact best-response values
  against the averaged mean field, and the learner is fictitious play with a softmax best
  response.

- ``noise_tolerance`` (ours): the floor is lowered, cell by cell, to the constant step at
  which Q's stationary sampling noise, ``step / (2 - step) * sigma^2 / c`` for batches of c
  agents whose targets have variance sigma^2 (pooled within batches), equals
  ``(noise_tolerance * reward_scale)^2``. "Nearly its expectation" fails where few agents
  land on far-apart outcomes: in sir-types-v0 a handful of old agents are in hospital at a
  time and each day either stays (value about -48) or leaves (-8); at the floor 1/2 their Q
  values keep the noise of the last two batches, the max over three equivalent actions
  overestimates them by ~5 (Q-learning's maximisation bias, van Hasselt 2010), the optimism
  flows back to the susceptible, and the old under-distance (the old default ended at 2.64,
  uniform 2.52). Deterministic cells (sigma = 0) keep the floor.
- ``average_weighting=1`` (ours, as QMI's option of that name): the running averages (mean
  field and policy) weigh episode n by n instead of 1, fictitious play with step 2 / (n + 1)
  instead of 1 / n (the weighted averaging of Frank-Wolfe methods; Lacoste-Julien, Schmidt &
  Bach 2012 for stochastic iterates). The first behaviours come from Q tables estimated from
  a few batches; the linear weights forget them faster.

- ``bootstrap="tried"``: the max of ``V^k_{t+1}(s')`` runs over the actions already tried at
  (t+1, s'), as in QMI (ours: an untried action's initial 0 is an optimistic value when the
  rewards are costs).

Defaults: softmax behaviour at temperature 1 annealed with exponent 1, one exploratory
step per agent and episode on average (explorers out of the mean field), averaging of
the mean field and of the policy with linear weights, steps floored at 1/2 where the
mini-batches are precise enough (noise tolerance 3 reward units), bootstrap over tried
actions, 1000 agents, about 60 time steps of the agents per iteration (5 episodes up to
T = 12, 1 from T = 40: the cost of an iteration does not grow with the horizon). Measured
in ``benchmarks/out/learners.txt`` (100 iterations, 3 seeds) against the former default
(floor 1/2 everywhere, plain averages): sir-types-v0 2.64 -> 0.82 and segregation-2pop-v0
0.49 -> 0.40 (uniform 2.52 and 0.51: the former default was no better than uniform there);
lower on 17 of 26 games (0.02x-0.8x); higher on four, rps-v0 (0.028 -> 0.077) and
predator-prey-4pop-v0 (0.98 -> 1.73), whose behaviour cycles and for which the uniform average
is what converges, lq-small-v0 (0.61 -> 1.00, seed spread 0.14) and building-evacuation-v0
(0.13 -> 0.17); every game now ends at least 1.3x below uniform.

**Classic Nash-Q** (``NashQ``, two players, discounted stochastic game, e.g.
``mfgbench.learners.grid_game.GridGame1``): both players' tables ``Q^i[s, a1, a2]``;
from a transition ``(s, a1, a2, r1, r2, s')``

    Q^i[s, a1, a2] <- (1 - alpha_n) Q^i[s, a1, a2] + alpha_n (r_i + gamma NashQ^i(s')),

where ``NashQ^i(s') = x^T Q^i[s'] y`` for a Nash equilibrium ``(x, y)`` of the stage
game ``(Q^1[s'], Q^2[s'])`` solved exactly (``stage_games.solve_bimatrix``), 0 at
terminal states, ``alpha_n = 1 / n(s, a1, a2)``. Exploration as in Hu & Wellman's offline
experiments: both players act uniformly at random; an episode restarts from the initial
state when a terminal state is reached.

The sampling loops are Numba kernels on uniforms pre-drawn from the learner's
Generator, each with a plain Python twin (``*_python``) that the tests hold equal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgbench._jit import jit
from mfgbench.core.policy import greedy_policy
from mfgbench.games.base import MeanField, check_rewards, check_transitions
from mfgbench.learners.base import Learner, register_learner
from mfgbench.learners.fictitious_play import softmax
from mfgbench.learners.qmi import _draw_row, _draw_row_python
from mfgbench.learners.scale import check_configured_scale, resolve_scale
from mfgbench.learners.stage_games import (SELECTIONS, StageEquilibrium, _degenerate, _support_tables,
                                           support_enumeration_kernel)


STEPS_PER_ITERATION = 60
"""Time steps of the agents per iteration that ``episodes_per_iteration=None`` aims at (at most 5 episodes)."""


@dataclass
class NashQConfig:
    n_agents: int = 1000
    """Simulated agents per population (the empirical mean field is their histogram). An
    agent alone in a cell sees mu = 1/N: rewards like -log mu are capped near log N, so N
    bounds how well the learner sees sparsely populated states (mean_field="average"
    lifts the cap: the average of many histograms resolves smaller masses)."""
    episodes_per_iteration: int | None = None
    """Finite-horizon games: episodes (every agent from mu0 to T) per call of step(). None: about
    ``STEPS_PER_ITERATION`` time steps per iteration, ``min(5, max(1, round(60 / T)))`` episodes
    (5 up to T = 12, 2 at T = 30, 1 from T = 40): an iteration's cost, which grows with the
    steps all agents take, stays about the same on long horizons (the 80-step discretized
    continuous games) as on short ones."""
    stationary_steps: int = 50
    """Stationary games: steps of every agent per call of step()."""
    alpha_power: float = 0.6
    """Step size n^-alpha_power, n = episodes (steps) that visited (t, s, a). Hu & Wellman's 1/n
    (alpha_power = 1) keeps the early targets, bootstrapped from still-empty Q[t+1], in
    the average (their weight fades only like T/n); 0.6 forgets them faster."""
    alpha_floor: float = 0.5
    """Smallest step: max(n^-alpha_power, alpha_floor). With many agents a mini-batch target
    is nearly its expectation, and a floor near 1 makes Q the best response's values against
    the current mean field instead of an average over the past ones (the floor 1 on exact
    expectations is fictitious play's exact best response). See ``noise_tolerance`` for
    mini-batches that are not near their expectation."""
    noise_tolerance: float | None = 3.0
    """Lowers the floor where a mini-batch is noisy: at (t, s, a), with c agents in this
    episode's batch and sigma^2 the variance of one agent's target (pooled within batches over
    the episodes so far), the floor is at most the step whose stationary noise,
    step / (2 - step) * sigma^2 / c, is (noise_tolerance * reward scale)^2. Cells where few
    agents land on outcomes far apart (an old agent's stay in hospital in sir-types-v0: a few
    agents, sick-day costs of 8, value jumps of 40) then average over many episodes instead of
    the last two, and the max over their noisy action values stops overestimating them
    (Q-learning's maximisation bias, van Hasselt 2010); deterministic cells (sigma = 0) keep
    alpha_floor. None: alpha_floor everywhere (the floor as before). Ours. With uniform
    averages (3 seeds, 100 iterations) it takes sir-types-v0 from 2.64 to 1.37; a run of the
    whole table at tolerance 1 moved no other game outside 0.8x-1.15x but sis-v0 (0.45x)."""
    behaviour: str = "softmax"
    """The population's policy: "softmax" (softmax(Q / tau)) or "greedy" (argmax of Q)."""
    temperature: float = 1.0
    """Temperature of the softmax behaviour at iteration 0, in units of the reward scale."""
    temperature_decay: float = 1.0
    """Annealing exponent p: iteration j uses the temperature times (1 + j)^-p."""
    epsilon: float | None = None
    """Probability that an agent's action at a step is uniform instead of the behaviour's
    (epsilon-greedy exploration on top of the behaviour). None: 1/T in a finite-horizon game
    (one exploratory step per agent and episode on average), 1 - gamma in a stationary one."""
    count_explorers: bool = False
    """Finite-horizon games: whether an agent that has explored in this episode still counts in
    the empirical mean field (the notes' algorithm: yes). No: the histogram counts only agents
    that have followed the behaviour since the episode began, an unbiased estimate of the
    behaviour's flow, while every agent's transition still updates Q. Stationary games count
    every agent (the bias on the stationary distribution is of order epsilon)."""
    mean_field: str = "average"
    """Mean field of the rewards and transitions: "empirical" (this step's histogram of the
    agents) or "average" (running average of the histograms of all episodes so far, weighted
    by ``average_weighting``)."""
    average_weighting: float = 1.0
    """Weight n^average_weighting of episode n (stationary games: step n) in the running
    averages (the "average" mean field and the "average" policy), as QMI's option of that name:
    0 every episode alike (fictitious play's 1/n), 1 linear weights (the step 2/(n+1): the
    weighted averaging of Frank-Wolfe / fictitious play, e.g. Lacoste-Julien, Schmidt & Bach
    2012 for stochastic iterates). The early episodes' behaviour
    comes from Q tables estimated from a handful of batches; linear weights forget it faster
    (3 seeds, 100 iterations, noise tolerance on: sir-types-v0 1.37 -> 0.82,
    segregation-2pop-v0 0.51 -> 0.40; off: 2.64 -> 2.24 and 0.49 -> 0.38),
    at a cost on games whose behaviour cycles (rps-v0 0.028 -> 0.077, predator-prey-4pop-v0
    0.98 -> 1.73: there the uniform average is what converges). Both averages use the same
    weights, so the average policy's flow stays the average flow when the dynamics do not
    depend on the mean field."""
    bootstrap: str = "tried"
    """Finite-horizon games: the max of the target V_{t+1}(s') = max_a' Q[t+1, s', a'] runs over
    "all" actions (the notes) or over the actions already "tried" at (t+1, s') (all of them until
    one is): an untried action's initial 0 would be an optimistic value (rewards that are costs)
    carried back through the horizon."""
    policy_output: str = "average"
    """Policy the learner reports: "behaviour", "greedy" (argmax of Q) or "average" (the
    fictitious-play average of the behaviours, weighted by the empirical flows)."""
    reward_scale: float | None = None
    """Unit of ``temperature``: None computes the game's reward scale
    (``mfgbench.learners.scale.reward_scale``); a number fixes it (1.0: absolute units)."""

    def __post_init__(self):
        if self.n_agents < 1:
            raise ValueError(f"nash-q: n_agents must be >= 1, got {self.n_agents}")
        if self.episodes_per_iteration is not None and self.episodes_per_iteration < 1:
            raise ValueError(f"nash-q: episodes_per_iteration must be >= 1, got {self.episodes_per_iteration}")
        if self.stationary_steps < 1:
            raise ValueError(f"nash-q: stationary_steps must be >= 1, got {self.stationary_steps}")
        if not 0.5 < self.alpha_power <= 1.0:
            raise ValueError(f"nash-q: alpha_power must lie in (0.5, 1] (Robbins-Monro), got {self.alpha_power}")
        if not 0.0 <= self.alpha_floor <= 1.0:
            raise ValueError(f"nash-q: alpha_floor must lie in [0, 1], got {self.alpha_floor}")
        if self.behaviour not in ("softmax", "greedy"):
            raise ValueError(f"nash-q: behaviour must be softmax or greedy, got {self.behaviour!r}")
        if not self.temperature > 0:
            raise ValueError(f"nash-q: temperature must be positive, got {self.temperature}")
        if self.epsilon is not None and not 0.0 <= self.epsilon < 1.0:
            raise ValueError(f"nash-q: epsilon must be None or lie in [0, 1), got {self.epsilon}")
        if not 0.0 <= self.temperature_decay <= 2.0:
            raise ValueError(f"nash-q: temperature_decay must lie in [0, 2], got {self.temperature_decay}")
        if self.noise_tolerance is not None and not self.noise_tolerance > 0:
            raise ValueError(f"nash-q: noise_tolerance must be None or positive, got {self.noise_tolerance}")
        if not 0.0 <= self.average_weighting <= 4.0:
            raise ValueError(f"nash-q: average_weighting must lie in [0, 4], got {self.average_weighting}")
        if self.mean_field not in ("empirical", "average"):
            raise ValueError(f"nash-q: mean_field must be empirical or average, got {self.mean_field!r}")
        if self.bootstrap not in ("all", "tried"):
            raise ValueError(f"nash-q: bootstrap must be all or tried, got {self.bootstrap!r}")
        if self.policy_output not in ("behaviour", "greedy", "average"):
            raise ValueError(f"nash-q: policy_output must be behaviour, greedy or average, got {self.policy_output!r}")
        check_configured_scale("nash-q", self.reward_scale)


# -- kernels: N agents of one population --------------------------------------------------------
@jit
def draw_states(mu0, u):
    """Initial states of the agents: inverse CDF of mu0 at the uniforms u[n]."""
    out = np.empty(u.shape[0], dtype=np.int64)
    for n in range(u.shape[0]):
        out[n] = _draw_row(mu0, 1.0, u[n])
    return out


@jit
def draw_actions(pi_t, states, u, epsilon, count_all, on_path, mu, L):
    """The agents' actions and their histograms.

    Agent n takes a uniform action when u[n] < epsilon (exploration; u[n] / epsilon picks it),
    else a ~ pi_t[states[n], :] by inverse CDF at (u[n] - epsilon) / (1 - epsilon). With
    ``count_all`` every agent enters ``mu[s]`` and ``L[s, a]`` (each a fraction of the agents);
    otherwise only agents with ``on_path[n]`` (no exploratory action earlier in the episode)
    enter mu, only those that also do not explore now enter L, and an exploring agent leaves
    the path. If no agent is on the path, all count.
    """
    N = states.shape[0]
    A = pi_t.shape[1]
    out = np.empty(N, dtype=np.int64)
    n_mu = 0.0
    n_L = 0.0
    for n in range(N):
        s = states[n]
        x = u[n]
        counted = count_all or on_path[n]
        if counted:
            mu[s] += 1.0
            n_mu += 1.0
        if x < epsilon:
            a = min(int(x / epsilon * A), A - 1)
            if count_all:
                L[s, a] += 1.0
                n_L += 1.0
            else:
                on_path[n] = False
        else:
            a = _draw_row(pi_t[s], 1.0, (x - epsilon) / (1.0 - epsilon))
            if counted:
                L[s, a] += 1.0
                n_L += 1.0
        out[n] = a
    if n_mu == 0.0:   # every agent has explored: the histogram of all of them
        for n in range(N):
            mu[states[n]] += 1.0
            L[states[n], out[n]] += 1.0
        n_mu = N
        n_L = N
    for i in range(mu.shape[0]):
        mu[i] /= n_mu
        for a in range(A):
            L[i, a] = L[i, a] / n_L if n_L > 0.0 else 0.0
    return out


@jit
def move_agents(states, actions, succ_t, prob_t, u):
    """s'_n ~ P_t(. | states[n], actions[n]) by inverse CDF at u[n]."""
    out = np.empty(states.shape[0], dtype=np.int64)
    for n in range(states.shape[0]):
        s = states[n]
        a = actions[n]
        out[n] = succ_t[s, a, _draw_row(prob_t[s, a], 1.0, u[n])]
    return out


@jit
def q_update(Q_t, episodes_t, states, actions, R_t, next_states, V_next, alpha_power, alpha_floor, tolerance2,
             spread_t, dof_t):
    """One mini-batch step from the N agents' transitions at time t: for every visited (s, a),
    Q_t[s, a] += step (R_t[s, a] + mean of V_next[s'] - Q_t[s, a]), step = max(n^-p, floor),
    n = episodes that visited (s, a).

    floor = alpha_floor, or with ``tolerance2 > 0`` at most 2x / (1 + x), x = c tolerance2 /
    sigma^2: the constant step whose stationary variance step / (2 - step) sigma^2 / c is
    tolerance2, for a batch of c agents whose targets have variance sigma^2 =
    ``spread_t / dof_t`` (within-batch sums of squares and degrees of freedom, accumulated here).
    """
    S, A = Q_t.shape
    total = np.zeros((S, A))
    square = np.zeros((S, A))
    count = np.zeros((S, A))
    for n in range(states.shape[0]):
        v = V_next[next_states[n]]
        total[states[n], actions[n]] += v
        square[states[n], actions[n]] += v * v
        count[states[n], actions[n]] += 1.0
    for s in range(S):
        for a in range(A):
            c = count[s, a]
            if c > 0.0:
                episodes_t[s, a] += 1.0
                floor = alpha_floor
                if tolerance2 > 0.0:
                    spread_t[s, a] += max(square[s, a] - total[s, a] * total[s, a] / c, 0.0)
                    dof_t[s, a] += c - 1.0
                    if spread_t[s, a] > 0.0:
                        x = c * tolerance2 * dof_t[s, a] / spread_t[s, a]
                        floor = min(alpha_floor, 2.0 * x / (1.0 + x))
                step = max(episodes_t[s, a] ** (-alpha_power), floor)
                Q_t[s, a] += step * (R_t[s, a] + total[s, a] / c - Q_t[s, a])


def draw_states_python(mu0, u):
    return np.array([_draw_row_python(mu0, 1.0, x) for x in u], dtype=np.int64)


def draw_actions_python(pi_t, states, u, epsilon, count_all, on_path, mu, L):
    N, A = len(states), pi_t.shape[1]
    actions = np.empty(N, dtype=np.int64)
    counted_mu = np.ones(N, dtype=bool) if count_all else on_path.copy()
    counted_L = counted_mu.copy()
    for n, (s, x) in enumerate(zip(states, u)):
        if x < epsilon:
            actions[n] = min(int(x / epsilon * A), A - 1)
            if not count_all:
                counted_L[n] = False
                on_path[n] = False
        else:
            actions[n] = _draw_row_python(pi_t[s], 1.0, (x - epsilon) / (1.0 - epsilon))
    if not counted_mu.any():
        counted_mu[:] = counted_L[:] = True
    np.add.at(mu, states[counted_mu], 1.0)
    np.add.at(L, (states[counted_L], actions[counted_L]), 1.0)
    mu /= counted_mu.sum()
    L /= max(counted_L.sum(), 1)
    return actions


def move_agents_python(states, actions, succ_t, prob_t, u):
    return np.array([succ_t[s, a, _draw_row_python(prob_t[s, a], 1.0, x)] for s, a, x in zip(states, actions, u)],
                    dtype=np.int64)


def q_update_python(Q_t, episodes_t, states, actions, R_t, next_states, V_next, alpha_power, alpha_floor, tolerance2,
                    spread_t, dof_t):
    S, A = Q_t.shape
    total = np.zeros((S, A))
    square = np.zeros((S, A))
    count = np.zeros((S, A))
    np.add.at(total, (states, actions), V_next[next_states])
    np.add.at(square, (states, actions), V_next[next_states] ** 2)
    np.add.at(count, (states, actions), 1.0)
    seen = count > 0
    episodes_t[seen] += 1.0
    floor = np.full(seen.sum(), alpha_floor)
    if tolerance2 > 0:
        c = count[seen]
        spread_t[seen] += np.maximum(square[seen] - total[seen] ** 2 / c, 0.0)
        dof_t[seen] += c - 1.0
        noisy = spread_t[seen] > 0
        x = c[noisy] * tolerance2 * dof_t[seen][noisy] / spread_t[seen][noisy]
        floor[noisy] = np.minimum(alpha_floor, 2.0 * x / (1.0 + x))
    step = np.maximum(episodes_t[seen] ** (-alpha_power), floor)
    Q_t[seen] += step * (R_t[seen] + total[seen] / count[seen] - Q_t[seen])


@register_learner
class MeanFieldNashQ(Learner):
    """Mean-field Nash Q-learning with N simulated agents per population (module docstring)."""

    name = "nash-q"
    Config = NashQConfig
    model_free = True
    kinds = ("finite", "stationary")
    PRESETS = {"paper": {"n_agents": 2000, "alpha_power": 1.0, "alpha_floor": 0.0, "behaviour": "greedy",
                         "epsilon": 0.1, "count_explorers": True, "temperature_decay": 0.0, "mean_field": "empirical",
                         "policy_output": "greedy", "reward_scale": 1.0,
                         "bootstrap": "all", "noise_tolerance": None, "average_weighting": 0.0}}
    """The design notes' algorithm as written: epsilon-greedy agents (the notes give no epsilon: 0.1)
    on the empirical mean field of all agents, Hu & Wellman's 1/n step, the greedy policy of Q as
    the answer."""

    def __init__(self, game, config=None, rng=None):
        super().__init__(game, config, rng)
        self.stationary = getattr(game, "kind", "finite") == "stationary"
        self.reward_scale = resolve_scale(game, self.config.reward_scale)
        pops = game.populations
        if self.stationary:
            shapes = [(p.n_states, p.n_actions) for p in pops]
            self._states = None   # the agents' states, drawn from mu0 at the first step
        else:
            shapes = [(game.horizon, p.n_states, p.n_actions) for p in pops]
        self._Q = [np.zeros(shape) for shape in shapes]
        self._visits = [np.zeros(shape) for shape in shapes]
        # per (t, s, a): within-batch sums of squares of the agents' targets and their degrees of
        # freedom (noise_tolerance)
        self._spread = [np.zeros(shape) for shape in shapes]
        self._dof = [np.zeros(shape) for shape in shapes]
        # weighted running sums over episodes (stationary: steps) of the histograms mu^N, of
        # mu^N(s) pi(a|s) for the average policy, and of L^N for the averaged mean field
        self._flow_sum = ([np.zeros(p.n_states) for p in pops] if self.stationary
                          else [np.zeros((game.horizon + 1, p.n_states)) for p in pops])
        self._policy_sum = [np.zeros(shape) for shape in shapes]
        self._measure_sum = [np.zeros(shape) for shape in shapes]
        self._count = 0
        self._weight_sum = 0.0
        self._last_flow = None
        cfg = self.config
        tol = cfg.noise_tolerance
        self._tolerance2 = 0.0 if tol is None else (tol * self.reward_scale) ** 2
        """Squared noise tolerance of the Q tables, in reward units (0: off)."""
        if cfg.epsilon is not None:
            self.epsilon = float(cfg.epsilon)
        else:
            self.epsilon = 1.0 - game.gamma if self.stationary else 1.0 / game.horizon
        """Per-step probability of an exploratory (uniform) action."""
        self.episodes_per_iteration = cfg.episodes_per_iteration
        """Finite-horizon games: episodes per iteration (the config's, or the horizon's default)."""
        if self.episodes_per_iteration is None and not self.stationary:
            self.episodes_per_iteration = min(5, max(1, round(STEPS_PER_ITERATION / game.horizon)))

    # -- policy --------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """The softmax behaviour's temperature at the current iteration, in reward units."""
        cfg = self.config
        return cfg.temperature * self.reward_scale * (1.0 + self.iteration) ** -cfg.temperature_decay

    def behaviour_policy(self) -> tuple:
        """The population's policy at the current iteration (softmax or greedy of Q), exploration aside."""
        if self.config.behaviour == "greedy":
            return tuple(greedy_policy(q) for q in self._Q)
        return tuple(softmax(q, self.temperature) for q in self._Q)

    def average_policy(self) -> tuple:
        """sum_n w_n mu^N_n(s) pi_n(a|s) / sum_n w_n mu^N_n(s) over the episodes so far, w_n the
        ``average_weighting`` (the behaviour where no agent has been)."""
        out = []
        for num, den, pi in zip(self._policy_sum, self._flow_sum, self.behaviour_policy()):
            den = den if self.stationary else den[:-1]
            seen = den > 0
            avg = pi.copy()
            avg[seen] = num[seen] / den[seen][:, None]
            out.append(avg / avg.sum(axis=-1, keepdims=True))
        return tuple(out)

    @property
    def policy(self) -> tuple:
        if self.config.policy_output == "greedy":
            return tuple(greedy_policy(q) for q in self._Q)
        if self.config.policy_output == "average" and self._count > 0:
            return self.average_policy()
        return self.behaviour_policy()

    @property
    def q_values(self) -> tuple:
        return tuple(q.copy() for q in self._Q)

    @property
    def empirical_flow(self) -> tuple:
        """Per population the empirical ``mu^N[t, s]`` (t = 0..T) of the last episode (the last
        step's histogram in a stationary game)."""
        return self._last_flow

    def _values(self, Q, visits):
        """max_a Q[s, a] per state: over the actions already tried at s with bootstrap="tried" (all of
        them where none is)."""
        if self.config.bootstrap == "all":
            return Q.max(axis=1)
        tried = visits > 0
        return np.where(tried.any(axis=1), np.where(tried, Q, -np.inf).max(axis=1), Q.max(axis=1))

    # -- sampling ------------------------------------------------------------------------------
    def _mean_field(self, t, mu, L):
        """The mean field the game's functions see at time t (None in stationary games), given
        this step's histograms (mu, L); in "average" mode they are already in the sums."""
        if self.config.mean_field == "average":
            w = 1.0 / self._weight_sum_now
            if t is None:
                mu = [f * w for f in self._flow_sum]
                L = [m * w for m in self._measure_sum]
            else:
                mu = [f[t] * w for f in self._flow_sum]
                L = [m[t] * w if t < self.game.horizon else None for m in self._measure_sum]
        return MeanField(t, tuple(mu), tuple(L))

    def _tables(self, k, t, mf, check):
        game = self.game
        where = "stationary" if t is None else t
        r = game.rewards(k, mf) if t is None else game.rewards(k, t, mf)
        if game.static_transitions:
            succ, prob = game.static_transition(k)
        else:
            succ, prob = game.transitions(k, mf) if t is None else game.transitions(k, t, mf)
        if check:
            r = check_rewards(game, k, where, r)
            succ, prob = check_transitions(game, k, where, succ, prob)
        return (np.ascontiguousarray(r, dtype=np.float64), np.ascontiguousarray(succ, dtype=np.int64),
                np.ascontiguousarray(prob, dtype=np.float64))

    def episode(self):
        """One episode of all populations' agents (finite-horizon games); updates the Q tables.
        Returns the empirical flow."""
        game, cfg = self.game, self.config
        T, K, N = game.horizon, game.n_populations, cfg.n_agents
        pops = game.populations
        check = self.samples == 0  # validate what the game returns once, then trust it
        behaviour = self.behaviour_policy()
        u = [self.rng.random((1 + 2 * T, N)) for _ in range(K)]
        states = [draw_states(pops[k].mu0, u[k][0]) for k in range(K)]
        flow = [np.zeros((T + 1, p.n_states)) for p in pops]
        measure = [np.zeros((T, p.n_states, p.n_actions)) for p in pops]
        self._begin_episode()
        path = []
        on_path = [np.ones(N, dtype=bool) for _ in range(K)]
        for t in range(T):
            actions = [draw_actions(behaviour[k][t], states[k], u[k][1 + 2 * t], self.epsilon, cfg.count_explorers,
                                    on_path[k], flow[k][t], measure[k][t]) for k in range(K)]
            if cfg.mean_field == "average":
                for k in range(K):
                    self._flow_sum[k][t] += self._weight * flow[k][t]
                    self._measure_sum[k][t] += self._weight * measure[k][t]
            mf = self._mean_field(t, [f[t] for f in flow], [m[t] for m in measure])
            nxt, R = [], []
            for k in range(K):
                r, succ, prob = self._tables(k, t, mf, check)
                R.append(r)
                nxt.append(move_agents(states[k], actions[k], succ, prob, u[k][2 + 2 * t]))
            path.append((states, actions, R, nxt))
            states = nxt
        for k, p in enumerate(pops):
            last = states[k] if cfg.count_explorers or not on_path[k].any() else states[k][on_path[k]]
            flow[k][T] = np.bincount(last, minlength=p.n_states) / len(last)
            if cfg.mean_field == "average":
                self._flow_sum[k][T] += self._weight * flow[k][T]
        mf_T = self._mean_field(T, [f[T] for f in flow], [None] * K)
        V_next = [game.terminal(k, mf_T) for k in range(K)]
        if check:
            V_next = [check_rewards(game, k, "T", g) for k, g in enumerate(V_next)]
        V_next = [np.ascontiguousarray(g, dtype=np.float64) for g in V_next]
        # the episode's mini-batch updates, last time first: Q[t] bootstraps from the Q[t+1] this
        # episode has just updated
        for t in range(T - 1, -1, -1):
            states, actions, R, nxt = path[t]
            for k in range(K):
                V = V_next[k] if t + 1 == T else self._values(self._Q[k][t + 1], self._visits[k][t + 1])
                q_update(self._Q[k][t], self._visits[k][t], states[k], actions[k], R[k], nxt[k], V,
                         cfg.alpha_power, cfg.alpha_floor, self._tolerance2, self._spread[k][t], self._dof[k][t])
        self._finish(flow, behaviour, measure, finite=True)
        self.samples += N * T * K
        self._last_flow = tuple(flow)
        return self._last_flow

    def stationary_step(self, behaviour=None):
        """One step of every agent in a stationary discounted game (acting with ``behaviour``,
        default the current behaviour policy); updates the Q tables."""
        game, cfg = self.game, self.config
        K, N, gamma = game.n_populations, cfg.n_agents, float(game.gamma)
        pops = game.populations
        check = self.samples == 0
        if self._states is None:
            self._states = [draw_states(pops[k].mu0, self.rng.random(N)) for k in range(K)]
        behaviour = self.behaviour_policy() if behaviour is None else behaviour
        u = [self.rng.random((2, N)) for _ in range(K)]
        flow = [np.zeros(p.n_states) for p in pops]
        measure = [np.zeros((p.n_states, p.n_actions)) for p in pops]
        actions = [draw_actions(behaviour[k], self._states[k], u[k][0], self.epsilon, True, np.ones(N, dtype=bool),
                                flow[k], measure[k]) for k in range(K)]
        self._begin_episode()
        if cfg.mean_field == "average":
            for k in range(K):
                self._flow_sum[k] += self._weight * flow[k]
                self._measure_sum[k] += self._weight * measure[k]
        mf = self._mean_field(None, flow, measure)
        nxt = []
        for k in range(K):
            R, succ, prob = self._tables(k, None, mf, check)
            nxt.append(move_agents(self._states[k], actions[k], succ, prob, u[k][1]))
            q_update(self._Q[k], self._visits[k], self._states[k], actions[k], R, nxt[k],
                     gamma * self._Q[k].max(axis=1), cfg.alpha_power, cfg.alpha_floor, self._tolerance2,
                     self._spread[k], self._dof[k])
        self._states = nxt
        self._finish(flow, behaviour, measure, finite=False)
        self.samples += N * K
        self._last_flow = tuple(flow)

    def _begin_episode(self):
        """This episode's (step's) weight n^average_weighting in the running averages and the
        weight sum that includes it."""
        self._weight = float(self._count + 1) ** self.config.average_weighting
        self._weight_sum_now = self._weight_sum + self._weight

    def _finish(self, flow, behaviour, measure, finite):
        """Add this episode's (step's) histograms to the running sums."""
        for k in range(self.game.n_populations):
            mu = flow[k][:-1] if finite else flow[k]
            if self.config.mean_field != "average":
                self._flow_sum[k] += self._weight * flow[k]
                self._measure_sum[k] += self._weight * measure[k]
            self._policy_sum[k] += self._weight * mu[..., None] * behaviour[k]
        self._count += 1
        self._weight_sum = self._weight_sum_now

    def step(self) -> dict:
        if self.stationary:
            behaviour = self.behaviour_policy()   # fixed for the iteration's steps
            for _ in range(self.config.stationary_steps):
                self.stationary_step(behaviour)
        else:
            for _ in range(self.episodes_per_iteration):
                self.episode()
        self.iteration += 1
        return {"iteration": self.iteration, "samples": self.samples}


# -- classic two-player Nash-Q -----------------------------------------------------------------------
@dataclass
class NashQ2PConfig:
    episodes_per_iteration: int = 100
    """Episodes (initial state to a terminal state, or max_steps) per call of step()."""
    max_steps: int = 1000
    """Longest episode before a restart from the initial state."""
    selection: str = "welfare"
    """Which stage-game equilibrium NashQ uses: "welfare" (largest payoff sum) or "first"
    found (pure ones first). Grid Game 1 has stage games with several equilibria off the
    equilibrium path, and "first" can switch between them from one update to the next."""

    def __post_init__(self):
        if self.episodes_per_iteration < 1 or self.max_steps < 1:
            raise ValueError("nash-q (2 players): episodes_per_iteration and max_steps must be >= 1")
        if self.selection not in SELECTIONS:
            raise ValueError(f"nash-q (2 players): selection must be one of {SELECTIONS}, got {self.selection!r}")


class NashQ:
    """Classic Nash Q-learning of Hu & Wellman (2003) in a two-player stochastic game.

    ``game`` provides ``n_states``, ``n_actions``, ``gamma``, ``initial_state``,
    ``terminal[s]`` (bool), ``rewards[i, s, a1, a2]`` and ``succ[s, a1, a2, b]`` /
    ``prob[s, a1, a2, b]`` (see ``grid_game.TwoPlayerGame``). The learner uses the model
    only to draw transitions.
    """

    Config = NashQ2PConfig

    def __init__(self, game, config=None, rng: np.random.Generator | None = None):
        self.game = game
        self.config = config if config is not None else NashQ2PConfig()
        self.rng = rng if rng is not None else np.random.default_rng(0)
        S, A = game.n_states, game.n_actions
        self.Q = np.zeros((2, S, A, A))
        self.visits = np.zeros((S, A, A))
        self._value = np.zeros((S, 2))      # NashQ^i(s) of the current tables
        self._fresh = np.zeros(S, dtype=bool)
        self._supports = _support_tables(A, A)
        self.iteration = 0
        self.samples = 0

    def stage_equilibrium(self, s: int) -> StageEquilibrium:
        """Nash equilibrium of the stage game (Q^1[s], Q^2[s]) (``stage_games.solve_bimatrix``
        without its input checks: the tables are finite by construction)."""
        A, B = self.Q[0, s], self.Q[1, s]
        eps = 1e-10 * max(1.0, float(np.abs(self.Q[:, s]).max()))
        x, y, found = support_enumeration_kernel(A, B, eps, *self._supports, self.config.selection == "welfare")
        if not found:
            x, y = _degenerate(A, B, eps)
        return StageEquilibrium(x, y, (float(x @ A @ y), float(x @ B @ y)))

    def nash_value(self, s: int) -> np.ndarray:
        """(NashQ^1(s), NashQ^2(s)) for the current tables; 0 at terminal states."""
        if self.game.terminal[s]:
            return np.zeros(2)
        if not self._fresh[s]:
            self._value[s] = self.stage_equilibrium(s).values
            self._fresh[s] = True
        return self._value[s]

    def policy(self, s: int):
        """The stage-game equilibrium (x, y) both players play at s under the learned tables."""
        eq = self.stage_equilibrium(s)
        return eq.x, eq.y

    def step(self) -> dict:
        g, cfg = self.game, self.config
        A = g.n_actions
        for _ in range(cfg.episodes_per_iteration):
            u = self.rng.random((cfg.max_steps, 3))
            s = g.initial_state
            for n in range(cfg.max_steps):
                a1 = min(int(u[n, 0] * A), A - 1)
                a2 = min(int(u[n, 1] * A), A - 1)
                s2 = int(g.succ[s, a1, a2, _draw_row(g.prob[s, a1, a2], 1.0, u[n, 2])])
                target = g.rewards[:, s, a1, a2] + g.gamma * self.nash_value(s2)
                self.visits[s, a1, a2] += 1.0
                step = 1.0 / self.visits[s, a1, a2]
                self.Q[:, s, a1, a2] += step * (target - self.Q[:, s, a1, a2])
                self._fresh[s] = False
                self.samples += 1
                s = s2
                if g.terminal[s]:
                    break
        self.iteration += 1
        return {"iteration": self.iteration, "samples": self.samples,
                "values": tuple(float(v) for v in self.nash_value(g.initial_state))}
