"""Deterministic actor-critic learning on the particle game, shared by DDPG and MADDPG.

Per population k: an actor ``mu_k(t, x, y_k)`` with bounded output ``a_max tanh(.)``, a critic
``Q_k(t, x, a, z_k)``, their target copies ``mu_k'``, ``Q_k'``, and a replay buffer of the
transitions ``(t, x, a, r, t', x', y_k, z_k, y_k', z_k', done)`` of its agents. The mean-field
inputs ``y_k`` (actor) and ``z_k`` (critic) are population k's own density ``m_k``
(``densities="own"``: DDPG's default, each population an independent learner) or every
population's ``(m_1, ..., m_K)`` ("all": MADDPG's default, a centralised critic and actors aware of
the other types); each density goes through an encoder of its population (``Network``). Execution
is decentralised: an agent acts on its time, its position and the public densities.

One ``step()`` is one episode of the particle game (``env.ParticleEnv``), N agents per
population all acting with their population's actor:

    reset the particles, X_0 ~ m0
    for n = 0 .. n_steps - 1:
        a_i = clip(mu_k(t_n, X_i, y_k) + eps_i, -a_max, a_max),   eps_i the exploration noise
        step the particles; store the transitions of ``transitions_per_step`` random agents
        for each gradient step (``updates_per_step``), per population k:
            sample a batch B from the buffer
            y     = r + gamma (1 - done) Q_k'(t', x', mu_k'(t', x', y_k'), z_k')
            critic: minimise mean_B (Q_k(t, x, a, z_k) - y)^2
            actor : maximise mean_B Q_k(t, x, mu_k(t, x, y_k), z_k)
            theta' <- tau theta + (1 - tau) theta'   (both target networks)

``done`` is the environment's ``terminated`` (the horizon T): the last step's target is its
reward (which includes the terminal cost), with no bootstrap.

Mean field faced (``config.mean_field_update``). "current": the episode's own empirical densities.
"fictitious": fictitious play over episodes: the learner keeps ``mbar_k``, the weighted average of
past episodes' flows, freezes it in the environment (``ParticleEnv.set_flow``) so each actor
learns a best response to a slowly moving flow, and feeds its summary to the networks; the
learner's feedback is then ``mu_k(t, x, mbar_k(t))``.

Parametrisation of Q (``config.critic_form``, ``config.explicit_control_cost``). An action held
for one step of length dt changes Q only at order dt, ``Q(s, a) - Q(s, a') = O(dt)``, next to an
O(1) value: a plain MLP's action gradient is then mostly fitting error, and Adam follows its sign
at full speed (we measured actors driven to the bound within ~100 updates on the torus games).
The critic therefore uses the advantage form ``Q(s, a) = V(s) + dt (A(s, a) - A(s, mu(s)))``
(Tallec, Blier & Ollivier 2019), in which ``Q'(s', mu'(s')) = V'(s')`` and the actor ascends
``A(s, mu(s))`` (the same gradient as Q's, divided by dt), with the step's control cost
``-|a|^2/2``, known from the game, written into A exactly. The default, ``critic_form="gradient"``,
takes ``A(s, a) = a . grad_x V(s) - |a|^2/2`` (``PositionGradient``), the first-order expansion in dt of
a control that enters the drift: one network V, and the actor ascends towards the HJB optimum
``-grad_x u``. ``critic_form="advantage"`` learns A with a second network, "linear" takes
``a . G(s) - |a|^2/2`` with G a network, and "q" with ``explicit_control_cost=False`` is the plain DDPG
critic (``PRESETS["paper"]``).

Exploration (``config.exploration``): "population" adds the noise to every agent; "deviators" to
``transitions_per_step`` extra test particles per population that do not shape the density
(``ParticleEnv(n_density=...)``), so the population plays the noise-free actor whose flow is scored.
The noise (``config.noise``, ``ExplorationNoise``) is a constant or decaying Gaussian, or an
Ornstein-Uhlenbeck process per agent.

The feedback the learner outputs is ``alpha_k(t, x) = mu_k(t, x, y_k^N(t))`` with ``y^N`` the
particle densities of a noise-free rollout (``eval_agents`` particles, a fixed seed): on the
PDE grid it is scored exactly by ``reference_solvers.pde.policy.evaluate_control``
(``scoring.score_continuous``).

Randomness: the numpy Generator passed in seeds the environment episodes, the exploration noise
and the agents stored; a ``torch.Generator`` seeded from it draws the initial weights and the
batches. Same seed, same numbers (CPU, float32, fixed thread count).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from mfgbench.learners.base import Learner
from mfgbench.learners.neural.config import PRESETS, DDPGConfig, Features, resolve
from mfgbench.learners.neural.env import ParticleEnv
from mfgbench.learners.neural.networks import Layout, Network
from mfgbench.learners.neural.replay import ReplayBuffer, frozen_copy, polyak


# ----------------------------------------------------------------------------- networks
class Actor(nn.Module):
    """mu(t, x, y) = a_max tanh(Network(t, x, y))."""

    def __init__(self, layout, n_out, hidden, encoder_width, a_max, gen, final_init, activation="relu"):
        super().__init__()
        self.net = Network(layout, 0, n_out, hidden, encoder_width, gen, final_init, activation)
        self.a_max = a_max

    def forward(self, s):
        return self.a_max * torch.tanh(self.net(s))


class Critic(nn.Module):
    """Q(t, x, a, z) of one population (``config.critic_form``, ``config.explicit_control_cost``).

    "q": ``Q(s, a) = N(s, a) - c dt |a|^2 / 2``; "advantage": ``Q(s, a) = V(s) + dt (A(s, a) - A(s, mu(s)))``
    with ``A(s, a) = N(s, a) - c |a|^2 / 2``; N and V are ``Network``s, c = 1 when the step's control
    cost, known from the game, is written explicitly (else 0).
    """

    def __init__(self, layout, n_act, hidden, encoder_width, a_max, gen, final_init, activation, dt, form,
                 control_cost, position_gradient=None):
        super().__init__()
        self.linear, self.gradient = form == "linear", form == "gradient"
        if self.gradient:
            if position_gradient is None:
                raise ValueError("critic_form 'gradient' needs the position embedding's derivative")
            self.net = None  # G(s) = grad_x V(s): no second network
        else:
            # "linear": N(s, a) = a . G(s), G a network with one output per action coordinate
            n_extra, n_out = (0, n_act) if self.linear else (n_act, 1)
            self.net = Network(layout, n_extra, n_out, hidden, encoder_width, gen, final_init, activation)
        self.position_gradient = position_gradient
        self.a_max, self.dt = a_max, dt
        self.advantage_form, self.control_cost = form != "q", control_cost
        if self.advantage_form:
            self.value = Network(layout, 0, 1, hidden, encoder_width, gen, final_init, activation)

    def value_gradient(self, s, create_graph=False):
        """grad_x V(s), (B, d): autograd to the network's input, chained with the embedding's derivative."""
        with torch.enable_grad():
            s = s.detach().requires_grad_(True)
            ds = torch.autograd.grad(self.value(s).sum(), s, create_graph=create_graph)[0]
        return self.position_gradient(s.detach(), ds)

    def advantage(self, s, a, create_graph=False):
        """The action-dependent part: N(s, a) - c |a|^2/2 (times dt in the "q" form)."""
        if self.gradient:
            out = (a * self.value_gradient(s, create_graph)).sum(dim=1)
        elif self.linear:
            out = (a * self.net(s)).sum(dim=1)
        else:
            out = self.net(s, a / self.a_max).squeeze(1)
        if self.control_cost:
            out = out - 0.5 * (1.0 if self.advantage_form else self.dt) * (a ** 2).sum(dim=1)
        return out

    def forward(self, s, a, a_policy=None):
        """Q(s, a); the advantage form needs the policy's action ``a_policy`` at s."""
        if not self.advantage_form:
            return self.advantage(s, a)
        if a is a_policy:  # the target's Q'(s', mu'(s')) = V'(s')
            return self.value(s).squeeze(1)
        if self.gradient:  # one gradient for both actions; graph kept so the loss trains V through it
            G = self.value_gradient(s, create_graph=torch.is_grad_enabled())
            adv = ((a - a_policy) * G).sum(dim=1)
            if self.control_cost:
                adv = adv - 0.5 * ((a ** 2).sum(dim=1) - (a_policy ** 2).sum(dim=1))
            return self.value(s).squeeze(1) + self.dt * adv
        return self.value(s).squeeze(1) + self.dt * (self.advantage(s, a) - self.advantage(s, a_policy))


