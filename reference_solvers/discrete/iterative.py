"""First-order equilibrium solvers for finite (and stationary) mean field games.

All three iterate on a policy profile ``pi`` and its exact analysis (flow ``mu^pi``,
action values ``Q^pi`` and ``Q^BR`` along it; see :mod:`.problem`):

- **damped fixed point**: ``pi <- mix_alpha(pi, BR(mu^pi))`` with a constant step alpha
  (alpha = 1 is the plain best-response iteration, which finds pure equilibria);
- **fictitious play** (Perrin et al. 2020): the same mixture with step ``1/(n + 1)``;
- **online mirror descent** (Pérolat et al. 2022): ``y <- y + lr Q^pi``, ``pi = softmax(y)``.

The mixture is distribution-weighted: at (t, s)

    mix_alpha(pi, pi')[t, s] = ((1 - alpha) m[t, s] pi[t, s] + alpha m'[t, s] pi'[t, s])
                               / ((1 - alpha) m[t, s] + alpha m'[t, s]),

with m, m' the running (averaged) flow and the flow induced by ``pi'``, so that when the
dynamics do not depend on the mean field the mixed policy induces exactly the mixed
flow ``(1 - alpha) m + alpha m'`` (fictitious play averages flows, not policies). Where
both weights vanish the plain average is used.

Each solver stops when the exact exploitability reaches ``tol`` or after ``iterations``
and returns a :class:`SolverResult` holding the best profile seen (lowest exploitability).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfgbench.core.policy import greedy_policy
from reference_solvers.discrete.problem import analyse, clock, time_shapes, with_time_axis
from mfgbench.core.policy import uniform_policy


@dataclass
class SolverResult:
    """Outcome of one solver run: best profile found (with a time axis; see
    :func:`.problem.with_time_axis`), its analysis, iterations used and the exploitability
    after every iteration."""

    method: str
    analysis: object
    iterations: int
    history: list = field(default_factory=list)

    @property
    def policy(self):
        return self.analysis.policy

    @property
    def exploitability(self) -> float:
        return self.analysis.exploitability


def _check(iterations, tol):
    if not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
    if tol is not None and not tol >= 0:
        raise ValueError(f"tol must be non-negative, got {tol!r}")


def _start(game, policy):
    if policy is None:
        policy = uniform_policy(game)
    from mfgbench.core.policy import as_profile
    return with_time_axis(game, as_profile(game, policy))


def _mix(pi, m, pi_new, m_new, alpha):
    out = []
    for p, w, q, v in zip(pi, m, pi_new, m_new):
        a = ((1.0 - alpha) * w)[..., None]
        b = (alpha * v)[..., None]
        tot = a + b
        safe = np.where(tot > 0.0, tot, 1.0)
        mixed = np.where(tot > 0.0, (a * p + b * q) / safe, (1.0 - alpha) * p + alpha * q)
        out.append(mixed / mixed.sum(axis=-1, keepdims=True))
    return tuple(out)


def _averaging_steps(game, policy, step):
    """Yield the analysis of the averaged profile after 0, 1, 2, ... iterations."""
    an = analyse(game, _start(game, policy))
    yield an
    avg_mass = an.mass
    n = 0
    while True:
        n += 1
        br = tuple(greedy_policy(q) for q in an.q_best)
        br_an = analyse(game, br, best=False, validate=False)
        alpha = step(n)
        pi = _mix(an.policy, avg_mass, br, br_an.mass, alpha)
        avg_mass = tuple((1.0 - alpha) * m + alpha * m2 for m, m2 in zip(avg_mass, br_an.mass))
        an = analyse(game, pi, validate=False)
        yield an


def _averaging(game, iterations, tol, policy, step, method):
    _check(iterations, tol)
    steps = _averaging_steps(game, policy, step)
    best = next(steps)
    history = [best.exploitability]
    n = 0
    for n in range(1, iterations + 1):
        if tol is not None and best.exploitability <= tol:
            n -= 1
            break
        an = next(steps)
        history.append(an.exploitability)
        if an.exploitability < best.exploitability:
            best = an
    return SolverResult(method, best, n, history)


def fictitious_play_stages(game, stages=(100, 400, 1600), policy=None, deadline: float = np.inf):
    """Fictitious play run once, yielding a :class:`SolverResult` (the current average,
    not the best seen) at each iteration count in ``stages``: warm starts of growing
    accuracy at the cost of one run. Past ``deadline`` (a :func:`.problem.clock` value)
    each stage ends at once with the iterations done so far."""
    steps = _averaging_steps(game, policy, lambda n: 1.0 / (n + 1.0))
    an = next(steps)
    history = [an.exploitability]
    done = 0
    for stop in stages:
        while done < stop and clock() < deadline:
            an = next(steps)
            done += 1
            history.append(an.exploitability)
        yield SolverResult("fictitious-play", an, done, list(history))


def damped_fixed_point(game, iterations: int = 100, alpha: float = 0.5, tol: float | None = None,
                       policy=None) -> SolverResult:
    """Damped best-response iteration with constant step ``alpha`` in (0, 1] (module docstring)."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"damping alpha must lie in (0, 1], got {alpha!r}")
    return _averaging(game, iterations, tol, policy, lambda n: alpha, f"damped-fixed-point(alpha={alpha:g})")


def fictitious_play(game, iterations: int = 100, tol: float | None = None, policy=None) -> SolverResult:
    """Fictitious play with distribution-weighted averaging, step 1/(n+1) (module docstring)."""
    return _averaging(game, iterations, tol, policy, lambda n: 1.0 / (n + 1.0), "fictitious-play")


def softmax(y):
    z = y - y.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def mirror_descent(game, iterations: int = 100, learning_rate: float = 1.0, tol: float | None = None,
                   policy=None) -> SolverResult:
    """Online mirror descent: cumulative ``Q^pi`` along the induced flows, softmax policy."""
    _check(iterations, tol)
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}")
    an = analyse(game, _start(game, policy))
    y = tuple(np.log(np.maximum(pi, 1e-300)) for pi in an.policy)
    best, history = an, [an.exploitability]
    n = 0
    for n in range(1, iterations + 1):
        if tol is not None and best.exploitability <= tol:
            n -= 1
            break
        y = tuple(yk + learning_rate * q for yk, q in zip(y, an.q_policy))
        an = analyse(game, tuple(softmax(yk) for yk in y), validate=False)
        history.append(an.exploitability)
        if an.exploitability < best.exploitability:
            best = an
    return SolverResult(f"mirror-descent(lr={learning_rate:g})", best, n, history)


def best_response_iteration(game, iterations: int = 50, tol: float | None = None, policy=None) -> SolverResult:
    """Plain best-response iteration ``pi <- BR(mu^pi)``; stops at a fixed point or a cycle."""
    _check(iterations, tol)
    an = analyse(game, _start(game, policy))
    best, history, seen = an, [an.exploitability], set()
    n = 0
    for n in range(1, iterations + 1):
        if tol is not None and best.exploitability <= tol:
            n -= 1
            break
        br = tuple(greedy_policy(q) for q in an.q_best)
        key = b"".join(np.packbits(p.astype(bool)).tobytes() for p in br)
        if key in seen:  # the pure iteration is deterministic: a repeat is a cycle
            break
        seen.add(key)
        an = analyse(game, br, validate=False)
        history.append(an.exploitability)
        if an.exploitability < best.exploitability:
            best = an
    return SolverResult("best-response-iteration", best, n, history)


__all__ = ["SolverResult", "best_response_iteration", "damped_fixed_point", "fictitious_play", "mirror_descent",
           "softmax", "time_shapes"]
