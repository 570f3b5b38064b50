"""Nash Q-learning: mean-field form for K populations, and the classic two-player form
(Hu & Wellman, "Nash Q-learning for general-sum stochastic games", JMLR 4, 2003).

**Mean-field Nash-Q** (learner ``"nash-q"``, finite-horizon games). Each population k
is simulated by ``n_agents`` agents. An episode starts every agent at ``s0 ~ mu0_k``;
at each time t the empirical populations ``mu^N_k,t(s) = #{agents of k in s} / N`` and
state-action measures ``L^N_k,t`` (after the agents draw their actions) are the mean
field the game's functions see: every agent of k earns ``R_k(t, mf^N_t)[s, a]`` and
moves by ``P_k(t, mf^N_t)``; at T it earns ``g_k(mf^N_T)``. From every agent's
transition population k updates its table

    Q^k[t, s, a] <- Q^k[t, s, a] + alpha_n (r + V^k_{t+1}(s') - Q^k[t, s, a]),
    V^k_{t+1}(s') = max_a' Q^k[t+1, s', a']   (V^k_T = g_k),

applied once per episode as a mini-batch: the N agents' transitions from (t, s, a) in
the episode give the mean target, and ``alpha_n = n^-alpha_power`` with n the number of
episodes that visited (t, s, a) (Hu & Wellman's 1/n for ``alpha_power = 1``). ``Q^k[t, s, a]`` stands for ``Q^k(s, a | mu_t)`` along the
flow actually played (in a finite-horizon game the flow is a function of t). The stage
value is the best response (max): in the continuum limit a single agent of a type
cannot move the mean field, so the Nash equilibrium of the stage game between the
types reduces, for each type, to maximising its own Q (Yang et al. 2018 "Mean field
multi-agent RL" take the same limit). Agents act with the Boltzmann policy
``softmax(Q^k / temperature)`` of the tables at the start of the episode. The learner's
``policy`` is that softmax (``policy_output="softmax"``) or the greedy policy of Q.

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
from mfgbench.learners.stage_games import (SELECTIONS, StageEquilibrium, _degenerate, _support_tables,
                                           support_enumeration_kernel)


@dataclass
class NashQConfig:
    n_agents: int = 2000
    """Simulated agents per population (the empirical mean field is their histogram). An
    agent alone in a cell sees mu = 1/N: rewards like -log mu are capped near log N, so N
    bounds how well the learner sees sparsely populated states."""
    episodes_per_iteration: int = 5
    """Episodes (every agent from mu0 to T) per call of step()."""
    alpha_power: float = 0.6
    """Step size n^-alpha_power, n = episodes that visited (t, s, a). Hu & Wellman's 1/n
    (alpha_power = 1) keeps the early targets, bootstrapped from still-empty Q[t+1], in
    the average (their weight fades only like T/n); 0.6 forgets them faster."""
    temperature: float = 0.5
    """Temperature of the Boltzmann behaviour policy softmax(Q / temperature). Lower
    temperatures concentrate the populations, and the finite-N cap on sparse cells
    then hides the best responder's gains there."""
    policy_output: str = "softmax"
    """Policy the learner reports: "softmax" (the behaviour policy) or "greedy"."""

    def __post_init__(self):
        if self.n_agents < 1:
            raise ValueError(f"nash-q: n_agents must be >= 1, got {self.n_agents}")
        if self.episodes_per_iteration < 1:
            raise ValueError(f"nash-q: episodes_per_iteration must be >= 1, got {self.episodes_per_iteration}")
        if not 0.5 < self.alpha_power <= 1.0:
            raise ValueError(f"nash-q: alpha_power must lie in (0.5, 1] (Robbins-Monro), got {self.alpha_power}")
        if self.temperature <= 0:
            raise ValueError(f"nash-q: temperature must be positive, got {self.temperature}")
        if self.policy_output not in ("softmax", "greedy"):
            raise ValueError(f"nash-q: policy_output must be softmax or greedy, got {self.policy_output!r}")


# -- kernels: N agents of one population --------------------------------------------------------
@jit
def draw_states(mu0, u):
    """Initial states of the agents: inverse CDF of mu0 at the uniforms u[n]."""
    out = np.empty(u.shape[0], dtype=np.int64)
    for n in range(u.shape[0]):
        out[n] = _draw_row(mu0, 1.0, u[n])
    return out


@jit
def draw_actions(pi_t, states, u):
    """a_n ~ pi_t[states[n], :] by inverse CDF at u[n]."""
    out = np.empty(states.shape[0], dtype=np.int64)
    for n in range(states.shape[0]):
        out[n] = _draw_row(pi_t[states[n]], 1.0, u[n])
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
def q_update(Q_t, episodes_t, states, actions, R_t, next_states, V_next, alpha_power):
    """One mini-batch step from the N agents' transitions at time t: for every visited (s, a),
    Q_t[s, a] += n^-p (R_t[s, a] + mean of V_next[s'] - Q_t[s, a]), n = episodes that visited (s, a)."""
    S, A = Q_t.shape
    total = np.zeros((S, A))
    count = np.zeros((S, A))
    for n in range(states.shape[0]):
        total[states[n], actions[n]] += V_next[next_states[n]]
        count[states[n], actions[n]] += 1.0
    for s in range(S):
        for a in range(A):
            if count[s, a] > 0.0:
                episodes_t[s, a] += 1.0
                step = episodes_t[s, a] ** (-alpha_power)
                Q_t[s, a] += step * (R_t[s, a] + total[s, a] / count[s, a] - Q_t[s, a])


