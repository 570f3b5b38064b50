"""The particle system of a continuous game as a Gymnasium vector environment and a PettingZoo one.

``mfgbench.learners.neural.env.ParticleEnv`` simulates N agents per population by Euler–Maruyama
(dynamics, reward timing, frozen flows and test particles: its docstring). Here it is wrapped, not
changed:

- ``ParticleVectorEnv(game, n_agents, ...)``, one population: a ``gymnasium.vector.VectorEnv`` whose
  ``num_envs`` sub-environments are the N agents. They share one mean field, so they step together:
  agent i observes ``(t, x_i)`` (``Box`` of ``1 + d`` float64: time in [0, T], position in the
  domain), acts ``alpha_i`` (``Box(d)``, bounded by the game's ``control_bound`` if it has one) and
  earns the particle system's reward. All agents terminate together at T; the vector environment
  then resets them all on the next ``step`` (Gymnasium's next-step autoreset: that step's actions
  are ignored, its rewards are 0).
- ``particle_parallel_env(game, n_agents, ...)``, any number of populations: a PettingZoo
  ``ParallelEnv`` with agents ``"{population name}_{i}"``, each with the same observation and action
  spaces as above (its population's).

The empirical densities (the mean field the agents make) are ``env.density`` (tuple over
populations, on the grid ``env.particles.grid``); ``set_flow`` freezes the densities the agents face
(fictitious play), as ``ParticleEnv.set_flow``. Randomness: the particle system's Generator,
seeded by ``seed`` and by ``reset(seed=...)``.
"""
from __future__ import annotations

import numpy as np

from mfgbench.envs._optional import require

gym = require("gymnasium", "the particle environments of mfgbench.envs")
pettingzoo = require("pettingzoo", "the particle environments of mfgbench.envs")

from mfgbench.learners.neural.env import ParticleEnv  # noqa: E402


def _spaces(game, k_dim: int):
    """The observation space ``(t, x)`` and action space ``alpha`` of one agent."""
    lo, hi = np.array(game.domain.lo), np.array(game.domain.hi)
    obs = gym.spaces.Box(np.concatenate([[0.0], lo]), np.concatenate([[game.horizon], hi]), dtype=np.float64)
    b = np.inf if game.control_bound is None else game.control_bound
    return obs, gym.spaces.Box(-b, b, (k_dim,), dtype=np.float64)


def _particles(game, n_agents, n_steps, nx, seed, n_density) -> ParticleEnv:
    return ParticleEnv(game, n_agents=n_agents, n_steps=n_steps, nx=nx, rng=np.random.default_rng(seed),
                       n_density=n_density)


def _agent_observations(particles: ParticleEnv, observation: dict) -> list:
    """Per population the array (N, 1 + d) of ``(t, x_i)``; t capped at T against rounding of n dt."""
    t = min(observation["t"], particles.horizon)
    return [np.concatenate([np.full((len(x), 1), t), x], axis=1) for x in observation["x"]]


class ParticleVectorEnv(gym.vector.VectorEnv):
    """The N agents of a one-population continuous game as a Gymnasium vector environment."""

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, game, n_agents: int = 1000, n_steps: int = 50, nx=None, seed: int | None = None,
                 n_density: int | None = None):
        if getattr(game, "kind", None) != "continuous":
            raise ValueError(f"ParticleVectorEnv needs a continuous game, got {game!r} (finite games: "
                             f"mfgbench.envs.parallel_env)")
        if game.n_populations != 1:
            raise ValueError(f"ParticleVectorEnv: game {game.id} has {game.n_populations} populations; a vector "
                             f"environment holds one (use mfgbench.envs.particle_parallel_env)")
        self.particles = _particles(game, n_agents, n_steps, nx, seed, n_density)
        self.game = game
        self.num_envs = self.particles.n_agents
        self.single_observation_space, self.single_action_space = _spaces(game, game.dim)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._needs_reset = False

    @property
    def density(self) -> tuple:
        return tuple(m.copy() for m in self.particles.m)

    def set_flow(self, flow) -> None:
        self.particles.set_flow(flow)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        observation, _ = self.particles.reset(seed=seed)
        self._needs_reset = False
        return _agent_observations(self.particles, observation)[0], {}

    def step(self, actions):
        n = self.num_envs
        if self._needs_reset:   # next-step autoreset: this step starts the new episode
            observation, _ = self.particles.reset()
            self._needs_reset = False
            return (_agent_observations(self.particles, observation)[0], np.zeros(n), np.zeros(n, dtype=bool),
                    np.zeros(n, dtype=bool), {})
        observation, rewards, terminated, _, _ = self.particles.step((np.asarray(actions, dtype=np.float64),))
        self._needs_reset = terminated
        return (_agent_observations(self.particles, observation)[0], rewards[0].copy(), np.full(n, terminated),
                np.zeros(n, dtype=bool), {})


