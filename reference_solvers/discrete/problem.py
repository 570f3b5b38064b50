"""Exact analysis of a policy profile, as the discrete reference solvers need it.

For a profile ``pi`` of a finite game, along the flow ``mu^pi`` it induces, population k
has the action values of its own policy ``Q^pi_k[t, s, a]`` and of the best response
``Q^BR_k[t, s, a]``, and, by the performance-difference identity,

    E_k(pi) = sum_t sum_s mu_k[t, s] sum_a pi_k[t, s, a] (max_b Q^BR_k[t, s, b] - Q^BR_k[t, s, a])
            = <mu0_k, V^BR_k[0] - V^pi_k[0]>,

so an equilibrium puts, at every state carrying mass, all its probability on actions
that maximise ``Q^BR``. ``mass[k][t, s]`` is the weight of (t, s) in that sum. The
solvers read ``Q^pi`` (smooth in the policy), ``Q^BR`` (to find better actions) and
``mass`` (to know which states matter) from one :class:`Analysis`.

Stationary discounted games (``game.kind == "stationary"``) are analysed by
``mfgbench.core.stationary``; their arrays carry no time axis, which :func:`analyse`
hides by adding a time axis of length 1, so the solvers see one shape.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mfgbench.core.evaluate import model_of_profile
from mfgbench.core import kernels as core_kernels
from mfgbench.core.policy import as_profile, policy_shape


@dataclass(frozen=True)
class Analysis:
    """One profile, exactly evaluated. Arrays per population, all with a time axis:
    ``policy[k][t, s, a]``, ``mass[k][t, s]``, ``q_policy``/``q_best[k][t, s, a]``."""

    policy: tuple
    flow: tuple
    mass: tuple
    q_policy: tuple
    q_best: tuple
    per_population: np.ndarray
    exploitability: float
    model: object = None


def clock() -> float:
    """The solvers' clock for time budgets and deadlines: CPU time of this process, so that
    a budget buys the same work on a loaded machine as on a quiet one (wall-clock budgets
    made uncertified results depend on the machine's load)."""
    return time.process_time()


def is_stationary(game) -> bool:
    return getattr(game, "kind", "finite") == "stationary"


def with_time_axis(game, profile) -> tuple:
    """The profile with a leading time axis (a no-op for finite games)."""
    return tuple(pi[None] for pi in profile) if is_stationary(game) else tuple(profile)


def without_time_axis(game, profile) -> tuple:
    """Inverse of :func:`with_time_axis`, validated against the game."""
    if is_stationary(game):
        profile = tuple(pi[0] for pi in profile)
    return as_profile(game, profile)


def time_shapes(game) -> list:
    """``(T, S, A)`` per population as the solvers see it (T = 1 for stationary games)."""
    shapes = [policy_shape(game, k) for k in range(game.n_populations)]
    return [(1, *s) if len(s) == 2 else s for s in shapes]


def analyse(game, profile, best: bool = True, tau: float = 0.0, bonus: tuple | None = None,
            validate: bool = True) -> Analysis:
    """Flow, mass, ``Q^pi`` and (if ``best``) ``Q^BR`` and exploitability of ``profile``.

    ``profile`` carries a time axis (see :func:`with_time_axis`). With ``tau > 0``,
    ``q_policy`` holds the entropy-regularised action values of the policy,
    ``R + P V`` with ``V = <pi, Q - tau log pi>``, minus ``tau log pi(a)`` (so that at
    the regularised equilibrium, ``pi = softmax(Q / tau)``, they are equal across
    actions); ``Q^BR`` and the exploitability stay unregularised.
    """
    if is_stationary(game):
        if tau or bonus is not None:
            raise ValueError("entropy-regularised analysis is implemented for finite games only")
        return _analyse_stationary(game, profile, best)
    if validate:
        profile = as_profile(game, profile)
        model = model_of_profile(game, profile)
    else:
        profile = tuple(np.ascontiguousarray(pi, dtype=np.float64) for pi in profile)
        model = model_of_profile(game, profile)
    K, T = game.n_populations, game.horizon
    qp, qb, per = [], [], np.zeros(K)
    for k in range(K):
        args = (model.rewards[k], model.succ[k], model.prob[k], model.terminal[k])
        if bonus is not None:
            qp.append(core_kernels.policy_q_values(model.rewards[k] + bonus[k][..., None], *args[1:],
                                                   profile[k])[1])
        elif tau:
            pi = profile[k]
            ent = np.where(pi > 0.0, -tau * np.log(np.where(pi > 0.0, pi, 1.0)), 0.0)
            qp.append(core_kernels.policy_q_values(model.rewards[k] + ent, *args[1:], pi)[1])
        v_pi, q_pi = core_kernels.policy_q_values(*args, profile[k])
        if not tau and bonus is None:
            qp.append(q_pi)
        if best:
            v_br, q_br = core_kernels.best_response_values(*args)
            qb.append(q_br)
            per[k] = float(game.populations[k].mu0 @ (v_br[0] - v_pi[0]))
    mass = tuple(f[:T] for f in model.flow)
    if not best:
        return Analysis(profile, model.flow, mass, tuple(qp), None, None, np.nan, model)
    return Analysis(profile, model.flow, mass, tuple(qp), tuple(qb), per, float(per.sum()), model)


def _analyse_stationary(game, profile, best):
    """Stationary game: ``Q^pi = R + gamma P V^pi`` at the stationary distribution of pi."""
    from mfgbench.core import stationary
    pol = without_time_axis(game, profile)
    model = stationary.induced_model(game, pol)
    values = stationary.values_along(model, pol)
    qp = tuple(stationary.q_values(model.rewards[k], model.succ[k], model.prob[k], values[k], model.gamma)[None]
               for k in range(game.n_populations))
    mass = tuple(np.asarray(m)[None] for m in model.distribution)
    pol = tuple(pi[None] for pi in pol)
    if not best:
        return Analysis(pol, model.distribution, mass, qp, None, None, np.nan, None)
    br = stationary.best_response_along(model)
    per = np.array([float(model.distribution[k] @ (br.values[k] - values[k])) for k in range(game.n_populations)])
    return Analysis(pol, model.distribution, mass, qp, tuple(q[None] for q in br.q_values), per,
                    float(per.sum()), None)
