"""Continuous mean field games: controlled diffusions coupled through their densities.

Population k moves by ``dX = (alpha + b_k(t, X, m)) dt + sigma_k dW`` on a domain D
(a 1D interval or 2D box with reflecting (Neumann) walls, or a torus), pays the
running cost ``|alpha|^2 / 2 + f_k(t, X, m_1, ..., m_K)`` and the terminal cost
``g_k(X, m_1(T), ..., m_K(T))``, starting from the density ``m0_k``. ``alpha`` may be
bounded componentwise, ``|alpha_i| <= control_bound``. With ``nu_k = sigma_k^2 / 2`` and
``H(p) = sup_alpha(-alpha.p - |alpha|^2/2)`` (``|p|^2/2`` when unbounded), the equilibrium
solves

    -u_t - nu Lap u + H(grad u) - b.grad u = f(t, x, m),   u(T) = g(x, m(T)),
     m_t - nu Lap m - div(m (grad_p H(grad u) - b))  = 0,   m(0) = m0,

with the optimal feedback ``alpha* = -grad_p H(grad u)`` (``-grad u`` when unbounded).
The couplings f, g and the drifts b are sums of small terms (``LogDensity``,
``PowerDensity``, ``Convolution``, ``MeanQuadratic``, ``Potential``; ``MeanReversion``
for b), each naming the population whose density it reads (``source``), so cross terms
between populations are written the same way as self terms.

Terms are evaluated on a set of points ``x`` of shape ``(d, N)`` carrying the density
values ``m[l]`` (each of shape ``(N,)``) and cell volume ``dv``, so ``int m = sum(m) dv``.
Values also accept a batch of times: ``t`` of shape ``(B, 1)`` and densities ``(B, N)``
(solvers evaluate all time steps at once).
Each term also gives its derivative in those density values (``jacobian``), used by
Newton solvers: a list of ``(source, kind, data)`` with kind ``"diag"`` (a vector),
``"outer"`` (a pair ``(c, w)`` meaning ``c w^T``) or ``"dense"`` (an N x N matrix); for a
batch, vectors ``"diag"`` and ``c`` carry the batch axis too (``w`` and dense matrices do not
depend on m in the terms provided, so they are shared).

This module only states games; ``reference_solvers.pde`` solves them and
``reference_solvers.pde.discretize`` turns them into finite games.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgbench.games.registry import register

LOG_FLOOR = 1e-300
"""Densities are clipped below at this value inside ``log``."""


# ----------------------------------------------------------------------------- domain
@dataclass(frozen=True)
class Domain:
    """A box ``[lo_1, hi_1] x ... x [lo_d, hi_d]`` (d = 1 or 2), periodic or with walls."""

    lo: tuple
    hi: tuple
    periodic: bool = False

    def __post_init__(self):
        lo, hi = tuple(float(v) for v in np.atleast_1d(self.lo)), tuple(float(v) for v in np.atleast_1d(self.hi))
        if len(lo) != len(hi) or len(lo) not in (1, 2):
            raise ValueError(f"domain: lo and hi must both have 1 or 2 entries, got {lo} and {hi}")
        if any(not np.isfinite(a) or not np.isfinite(b) or b <= a for a, b in zip(lo, hi)):
            raise ValueError(f"domain: need finite lo < hi on every axis, got lo={lo}, hi={hi}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def dim(self) -> int:
        return len(self.lo)

    @property
    def length(self) -> np.ndarray:
        return np.array(self.hi) - np.array(self.lo)

    def displacement(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``x - y`` per axis (shape (d, ...)), wrapped to the nearest image on a torus."""
        dx = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
        if self.periodic:
            L = self.length.reshape((-1,) + (1,) * (dx.ndim - 1))
            dx = dx - L * np.round(dx / L)
        return dx


# ----------------------------------------------------------------------------- terms
class Term:
    """One additive piece of a cost (or drift): value and derivative in the densities."""

    source: int | None = None

    def value(self, k, t, x, dv, ms, domain) -> np.ndarray:
        raise NotImplementedError

    def jacobian(self, k, t, x, dv, ms, domain) -> list:
        return []

    def _src(self, k):
        return k if self.source is None else self.source

    @property
    def depends_on_m(self) -> bool:
        return True


