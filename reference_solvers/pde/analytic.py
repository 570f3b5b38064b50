"""Closed-form equilibria of continuous mean field games, to test the PDE solvers against.

- **LQ game** (``lq-continuous-v0``, REFERENCES.md): with ``R = (K+q)^2 + kappa - q^2``,
  ``d± = -(K+q) ± sqrt(R)`` and ``E = exp((d+ - d-)(T - t))``,
  ``eta_t = [-(kappa - q^2)(E - 1) - c(d+ E - d-)] / [(d- E - d+) - c(E - 1)]`` solves
  ``eta' = 2(K+q) eta + eta^2 - (kappa - q^2)``, ``eta_T = c``. The equilibrium feedback is
  ``a* = (q + eta_t)(mbar - x)``, the mean ``mbar`` stays at its initial value, the value is
  ``u = eta_t/2 (x - mbar)^2 + chi_t`` with ``chi_t = nu int_t^T eta``, and the density stays
  Gaussian with variance ``S' = -2(eta + K + q) S + sigma^2``.
- **Two-population LQ game** (``lq-2pop-continuous-v0``): a Riccati equation per population and a
  linear forward-backward system for the means, solved to 1e-10 (``LQ2PopSolution``, derivation there).
- **Ergodic, first order, torus** (Gomes, Nurbekyan & Prazeres 2016): for
  ``|u'|^2/2 + Hbar = log m - V`` ... with g = log m and zero current,
  ``m = exp(V) / int exp(V)``, ``Hbar = log int exp(V)`` (u constant). Written with our
  costs (f = log m - V): ``lambda + |u'|^2/2 = log m - V`` gives ``lambda = -log int exp(V)``.
- **Ergodic Gaussian on R**: ``lambda - nu u'' + u'^2/2 = beta x^2/2 + log m`` has
  ``u = a x^2/2``, ``a = (-1/nu + sqrt(1/nu^2 + 4 beta))/2``, ``m = N(0, nu/a)`` and
  ``lambda = nu a - log(2 pi nu / a)/2``.
- **Travelling-wave manufactured solution** on the unit torus: ``m = rho(x - c t)`` with
  ``rho = 1 + A cos(2 pi xi)`` and ``u = U(x - c t)``, ``U' = c kappa/rho - c - nu rho'/rho``,
  ``kappa = sqrt(1 - A^2)``, solve the FP equation exactly (no source); the HJB equation holds
  with the running cost ``log m + P(t, x)`` for the potential P returned here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import quad, solve_ivp


# ----------------------------------------------------------------------------- LQ
def lq_eta(t, horizon=1.0, K=0.0, q=0.01, kappa=0.5, c=1.0) -> np.ndarray:
    """eta_t of the LQ game (REFERENCES.md), vectorised in t."""
    t = np.asarray(t, dtype=float)
    R = (K + q) ** 2 + kappa - q ** 2
    if R <= 0:
        raise ValueError(f"lq_eta: needs (K+q)^2 + kappa - q^2 > 0, got {R}")
    dp, dm = -(K + q) + np.sqrt(R), -(K + q) - np.sqrt(R)
    E = np.exp((dp - dm) * (horizon - t))
    return (-(kappa - q ** 2) * (E - 1) - c * (dp * E - dm)) / ((dm * E - dp) - c * (E - 1))


@dataclass(frozen=True)
class LQSolution:
    """The LQ equilibrium for given parameters: feedback, value, mean and Gaussian density."""

    horizon: float
    sigma: float
    K: float
    q: float
    kappa: float
    c: float
    x0: float
    s0: float

    def eta(self, t):
        return lq_eta(t, self.horizon, self.K, self.q, self.kappa, self.c)

    def mean(self, t):
        """mbar_t: constant, equal to x0."""
        return np.full(np.shape(t), self.x0, dtype=float)

    def feedback(self, t, x):
        """The control a* = (q + eta_t)(mbar - x) of REFERENCES.md."""
        return (self.q + self.eta(t)) * (self.x0 - np.asarray(x))

    def alpha(self, t, x):
        """The same control in the game's standard form: alpha* = a* - q (mbar - x) = eta_t (mbar - x)."""
        return self.eta(t) * (self.x0 - np.asarray(x))

    def velocity(self, t, x):
        return (self.eta(t) + self.K + self.q) * (self.x0 - np.asarray(x))

    def value(self, t, x):
        """u(t, x) = eta_t/2 (x - mbar)^2 + nu int_t^T eta_s ds (t scalar)."""
        nu = 0.5 * self.sigma ** 2
        chi = nu * quad(self.eta, t, self.horizon, epsabs=1e-13, epsrel=1e-13)[0]
        return 0.5 * self.eta(t) * (np.asarray(x) - self.x0) ** 2 + chi

    def variance(self, t):
        """S_t, from S' = -2(eta + K + q) S + sigma^2, S_0 = s0^2 (integrated to 1e-12)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        sol = solve_ivp(lambda s, S: -2 * (self.eta(s) + self.K + self.q) * S + self.sigma ** 2,
                        (0.0, self.horizon), [self.s0 ** 2], dense_output=True, rtol=1e-12, atol=1e-14)
        return sol.sol(t)[0]

    def density(self, t, x):
        """The Gaussian density N(mbar, S_t) at x (t scalar)."""
        S = float(self.variance(t)[0])
        return np.exp(-0.5 * (np.asarray(x) - self.x0) ** 2 / S) / np.sqrt(2 * np.pi * S)


def lq_solution(horizon=1.0, sigma=1.0, K=0.0, q=0.01, kappa=0.5, c=1.0, x0=0.5, s0=0.5, **_ignored) -> LQSolution:
    """The closed-form equilibrium of ``lq-continuous-v0`` (accepts the game's params dict)."""
    return LQSolution(horizon, sigma, K, q, kappa, c, x0, s0)


# ----------------------------------------------------------------------------- two-population LQ
@dataclass(frozen=True)
class LQ2PopSolution:
    """Semi-analytic equilibrium of ``lq-2pop-continuous-v0`` (on R).

    **Derivation.** Population k (k = 1, 2) moves by ``dX = alpha dt + sigma_k dW`` and pays
    ``int_0^T alpha^2/2 + kappa_k/2 (X - z_k(t))^2 dt + c_k/2 (X_T - z_k(T))^2``, with the targets
    ``z_1 = mbar_2 + d`` and ``z_2 = a + w mbar_1`` (``d, a, w`` = the game's ``offset, anchor, weight``).
    In an equilibrium the means are deterministic functions of time, so each z_k is a given path
    and agent k solves a tracking problem. Its HJB equation, with ``nu_k = sigma_k^2 / 2``,

        -u_t - nu_k u_xx + u_x^2 / 2 = kappa_k/2 (x - z_k)^2,      u(T, x) = c_k/2 (x - z_k(T))^2,

    has a quadratic solution ``u = P_k/2 x^2 - q_k x + s_k``: matching the powers of x,

        x^2:  P_k' = P_k^2 - kappa_k,                 P_k(T) = c_k,
        x^1:  q_k' = P_k q_k - kappa_k z_k,           q_k(T) = c_k z_k(T),
        x^0:  s_k' = q_k^2/2 - nu_k P_k - kappa_k z_k^2/2,   s_k(T) = c_k z_k(T)^2 / 2,

    and the optimal feedback is ``alpha_k(t, x) = -u_x = q_k(t) - P_k(t) x``. The Riccati equation does
    not involve the other population: it is the one of lq-continuous-v0 with ``K = q = 0`` (``lq_eta``),
    ``P_k = sqrt(kappa_k) [(sqrt(kappa_k) + c_k) E - (sqrt(kappa_k) - c_k)] / [(sqrt(kappa_k) + c_k) E +
    (sqrt(kappa_k) - c_k)]`` with ``E = exp(2 sqrt(kappa_k) (T - t))``, positive for kappa_k > 0, c_k >= 0.
    Under a linear feedback the Fokker-Planck equation keeps the Gaussian initial law Gaussian: its
    mean and variance follow ``mbar_k' = q_k - P_k mbar_k`` and ``S_k' = -2 P_k S_k + sigma_k^2`` (``S_k(0) = s0_k^2``).
    Substituting the targets closes the system for ``y = (mbar_1, mbar_2, q_1, q_2)``:

        mbar_1' = -P_1 mbar_1 + q_1,            mbar_1(0) = x0_1,
        mbar_2' = -P_2 mbar_2 + q_2,            mbar_2(0) = x0_2,
        q_1'    =  P_1 q_1 - kappa_1 (mbar_2 + d),   q_1(T) = c_1 (mbar_2(T) + d),
        q_2'    =  P_2 q_2 - kappa_2 (a + w mbar_1), q_2(T) = c_2 (a + w mbar_1(T)),

    a linear two-point boundary-value problem ``y' = A(t) y + b``. By superposition
    ``y(t) = Y(t) y(0) + y_p(t)`` with the fundamental matrix ``Y`` (``Y(0) = I``) and the particular
    solution ``y_p`` (``y_p(0) = 0``); the two terminal conditions are linear in the unknowns
    ``(q_1(0), q_2(0))``, a 2 x 2 system (an equilibrium exists and is unique when it is regular, which
    the constructor checks). Y and y_p are integrated once (DOP853, rtol 1e-13), the 2 x 2 system solved,
    and the forward problem from the completed y(0) integrated again with dense output; ``residual`` is
    the largest violation of the terminal conditions (<= 1e-10, checked). Given the means, each tracking
    problem is strictly convex, so the quadratic u is its value function and alpha_k its unique optimum.
    """

    horizon: float
    sigma: tuple
    kappa: tuple
    c: tuple
    x0: tuple
    s0: tuple
    offset: float
    anchor: float
    weight: float

    def riccati(self, k, t):
        """P_k(t)."""
        return lq_eta(t, self.horizon, 0.0, 0.0, self.kappa[k], self.c[k])

    def _linear_system(self, t):
        """A(t) and b of y' = A y + b, y = (mbar_1, mbar_2, q_1, q_2)."""
        P1, P2 = self.riccati(0, t), self.riccati(1, t)
        k1, k2 = self.kappa
        A = np.array([[-P1, 0.0, 1.0, 0.0],
                      [0.0, -P2, 0.0, 1.0],
                      [0.0, -k1, P1, 0.0],
                      [-k2 * self.weight, 0.0, 0.0, P2]])
        b = np.array([0.0, 0.0, -k1 * self.offset, -k2 * self.anchor])
        return A, b

    def _terminal(self):
        """B y(T) = e: q_1(T) - c_1 mbar_2(T) = c_1 d and q_2(T) - c_2 w mbar_1(T) = c_2 a."""
        c1, c2 = self.c
        B = np.array([[0.0, -c1, 1.0, 0.0], [-c2 * self.weight, 0.0, 0.0, 1.0]])
        return B, np.array([c1 * self.offset, c2 * self.anchor])

    def _solved(self):
        cached = self.__dict__.get("_cache")
        if cached is not None:
            return cached

        def fundamental(t, z):
            A, b = self._linear_system(t)
            Y, yp = z[:16].reshape(4, 4), z[16:]
            return np.concatenate([(A @ Y).ravel(), A @ yp + b])

        z0 = np.concatenate([np.eye(4).ravel(), np.zeros(4)])
        end = solve_ivp(fundamental, (0.0, self.horizon), z0, method="DOP853", rtol=1e-13, atol=1e-14).y[:, -1]
        YT, ypT = end[:16].reshape(4, 4), end[16:]
        B, e = self._terminal()
        M = B @ YT[:, 2:]
        if np.linalg.cond(M) > 1e10:
            raise ValueError(f"lq-2pop-continuous-v0: the mean-field system is singular for these parameters "
                             f"(condition number {np.linalg.cond(M):.3g}); no unique linear equilibrium")
        x0 = np.array(self.x0, dtype=float)
        q0 = np.linalg.solve(M, e - B @ ypT - B @ YT[:, :2] @ x0)
        y0 = np.concatenate([x0, q0])

        def forward(t, y):
            A, b = self._linear_system(t)
            return A @ y + b

        sol = solve_ivp(forward, (0.0, self.horizon), y0, method="DOP853", rtol=1e-13, atol=1e-14,
                        dense_output=True)
        residual = float(np.abs(B @ sol.y[:, -1] - e).max())
        if residual > 1e-10:
            raise RuntimeError(f"lq-2pop-continuous-v0: terminal conditions met only to {residual:.2e} > 1e-10")

        def variance(t, S):
            return [-2 * self.riccati(k, t) * S[k] + self.sigma[k] ** 2 for k in range(2)]

        var = solve_ivp(variance, (0.0, self.horizon), [s ** 2 for s in self.s0], method="DOP853", rtol=1e-13,
                        atol=1e-14, dense_output=True)
        cached = (sol.sol, var.sol, residual)
        object.__setattr__(self, "_cache", cached)
        return cached

    @property
    def residual(self) -> float:
        """Largest violation of the terminal conditions of the mean system."""
        return self._solved()[2]

    def state(self, t) -> np.ndarray:
        """y(t) = (mbar_1, mbar_2, q_1, q_2), shape (4,) or (4, len(t))."""
        return self._solved()[0](np.asarray(t, dtype=float))

    def mean(self, k, t):
        return self.state(t)[k]

    def intercept(self, k, t):
        """q_k(t)."""
        return self.state(t)[2 + k]

    def target(self, k, t):
        """z_k(t): mbar_2 + d for population 1 (k = 0), a + w mbar_1 for population 2 (k = 1)."""
        y = self.state(t)
        return y[1] + self.offset if k == 0 else self.anchor + self.weight * y[0]

    def alpha(self, k, t, x):
        """The equilibrium feedback alpha_k(t, x) = q_k(t) - P_k(t) x (t scalar)."""
        return self.intercept(k, t) - self.riccati(k, t) * np.asarray(x, dtype=float)

    def variance(self, k, t):
        return self._solved()[1](np.asarray(t, dtype=float))[k]

    def density(self, k, t, x):
        """The Gaussian density N(mbar_k(t), S_k(t)) at x (t scalar)."""
        S = float(self.variance(k, t))
        return np.exp(-0.5 * (np.asarray(x) - self.mean(k, t)) ** 2 / S) / np.sqrt(2 * np.pi * S)


def lq2pop_solution(horizon=1.0, sigma_1=0.8, sigma_2=0.5, kappa_1=1.0, kappa_2=2.0, c_1=2.0, c_2=0.5, x0_1=-1.0,
                    x0_2=1.0, s0_1=0.4, s0_2=0.6, offset=0.5, anchor=0.0, weight=0.5, **_ignored) -> LQ2PopSolution:
    """The semi-analytic equilibrium of ``lq-2pop-continuous-v0`` (accepts the game's params dict)."""
    return LQ2PopSolution(float(horizon), (sigma_1, sigma_2), (kappa_1, kappa_2), (c_1, c_2), (x0_1, x0_2),
                          (s0_1, s0_2), float(offset), float(anchor), float(weight))


# ----------------------------------------------------------------------------- ergodic
def ergodic_torus_first_order(V, x, dx):
    """m = exp(V)/int exp(V) and lambda = -log int exp(V) on a periodic grid (V values at x, cell width dx).

    The integral is a Riemann sum (spectrally accurate for smooth periodic V).
    """
    V = np.asarray(V, dtype=float)
    Z = np.exp(V).sum() * dx
    return np.exp(V) / Z, -np.log(Z)


@dataclass(frozen=True)
class ErgodicGaussian:
    """The explicit ergodic solution of ``lambda - nu u'' + u'^2/2 = beta x^2/2 + log m`` on R."""

    nu: float
    beta: float

    @property
    def a(self) -> float:
        return 0.5 * (-1 / self.nu + np.sqrt(1 / self.nu ** 2 + 4 * self.beta))

    @property
    def variance(self) -> float:
        return self.nu / self.a

    @property
    def ergodic_constant(self) -> float:
        return self.nu * self.a - 0.5 * np.log(2 * np.pi * self.nu / self.a)

    def density(self, x):
        return np.exp(-0.5 * np.asarray(x) ** 2 / self.variance) / np.sqrt(2 * np.pi * self.variance)

    def gradient(self, x):
        return self.a * np.asarray(x)


# ----------------------------------------------------------------------------- manufactured
@dataclass(frozen=True)
class TravellingWave:
    """The travelling-wave manufactured solution on the unit torus (module docstring)."""

    nu: float
    speed: float = 0.5
    amplitude: float = 0.5

    def _xi(self, t, x):
        return np.mod(np.asarray(x) - self.speed * t, 1.0)

    def rho(self, xi):
        return 1.0 + self.amplitude * np.cos(2 * np.pi * xi)

    def _drho(self, xi):
        return -2 * np.pi * self.amplitude * np.sin(2 * np.pi * xi)

    def _ddrho(self, xi):
        return -(2 * np.pi) ** 2 * self.amplitude * np.cos(2 * np.pi * xi)

    @property
    def kappa(self):
        return np.sqrt(1 - self.amplitude ** 2)

    def _U(self, xi):
        A, c = self.amplitude, self.speed
        r = np.sqrt((1 - A) / (1 + A))
        # int_0^xi ds / rho(s) on [0, 1), continuous branch
        F = np.arctan2(r * np.sin(np.pi * xi), np.cos(np.pi * xi)) / (np.pi * self.kappa)
        return c * self.kappa * F - c * xi - self.nu * np.log(self.rho(xi))

    def _dU(self, xi):
        rho = self.rho(xi)
        return self.speed * self.kappa / rho - self.speed - self.nu * self._drho(xi) / rho

    def _ddU(self, xi):
        rho, d1, d2 = self.rho(xi), self._drho(xi), self._ddrho(xi)
        return -self.speed * self.kappa * d1 / rho ** 2 - self.nu * (d2 * rho - d1 ** 2) / rho ** 2

    def density(self, t, x):
        return self.rho(self._xi(t, x))

    def value(self, t, x):
        return self._U(self._xi(t, x))

    def gradient(self, t, x):
        return self._dU(self._xi(t, x))

    def potential(self, t, x):
        """P with ``-u_t - nu u_xx + u_x^2/2 = log m + P`` at the exact solution."""
        xi = self._xi(t, x)
        dU = self._dU(xi)
        return self.speed * dU - self.nu * self._ddU(xi) + 0.5 * dU ** 2 - np.log(self.rho(xi))