def particle_parallel_env(game, n_agents: int = 1000, n_steps: int = 50, nx=None, seed: int | None = None,
                          n_density: int | None = None) -> "ParticleParallelEnv":
    """The particle system of ``game`` (any number of populations) as a PettingZoo ``ParallelEnv``."""
    return ParticleParallelEnv(game, n_agents, n_steps, nx, seed, n_density)


class ParticleParallelEnv(pettingzoo.ParallelEnv):
    """N agents per population of a continuous game as a PettingZoo ``ParallelEnv`` (module docstring)."""

    metadata = {"render_modes": [], "name": "mfgbench_particles_v0"}

    def __init__(self, game, n_agents: int = 1000, n_steps: int = 50, nx=None, seed: int | None = None,
                 n_density: int | None = None):
        if getattr(game, "kind", None) != "continuous":
            raise ValueError(f"particle_parallel_env needs a continuous game, got {game!r} (finite games: "
                             f"mfgbench.envs.parallel_env)")
        self.particles = _particles(game, n_agents, n_steps, nx, seed, n_density)
        self.game = game
        self.n_agents = self.particles.n_agents
        names = [p.name for p in game.populations]
        prefixes = names if len(set(names)) == len(names) else [f"pop{k}" for k in range(len(names))]
        self.possible_agents = [f"{prefixes[k]}_{i}" for k in range(len(names)) for i in range(self.n_agents)]
        self._index = {a: divmod(j, self.n_agents) for j, a in enumerate(self.possible_agents)}
        self._observation_space, self._action_space = _spaces(game, game.dim)
        self.metadata = {**self.metadata, "name": f"mfgbench_{game.id}_particles"}
        self.agents = []

    def observation_space(self, agent):
        self._population(agent)
        return self._observation_space

    def action_space(self, agent):
        self._population(agent)
        return self._action_space

    def _population(self, agent):
        try:
            return self._index[agent][0]
        except KeyError:
            raise KeyError(f"particle_parallel_env: game {self.game.id} has no agent {agent!r}") from None

    @property
    def density(self) -> tuple:
        return tuple(m.copy() for m in self.particles.m)

    def set_flow(self, flow) -> None:
        self.particles.set_flow(flow)

    def reset(self, seed: int | None = None, options: dict | None = None):
        observation, _ = self.particles.reset(seed=seed)
        self.agents = self.possible_agents[:]
        return self._per_agent(_agent_observations(self.particles, observation)), {a: {} for a in self.agents}

    def step(self, actions: dict):
        if not self.agents:
            raise RuntimeError(f"particle_parallel_env: game {self.game.id}: the episode has ended (or reset() "
                               f"was not called); call reset()")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"particle_parallel_env.step: no action for agent {missing[0]!r} ({len(missing)} live "
                             f"agents without one)")
        d = self.game.dim
        acts = [np.empty((self.n_agents, d)) for _ in self.game.populations]
        for a in self.agents:
            k, i = self._index[a]
            act = np.asarray(actions[a], dtype=np.float64)
            if act.shape not in ((d,), ()) or act.ndim == 0 and d != 1:
                raise ValueError(f"particle_parallel_env.step: agent {a!r}: action has shape {act.shape}, "
                                 f"expected ({d},)")
            acts[k][i] = act
        observation, rewards, terminated, _, _ = self.particles.step(tuple(acts))
        agents = self.agents
        obs = self._per_agent(_agent_observations(self.particles, observation))
        reward = {}
        for a in agents:
            k, i = self._index[a]
            reward[a] = float(rewards[k][i])
        if terminated:
            self.agents = []
        return (obs, reward, {a: terminated for a in agents}, {a: False for a in agents}, {a: {} for a in agents})

    def _per_agent(self, per_population: list) -> dict:
        out = {}
        for a in self.agents:
            k, i = self._index[a]
            out[a] = per_population[k][i].copy()
        return out

    def render(self):
        return None

    def close(self):
        pass