@dataclass(frozen=True)
class Potential(Term):
    """``fn(t, x)`` (or ``fn(x)`` for terminal costs): a cost that ignores the densities."""

    fn: object
    terminal: bool = False

    def value(self, k, t, x, dv, ms, domain):
        v = self.fn(x) if self.terminal else self.fn(t, x)
        return np.broadcast_to(np.asarray(v, dtype=float), ms[0].shape).copy()

    @property
    def depends_on_m(self):
        return False


@dataclass(frozen=True)
class LogDensity(Term):
    """``weight * log m_source(x)`` (local; monotone for weight > 0)."""

    weight: float = 1.0
    source: int | None = None

    def value(self, k, t, x, dv, ms, domain):
        return self.weight * np.log(np.maximum(ms[self._src(k)], LOG_FLOOR))

    def jacobian(self, k, t, x, dv, ms, domain):
        return [(self._src(k), "diag", self.weight / np.maximum(ms[self._src(k)], LOG_FLOOR))]


@dataclass(frozen=True)
class PowerDensity(Term):
    """``weight * m_source(x) ** alpha`` (local)."""

    weight: float = 1.0
    alpha: float = 1.0
    source: int | None = None

    def value(self, k, t, x, dv, ms, domain):
        return self.weight * np.maximum(ms[self._src(k)], 0.0) ** self.alpha

    def jacobian(self, k, t, x, dv, ms, domain):
        m = np.maximum(ms[self._src(k)], LOG_FLOOR)
        return [(self._src(k), "diag", self.weight * self.alpha * m ** (self.alpha - 1.0))]


@dataclass(frozen=True)
class Convolution(Term):
    """``weight * int kernel(x - y) m_source(y) dy`` (nonlocal); ``kernel`` takes displacements (d, ...)."""

    kernel: object
    weight: float = 1.0
    source: int | None = None

    def _matrix(self, x, dv, domain):
        disp = domain.displacement(x[:, :, None], x[:, None, :])
        return self.weight * np.asarray(self.kernel(disp), dtype=float) * dv

    def value(self, k, t, x, dv, ms, domain):
        return ms[self._src(k)] @ self._matrix(x, dv, domain).T

    def jacobian(self, k, t, x, dv, ms, domain):
        return [(self._src(k), "dense", self._matrix(x, dv, domain))]


def _mean(x, dv, m):
    """Mean of density m (shape (..., N)), with a trailing axis for broadcasting against x."""
    return (np.einsum("...i,i->...", m, x[0]) * dv)[..., None]


@dataclass(frozen=True)
class MeanQuadratic(Term):
    """``weight / 2 * (scale * mbar + offset - x)^2`` with ``mbar = int y m_source(y) dy`` (1D; nonlocal
    through the mean): a quadratic pull towards the target ``scale * mbar + offset`` (the mean itself
    by default)."""

    weight: float = 1.0
    source: int | None = None
    scale: float = 1.0
    offset: float = 0.0

    def _gap(self, k, x, dv, ms):
        return self.scale * _mean(x, dv, ms[self._src(k)]) + self.offset - x[0]

    def value(self, k, t, x, dv, ms, domain):
        return 0.5 * self.weight * self._gap(k, x, dv, ms) ** 2

    def jacobian(self, k, t, x, dv, ms, domain):
        z = self._gap(k, x, dv, ms)
        return [(self._src(k), "outer", (self.weight * self.scale * z, x[0] * dv))]


@dataclass(frozen=True)
class MeanReversion(Term):
    """Drift ``rate * (mbar - x)`` with ``mbar`` the mean of ``m_source`` (1D)."""

    rate: float = 1.0
    source: int | None = None

    def value(self, k, t, x, dv, ms, domain):
        return self.rate * (_mean(x, dv, ms[self._src(k)]) - x[0])

    def jacobian(self, k, t, x, dv, ms, domain):
        return [(self._src(k), "outer", (np.full(np.shape(ms[0]), self.rate), x[0] * dv))]