class PositionGradient:
    """d/dx of a function of the network input, from its input gradient: the chain rule through the
    position embedding (``config.Features.position``), which sits at input columns [start, start + P).

    Torus axis, features (cos, sin)(w_j x), w_j = 2 pi j / L: d cos = -w_j sin, d sin = w_j cos.
    Box axis, feature (x - c) / s: d = 1 / s.
    """

    def __init__(self, features, start):
        self.periodic, self.d, self.start = features.periodic, features.grid.dim, start
        self.J = features.config.position_modes
        if self.periodic:
            w = 2 * np.pi * np.arange(1, self.J + 1)[None, :] / features.L[:, None]  # (d, J)
            self.w = torch.as_tensor(w, dtype=torch.float32)
            self.P = 2 * self.J * self.d
        else:
            self.inv_scale = torch.as_tensor(1.0 / features.scale, dtype=torch.float32)
            self.P = self.d

    def __call__(self, s, ds):
        f, g = s[:, self.start:self.start + self.P], ds[:, self.start:self.start + self.P]
        if not self.periodic:
            return g * self.inv_scale
        f, g = f.reshape(-1, self.d, 2 * self.J), g.reshape(-1, self.d, 2 * self.J)
        cos, sin, gcos, gsin = f[..., :self.J], f[..., self.J:], g[..., :self.J], g[..., self.J:]
        return ((gsin * cos - gcos * sin) * self.w).sum(dim=2)


