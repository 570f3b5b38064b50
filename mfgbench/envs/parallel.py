"""N agents per population of a finite game, as a PettingZoo ``ParallelEnv``.

Population k has ``N`` agents ``i = 0..N-1`` in states ``s_i``; its mean field at time t is their
empirical distribution ``mu^N_{k,t}(s) = #{i: s_i = s} / N`` and, once all agents have chosen
their actions, the empirical state-action measure ``L^N_{k,t}(s, a) = #{i: (s_i, a_i) = (s, a)} / N``.
At every step all agents act at once: agent i of population k in state s choosing a earns
``R_t[s, a]`` and moves by ``P_t(.|s, a)``, both computed by the game from the empirical mean field
``(mu^N_t, L^N_t)`` of all populations, exactly as the game computes them from the population flow
(timing convention of ``mfgbench.games.base``); at T every agent also earns ``g(s, mu^N_T)``. Start
states are drawn i.i.d. from ``mu0_k``. As N grows the empirical flow tends to the mean-field flow
of the policy the agents play, and the game to the mean field game (the N-player game whose limit
the mean field game is). An episode lasts T steps; all agents terminate together.

Stationary discounted games: the mean field is the current empirical distribution, agents observe
their states alone, and episodes are truncated after ``horizon`` steps (default as in
``BestResponseEnv``); rewards are not discounted by the environment.

Agents are named ``"{population name}_{i}"`` (``"pop{k}_{i}"`` when two populations share a name);
an agent observes ``(t, s)`` in the encoding chosen (``mfgbench.envs.observations``), not the
mean field. All randomness comes from the environment's Generator (``reset(seed=...)``).
"""
from __future__ import annotations

import numpy as np

from mfgbench.envs._optional import require
from mfgbench.envs.observations import ObservationEncoding

pettingzoo = require("pettingzoo", "mfgbench.envs.parallel_env")
gym = require("gymnasium", "mfgbench.envs.parallel_env")

from mfgbench.envs.best_response import truncation_horizon  # noqa: E402
from mfgbench.games.base import MeanField, check_rewards, check_transitions  # noqa: E402


def parallel_env(game, n_agents: int, seed: int | None = None, *, observation: str = "multidiscrete",
                 horizon: int | None = None) -> "MeanFieldParallelEnv":
    """A PettingZoo ``ParallelEnv`` with ``n_agents`` agents per population of ``game`` (module docstring)."""
    return MeanFieldParallelEnv(game, n_agents, seed, observation=observation, horizon=horizon)


