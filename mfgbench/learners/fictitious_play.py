"""Fictitious play for mean field games (Perrin, Pérolat, Laurière, Geist, Elie, Pietquin 2020).

Iteration j: against the flow ``mu^{pibar_j}`` of the current average policy, every
population computes a best response ``BR_j``; the average policy is then the
distribution-weighted average of all best responses so far (and the initial policy),

    pibar_{j+1}(a | t, s) = sum_{i<=j} mu^{BR_i}_t(s) BR_i(a|t,s) / sum_{i<=j} mu^{BR_i}_t(s),

where ``mu^{BR_i}`` is the flow that ``BR_i`` induces when the whole population plays
it and ``BR_0`` is the initial (uniform) policy. When the dynamics do not depend on the mean field this average policy induces
exactly the average flow ``(1/(j+1)) sum_i mu^{BR_i}``, so its exploitability falls
like O(1/j). Where no best response ever visits (t, s), the initial policy stays.

Best-response variants (``config.best_response``):
- ``exact``: backward induction on the exact model along the flow (greedy, ties to the
  lowest action);
- ``softmax``: ``softmax(Q^BR / tau)``, the regularised best response, with ``tau =
  temperature * reward_scale`` (``mfgbench.learners.scale``: the same behaviour on a game
  whose rewards are all multiplied by a constant);
- ``sampled``: Q estimated from ``samples_per_pair`` draws of the game's transition at
  every (t, s, a) (a generative model of the game along the flow), backward in time,
  then greedy. The draws come from the learner's Generator and are counted in ``samples``;
- ``external``: trained outside mfgbench by ``config.best_responder(env, seed)`` on a
  ``mfgbench.envs.BestResponseEnv`` facing the flow (deep fictitious play with, e.g., a
  Stable-Baselines3 DQN; ``mfgbench.envs.external``), tabulated exactly; the transitions it samples
  are counted in ``samples``.

Works for several populations (all best-respond to the same joint flow) and for
stationary discounted games (best responses to the stationary distribution, weights
from the best responses' stationary distributions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgbench.core import kernels
from mfgbench.core.evaluate import best_response_along, flow_of_profile, model_of_profile, static_model_arrays
from mfgbench.core.policy import as_profile, greedy_policy, uniform_policy
from mfgbench.learners.base import Learner, register_learner
from mfgbench.learners.scale import check_configured_scale, resolve_scale


def softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    z = (x - x.max(axis=-1, keepdims=True)) / temperature
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class FictitiousPlayConfig:
    best_response: str = "exact"
    """How each iteration's best response is computed: "exact", "softmax", "sampled" or "external"."""
    temperature: float = 0.1
    """Temperature of the softmax best response (used when best_response == "softmax"), in
    units of the reward scale."""
    samples_per_pair: int = 10
    """Transition draws per (t, s, a) for the sampled best response."""
    reward_scale: float | None = None
    """Unit of ``temperature``: None computes the game's reward scale
    (``mfgbench.learners.scale.reward_scale``) when the softmax best response needs it; a
    number fixes it (1.0: absolute units)."""
    best_responder: object = None
    """For best_response == "external": a callable ``(env, seed) -> policy`` that trains a best
    response on a ``mfgbench.envs.BestResponseEnv``, or its import path "module:function" (e.g.
    "mfgbench.envs.sb3:dqn_best_response")."""
    observation: str = "multidiscrete"
    """For best_response == "external": the observation encoding of the environments handed to
    best_responder ("multidiscrete", "discrete" or "onehot")."""

    def __post_init__(self):
        if self.best_response not in ("exact", "softmax", "sampled", "external"):
            raise ValueError(f"fictitious-play: best_response must be exact, softmax or sampled (or external, "
                             f"with a best_responder), got {self.best_response!r}")
        if self.best_response == "external" and self.best_responder is None:
            raise ValueError("fictitious-play: best_response='external' needs best_responder, a callable "
                             "(env, seed) -> policy or an import path 'module:function'")
        if self.temperature <= 0:
            raise ValueError(f"fictitious-play: temperature must be positive, got {self.temperature}")
        if self.samples_per_pair < 1:
            raise ValueError(f"fictitious-play: samples_per_pair must be >= 1, got {self.samples_per_pair}")
        check_configured_scale("fictitious-play", self.reward_scale)


