"""Closed-form equilibria of continuous mean field games, to test the PDE solvers against.

- **LQ game** (``lq-continuous-v0``, REFERENCES.md): with ``R = (K+q)^2 + kappa - q^2``,
  ``d± = -(K+q) ± sqrt(R)`` and ``E = exp((d+ - d-)(T - t))``,
  ``eta_t = [-(kappa - q^2)(E - 1) - c(d+ E - d-)] / [(d- E - d+) - c(E - 1)]`` solves
  ``eta' = 2(K+q) eta + eta^2 - (kappa - q^2)``, ``eta_T = c``. The equilibrium feedback is
  ``a* = (q + eta_t)(mbar - x)``, the mean ``mbar`` stays at its initial value, the value is
  ``u = eta_t/2 (x - mbar)^2 + chi_t`` with ``chi_t = nu int_t^T eta``, and the density stays
  Gaussian with variance ``S' = -2(eta + K + q) S + sigma^2``.
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
