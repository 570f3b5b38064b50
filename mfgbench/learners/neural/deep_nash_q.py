"""Deep mean-field Nash Q-learning on finite games: a network Q_k(t, s, a, m_1, ..., m_K) per population.

Population k of a finite game (``mfgbench.games.base``; the discretized continuous games too) is
simulated by ``n_agents`` agents; the mean field the game's functions see is built from their
empirical distributions ``mu^N_k,t(s) = #{agents of k in s} / N`` (as in ``nash-q``). Each population
has a Q-network

    Q_k(t, s, ., m_t) in R^{A_k},   input: 2t/T - 1, one-hot(t), one-hot(s), and every population's
                                   histogram m_j,t (S_j values, as S_j mu_j - 1) through its own encoder,

a target copy Q_k', and a replay buffer of its agents' transitions ``(t, s, a, r, s', m_t, m_{t+1})``.
One episode, pseudocode-shaped::

    X_0 ~ mu0 (N agents per population)
    for t = 0 .. T-1:
        m_t = the mean field faced;  every agent draws a ~ behaviour(Q_k(t, s, ., m_t))
        r = R_k,t[s, a] at m_t;  s' ~ P_k,t(. | s, a);  at t = T-1 also r += g_k(s', m_T)
        store the transitions of ``transitions_per_step`` random agents per population
        ``updates_per_step`` times, per population k:
            sample a batch;  y = r + (1 - done) max_a' Q_k'(t+1, s', a', m_{t+1})
            minimise mean (Q_k(t, s, a, m_t) - y)^2 (Adam);  update the target network

**The Nash operator.** The Nash-Q source's target is the value of a Nash equilibrium of the stage
game at the next state. With a continuum of agents per population no single agent moves any mean
field, so in the stage game between the K types each agent's equilibrium play maximises its own Q:
``Nash_k(s', m') = max_a' Q_k(s', a', m')`` (the source's symmetric simplification, and the
heterogeneous source's per-type best response; Yang et al. 2018 take the same limit). Undiscounted
and finite-horizon: the last transition's target is its reward plus the terminal reward, no bootstrap.
``double_q`` lets the online network choose a' (van Hasselt et al. 2016).

**Stabilisers** (the source's): replay buffer; target network updated by Polyak averaging
(``target_update="polyak"``, rate ``tau``) or copied every ``target_period`` gradient steps ("periodic",
DQN); exploration epsilon-greedy (epsilon decreasing linearly over ``epsilon_decay_episodes``) or
softmax; and against non-stationarity **fictitious play** over the mean field
(``mean_field="fictitious"``, the default): the agents face ``mbar``, the average of past iterations'
empirical flows and state-action measures ``mu^N_t(s) pi_t(a|s)``, for the ``episodes_per_iteration``
episodes of an iteration (the mean field moves once per iteration, after the Q-networks have learned
the answer to it: the source's slow population updates). Without it (``"current"``) the agents face
their own episode's empirical mean field; on the crowd games that dynamics cycles: the best response to
a flow concentrates the crowd, the next one disperses it (measured with exact Q-functions: every
softmax temperature from 0.1 to 1 cycles with period 2 on crowd-1d-v0 and predator-prey-v0).

**The policy it outputs** is tabular, on every (t, s). Under fictitious play it is fictitious play's
average policy ``Lbar_t(s, a) / mubar_t(s)`` (uniform where ``mubar_t(s) = 0``), the policy whose flow is
the averaged flow (``policy_output="average"``); the last best response alone is not an equilibrium
when the equilibrium mixes. Otherwise (``"behaviour"`` or ``"greedy"``) it is read out along a
noise-free rollout of ``eval_agents`` agents (fixed seed) that gives m_t step by step. The harness
scores the profile by exact exploitability.

Randomness: the numpy Generator passed in draws the agents' states, actions and transitions and the
stored agents; a ``torch.Generator`` seeded from it draws the initial weights and the batches.
"""
from __future__ import annotations

import numpy as np
import torch

from mfgbench.games.base import MeanField
from mfgbench.learners.base import Learner
from mfgbench.learners.neural.deep_nash_q_config import DeepNashQConfig
from mfgbench.learners.neural.networks import Layout, Network
from mfgbench.learners.neural.replay import ReplayBuffer, frozen_copy, polyak


