"""Particle version of a continuous mean field game: N agents per population, Euler–Maruyama.

For population k = 1..K, agent i moves on the game's domain D by

    X_{n+1} = X_n + (alpha_n + b_k(t_n, X_n, m_n)) dt + sigma_k sqrt(dt) Z_n,   Z_n ~ N(0, I),

with ``dt = T / n_steps`` and ``t_n = n dt``; a torus wraps positions, a box reflects them at
its walls (the particle counterpart of the PDE's no-flux walls). The population state is the
empirical density on the cell-centred PDE grid (``reference_solvers.pde.grid``):
``m_k^N(x_j) = #{i: X_i in cell j} / (N dv)``, so ``sum_j m_k^N(x_j) dv = 1``.

Rewards follow the timing of the implicit PDE scheme (``reference_solvers.pde.scheme``): the
action taken at t_n pays its control cost and the running coupling at the next state, with the
next empirical densities,

    r_n = -dt (|alpha_n|^2 / 2 + f_k(t_{n+1}, X_{n+1}, m_{n+1})),

and the last step (n = n_steps - 1, reaching T) also pays ``-g_k(X_T, m_T)``. Couplings and
drifts are evaluated on the grid points with the empirical densities (as the PDE solver does)
and linearly interpolated to the agents. An episode terminates at T (``terminated=True``; the
horizon is part of the game, so a learner must not bootstrap past it); ``truncated`` is
always False.

Frozen mean field (fictitious play). ``set_flow(flow)`` fixes the densities the agents face:
drift and costs at step n then use ``flow[k][n]`` and ``flow[k][n + 1]`` (arrays (n_steps + 1,
n_cells) per population) instead of the empirical densities, which are still observed as ``m``
(they are the flow the agents' current behaviour induces). ``set_flow(None)`` goes back to the
empirical densities.

Observations are ``{"t": t_n, "x": (X_1, ..., X_K), "m": (m_1^N, ..., m_K^N)}`` with ``X_k`` of
shape (N, d) and ``m_k^N`` of shape (n_cells,); actions and rewards are tuples over
populations of arrays (N, d) (or (N,) in 1D) and (N,). Everything is vectorised over agents;
all randomness comes from the environment's ``numpy.random.Generator`` (``reset(seed=...)``).

Test particles. With ``n_density = M < N`` only the first M agents of each population make the
density ``m`` (``#{i <= M: X_i in cell j} / (M dv)``); the other N - M move and pay like the rest
but do not shape the mean field: a learner's exploring agents are then infinitesimal deviators,
as in the definition of a best response, and do not blur the flow the population plays.
"""
from __future__ import annotations

import numpy as np

from reference_solvers.pde.grid import Grid


def default_grid(game) -> tuple:
    """(nx, nt) of the PDE grid on which a continuous game is scored (and histogrammed)."""
    return GRIDS.get(game.id, (100 if game.dim == 1 else 32, 50))


GRIDS = {
    "lq-continuous-v0": (120, 50),
    "lq-2pop-continuous-v0": (120, 50),
    "crowd-continuous-v0": (100, 50),
    "segregation-2pop-v0": (200, 100),
    "exit-room-2d-v0": (32, 50),
}
"""Scoring grids (cells per axis, time steps) per game id; other games use 100 (1D) or 32 (2D) by 50."""


class Interpolator:
    """Linear interpolation of values at the cell centres of a grid to arbitrary points.

    On a torus the interpolation wraps around; in a box, points between a wall and the first
    centre take the value of that centre (the values are cell averages there).
    """

    def __init__(self, grid: Grid):
        self.grid = grid
        self.lo = np.array(grid.lo)
        self.h = grid.h
        self.shape = grid.shape

    def weights(self, X: np.ndarray):
        """For points X (N, d): per axis the lower index, upper index and upper weight."""
        out = []
        for a, n in enumerate(self.shape):
            s = (X[:, a] - self.lo[a]) / self.h[a] - 0.5
            i0 = np.floor(s)
            w = s - i0
            i0 = i0.astype(np.int64)
            i1 = i0 + 1
            if self.grid.periodic:
                i0 %= n
                i1 %= n
            else:
                below, above = i0 < 0, i1 > n - 1
                w = np.where(below, 1.0, np.where(above, 0.0, w))
                i0 = np.clip(i0, 0, n - 1)
                i1 = np.clip(i1, 0, n - 1)
            out.append((i0, i1, w))
        return out

    def __call__(self, values: np.ndarray, X: np.ndarray, weights=None) -> np.ndarray:
        """values: (..., n_cells) on the grid; returns (..., N) at the points X (N, d)."""
        wts = self.weights(X) if weights is None else weights
        if len(self.shape) == 1:
            i0, i1, w = wts[0]
            return values[..., i0] * (1.0 - w) + values[..., i1] * w
        (a0, a1, wa), (b0, b1, wb) = wts
        ny = self.shape[1]
        return ((1 - wa) * (1 - wb) * values[..., a0 * ny + b0] + (1 - wa) * wb * values[..., a0 * ny + b1]
                + wa * (1 - wb) * values[..., a1 * ny + b0] + wa * wb * values[..., a1 * ny + b1])