class MeanFieldParallelEnv(pettingzoo.ParallelEnv):
    """``n_agents`` agents per population whose mean field is their empirical distribution."""

    metadata = {"render_modes": [], "name": "mfgbench_parallel_v0"}

    def __init__(self, game, n_agents: int, seed: int | None = None, *, observation: str = "multidiscrete",
                 horizon: int | None = None):
        kind = getattr(game, "kind", "finite")
        if kind not in ("finite", "stationary"):
            raise ValueError(f"parallel_env plays finite and stationary games; game {game.id} is {kind!r} "
                             f"(continuous games: mfgbench.envs.particle_parallel_env)")
        if isinstance(n_agents, bool) or not isinstance(n_agents, (int, np.integer)) or n_agents < 1:
            raise ValueError(f"parallel_env: n_agents must be a positive integer, got {n_agents!r}")
        self.game = game
        self.n_agents = int(n_agents)
        self.stationary = kind == "stationary"
        if self.stationary:
            self.gamma = game.gamma
            self.horizon = truncation_horizon(game.gamma) if horizon is None else int(horizon)
        else:
            if horizon is not None and horizon != game.horizon:
                raise ValueError(f"parallel_env: episodes of game {game.id} last its horizon T = {game.horizon}, "
                                 f"got horizon={horizon!r}")
            self.gamma = 1.0
            self.horizon = game.horizon
        pops = game.populations
        names = [p.name for p in pops]
        prefixes = names if len(set(names)) == len(names) else [f"pop{k}" for k in range(len(pops))]
        self.possible_agents = [f"{prefixes[k]}_{i}" for k in range(len(pops)) for i in range(self.n_agents)]
        self._population_of = {a: divmod(j, self.n_agents) for j, a in enumerate(self.possible_agents)}
        self._encodings = [ObservationEncoding.for_game(game, k, observation) for k in range(len(pops))]
        self._observation_spaces = [e.space() for e in self._encodings]
        self._action_spaces = [gym.spaces.Discrete(p.n_actions) for p in pops]
        self.metadata = {**self.metadata, "name": f"mfgbench_{game.id}_parallel"}
        self.np_random = np.random.default_rng(seed)
        self.agents = []
        self.states = None
        self.t = None

    # one space object per population: the same object for the same agent, as PettingZoo requires
    def observation_space(self, agent):
        return self._observation_spaces[self._population(agent)[0]]

    def action_space(self, agent):
        return self._action_spaces[self._population(agent)[0]]

    def _population(self, agent):
        try:
            return self._population_of[agent]
        except KeyError:
            raise KeyError(f"parallel_env: game {self.game.id} has no agent {agent!r}") from None

    # ------------------------------------------------------------------ the empirical mean field
    def empirical_distribution(self) -> tuple:
        """``mu^N_k[s]`` of every population at the current time."""
        return tuple(np.bincount(s, minlength=p.n_states) / self.n_agents
                     for s, p in zip(self.states, self.game.populations))

    def _mean_field(self, actions) -> MeanField:
        """``(mu^N_t, L^N_t)`` of the current states and the actions just chosen."""
        L = tuple(np.bincount(s * p.n_actions + a, minlength=p.n_states * p.n_actions).reshape(p.n_states, p.n_actions)
                  / self.n_agents for s, a, p in zip(self.states, actions, self.game.populations))
        return MeanField(None if self.stationary else self.t, self.empirical_distribution(), L)

    # ------------------------------------------------------------------ PettingZoo API
    def reset(self, seed: int | None = None, options: dict | None = None):
        """All agents back at t = 0 with start states drawn i.i.d. from mu0 (the initial distribution
        of a stationary game too)."""
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.t = 0
        self.states = [_draw(np.cumsum(p.mu0), self.np_random.random(self.n_agents)) for p in self.game.populations]
        self.agents = self.possible_agents[:]
        return self._observations(), {a: {"t": 0} for a in self.agents}

    def step(self, actions: dict):
        if not self.agents:
            raise RuntimeError(f"parallel_env: game {self.game.id}: the episode has ended (or reset() was not "
                               f"called); call reset()")
        game = self.game
        acts = self._checked_actions(actions)
        mf = self._mean_field(acts)
        rewards, new_states = [], []
        for k, (s, a) in enumerate(zip(self.states, acts)):
            if self.stationary:
                R = check_rewards(game, k, "stationary", game.rewards(k, mf))
                pair = game.static_transition(k) if game.static_transitions else game.transitions(k, mf)
                succ, prob = check_transitions(game, k, "stationary", *pair)
            else:
                R = check_rewards(game, k, self.t, game.rewards(k, self.t, mf))
                pair = game.static_transition(k) if game.static_transitions else game.transitions(k, self.t, mf)
                succ, prob = check_transitions(game, k, self.t, *pair)
            rewards.append(R[s, a])
            b = _draw(np.cumsum(prob[s, a], axis=1), self.np_random.random(self.n_agents))
            new_states.append(succ[s, a, b])
        self.states = new_states
        self.t += 1
        done = self.t == self.horizon
        if done and not self.stationary:
            mf_T = MeanField(self.t, self.empirical_distribution(), (None,) * game.n_populations)
            for k in range(game.n_populations):
                g = check_rewards(game, k, "T", game.terminal(k, mf_T))
                rewards[k] = rewards[k] + g[self.states[k]]
        obs = self._observations()
        agents = self.agents
        reward = {}
        for a in agents:
            k, i = self._population_of[a]
            reward[a] = float(rewards[k][i])
        terminated = {a: done and not self.stationary for a in agents}
        truncated = {a: done and self.stationary for a in agents}
        infos = {a: {"t": self.t} for a in agents}
        if done:
            self.agents = []
        return obs, reward, terminated, truncated, infos

    def _checked_actions(self, actions) -> list:
        if not isinstance(actions, dict):
            raise ValueError(f"parallel_env.step: actions must be a dict from agent name to action, got "
                             f"{type(actions).__name__}")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"parallel_env.step: game {self.game.id}, time {self.t}: no action for agent "
                             f"{missing[0]!r} ({len(missing)} live agents without one)")
        acts = [np.empty(self.n_agents, dtype=np.int64) for _ in self.game.populations]
        for agent in self.agents:
            k, i = self._population_of[agent]
            a = np.asarray(actions[agent])
            n = self._action_spaces[k].n
            if a.size != 1 or not np.issubdtype(a.dtype, np.integer) or not 0 <= int(a.reshape(())) < n:
                raise ValueError(f"parallel_env.step: game {self.game.id}, time {self.t}, agent {agent!r} "
                                 f"(population {k}, state {self.states[k][i]}): action must be an integer in "
                                 f"0..{n - 1}, got {actions[agent]!r}")
            acts[k][i] = int(a.reshape(()))
        return acts

    def _observations(self) -> dict:
        obs = [enc.encode_batch(np.full(self.n_agents, self.t), s) for enc, s in zip(self._encodings, self.states)]
        out = {}
        for a in self.agents:
            k, i = self._population_of[a]
            o = obs[k][i]
            out[a] = int(o) if self._encodings[k].mode == "discrete" else o.copy()
        return out

    def render(self):
        return None

    def close(self):
        pass


def _draw(cdf_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws: index i of each row with ``cdf[i-1] <= u total < cdf[i]`` (never a zero-mass index)."""
    if cdf_rows.ndim == 1:
        return np.minimum(np.searchsorted(cdf_rows, u * cdf_rows[-1], side="right"), len(cdf_rows) - 1)
    idx = (cdf_rows <= (u * cdf_rows[:, -1])[:, None]).sum(axis=1)
    return np.minimum(idx, cdf_rows.shape[1] - 1)