def _draw(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise inverse CDF: index i with cumsum(probs[n])[i-1] <= u[n] < cumsum(probs[n])[i]."""
    cdf = np.cumsum(probs, axis=1)
    return np.minimum((cdf < (u * cdf[:, -1])[:, None]).sum(axis=1), probs.shape[1] - 1)


def _greedy(q: np.ndarray) -> np.ndarray:
    """One-hot rows of the largest entry (the first on ties)."""
    out = np.zeros_like(q)
    out[np.arange(q.shape[0]), q.argmax(axis=1)] = 1.0
    return out


def _softmax(q: np.ndarray, temperature: float) -> np.ndarray:
    z = np.exp((q - q.max(axis=1, keepdims=True)) / temperature)
    return z / z.sum(axis=1, keepdims=True)


class DeepNashQ(Learner):
    """Deep mean-field Nash Q-learning with N simulated agents per population (module docstring)."""

    name = "deep-nash-q"
    Config = DeepNashQConfig
    kinds = ("finite",)
    model_free = True
    available = True

    def __init__(self, game, config=None, rng=None):
        super().__init__(game, config, rng)
        c = self.config
        torch.set_num_threads(c.threads)
        self.K, self.T = game.n_populations, game.horizon
        self.S = [p.n_states for p in game.populations]
        self.A = [p.n_actions for p in game.populations]
        self.gen = torch.Generator().manual_seed(int(self.rng.integers(2 ** 62)))
        self.eval_seed = int(self.rng.integers(2 ** 62))
        # mean-field inputs of past steps, referenced by the transitions (a slot outlives its transitions)
        self.slots = int(np.ceil(c.buffer_size / c.transitions_per_step)) + 2
        self.mean_fields = torch.zeros(self.slots, sum(self.S))
        self.slot = -1
        self.nets, self.targets, self.opts, self.buffers = [], [], [], []
        for k in range(self.K):
            net = Network(Layout(1 + self.T + self.S[k], tuple(self.S)), 0, self.A[k], c.hidden, c.encoder_width,
                          self.gen, 3e-3, c.activation)
            self.nets.append(net)
            self.targets.append(frozen_copy(net))
            self.opts.append(torch.optim.Adam(net.parameters(), lr=c.lr, foreach=True))
            self.buffers.append(ReplayBuffer(c.buffer_size, t=((), torch.int64), s=((), torch.int64),
                                             a=((), torch.int64), r=(), s1=((), torch.int64),
                                             m=((), torch.int64), m1=((), torch.int64), done=()))
        self.episodes = 0
        self.updates = [0] * self.K
        self.last_loss = float("nan")
        self.average = None  # fictitious play: per population the averaged mu[t, s] (t = 0..T) and L[t, s, a]
        self._policy = None

    # ------------------------------------------------------------------ inputs
    def _summary(self, mu) -> np.ndarray:
        """The networks' mean-field input: every population's histogram as S_j mu_j - 1, concatenated."""
        return np.concatenate([S * np.asarray(m) - 1.0 for S, m in zip(self.S, mu)])

    def _inputs(self, k, t, s, m):
        """Network inputs from times t, states s (B,) and mean-field summaries m (B, sum S_j):
        ``[2t/T - 1, one-hot(t), one-hot(s), m]``."""
        t, s, m = (torch.as_tensor(v) for v in (t, s, m))
        one_hot = torch.nn.functional.one_hot
        return torch.cat([(2.0 * t.float() / self.T - 1.0)[:, None], one_hot(t.long(), self.T + 1)[:, :self.T].float(),
                          one_hot(s.long(), self.S[k]).float(), m.float()], dim=1)

    def q_table(self, k, t, mu) -> np.ndarray:
        """Q_k(t, s, ., m) for every state s, m the population states ``mu`` (tuple over populations): (S_k, A_k)."""
        m = np.tile(self._summary(mu), (self.S[k], 1))
        with torch.no_grad():
            return self.nets[k](self._inputs(k, np.full(self.S[k], t), np.arange(self.S[k]), m)).double().numpy()

    @property
    def epsilon(self) -> float:
        c = self.config
        frac = min(1.0, self.episodes / c.epsilon_decay_episodes)
        return c.epsilon_start + (c.epsilon_final - c.epsilon_start) * frac

    def behaviour(self, q: np.ndarray) -> np.ndarray:
        """The simulated agents' policy at one time from Q (S, A): softmax or epsilon-greedy."""
        c = self.config
        if c.exploration == "softmax":
            return _softmax(q, c.temperature)
        eps = self.epsilon
        return (1.0 - eps) * _greedy(q) + eps / q.shape[1]

    # ------------------------------------------------------------------ simulation
    def _moves(self, k, t, mf, states, actions, rng):
        """Rewards R_k,t[s, a] and next states of the agents under the mean field ``mf``."""
        game = self.game
        R = np.asarray(game.rewards(k, t, mf), dtype=float)
        succ, prob = game.static_transition(k) if game.static_transitions else game.transitions(k, t, mf)
        nxt = np.asarray(succ)[states, actions, _draw(np.asarray(prob)[states, actions], rng.random(states.size))]
        return R[states, actions], nxt

    def _faced(self, t, mu, L):
        """The mean field the agents face at time t: the empirical one, or under fictitious play the average."""
        if self.average is None:
            return MeanField(t, mu, L)
        mus, Ls = self.average
        return MeanField(t, tuple(m[t] for m in mus), tuple(x[t] for x in Ls) if t < self.T else (None,) * self.K)

    def _episode(self, rng, N, choose, learn):
        """One episode of N agents per population acting by ``choose(k, t, mu_faced) -> pi_t (S_k, A_k)``; with
        ``learn`` the transitions are stored and the networks trained. Returns the empirical flow mu[t, s]
        and the measures mu[t, s] pi_t[s, a] of the policies played, per population."""
        game, c = self.game, self.config
        states = [_draw(np.broadcast_to(p.mu0, (N, S)), rng.random(N)) for p, S in zip(game.populations, self.S)]
        flow = [np.zeros((self.T + 1, S)) for S in self.S]
        measures = [np.zeros((self.T, S, A)) for S, A in zip(self.S, self.A)]
        mu = tuple(np.bincount(x, minlength=S) / N for x, S in zip(states, self.S))
        slot = None
        for t in range(self.T):
            faced = self._faced(t, mu, None).mu
            if learn and slot is None:
                slot = self._store_mean_field(faced)
            pis = [choose(k, t, faced) for k in range(self.K)]
            actions = [_draw(pis[k][states[k]], rng.random(N)) for k in range(self.K)]
            L = tuple(np.bincount(x * A + a, minlength=S * A).reshape(S, A) / N
                      for x, a, S, A in zip(states, actions, self.S, self.A))
            for k in range(self.K):
                flow[k][t], measures[k][t] = mu[k], mu[k][:, None] * pis[k]
            mf = self._faced(t, mu, L)
            moved = [self._moves(k, t, mf, states[k], actions[k], rng) for k in range(self.K)]
            nxt = [m[1] for m in moved]
            rewards = [m[0] for m in moved]
            mu1 = tuple(np.bincount(x, minlength=S) / N for x, S in zip(nxt, self.S))
            faced1 = self._faced(t + 1, mu1, None).mu
            done = t == self.T - 1
            if done:
                mf_T = MeanField(self.T, faced1, (None,) * self.K)
                rewards = [r + np.asarray(game.terminal(k, mf_T), dtype=float)[x]
                           for k, (r, x) in enumerate(zip(rewards, nxt))]
            if learn:
                slot1 = self._store_mean_field(faced1)
                for k in range(self.K):
                    keep = rng.choice(N, size=c.transitions_per_step, replace=False)
                    T_ = lambda v, dt=torch.int64: torch.as_tensor(v, dtype=dt)  # noqa: E731
                    self.buffers[k].add(t=T_(np.full(keep.size, t)), s=T_(states[k][keep]), a=T_(actions[k][keep]),
                                        r=T_(rewards[k][keep], torch.float32), s1=T_(nxt[k][keep]),
                                        m=T_(np.full(keep.size, slot)), m1=T_(np.full(keep.size, slot1)),
                                        done=float(done))
                if min(b.size for b in self.buffers) >= max(c.learning_starts, c.batch_size):
                    for _ in range(c.updates_per_step):
                        for k in range(self.K):
                            self.update(k)
                slot = slot1
            states, mu = nxt, mu1
        for k in range(self.K):
            flow[k][self.T] = mu[k]
        return tuple(flow), tuple(measures)

    def _store_mean_field(self, mu) -> int:
        self.slot = (self.slot + 1) % self.slots
        self.mean_fields[self.slot] = torch.as_tensor(self._summary(mu), dtype=torch.float32)
        return self.slot

    def _average(self, flow, measures):
        """Fictitious play after the j-th iteration: mbar <- mbar + (j + 1)^-p (m^N - mbar) for the flow and for the
        state-action measure ``mu^N_t(s) pi_t(a|s)`` of the policy played in its last episode (mbar_1 = m^N_1)."""
        if self.average is None:
            self.average = (tuple(f.copy() for f in flow), tuple(x.copy() for x in measures))
            return
        w = (self.iteration + 1.0) ** -self.config.averaging_power
        mus, Ls = self.average
        self.average = (tuple(a + w * (b - a) for a, b in zip(mus, flow)), tuple(a + w * (b - a) for a, b in zip(Ls, measures)))

    def update(self, k: int):
        """One gradient step of population k's Q-network, then its target update."""
        c = self.config
        t, s, a, r, s1, m, m1, done = self.buffers[k].sample(c.batch_size, self.gen)
        with torch.no_grad():
            x1 = self._inputs(k, t + 1, s1, self.mean_fields[m1])
            q1 = self.targets[k](x1)
            if c.double_q:  # the online network picks a', the target evaluates it (van Hasselt et al. 2016)
                nxt = q1.gather(1, self.nets[k](x1).argmax(dim=1, keepdim=True)).squeeze(1)
            else:
                nxt = q1.max(dim=1).values
            y = r + (1.0 - done) * nxt
        q = self.nets[k](self._inputs(k, t, s, self.mean_fields[m])).gather(1, a[:, None]).squeeze(1)
        loss = ((q - y) ** 2).mean()
        self.opts[k].zero_grad()
        loss.backward()
        self.opts[k].step()
        self.updates[k] += 1
        if c.target_update == "polyak":
            polyak(self.targets[k], self.nets[k], c.tau)
        elif self.updates[k] % c.target_period == 0:
            polyak(self.targets[k], self.nets[k], 1.0)
        self.last_loss = loss.item()

    # ------------------------------------------------------------------ protocol
    def step(self) -> dict:
        c = self.config
        for _ in range(c.episodes_per_iteration):
            flow, measures = self._episode(self.rng, c.n_agents, lambda k, t, mu: self.behaviour(self.q_table(k, t, mu)),
                                           True)
            self.episodes += 1
            self.samples += c.n_agents * self.T * self.K
        if c.mean_field == "fictitious":  # the flow faced changes once per iteration, after the Q-networks learned
            self._average(flow, measures)
        self.iteration += 1
        self._policy = None
        return {"iteration": self.iteration, "samples": self.samples, "updates": sum(self.updates),
                "loss": self.last_loss, "epsilon": self.epsilon}

    @property
    def policy(self) -> tuple:
        """Per population pi[t, s, a] on every (t, s) (module docstring; cached until the next step)."""
        if self._policy is None:
            c = self.config
            if c.policy_output == "average" and self.average is not None:
                # fictitious play's output: the policy of the averaged state-action measure, Lbar / mubar
                self._policy = tuple(np.where(L.sum(axis=2, keepdims=True) > 0, L, 1.0)
                                     / np.where(L.sum(axis=2, keepdims=True) > 0, L.sum(axis=2, keepdims=True),
                                                L.shape[2]) for L in self.average[1])
                return self._policy
            out = _greedy if c.policy_output == "greedy" else self.behaviour
            pi = [np.zeros((self.T, S, A)) for S, A in zip(self.S, self.A)]
            if self.average is not None:  # fictitious play: the answer to the averaged flow
                for t in range(self.T):
                    faced = tuple(m[t] for m in self.average[0])
                    for k in range(self.K):
                        pi[k][t] = out(self.q_table(k, t, faced))
            else:
                def choose(k, t, mu):
                    pi[k][t] = out(self.q_table(k, t, mu))
                    return pi[k][t]

                self._episode(np.random.default_rng(self.eval_seed), c.eval_agents, choose, False)
            self._policy = tuple(pi)
        return self._policy
