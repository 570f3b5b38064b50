"""Conformance of a game to the game contract, checked against independent computations.

``check_game(game)`` evaluates a few policy profiles (the uniform one and random ones,
or those given) and checks, for every population:

- structure: kind, populations, mu0, horizon or discount;
- shapes and stochastic rows of ``rewards``, ``transitions`` (and ``terminal``) at every
  time of the induced flow (the stationary mean field for stationary games);
- determinism: the same input twice gives the same output, bit for bit;
- mass conservation: the flow (or the stationary distribution) is a probability
  vector at every time, and a stationary distribution is invariant under its kernel;
- exploitability >= 0 (to round-off);
- exact values against Monte Carlo: the sampled mean return of agents simulated along
  the flow lies within 4 standard errors of ``<mu0, V^pi[0]>`` (stationary games:
  truncated discounted returns from the stationary distribution, the truncation bias
  added to the tolerance), and the simulated final-state histogram within 5 standard
  errors of the exact flow at the horizon, state by state.

A failure raises :class:`ConformanceError` naming the game, the check and the numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfgbench.core.kernels import push_forward
from mfgbench.core.montecarlo import sample_returns
from mfgbench.core.policy import as_profile, policy_shape, uniform_policy
from mfgbench.games.base import MeanField, check_distribution, check_rewards, check_transitions

VALUE_SE = 4.0
HIST_SE = 5.0


class ConformanceError(AssertionError):
    """A game broke its contract or disagreed with an independent computation."""


@dataclass
class ConformanceReport:
    """What ``check_game`` checked: one entry per (profile, population) Monte Carlo comparison."""

    game: str
    kind: str
    profiles: int = 0
    comparisons: list = field(default_factory=list)

    def __str__(self):
        lines = [f"{self.game} ({self.kind}): {self.profiles} profiles checked"]
        lines += [f"  profile {c['profile']} pop {c['population']}: exact {c['exact']:.6g}, "
                  f"MC {c['mc']:.6g} +- {c['stderr']:.2g}" for c in self.comparisons]
        return "\n".join(lines)


def random_profile(game, rng: np.random.Generator, concentration: float = 1.0) -> tuple:
    """A profile with every row drawn from Dirichlet(concentration) (small: near-deterministic)."""
    return tuple(rng.dirichlet(np.full(game.populations[k].n_actions, concentration),
                               size=policy_shape(game, k)[:-1]) for k in range(game.n_populations))


def check_game(game, rng: np.random.Generator | None = None, policies=None, n_agents: int = 20000):
    """Check ``game`` against the contract (see the module docstring); returns a ConformanceReport."""
    rng = np.random.default_rng(0) if rng is None else rng
    kind = getattr(game, "kind", None)
    if kind not in ("finite", "stationary"):
        raise ConformanceError(f"game {getattr(game, 'id', game)}: kind must be 'finite' or 'stationary', got {kind!r}")
    _check_structure(game)
    if policies is None:
        policies = [uniform_policy(game), random_profile(game, rng, 1.0), random_profile(game, rng, 0.1)]
    report = ConformanceReport(game.id, kind)
    for i, policy in enumerate(policies):
        profile = as_profile(game, policy)
        if kind == "finite":
            _check_finite(game, profile, rng, n_agents, report, i)
        else:
            _check_stationary(game, profile, rng, n_agents, report, i)
        report.profiles += 1
    return report


def _fail(game, what):
    raise ConformanceError(f"game {game.id}: {what}")


def _check_structure(game):
    if not isinstance(getattr(game, "id", None), str):
        _fail(game, "has no string id")
    pops = getattr(game, "populations", ())
    if not pops:
        _fail(game, "has no populations")
    for k, p in enumerate(pops):
        if p.n_states < 1 or p.n_actions < 1:
            _fail(game, f"population {k} has {p.n_states} states and {p.n_actions} actions")
        mu0 = np.asarray(p.mu0)
        if mu0.shape != (p.n_states,):
            _fail(game, f"population {k}: mu0 has shape {mu0.shape}, expected ({p.n_states},)")
        check_distribution(mu0, f"game {game.id}, population {k}: mu0")
    if game.kind == "finite":
        if not isinstance(game.horizon, int) or game.horizon < 1:
            _fail(game, f"horizon must be an integer >= 1, got {game.horizon!r}")
    elif not 0.0 < getattr(game, "gamma", -1.0) < 1.0:
        _fail(game, f"gamma must lie in (0, 1), got {getattr(game, 'gamma', None)!r}")


def _same(game, what, first, second):
    for x, y in zip(first, second):
        if not np.array_equal(np.asarray(x), np.asarray(y)):
            _fail(game, f"{what} is not deterministic: two calls with the same input differ")


def _check_mass(game, mu, where, tol=1e-10):
    if not np.all(np.isfinite(mu)) or mu.min() < -tol or abs(mu.sum() - 1.0) > tol:
        _fail(game, f"{where}: mass not conserved (sum {mu.sum()!r}, min {mu.min()!r})")


def _check_finite(game, profile, rng, n_agents, report, index):
    from mfgbench.core.evaluate import evaluate

    ev = evaluate(game, profile)
    model = ev.model
    K, T = game.n_populations, game.horizon
    for t in range(T):
        mu_t = tuple(model.flow[k][t] for k in range(K))
        mf = MeanField(t, mu_t, tuple(mu_t[k][:, None] * profile[k][t] for k in range(K)))
        for k in range(K):
            _check_mass(game, mu_t[k], f"population {k}, time {t}")
            R = check_rewards(game, k, t, game.rewards(k, t, mf))
            _same(game, f"rewards (population {k}, time {t})", [R], [game.rewards(k, t, mf)])
            if not np.allclose(R, model.rewards[k][t], rtol=0, atol=0):
                _fail(game, f"population {k}, time {t}: rewards differ from those the core recorded")
            if game.static_transitions and t > 0:
                succ, prob = game.static_transition(k)
            else:
                succ, prob = check_transitions(game, k, t, *game.transitions(k, t, mf))
                _same(game, f"transitions (population {k}, time {t})", (succ, prob), game.transitions(k, t, mf))
            nxt = push_forward(mu_t[k], profile[k][t], succ, prob)
            if not np.allclose(nxt, model.flow[k][t + 1], rtol=0, atol=1e-12):
                _fail(game, f"population {k}, time {t}: the flow is not the push-forward of its transitions")
    mf_T = MeanField(T, tuple(model.flow[k][T] for k in range(K)), (None,) * K)
    for k in range(K):
        _check_mass(game, model.flow[k][T], f"population {k}, time {T}")
        g = check_rewards(game, k, "T", game.terminal(k, mf_T))
        _same(game, f"terminal reward (population {k})", [g], [game.terminal(k, mf_T)])
    _check_exploitability(game, ev)
    for k in range(K):
        mu0 = game.populations[k].mu0
        exact = float(mu0 @ ev.values[k][0])
        mc = sample_returns(model, k, profile[k], mu0, n_agents, rng)
        scale = max(1.0, float(np.abs(model.rewards[k]).max()) * T + float(np.abs(model.terminal[k]).max()))
        se = max(mc.stderr, np.sqrt(_return_variance(model, k, profile[k], mu0) / n_agents))
        if abs(mc.mean - exact) > VALUE_SE * se + 1e-9 * scale:
            _fail(game, f"profile {index}, population {k}: exact value {exact!r} but Monte Carlo gives "
                        f"{mc.mean!r} +- {mc.stderr:.3g} ({abs(mc.mean - exact) / max(mc.stderr, 1e-300):.1f} SE)")
        _check_histogram(game, mc.histogram(len(mu0)), model.flow[k][T], n_agents, f"profile {index}, population "
                                                                                   f"{k}, time {T}")
        report.comparisons.append(dict(profile=index, population=k, exact=exact, mc=mc.mean, stderr=mc.stderr))


def _return_variance(model, k, pi, mu0) -> float:
    """Exact variance of one agent's return (second moment by backward induction).

    The Monte Carlo tolerance uses it, not only the sample's own standard error: a
    near-deterministic policy can make an event of probability 1e-7 matter to the
    exact value while no sampled agent meets it (sample variance 0)."""
    T = model.rewards[k].shape[0]
    V = np.asarray(model.terminal[k], dtype=np.float64)
    M = V ** 2
    for t in range(T - 1, -1, -1):
        succ, prob = model.transition_at(k, t)
        R = model.rewards[k][t]
        EV = (prob * V[succ]).sum(axis=2)
        EM = (prob * M[succ]).sum(axis=2)
        V, M = (pi[t] * (R + EV)).sum(axis=1), (pi[t] * (R ** 2 + 2.0 * R * EV + EM)).sum(axis=1)
    return max(float(mu0 @ M - (mu0 @ V) ** 2), 0.0)


def _discounted_return_variance(model, k, pi, V) -> float:
    """Exact variance of the discounted return from the stationary distribution:
    ``M = r2 + gamma^2 P^pi M`` with ``r2 = sum_a pi (R^2 + 2 gamma R (P V))``."""
    from mfgbench.core import stationary

    R, succ, prob, gamma = model.rewards[k], model.succ[k], model.prob[k], model.gamma
    PV = (prob * V[succ]).sum(axis=2)
    M = stationary.policy_value(R ** 2 + 2.0 * gamma * R * PV, succ, prob, pi, gamma ** 2)
    mu = model.distribution[k]
    return max(float(mu @ M - (mu @ V) ** 2), 0.0)


def _check_histogram(game, hist, mu, n_agents, where):
    se = np.sqrt(np.maximum(mu * (1.0 - mu), 0.0) / n_agents)
    # in counts: HIST_SE binomial standard deviations, plus 3 agents of slack for states of tiny mass
    # (a Poisson count of mean << 1 exceeds 3 with probability < 1e-5 only when its mean is < 0.03)
    off = np.abs(hist - mu) * n_agents > HIST_SE * se * n_agents + 3.0
    if off.any():
        s = int(np.flatnonzero(off)[0])
        _fail(game, f"{where}: simulated agents' share of state {s} is {hist[s]!r}, the exact flow says "
                    f"{mu[s]!r} (+- {se[s]:.2g})")


def _check_exploitability(game, ev):
    scale = max(1.0, max(float(np.abs(v).max()) for v in ev.values))
    for k, e in enumerate(ev.per_population):
        if not np.isfinite(e) or e < -1e-9 * scale:
            _fail(game, f"population {k}: exploitability {e!r} is negative or not finite")


def _check_stationary(game, profile, rng, n_agents, report, index):
    from mfgbench.core import stationary

    ev = stationary.evaluate(game, profile)
    model = ev.model
    K = game.n_populations
    mu = model.distribution
    mf = MeanField(None, tuple(mu), tuple(mu[k][:, None] * profile[k] for k in range(K)))
    for k in range(K):
        _check_mass(game, mu[k], f"population {k}, stationary distribution")
        R = check_rewards(game, k, "stationary", game.rewards(k, mf))
        _same(game, f"rewards (population {k})", [R], [game.rewards(k, mf)])
        kernel = game.static_transition(k) if game.static_transitions else game.transitions(k, mf)
        succ, prob = check_transitions(game, k, "stationary", *kernel)
        again = game.transitions(k, None if game.static_transitions else mf)
        _same(game, f"transitions (population {k})", (succ, prob), again)
        moved = push_forward(mu[k], profile[k], succ, prob)
        if np.abs(moved - mu[k]).max() > 1e-11:
            _fail(game, f"population {k}: the stationary distribution moves by {np.abs(moved - mu[k]).max():.3g} "
                        f"under its own kernel")
    _check_exploitability(game, ev)
    gamma = game.gamma
    for k in range(K):
        exact = float(mu[k] @ ev.values[k])
        rmax = float(np.abs(model.rewards[k]).max())
        horizon = int(np.ceil(np.log(1e-6) / np.log(gamma)))
        bias = gamma ** horizon * rmax / (1.0 - gamma)
        mc = stationary.sample_discounted_returns(model, k, profile[k], n_agents, rng, horizon)
        se = max(mc.stderr, np.sqrt(_discounted_return_variance(model, k, profile[k], ev.values[k]) / n_agents))
        if abs(mc.mean - exact) > VALUE_SE * se + bias + 1e-12 * max(1.0, rmax / (1.0 - gamma)):
            _fail(game, f"profile {index}, population {k}: exact discounted value {exact!r} but truncated Monte "
                        f"Carlo gives {mc.mean!r} +- {mc.stderr:.3g} (truncation bias <= {bias:.2g})")
        # agents started from the stationary distribution are still distributed by it
        _check_histogram(game, mc.histogram(len(mu[k])), mu[k], n_agents,
                         f"profile {index}, population {k}, after {horizon} steps")
        report.comparisons.append(dict(profile=index, population=k, exact=exact, mc=mc.mean, stderr=mc.stderr))