# ----------------------------------------------------------------------------- exploration
class ExplorationNoise:
    """Exploration noise of ``n`` agents with ``dim`` action coordinates over episodes (``config.noise``).

    "gaussian": ``eps_n ~ N(0, sigma^2)`` independent in n; "decaying": the same with
    ``sigma_j = sigma + (sigma_final - sigma) min(1, j / decay_episodes)`` in episode j; "ou": per
    agent and coordinate ``eps_{n+1} = (1 - theta) eps_n + sigma Z_n``, ``eps_0 = 0`` at the start of
    every episode (the Ornstein-Uhlenbeck process ``d eps = -theta eps dt + sigma dW`` stepped with
    dt = 1 environment step, as in Lillicrap et al.): lag-j autocorrelation ``(1 - theta)^j`` and
    stationary variance ``sigma^2 / (1 - (1 - theta)^2)``. Draws come from the Generator passed in.
    """

    def __init__(self, config: DDPGConfig, n: int, dim: int, rng: np.random.Generator):
        self.kind, self.sigma0 = config.noise, config.exploration_noise
        self.final, self.decay, self.theta = config.noise_final, config.noise_decay_episodes, config.ou_theta
        self.n, self.dim, self.rng = n, dim, rng
        self.episode = -1
        self.state = np.zeros((n, dim))

    @property
    def sigma(self) -> float:
        """The noise's sigma in the current episode."""
        if self.kind != "decaying":
            return self.sigma0
        return self.sigma0 + (self.final - self.sigma0) * min(1.0, max(self.episode, 0) / self.decay)

    def reset(self):
        """Start the next episode."""
        self.episode += 1
        self.state[:] = 0.0

    def sample(self) -> np.ndarray:
        """The noise of the next step, shape (n, dim)."""
        z = self.rng.standard_normal((self.n, self.dim))
        if self.kind != "ou":
            return self.sigma * z
        self.state = (1.0 - self.theta) * self.state + self.sigma0 * z
        return self.state.copy()