def draw_states_python(mu0, u):
    return np.array([_draw_row_python(mu0, 1.0, x) for x in u], dtype=np.int64)


def draw_actions_python(pi_t, states, u):
    return np.array([_draw_row_python(pi_t[s], 1.0, x) for s, x in zip(states, u)], dtype=np.int64)


def move_agents_python(states, actions, succ_t, prob_t, u):
    return np.array([succ_t[s, a, _draw_row_python(prob_t[s, a], 1.0, x)] for s, a, x in zip(states, actions, u)],
                    dtype=np.int64)


def q_update_python(Q_t, episodes_t, states, actions, R_t, next_states, V_next, alpha_power):
    S, A = Q_t.shape
    total = np.zeros((S, A))
    count = np.zeros((S, A))
    np.add.at(total, (states, actions), V_next[next_states])
    np.add.at(count, (states, actions), 1.0)
    seen = count > 0
    episodes_t[seen] += 1.0
    step = episodes_t[seen] ** (-alpha_power)
    Q_t[seen] += step * (R_t[seen] + total[seen] / count[seen] - Q_t[seen])


@register_learner
class MeanFieldNashQ(Learner):
    """Mean-field Nash Q-learning with N simulated agents per population (module docstring)."""

    name = "nash-q"
    Config = NashQConfig
    model_free = True
    kinds = ("finite",)

    def __init__(self, game, config=None, rng=None):
        super().__init__(game, config, rng)
        T = game.horizon
        self._Q = [np.zeros((T, p.n_states, p.n_actions)) for p in game.populations]
        self._visits = [np.zeros((T, p.n_states, p.n_actions)) for p in game.populations]
        self._last_flow = None

    @property
    def policy(self) -> tuple:
        if self.config.policy_output == "greedy":
            return tuple(greedy_policy(q) for q in self._Q)
        return tuple(softmax(q, self.config.temperature) for q in self._Q)

    @property
    def q_values(self) -> tuple:
        return tuple(q.copy() for q in self._Q)

    @property
    def empirical_flow(self) -> tuple:
        """Per population the empirical ``mu^N[t, s]`` (t = 0..T) of the last episode."""
        return self._last_flow

    def episode(self):
        """One episode of all populations' agents; updates the Q tables. Returns the flow."""
        game, cfg = self.game, self.config
        T, K, N = game.horizon, game.n_populations, cfg.n_agents
        check = self.samples == 0  # validate what the game returns once, then trust it
        behaviour = [softmax(q, cfg.temperature) for q in self._Q]
        u = [self.rng.random((1 + 2 * T, N)) for _ in range(K)]
        states = [draw_states(game.populations[k].mu0, u[k][0]) for k in range(K)]
        flow = [np.zeros((T + 1, p.n_states)) for p in game.populations]
        for t in range(T):
            actions = [draw_actions(behaviour[k][t], states[k], u[k][1 + 2 * t]) for k in range(K)]
            mu, L = [], []
            for k, p in enumerate(game.populations):
                mu.append(np.bincount(states[k], minlength=p.n_states) / N)
                L.append(np.bincount(states[k] * p.n_actions + actions[k],
                                     minlength=p.n_states * p.n_actions).reshape(p.n_states, p.n_actions) / N)
                flow[k][t] = mu[k]
            mf = MeanField(t, tuple(mu), tuple(L))
            nxt, R = [], []
            for k in range(K):
                r = game.rewards(k, t, mf)
                if game.static_transitions:
                    succ, prob = game.static_transition(k)
                else:
                    succ, prob = game.transitions(k, t, mf)
                if check:
                    r = check_rewards(game, k, t, r)
                    succ, prob = check_transitions(game, k, t, succ, prob)
                R.append(np.ascontiguousarray(r, dtype=np.float64))
                succ = np.ascontiguousarray(succ, dtype=np.int64)
                prob = np.ascontiguousarray(prob, dtype=np.float64)
                nxt.append(move_agents(states[k], actions[k], succ, prob, u[k][2 + 2 * t]))
            if t + 1 < T:
                V_next = [q[t + 1].max(axis=1) for q in self._Q]
            else:
                mu_T = tuple(np.bincount(nxt[k], minlength=p.n_states) / N for k, p in enumerate(game.populations))
                for k in range(K):
                    flow[k][T] = mu_T[k]
                mf_T = MeanField(T, mu_T, (None,) * K)
                V_next = [game.terminal(k, mf_T) for k in range(K)]
                if check:
                    V_next = [check_rewards(game, k, "T", g) for k, g in enumerate(V_next)]
                V_next = [np.ascontiguousarray(g, dtype=np.float64) for g in V_next]
            for k in range(K):
                q_update(self._Q[k][t], self._visits[k][t], states[k], actions[k], R[k], nxt[k], V_next[k],
                         cfg.alpha_power)
            states = nxt
        self.samples += N * T * K
        self._last_flow = tuple(flow)
        return self._last_flow

    def step(self) -> dict:
        for _ in range(self.config.episodes_per_iteration):
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