# ----------------------------------------------------------------------------- game
@dataclass(frozen=True)
class ContinuousPopulation:
    """One population: initial density ``m0(x)`` (unnormalised is fine), volatility, costs, drift.

    ``running`` and ``terminal`` are tuples of terms summed into f_k and g_k; ``drift`` is a
    tuple of terms summed into b_k (1D), or None for no drift.
    """

    name: str
    m0: object
    sigma: float
    running: tuple = ()
    terminal: tuple = ()
    drift: tuple = ()

    @property
    def nu(self) -> float:
        return 0.5 * self.sigma ** 2


class ContinuousGame:
    """A continuous mean field game (see the module docstring): domain, horizon, populations.

    ``running_cost(k, t, x, dv, ms)``, ``terminal_cost(k, x, dv, ms)`` and ``drift(k, t, x, dv, ms)``
    evaluate the model on points ``x`` (d, N) with densities ``ms`` (tuple of (N,) arrays);
    the ``*_jacobian`` methods give their derivatives in the density values.
    """

    id = "continuous"
    kind = "continuous"
    description = ""
    source = ""

    def __init__(self, domain: Domain, horizon: float, populations, control_bound: float | None = None,
                 params: dict | None = None):
        if isinstance(populations, ContinuousPopulation):
            populations = (populations,)
        populations = tuple(populations)
        if not isinstance(domain, Domain):
            raise ValueError(f"game {self.id}: domain must be a Domain, got {type(domain).__name__}")
        if not (np.isfinite(horizon) and horizon > 0):
            raise ValueError(f"game {self.id}: horizon must be a positive number, got {horizon!r}")
        if not populations:
            raise ValueError(f"game {self.id}: needs at least one population")
        for k, p in enumerate(populations):
            if not isinstance(p, ContinuousPopulation):
                raise ValueError(f"game {self.id}, population {k}: expected a ContinuousPopulation")
            if not (np.isfinite(p.sigma) and p.sigma > 0):
                raise ValueError(f"game {self.id}, population {k} ({p.name}): sigma must be > 0, got {p.sigma!r}")
            for term in p.running + p.terminal + p.drift:
                src = getattr(term, "source", None)
                if src is not None and not 0 <= src < len(populations):
                    raise ValueError(f"game {self.id}, population {k} ({p.name}): term {term!r} reads population "
                                     f"{src}, but the game has {len(populations)}")
            if p.drift and domain.dim != 1:
                raise ValueError(f"game {self.id}, population {k}: drift terms are 1D only")
        if control_bound is not None and not control_bound > 0:
            raise ValueError(f"game {self.id}: control_bound must be > 0 or None, got {control_bound!r}")
        self.domain = domain
        self.horizon = float(horizon)
        self.populations = populations
        self.control_bound = None if control_bound is None else float(control_bound)
        self.params = dict(params or {})

    def __repr__(self):
        return (f"<ContinuousGame {self.id} T={self.horizon} dim={self.domain.dim} "
                f"{'torus' if self.domain.periodic else 'box'} K={self.n_populations}>")

    @property
    def n_populations(self) -> int:
        return len(self.populations)

    @property
    def dim(self) -> int:
        return self.domain.dim

    def m0(self, k: int, x: np.ndarray) -> np.ndarray:
        """Population k's initial density at points x (as given, not normalised)."""
        return np.broadcast_to(np.asarray(self.populations[k].m0(x), dtype=float), x.shape[1:]).copy()

    def _sum(self, terms, k, t, x, dv, ms):
        out = np.zeros(np.shape(ms[0]))
        for term in terms:
            out += term.value(k, t, x, dv, ms, self.domain)
        return out

    def _jac(self, terms, k, t, x, dv, ms):
        out = []
        for term in terms:
            out.extend(term.jacobian(k, t, x, dv, ms, self.domain))
        return out

    def running_cost(self, k, t, x, dv, ms):
        return self._sum(self.populations[k].running, k, t, x, dv, ms)

    def running_jacobian(self, k, t, x, dv, ms):
        return self._jac(self.populations[k].running, k, t, x, dv, ms)

    def terminal_cost(self, k, x, dv, ms):
        return self._sum(self.populations[k].terminal, k, None, x, dv, ms)

    def terminal_jacobian(self, k, x, dv, ms):
        return self._jac(self.populations[k].terminal, k, None, x, dv, ms)

    def has_drift(self, k: int) -> bool:
        return bool(self.populations[k].drift)

    def drift(self, k, t, x, dv, ms):
        """b_k at the points, shape (d, N), or (B, d, N) for a batch (zero without drift terms)."""
        if not self.populations[k].drift:
            return np.zeros(np.shape(ms[0])[:-1] + x.shape)
        return self._sum(self.populations[k].drift, k, t, x, dv, ms)[..., None, :]

    def drift_jacobian(self, k, t, x, dv, ms):
        return self._jac(self.populations[k].drift, k, t, x, dv, ms)