@dataclass
class Rollout:
    """A noise-free rollout: particle densities (n_steps+1, n_cells) and mean-field summaries per population."""

    times: np.ndarray
    flow: tuple
    summaries: tuple


# ----------------------------------------------------------------------------- learner
class ActorCriticLearner(Learner):
    """DDPG-style learner, one actor and critic per population (module docstring)."""

    Config = DDPGConfig
    PRESETS = PRESETS
    kinds = ("continuous",)
    model_free = True
    densities = "own"
    """Whose densities the actor and critic see unless the config says ("own" or "all")."""
    available = True

    def __init__(self, game, config=None, rng=None):
        super().__init__(game, config, rng)
        c = resolve(self.config, game)
        self.config = c = replace(c, actor_densities=c.actor_densities or self.densities,
                                  critic_densities=c.critic_densities or self.densities)
        torch.set_num_threads(c.threads)
        self.K, self.dim = game.n_populations, game.dim
        self.gamma = 1.0 if c.gamma is None else c.gamma
        bound = game.control_bound
        self.a_max = c.action_bound if bound is None else min(c.action_bound, bound)
        self.deviators = c.exploration == "deviators"
        extra = c.transitions_per_step if self.deviators else 0
        self.env = ParticleEnv(game, c.n_agents + extra, c.n_steps, c.nx, rng=self.rng, n_density=c.n_agents)
        self.features = F = Features(game, self.env.grid, c)
        head = F.time_dim + F.position_dim
        self.actor_layout = Layout(head, (F.mean_field_dim,) * (self.K if c.actor_densities == "all" else 1))
        self.critic_layout = Layout(head, (F.mean_field_dim,) * (self.K if c.critic_densities == "all" else 1))
        self.gen = torch.Generator().manual_seed(int(self.rng.integers(2 ** 62)))
        self.eval_seed = int(self.rng.integers(2 ** 62))
        self.actors, self.critics, self.actor_targets, self.critic_targets = [], [], [], []
        self.actor_opts, self.critic_opts, self.buffers = [], [], []
        n_actor, n_critic = self.actor_layout.width, self.critic_layout.width
        for _ in range(self.K):
            actor = Actor(self.actor_layout, self.dim, c.hidden, c.encoder_width, self.a_max, self.gen,
                          c.final_layer_init, c.activation)
            critic = Critic(self.critic_layout, self.dim, c.hidden, c.encoder_width, self.a_max, self.gen,
                            c.final_layer_init, c.activation, self.env.dt, c.critic_form, c.explicit_control_cost,
                            PositionGradient(F, F.time_dim))
            self.actors.append(actor)
            self.critics.append(critic)
            self.actor_targets.append(frozen_copy(actor))
            self.critic_targets.append(frozen_copy(critic))
            self.actor_opts.append(torch.optim.Adam(actor.parameters(), lr=c.actor_lr, foreach=True))
            self.critic_opts.append(torch.optim.Adam(critic.parameters(), lr=c.critic_lr, foreach=True))
            self.buffers.append(ReplayBuffer(c.buffer_size, s=(n_actor,), z=(n_critic,), a=(self.dim,), r=(),
                                             s1=(n_actor,), z1=(n_critic,), done=()))
        explorers = c.transitions_per_step if self.deviators else self.env.n_agents
        self.noises = [ExplorationNoise(c, explorers, self.dim, self.rng) for _ in range(self.K)]
        self.updates = 0
        self.flow_average = None  # fictitious play: per population (n_steps + 1, n_cells)
        self.flows_averaged = 0
        self._rollout = None
        self.last_losses = (float("nan"), float("nan"))

    # ------------------------------------------------------------------ inputs
    def _inputs(self, obs, faced=None):
        """Actor states (K arrays (N, n_actor)) and critic states (K arrays) from an observation;
        ``faced``: the densities the agents face, if not the observed ones (fictitious play)."""
        F = self.features
        t = F.time(obs["t"])
        summaries = [F.mean_field(m) for m in (obs["m"] if faced is None else faced)]
        actor_s, critic_s = [], []
        for k in range(self.K):
            N = obs["x"][k].shape[0]
            head = np.concatenate([np.broadcast_to(t, (N, t.shape[1])), F.position(obs["x"][k])], axis=1)
            y = self._seen(summaries, k, self.config.actor_densities)
            z = self._seen(summaries, k, self.config.critic_densities)
            actor_s.append(np.concatenate([head, np.broadcast_to(y, (N, y.size))], axis=1))
            critic_s.append(np.concatenate([head, np.broadcast_to(z, (N, z.size))], axis=1))
        return actor_s, critic_s, summaries

    @staticmethod
    def _seen(summaries, k, who):
        """The density summaries population k's network sees (``who``: "own" or "all"), concatenated."""
        return np.concatenate(summaries, axis=-1) if who == "all" else summaries[k]

    def act(self, k: int, states: np.ndarray) -> np.ndarray:
        """The actor's action for actor states (N, n_actor), as float64 (N, d)."""
        with torch.no_grad():
            return self.actors[k](torch.as_tensor(states, dtype=torch.float32)).double().numpy()

    # ------------------------------------------------------------------ training
    def step(self) -> dict:
        c, env = self.config, self.env
        fp = c.mean_field_update == "fictitious"
        mbar = self.flow_average if fp else None
        env.set_flow(mbar)
        faced = (lambda n: None) if mbar is None else (lambda n: [f[n] for f in mbar])  # noqa: E731
        obs, _ = env.reset(seed=int(self.rng.integers(2 ** 62)))
        for noise in self.noises:
            noise.reset()
        flow = [[m] for m in obs["m"]]
        s, z, _ = self._inputs(obs, faced(0))
        returns = np.zeros(self.K)
        for n in range(env.n_steps):
            actions = []
            for k in range(self.K):
                a = self.act(k, s[k])
                if self.deviators:  # only the test particles explore (config.exploration)
                    a[c.n_agents:] += self.noises[k].sample()
                else:
                    a += self.noises[k].sample()
                actions.append(np.clip(a, -self.a_max, self.a_max))
            obs, rewards, terminated, _, _ = env.step(tuple(actions))
            for k in range(self.K):
                flow[k].append(obs["m"][k])
            s1, z1, _ = self._inputs(obs, faced(n + 1))
            for k in range(self.K):
                keep = (np.arange(c.n_agents, env.n_agents) if self.deviators
                        else self.rng.choice(env.n_agents, size=c.transitions_per_step, replace=False))
                T = lambda v: torch.as_tensor(v[keep], dtype=torch.float32)  # noqa: E731
                self.buffers[k].add(s=T(s[k]), z=T(z[k]), a=T(actions[k]), r=T(rewards[k]), s1=T(s1[k]),
                                    z1=T(z1[k]), done=float(terminated))
                returns[k] += rewards[k].mean()
            s, z = s1, z1
            if min(b.size for b in self.buffers) >= max(c.learning_starts, c.batch_size):
                for _ in range(c.updates_per_step):
                    for k in range(self.K):
                        self.update(k)
        if fp:
            flow = [np.array(f) for f in flow]
            if self.flow_average is None:
                self.flow_average = flow
            else:
                w = (self.flows_averaged + 1.0) ** -c.averaging_power
                self.flow_average = [a + w * (b - a) for a, b in zip(self.flow_average, flow)]
            self.flows_averaged += 1
        self.iteration += 1
        self.samples += env.n_agents * env.n_steps * self.K
        self._rollout = None
        return {"iteration": self.iteration, "samples": self.samples, "updates": self.updates,
                "mean_return": float(returns.sum()), "critic_loss": self.last_losses[0],
                "actor_loss": self.last_losses[1], "noise_sigma": self.noises[0].sigma}

    def update(self, k: int):
        """One gradient step of population k's critic and actor, then the Polyak averages."""
        c = self.config
        actor, critic = self.actors[k], self.critics[k]
        s, z, a, r, s1, z1, done = self.buffers[k].sample(c.batch_size, self.gen)
        with torch.no_grad():
            a1 = self.actor_targets[k](s1)
            y = r + self.gamma * (1.0 - done) * self.critic_targets[k](z1, a1, a1)
            a_pi = actor(s)
        critic_loss = ((critic(z, a, a_pi) - y) ** 2).mean()
        self.critic_opts[k].zero_grad()
        critic_loss.backward()
        self.critic_opts[k].step()

        a_new = actor(s)
        # grad_a Q(s, a) at a = mu(s) is grad_a of the advantage part (times dt in the advantage form)
        actor_loss = -critic.advantage(z, a_new).mean()
        self.actor_opts[k].zero_grad()
        actor_loss.backward()
        self.actor_opts[k].step()

        polyak(self.critic_targets[k], self.critics[k], c.tau)
        polyak(self.actor_targets[k], self.actors[k], c.tau)
        self.updates += 1
        self.last_losses = (critic_loss.item(), actor_loss.item())

    # ------------------------------------------------------------------ output
    def rollout(self) -> Rollout:
        """Noise-free rollout of the current actors with ``eval_agents`` particles (fixed seed; cached).

        The actors' mean-field input is the rollout's own density, or under fictitious play the
        averaged flow ``mbar`` they learned to answer (so the learner's feedback is
        ``alpha_k(t, x) = mu_k(t, x, mbar_k(t))``, the best response fictitious play outputs).
        """
        if self._rollout is None:
            mbar = self.flow_average
            env = ParticleEnv(self.game, self.config.eval_agents, self.config.n_steps, self.config.nx)
            obs, _ = env.reset(seed=self.eval_seed)
            flows = [[m] for m in obs["m"]]
            times = [0.0]
            for n in range(env.n_steps):
                s, _, _ = self._inputs(obs, None if mbar is None else [f[n] for f in mbar])
                obs, _, _, _, _ = env.step(tuple(self.act(k, s[k]) for k in range(self.K)))
                times.append(obs["t"])
                for k in range(self.K):
                    flows[k].append(obs["m"][k])
            faced = flows if mbar is None else mbar
            summaries = tuple(np.array([self.features.mean_field(m) for m in f]) for f in faced)
            self._rollout = Rollout(np.array(times), tuple(np.array(f) for f in flows), summaries)
        return self._rollout

    def feedback(self, times: np.ndarray, points: np.ndarray, rollout: Rollout | None = None) -> list:
        """alpha_k(t_n, x_j) = mu_k(t_n, x_j, m_k^N(t)) for times (nt,) and points (d, P): K arrays (nt, d, P).

        The density input at t_n is the rollout's at the last particle step t <= t_n.
        """
        ro = self.rollout() if rollout is None else rollout
        F = self.features
        times = np.asarray(times, dtype=float)
        idx = np.clip(np.floor(times / self.env.dt + 1e-9).astype(int), 0, self.env.n_steps - 1)
        P = points.shape[1]
        pos = np.tile(F.position(points.T), (len(times), 1))
        t = np.repeat(F.time(times), P, axis=0)
        out = []
        for k in range(self.K):
            mf = np.repeat(self._seen([sm[idx] for sm in ro.summaries], k, self.config.actor_densities), P, axis=0)
            a = self.act(k, np.concatenate([t, pos, mf], axis=1))
            out.append(a.reshape(len(times), P, self.dim).transpose(0, 2, 1).copy())
        return out

    @property
    def policy(self) -> tuple:
        """Per population the feedback ``alpha_k(t, x)`` (x of shape (d, P) -> (d, P)) of the current actor."""
        ro = self.rollout()
        return tuple(_Feedback(self, k, ro) for k in range(self.K))


class _Feedback:
    """alpha_k(t, x) of a learner at a fixed rollout; callable as ``evaluate_control`` expects."""

    def __init__(self, learner, k, rollout):
        self.learner, self.k, self.rollout = learner, k, rollout

    def __call__(self, t, x):
        x = np.asarray(x, dtype=float).reshape(self.learner.dim, -1)
        return self.learner.feedback(np.array([float(t)]), x, self.rollout)[self.k][0]

