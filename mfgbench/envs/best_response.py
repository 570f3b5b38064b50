"""The best-response problem of one population as a Gymnasium environment.

Fix a flow ``mu = (mu_1, ..., mu_K)`` of a finite game (and the state-action measures ``L``, for
games whose functions read them). A representative agent of population k then faces the
finite-horizon MDP along that flow (``mfgbench.core.evaluate.FlowModel``): at time t in state s it
picks ``a``, earns ``R_t[s, a]`` (computed with ``mu_t``, ``L_t``) and moves to
``s' ~ P_t(.|s, a, mu_t)``; its start state is drawn from ``mu0_k``; at T it earns ``g(s, mu_T)``.
``BestResponseEnv`` plays that MDP one step at a time: an episode is T steps, the last step's
reward includes the terminal reward, and it ends with ``terminated=True`` (the horizon is part of
the problem: a learner must not bootstrap past it). Undiscounted: ``env.gamma`` is 1. The expected
return of a policy ``pi_k`` is ``<mu0_k, V^pi_k[0]>`` and the best achievable one is
``<mu0_k, V^BR_k[0]>``, both along the fixed flow (``exact_return``, ``best_response``).

Stationary discounted games: the agent faces the stationary distribution ``mu_k[s]``, starts from
it, earns ``R[s, a]`` and observes its state alone (``mfgbench.envs.observations``). The rewards
are not discounted by the environment: the learner discounts with ``env.gamma`` (the game's). An
episode is truncated (``truncated=True``, so a learner bootstraps) after ``horizon`` steps,
by default the first H with ``gamma^H <= 1e-3``; the discounted return of a truncated episode
then misses at most ``gamma^H max|R| / (1 - gamma)`` of ``<mu_k, V^pi_k>``.

The flow: ``flow=None`` is the flow of the uniform profile; ``set_flow(flow)`` takes per-population
arrays ``mu_k[t, s]`` (t = 0..T; ``mu_k[s]`` stationary, with ``state_action`` when the game reads
``L``) or the model of an exact evaluation (``mb.evaluate(game, pi).model``);
``set_population_policy(pi)`` makes the agent face the flow that profile ``pi`` induces. All
randomness comes from the environment's Generator (``reset(seed=...)``, or ``seed`` at construction).
"""
from __future__ import annotations

import math

import numpy as np

from mfgbench.envs._optional import require
from mfgbench.envs.observations import ObservationEncoding

gym = require("gymnasium", "mfgbench.envs.BestResponseEnv")

from mfgbench.core import kernels, stationary  # noqa: E402
from mfgbench.core.evaluate import FlowModel, induced_model, model_along_flow  # noqa: E402
from mfgbench.core.policy import as_profile, greedy_policy, uniform_policy  # noqa: E402
from mfgbench.games.base import MeanField, check_distribution, check_rewards, check_transitions  # noqa: E402

TRUNCATION = 1e-3
"""Default truncation of a stationary game's episodes: the first H with ``gamma^H <= TRUNCATION``."""


def truncation_horizon(gamma: float) -> int:
    """The first H with ``gamma^H <= TRUNCATION``."""
    return max(1, math.ceil(math.log(TRUNCATION) / math.log(gamma)))