class ParticleEnv:
    """N agents per population of a continuous game, simulated by Euler–Maruyama (module docstring).

    ``n_agents``: agents per population; ``n_steps``: time steps of the horizon; ``nx``: cells per
    axis of the histogram grid (default: the game's scoring grid, ``default_grid``);
    ``rng``: the Generator used until ``reset(seed=...)`` replaces it.
    """

    metadata = {"render_modes": []}

    def __init__(self, game, n_agents: int = 1000, n_steps: int = 50, nx=None, rng: np.random.Generator | None = None,
                 n_density: int | None = None):
        if getattr(game, "kind", None) != "continuous":
            raise ValueError(f"ParticleEnv needs a continuous game (kind 'continuous'), got {game!r}")
        for name, v in (("n_agents", n_agents), ("n_steps", n_steps)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"ParticleEnv: {name} must be a positive integer, got {v!r}")
        nx = default_grid(game)[0] if nx is None else nx
        self.game = game
        self.K = game.n_populations
        self.dim = game.dim
        self.n_agents = int(n_agents)
        if n_density is not None and (isinstance(n_density, bool) or not isinstance(n_density, (int, np.integer))
                                      or not 1 <= n_density <= n_agents):
            raise ValueError(f"ParticleEnv: n_density must be an integer in [1, n_agents], got {n_density!r}")
        self.n_density = self.n_agents if n_density is None else int(n_density)
        self.n_steps = int(n_steps)
        self.horizon = game.horizon
        self.dt = game.horizon / self.n_steps
        self.grid = Grid.from_domain(game.domain, nx)
        self.points = self.grid.points
        self.dv = self.grid.dv
        self.interp = Interpolator(self.grid)
        self.sigmas = np.array([p.sigma for p in game.populations])
        self.bound = game.control_bound
        self.rng = rng if rng is not None else np.random.default_rng()
        self._m0_probs = []
        for k in range(self.K):
            m0 = game.m0(k, self.points)
            if not np.all(np.isfinite(m0)) or np.any(m0 < 0) or m0.sum() <= 0:
                raise ValueError(f"game {game.id}, population {k}: m0 must be finite, >= 0 and not all zero")
            self._m0_probs.append(m0 / m0.sum())
        self.n = 0
        self.X = None
        self.m = None
        self.flow = None

    def set_flow(self, flow):
        """Fix the densities the agents face (module docstring); None = the empirical densities."""
        if flow is None:
            self.flow = None
            return
        flow = tuple(np.asarray(f, dtype=float) for f in flow)
        if len(flow) != self.K or any(f.shape != (self.n_steps + 1, self.grid.size) for f in flow):
            raise ValueError(f"ParticleEnv.set_flow: expected {self.K} arrays of shape "
                             f"({self.n_steps + 1}, {self.grid.size}), got {[f.shape for f in flow]}")
        if not all(np.all(np.isfinite(f)) and f.min() >= 0 for f in flow):
            raise ValueError("ParticleEnv.set_flow: densities must be finite and >= 0")
        self.flow = flow

    # ------------------------------------------------------------------ state
    def histogram(self, X: np.ndarray) -> np.ndarray:
        """Empirical density on the grid, ``#{i in cell j} / (N dv)``, of points X (N, d)."""
        idx = np.zeros(X.shape[0], dtype=np.int64)
        for a, n in enumerate(self.grid.shape):
            c = np.floor((X[:, a] - self.grid.lo[a]) / self.grid.h[a]).astype(np.int64)
            idx = idx * n + np.clip(c, 0, n - 1)
        return np.bincount(idx, minlength=self.grid.size) / (X.shape[0] * self.dv)

    def _observation(self):
        return {"t": self.n * self.dt, "x": tuple(x.copy() for x in self.X), "m": tuple(m.copy() for m in self.m)}

    def _confine(self, X):
        """Wrap (torus) or reflect (box) positions into the domain."""
        lo, L = np.array(self.grid.lo), np.array(self.grid.hi) - np.array(self.grid.lo)
        y = X - lo
        if self.grid.periodic:
            return lo + np.mod(y, L)
        y = np.mod(y, 2 * L)
        return lo + np.where(y > L, 2 * L - y, y)

    def sample_initial(self, k: int, n: int) -> np.ndarray:
        """n draws from m0_k as the PDE sees it: a cell with probability m0(x_j) dv, then uniform in it."""
        cells = self.rng.choice(self.grid.size, size=n, p=self._m0_probs[k])
        centres = self.points[:, cells].T
        return self._confine(centres + (self.rng.random((n, self.dim)) - 0.5) * self.grid.h)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, seed: int | None = None, options=None):
        """Start an episode: X_0 ~ m0 per population. ``seed`` reseeds the environment's Generator."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.n = 0
        self.X = [self.sample_initial(k, self.n_agents) for k in range(self.K)]
        self.m = [self.histogram(x[:self.n_density]) for x in self.X]
        return self._observation(), {"step": 0}

    def _check_actions(self, actions):
        if self.K == 1 and isinstance(actions, np.ndarray):
            actions = (actions,)
        if not isinstance(actions, (tuple, list)) or len(actions) != self.K:
            raise ValueError(f"ParticleEnv.step: expected a tuple of {self.K} action arrays (one per population)")
        out = []
        for k, a in enumerate(actions):
            a = np.asarray(a, dtype=float)
            if a.shape == (self.n_agents,) and self.dim == 1:
                a = a[:, None]
            if a.shape != (self.n_agents, self.dim):
                raise ValueError(f"ParticleEnv.step: actions of population {k} have shape {a.shape}, expected "
                                 f"({self.n_agents}, {self.dim})")
            if not np.all(np.isfinite(a)):
                raise ValueError(f"ParticleEnv.step: actions of population {k} are not all finite")
            if self.bound is not None and np.abs(a).max() > self.bound * (1 + 1e-12):
                raise ValueError(f"ParticleEnv.step: population {k} exceeds the control bound {self.bound} "
                                 f"(max |a| = {np.abs(a).max():.4g})")
            out.append(a)
        return out

    def step(self, actions):
        """Advance all agents by dt; returns (obs, rewards, terminated, truncated, info)."""
        if self.X is None:
            raise RuntimeError("ParticleEnv.step called before reset()")
        if self.n >= self.n_steps:
            raise RuntimeError("ParticleEnv.step called after the episode terminated; call reset()")
        a = self._check_actions(actions)
        game, t, t1, dt = self.game, self.n * self.dt, (self.n + 1) * self.dt, self.dt
        ms = tuple(self.m) if self.flow is None else tuple(f[self.n] for f in self.flow)
        Xn = []
        for k in range(self.K):
            v = a[k]
            if game.has_drift(k):
                b = game.drift(k, t, self.points, self.dv, ms)  # (d, n_cells)
                v = v + self.interp(b, self.X[k]).T
            noise = self.rng.standard_normal(self.X[k].shape)
            Xn.append(self._confine(self.X[k] + v * dt + self.sigmas[k] * np.sqrt(dt) * noise))
        self.X = Xn
        self.m = [self.histogram(x[:self.n_density]) for x in Xn]
        self.n += 1
        terminated = self.n == self.n_steps
        ms1 = tuple(self.m) if self.flow is None else tuple(f[self.n] for f in self.flow)
        rewards = []
        for k in range(self.K):
            wts = self.interp.weights(Xn[k])
            f = self.interp(game.running_cost(k, t1, self.points, self.dv, ms1), Xn[k], wts)
            r = -dt * (0.5 * (a[k] ** 2).sum(axis=1) + f)
            if terminated:
                r = r - self.interp(game.terminal_cost(k, self.points, self.dv, ms1), Xn[k], wts)
            rewards.append(r)
        return self._observation(), tuple(rewards), terminated, False, {"step": self.n}