# ----------------------------------------------------------------------------- registered games
def _gaussian(mean, std):
    return lambda x: np.exp(-0.5 * ((x[0] - mean) / std) ** 2)


def _check(game_id, **positive):
    for name, v in positive.items():
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"game {game_id}: {name} must be a positive number, got {v!r}")


@register("lq-continuous-v0", kind="continuous",
          description="linear-quadratic systemic-risk game on a wide interval; closed-form equilibrium",
          source="Carmona, Fouque & Sun 2015; Perrin et al. 2020 sec. 4.1 (REFERENCES.md lq-v0 closed form)")
def lq_continuous(horizon: float = 1.0, sigma: float = 1.0, K: float = 0.0, q: float = 0.01,
                  kappa: float = 0.5, c: float = 1.0, x0: float = 0.5, s0: float = 0.5,
                  half_width: float = 6.0) -> ContinuousGame:
    """LQ game: ``dX = (a + K(mbar - X)) dt + sigma dW``, cost ``a^2/2 - q a (mbar - X) + kappa/2 (mbar - X)^2``,
    terminal ``c/2 (mbar_T - X_T)^2``; ``m0 = N(x0, s0^2)``.

    The game lives on R; we solve it on ``[-half_width, half_width]`` with reflecting walls
    (the default 6 leaves the density's tails below 1e-6 of its peak at the walls for the
    defaults, so the walls only touch the value function where no agent is). Writing
    ``alpha = a - q (mbar - x)`` puts it in the standard form: drift ``b = (K + q)(mbar - x)``,
    running coupling ``f = (kappa - q^2)/2 (mbar - x)^2``, ``g = c/2 (mbar - x)^2``; the
    closed-form feedback is ``a* = (q + eta_t)(mbar - x)``, i.e. ``alpha* = eta_t (mbar - x)``
    (``reference_solvers.pde.analytic.lq_solution``).
    """
    gid = "lq-continuous-v0"
    _check(gid, horizon=horizon, sigma=sigma, s0=s0, half_width=half_width)
    if kappa - q ** 2 < 0 or c < 0:
        raise ValueError(f"game {gid}: needs kappa >= q^2 and c >= 0, got kappa={kappa}, q={q}, c={c}")
    if abs(x0) > 0.5 * half_width:
        raise ValueError(f"game {gid}: x0={x0} is too close to the walls at +-{half_width}")
    drift = (MeanReversion(K + q),) if K + q != 0 else ()
    pop = ContinuousPopulation("agents", _gaussian(x0, s0), sigma,
                               running=(MeanQuadratic(kappa - q ** 2),), terminal=(MeanQuadratic(c),), drift=drift)
    return ContinuousGame(Domain((-half_width,), (half_width,), periodic=False), horizon, pop)


@register("lq-2pop-continuous-v0", kind="continuous",
          description="two heterogeneous LQ populations on a wide interval, each tracking a target set by the "
                      "other's mean; semi-analytic equilibrium",
          source="linear-quadratic multi-population MFG (Bensoussan, Frehse & Yam 2013; Carmona & Delarue 2018 "
                 "vol. I sec. 2.5, multi-population: vol. I sec. 7.1); issue 17")