class BestResponseEnv(gym.Env):
    """One agent of population ``population`` against a fixed flow of ``game`` (module docstring).

    ``observation``: ``"multidiscrete"`` (default), ``"discrete"`` or ``"onehot"``
    (``mfgbench.envs.observations``); ``horizon``: episode length of a stationary game (finite
    games: the game's T). ``reset(options={"state": s})`` starts the agent in state s.
    ``steps_taken`` counts the transitions sampled since construction.
    """

    metadata = {"render_modes": []}

    def __init__(self, game, flow=None, population: int = 0, seed: int | None = None, *,
                 observation: str = "multidiscrete", horizon: int | None = None):
        kind = getattr(game, "kind", "finite")
        if kind not in ("finite", "stationary"):
            raise ValueError(f"BestResponseEnv plays finite and stationary games; game {game.id} is {kind!r} "
                             f"(continuous games: mfgbench.envs.ParticleVectorEnv)")
        if isinstance(population, bool) or not isinstance(population, (int, np.integer)) \
                or not 0 <= population < game.n_populations:
            raise ValueError(f"BestResponseEnv: game {game.id} has populations 0..{game.n_populations - 1}, "
                             f"got population={population!r}")
        self.game = game
        self.population = int(population)
        self.stationary = kind == "stationary"
        pop = game.populations[self.population]
        self.where = f"game {game.id}, population {self.population} ({pop.name})"
        if self.stationary:
            self.gamma = game.gamma
            self.horizon = truncation_horizon(game.gamma) if horizon is None else _positive(horizon, "horizon")
        else:
            if horizon is not None and horizon != game.horizon:
                raise ValueError(f"BestResponseEnv: {self.where}: episodes of a finite game last its horizon "
                                 f"T = {game.horizon}, got horizon={horizon!r}")
            self.gamma = 1.0
            self.horizon = game.horizon
        self.encoding = ObservationEncoding.for_game(game, self.population, observation)
        self.observation_space = self.encoding.space()
        self.action_space = gym.spaces.Discrete(pop.n_actions)
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.steps_taken = 0
        self._t = None
        self._s = None
        self.set_flow(flow)

    # ------------------------------------------------------------------ the flow faced
    def set_flow(self, flow, state_action=None) -> None:
        """Face ``flow`` from the next step on (module docstring for the forms accepted)."""
        game = self.game
        if flow is None:
            self._set_model(self._induced(uniform_policy(game)))
        elif isinstance(flow, (FlowModel, stationary.StationaryModel)):
            if isinstance(flow, FlowModel) == self.stationary:
                raise ValueError(f"BestResponseEnv: {self.where}: the model given is for a "
                                 f"{'finite' if self.stationary else 'stationary'} game")
            self._set_model(flow)
        else:
            flow = self._checked_flow(flow)
            if self.stationary:
                self._set_model(_stationary_model_along(game, flow, state_action))
            else:
                self._set_model(model_along_flow(game, flow, state_action))

    def set_population_policy(self, policy) -> None:
        """Face the flow that the profile ``policy`` induces (with its state-action measures)."""
        self._set_model(self._induced(as_profile(self.game, policy)))

    def _induced(self, profile):
        return stationary.induced_model(self.game, profile) if self.stationary else induced_model(self.game, profile)

    def _checked_flow(self, flow) -> tuple:
        game = self.game
        flow = tuple(flow)
        if len(flow) != game.n_populations:
            raise ValueError(f"BestResponseEnv: game {game.id}: the flow has {len(flow)} population arrays, the "
                             f"game has {game.n_populations}")
        out = []
        for k, mu in enumerate(flow):
            mu = np.asarray(mu, dtype=np.float64)
            S = game.populations[k].n_states
            shape = (S,) if self.stationary else (game.horizon + 1, S)
            where = f"BestResponseEnv: game {game.id}, population {k} ({game.populations[k].name})"
            if mu.shape != shape:
                axes = "[s]" if self.stationary else "[t, s], t = 0..T"
                raise ValueError(f"{where}: the flow has shape {mu.shape}, expected {shape} ({axes})")
            for t, row in enumerate(np.atleast_2d(mu)):
                check_distribution(row, f"{where}: the flow" + ("" if self.stationary else f" at time {t}"))
            out.append(mu)
        return tuple(out)

    def _set_model(self, model) -> None:
        k = self.population
        pop = self.game.populations[k]
        expected = (pop.n_states, pop.n_actions)
        if not self.stationary:
            expected = (self.game.horizon,) + expected
        if len(model.rewards) != self.game.n_populations or model.rewards[k].shape != expected:
            raise ValueError(f"BestResponseEnv: {self.where}: the model given is not one of this game (its rewards "
                             f"have shape {model.rewards[k].shape if k < len(model.rewards) else None}, expected "
                             f"{expected})")
        self.model = model
        self._rewards = model.rewards[k]
        self._succ = model.succ[k]
        self._cdf = np.cumsum(model.prob[k], axis=-1)
        if self.stationary:
            self._terminal = None
            self._start = model.distribution[k]
        else:
            self._terminal = model.terminal[k]
            self._start = self.game.populations[k].mu0
        self._start_cdf = np.cumsum(self._start)

    # ------------------------------------------------------------------ exact answers along the flow
    def exact_return(self, policy: np.ndarray) -> float:
        """Expected return of this population's policy ``pi[t, s, a]`` (``pi[s, a]``) along the flow:
        ``<mu0_k, V^pi[0]>``, or ``<mu_k, V^pi>`` (discounted, not truncated) in a stationary game."""
        pi = self._checked_policy(policy)
        if self.stationary:
            V = stationary.policy_value(self._rewards, self._succ, self.model.prob[self.population], pi, self.gamma)
            return float(self._start @ V)
        V = kernels.policy_value(self._rewards, self._succ, self.model.prob[self.population], self._terminal, pi)
        return float(self._start @ V[0])

    def best_response(self) -> tuple:
        """``(pi_BR, expected return)``: the exact best response to the flow (greedy, ties to the lowest
        action) and its expected return ``<mu0_k, V^BR[0]>`` (``<mu_k, V^BR>`` in a stationary game)."""
        prob = self.model.prob[self.population]
        if self.stationary:
            V, Q = stationary.best_response_values(self._rewards, self._succ, prob, self.gamma)
            return greedy_policy(Q), float(self._start @ V)
        V, Q = kernels.best_response_values(self._rewards, self._succ, prob, self._terminal)
        return greedy_policy(Q), float(self._start @ V[0])

    def _checked_policy(self, policy) -> np.ndarray:
        profile = list(uniform_policy(self.game))
        profile[self.population] = policy
        return as_profile(self.game, profile)[self.population]

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode at t = 0 from mu0_k (the stationary distribution in a stationary game), or
        in ``options["state"]``."""
        super().reset(seed=seed)
        S = self.game.populations[self.population].n_states
        if options and "state" in options:
            s = options["state"]
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s < S:
                raise ValueError(f"BestResponseEnv.reset: {self.where}: options['state'] must be a state in "
                                 f"0..{S - 1}, got {s!r}")
            self._s = int(s)
        else:
            u = self.np_random.random() * self._start_cdf[-1]
            self._s = min(int(np.searchsorted(self._start_cdf, u, side="right")), S - 1)
        self._t = 0
        return self._observation(), self._info()

    def step(self, action):
        if self._t is None:
            raise RuntimeError(f"BestResponseEnv.step: {self.where}: call reset() before step()")
        if self._t >= self.horizon:
            raise RuntimeError(f"BestResponseEnv.step: {self.where}: the episode has ended; call reset()")
        a = self._checked_action(action)
        t, s = self._t, self._s
        if self.stationary:
            reward = float(self._rewards[s, a])
            cdf, succ = self._cdf[s, a], self._succ[s, a]
        else:
            tt = 0 if self._succ.shape[0] == 1 else t
            reward = float(self._rewards[t, s, a])
            cdf, succ = self._cdf[tt, s, a], self._succ[tt, s, a]
        b = min(int(np.searchsorted(cdf, self.np_random.random() * cdf[-1], side="right")), len(cdf) - 1)
        self._s = int(succ[b])
        self._t = t + 1
        self.steps_taken += 1
        done = self._t == self.horizon
        if done and not self.stationary:
            reward += float(self._terminal[self._s])
        terminated = done and not self.stationary
        truncated = done and self.stationary
        return self._observation(), reward, terminated, truncated, self._info()

    def _checked_action(self, action) -> int:
        a = np.asarray(action)
        n = self.action_space.n
        if a.size != 1 or not np.issubdtype(a.dtype, np.integer) or not 0 <= int(a.reshape(())) < n:
            raise ValueError(f"BestResponseEnv.step: {self.where}, time {self._t}, state {self._s}: action must be "
                             f"an integer in 0..{n - 1}, got {action!r}")
        return int(a.reshape(()))

    def _observation(self):
        obs = self.encoding.encode(self._t, self._s)
        return int(obs) if self.encoding.mode == "discrete" else obs

    def _info(self) -> dict:
        return {"t": self._t, "state": self._s}

    def __str__(self):
        return f"<BestResponseEnv {self.where}, {self.encoding.mode} observations, horizon {self.horizon}>"

    __repr__ = __str__


def _positive(v, name) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"BestResponseEnv: {name} must be a positive integer, got {v!r}")
    return int(v)


def _stationary_model_along(game, distribution, state_action) -> stationary.StationaryModel:
    """The MDPs of a stationary game at a given distribution (``stationary.induced_model`` for one
    that is not induced by a policy): rewards and kernels read at ``MeanField(None, mu, L)``."""
    K = game.n_populations
    L = tuple(state_action) if state_action is not None else (None,) * K
    mf = MeanField(None, tuple(distribution), L)
    R, succ, prob = [], [], []
    for k in range(K):
        R.append(check_rewards(game, k, "stationary", game.rewards(k, mf)))
        pair = game.static_transition(k) if game.static_transitions else game.transitions(k, mf)
        s_k, p_k = check_transitions(game, k, "stationary", *pair)
        succ.append(s_k)
        prob.append(p_k)
    return stationary.StationaryModel(tuple(distribution), tuple(R), tuple(succ), tuple(prob), game.gamma, 0)