def sampled_q_values(model, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Q_t(s, a) = R_t(s, a) + mean of V_{t+1}(s') over ``n`` sampled successors, backward in t."""
    R = model.rewards[k]
    T, S, A = R.shape
    V = model.terminal[k].copy()
    Q = np.empty_like(R)
    for t in range(T - 1, -1, -1):
        succ, prob = model.transition_at(k, t)
        cdf = np.cumsum(prob, axis=2)
        u = rng.random((S, A, n)) * cdf[:, :, -1:]
        idx = np.minimum((cdf[:, :, None, :] < u[..., None]).sum(axis=3), succ.shape[2] - 1)
        nxt = np.take_along_axis(succ, idx, axis=2)
        Q[t] = R[t] + V[nxt].mean(axis=2)
        V = Q[t].max(axis=1)
    return Q


@register_learner
class FictitiousPlay(Learner):
    """Fictitious play with distribution-weighted policy averaging (see module docstring)."""

    name = "fictitious-play"
    Config = FictitiousPlayConfig
    kinds = ("finite", "stationary")
    PRESETS = {"paper": {"best_response": "exact"}}
    """Perrin et al. 2020: exact best responses, distribution-weighted averaging (no hyperparameter)."""

    def __init__(self, game, config=None, rng=None):
        super().__init__(game, config, rng)
        self.stationary = getattr(game, "kind", "finite") == "stationary"
        self._tau = (self.config.temperature * resolve_scale(game, self.config.reward_scale)
                     if self.config.best_response == "softmax" else None)
        self._policy = uniform_policy(game)
        # cumulative sums over the initial policy and the best responses so far of
        # mu^{BR}(s) BR(a|s) and of mu^{BR}(s) (the initial policy counts as BR_0, as in OpenSpiel)
        flow = self._flow_of(self._policy)
        self._weighted = [mu[..., None] * pi for pi, mu in zip(self._policy, flow)]
        self._weights = [mu.copy() for mu in flow]
        # (flow, L, succ, prob, g, the game's cached transition pair) of the current policy, from the last step
        self._next_model = None
        self._external = None   # the environments of best_response == "external", built on first use
        # the compiled averaging sums each row in numpy's order up to PAIRWISE_BLOCK actions
        self._compiled_average = max(p.n_actions for p in game.populations) <= kernels.PAIRWISE_BLOCK

    @property
    def policy(self) -> tuple:
        return self._policy

    def _best_response(self):
        """Best response of each population to the current average policy's flow."""
        cfg = self.config
        if cfg.best_response == "external":
            return self._external_best_response()
        if self.stationary:
            from mfgbench.core import stationary
            ev = stationary.evaluate(self.game, self._policy)
            Q = ev.best_response.q_values
            if cfg.best_response == "sampled":
                raise ValueError("fictitious-play: the sampled best response plays finite-horizon games only")
            return tuple(softmax(q, self._tau) if cfg.best_response == "softmax" else greedy_policy(q)
                         for q in Q)
        model = model_of_profile(self.game, self._policy)
        if cfg.best_response == "sampled":
            Q = []
            for k, pop in enumerate(self.game.populations):
                Q.append(sampled_q_values(model, k, cfg.samples_per_pair, self.rng))
                self.samples += self.game.horizon * pop.n_states * pop.n_actions * cfg.samples_per_pair
            return tuple(greedy_policy(q) for q in Q)
        Q = best_response_along(model).q_values
        if cfg.best_response == "softmax":
            return tuple(softmax(q, self._tau) for q in Q)
        return tuple(greedy_policy(q) for q in Q)

    def _external_best_response(self):
        """Best responses trained by ``config.best_responder`` (``mfgbench.envs.external``)."""
        if self._external is None:
            from mfgbench.envs.external import ExternalBestResponse
            self._external = ExternalBestResponse(self.game, self.config.best_responder, self.config.observation)
        br, samples = self._external(self._policy, self.rng)
        self.samples += samples
        return br

    def _flow_of(self, policy):
        if self.stationary:
            from mfgbench.core import stationary
            return stationary.distribution(self.game, policy)
        return tuple(f[:-1] for f in flow_of_profile(self.game, policy))  # mu_t for t < T

    def _fused_step(self):
        """Exact best response, its flow and the averaging in one compiled call per population:
        valid when the transitions do not depend on the flow, so the best response's flow runs
        through the same tables as the model."""
        game = self.game
        nxt = self._next_model
        if nxt is not None:
            # tiny single-population games: the last call also pushed the new policy's flow and L,
            # so this iteration needs the game's vectorised rewards and one compiled call
            flow, L, succ, prob, g, pair = nxt
            if game._transition_cache.get(0) is pair:   # the tables are still the game's
                R = game.rewards_over_time(0, (flow,), (L,))
                if R is not None:
                    self._advance(R, succ, prob, g, pair)
                    return
        self._next_model = None
        arrays = static_model_arrays(game, self._policy)   # tiny games: no model object
        if arrays is not None and len(self._policy) == 1:
            R, succ, prob, g = arrays   # from the game's current transition cache (checked there)
            self._advance(R[0], succ[0], prob[0], g[0], game._transition_cache.get(0))
            return
        if arrays is None:
            model = model_of_profile(game, self._policy)
            arrays = model.rewards, model.succ, model.prob, model.terminal
        R, succ, prob, g = arrays
        self._policy = tuple([
            kernels.fictitious_play_update(R[k], succ[k], prob[k], g[k], pop.mu0, self._weighted[k], self._weights[k],
                                           self._policy[k])
            for k, pop in enumerate(game.populations)])

    def _advance(self, R, succ, prob, g, pair):
        if self._next_model is None:   # buffers the kernel writes the new policy's flow and L into
            T, S, A = self._policy[0].shape
            flow, L = np.empty((T + 1, S)), np.empty((T, S, A))
        else:
            flow, L = self._next_model[:2]   # R, read from them, is computed already
        pi = kernels.fictitious_play_update_and_flow(R, succ, prob, g, self.game.populations[0].mu0,
                                                     self._weighted[0], self._weights[0], self._policy[0], flow, L)
        self._policy = (pi,)
        self._next_model = (flow, L, succ, prob, g, pair)

    def _exact_step(self):
        """The exact step when the transitions depend on the flow: the greedy best response and
        the averaging each in one compiled call (the same arithmetic as the numpy code below)."""
        model = model_of_profile(self.game, self._policy)
        br = tuple([kernels.greedy_best_response(model.rewards[k], model.succ[k], model.prob[k], model.terminal[k])
                    for k in range(len(model.rewards))])
        br_flow = self._flow_of(br)
        self._policy = tuple([kernels.fictitious_play_average(self._weighted[k], self._weights[k], self._policy[k],
                                                              br_flow[k], br[k])
                              for k in range(len(br))])

    def step(self) -> dict:
        if not self.stationary and self.config.best_response == "exact" and self.game.static_transitions:
            self._fused_step()
            self.iteration += 1
            return {"iteration": self.iteration, "samples": self.samples}
        if not self.stationary and self.config.best_response == "exact" and self._compiled_average:
            self._exact_step()
            self.iteration += 1
            return {"iteration": self.iteration, "samples": self.samples}
        br = self._best_response()   # row-stochastic by construction
        if self.stationary:
            br = as_profile(self.game, br)
        br_flow = self._flow_of(br)
        new = []
        for k, (pi_br, mu) in enumerate(zip(br, br_flow)):
            self._weighted[k] += mu[..., None] * pi_br
            self._weights[k] += mu
            seen = self._weights[k] > 0
            pi = self._policy[k].copy()
            pi[seen] = self._weighted[k][seen] / self._weights[k][seen][:, None]
            new.append(pi / pi.sum(axis=-1, keepdims=True))
        self._policy = tuple(new)
        self.iteration += 1
        return {"iteration": self.iteration, "samples": self.samples}