def lq_2pop_continuous(horizon: float = 1.0, sigma_1: float = 0.8, sigma_2: float = 0.5, kappa_1: float = 1.0,
                       kappa_2: float = 2.0, c_1: float = 2.0, c_2: float = 0.5, x0_1: float = -1.0,
                       x0_2: float = 1.0, s0_1: float = 0.4, s0_2: float = 0.6, offset: float = 0.5,
                       anchor: float = 0.0, weight: float = 0.5, half_width: float = 6.0) -> ContinuousGame:
    """Two populations k = 1, 2 on the line: ``dX = alpha dt + sigma_k dW``, running cost
    ``alpha^2/2 + kappa_k/2 (x - z_k(t))^2``, terminal cost ``c_k/2 (x - z_k(T))^2``, ``m0_k = N(x0_k, s0_k^2)``,
    with targets set by the other population's mean:

        z_1(t) = mbar_2(t) + offset               (population 1 follows population 2 at an offset d),
        z_2(t) = anchor + weight * mbar_1(t)      (population 2 stays near a + w mbar_1).

    The populations differ in sigma, kappa, c and their initial laws. The equilibrium is a linear
    feedback ``alpha_k = q_k(t) - P_k(t) x`` (a Riccati equation per population and a linear
    forward-backward system for the means; ``reference_solvers.pde.analytic.lq2pop_solution``).
    As for lq-continuous-v0 the game lives on R and is solved on ``[-half_width, half_width]`` with
    reflecting walls (the defaults keep the densities' tails below 1e-6 of their peaks at the walls).
    Populations are indexed 0, 1 in code (parameters ``_1``, ``_2``).
    """
    gid = "lq-2pop-continuous-v0"
    _check(gid, horizon=horizon, sigma_1=sigma_1, sigma_2=sigma_2, kappa_1=kappa_1, kappa_2=kappa_2, s0_1=s0_1,
           s0_2=s0_2, half_width=half_width)
    if c_1 < 0 or c_2 < 0:
        raise ValueError(f"game {gid}: needs c_1, c_2 >= 0, got {c_1}, {c_2}")
    for name, x0 in (("x0_1", x0_1), ("x0_2", x0_2)):
        if abs(x0) > 0.5 * half_width:
            raise ValueError(f"game {gid}: {name}={x0} is too close to the walls at +-{half_width}")
    follower = ContinuousPopulation(
        "follower", _gaussian(x0_1, s0_1), sigma_1,
        running=(MeanQuadratic(kappa_1, source=1, offset=offset),),
        terminal=(MeanQuadratic(c_1, source=1, offset=offset),) if c_1 > 0 else ())
    anchored = ContinuousPopulation(
        "anchored", _gaussian(x0_2, s0_2), sigma_2,
        running=(MeanQuadratic(kappa_2, source=0, scale=weight, offset=anchor),),
        terminal=(MeanQuadratic(c_2, source=0, scale=weight, offset=anchor),) if c_2 > 0 else ())
    return ContinuousGame(Domain((-half_width,), (half_width,), periodic=False), horizon, (follower, anchored))


@register("crowd-continuous-v0", kind="continuous",
          description="1D torus crowd drawn to a bar and averse to its own density (continuous beach bar)",
          source="Perrin et al. 2020 sec. 4.2 (continuous analogue); Achdou & Capuzzo-Dolcetta 2010")
def crowd_continuous(horizon: float = 1.0, sigma: float = 0.3, attraction: float = 1.0,
                     congestion: float = 1.0, bar: float = 0.5, terminal_weight: float = 1.0) -> ContinuousGame:
    """Torus [0, 1); running cost ``congestion * log m - attraction * cos(2 pi (x - bar))``, terminal
    cost ``terminal_weight * (log m - attraction * cos(2 pi (x - bar)))``; m0 uniform."""
    gid = "crowd-continuous-v0"
    _check(gid, horizon=horizon, sigma=sigma, congestion=congestion)
    if terminal_weight < 0:
        raise ValueError(f"game {gid}: terminal_weight must be >= 0, got {terminal_weight}")

    def reward(x):
        return np.cos(2 * np.pi * (x[0] - bar))

    running = (LogDensity(congestion), Potential(lambda t, x: -attraction * reward(x)))
    terminal = ()
    if terminal_weight > 0:
        terminal = (LogDensity(terminal_weight * congestion),
                    Potential(lambda x: -terminal_weight * attraction * reward(x), terminal=True))
    pop = ContinuousPopulation("crowd", lambda x: np.ones(x.shape[1:]), sigma, running=running, terminal=terminal)
    return ContinuousGame(Domain((0.0,), (1.0,), periodic=True), horizon, pop)


@register("exit-room-2d-v0", kind="continuous",
          description="2D room with walls: agents pay a running cost until they reach the exit zone; congestion",
          source="Achdou & Lasry 2019 (crowd motion with exits), simplified; Achdou & Capuzzo-Dolcetta 2010 scheme")
def exit_room_2d(horizon: float = 1.0, sigma: float = 0.2, running_cost: float = 1.0,
                 congestion: float = 0.2, exit_x: float = 0.5, exit_radius: float = 0.15,
                 control_bound: float | None = None) -> ContinuousGame:
    """Box [0, 1]^2 with reflecting walls; the exit zone is the disc of radius ``exit_radius`` around
    ``(exit_x, 1)`` (a door in the top wall). Running cost ``running_cost * (1 - chi(x)) + congestion * m``
    and terminal cost ``running_cost * (1 - chi(x))``, where ``chi`` is a smoothed indicator of the
    exit zone. Agents who reach the zone stop paying; they are not removed (so mass is conserved and
    the exit is a cost-free region rather than an absorbing boundary). m0: a bump in the lower half.
    """
    gid = "exit-room-2d-v0"
    _check(gid, horizon=horizon, sigma=sigma, running_cost=running_cost, exit_radius=exit_radius)
    if congestion < 0:
        raise ValueError(f"game {gid}: congestion must be >= 0, got {congestion}")

    def outside(x):
        r = np.hypot(x[0] - exit_x, x[1] - 1.0)
        return 0.5 * (1.0 + np.tanh((r - exit_radius) / 0.03))

    running = (Potential(lambda t, x: running_cost * outside(x)), PowerDensity(congestion, 1.0))
    terminal = (Potential(lambda x: running_cost * outside(x), terminal=True),)

    def m0(x):
        return np.exp(-((x[0] - 0.5) ** 2 + (x[1] - 0.3) ** 2) / (2 * 0.12 ** 2))

    pop = ContinuousPopulation("crowd", m0, sigma, running=running, terminal=terminal)
    return ContinuousGame(Domain((0.0, 0.0), (1.0, 1.0), periodic=False), horizon, pop, control_bound=control_bound)


@register("segregation-2pop-v0", kind="continuous",
          description="two populations on a 1D torus, each averse to the other's density",
          source="Achdou, Bardi & Cirant 2017, Mean field games models of segregation (M3AS), smooth local variant")
def segregation_2pop(horizon: float = 1.0, sigma: float = 0.3, cross: float = 1.0, self_aversion: float = 0.2,
                     separation: float = 0.3) -> ContinuousGame:
    """Torus [0, 1); population k pays ``cross * m_other(x) + self_aversion * m_k(x)`` (running and
    terminal). Initial densities ``1 +- separation * cos(2 pi x)`` (normalised)."""
    gid = "segregation-2pop-v0"
    _check(gid, horizon=horizon, sigma=sigma)
    if cross < 0 or self_aversion < 0 or not 0 <= separation < 1:
        raise ValueError(f"game {gid}: needs cross >= 0, self_aversion >= 0 and 0 <= separation < 1, "
                         f"got {cross}, {self_aversion}, {separation}")
    pops = []
    for k, sign in ((0, 1.0), (1, -1.0)):
        other = 1 - k
        terms = (PowerDensity(cross, 1.0, source=other), PowerDensity(self_aversion, 1.0, source=k))
        pops.append(ContinuousPopulation(f"pop{k}", lambda x, s=sign: 1.0 + s * separation * np.cos(2 * np.pi * x[0]),
                                         sigma, running=terms, terminal=terms))
    return ContinuousGame(Domain((0.0,), (1.0,), periodic=True), horizon, tuple(pops))
