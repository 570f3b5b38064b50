"""Certified equilibria of finite (and stationary) mean field games: the pipeline.

0. **Log-coupled games** (declaring a :class:`~mfgbench.games.base.LogCoupling`: the crowd
   games, whose only mean-field dependence is a local log-density reward; predator-prey,
   which adds antisymmetric cross-population terms; traffic-2type, whose congestion cost is
   linear in the densities and in the chosen speed): the equilibrium solves the KKT system of
   a concave potential (a monotone variational inequality for predator-prey, a non-monotone
   one for traffic) over the flow polytope, and the interior-point method of
   :mod:`.potential`, started from 50 fictitious play iterations, finds it to exploitability
   ~1e-10 in 10-40 iterations. This is what certifies the crowd games, where the
   indifference equations of 2 are degenerate. Without monotonicity nothing guarantees
   convergence, but the exact exploitability decides. Where it does not certify (budget),
   its profile is kept and the pipeline goes on.
1. **Best-response iteration** ``pi <- BR(mu^pi)`` from the uniform profile. Games with a
   pure equilibrium that this map reaches (e.g. lq-v0, large weakly coupled garnets) are
   done here, with ``E = 0`` up to round-off. Where it cycles between nearly equal pure
   profiles instead (big weakly coupled garnets), the states where the last iterate and
   its best response disagree are taken as the support and polished as in 2.
   After the first warm start of 2 and its polishes (which settle most games sooner),
   on games of at most ``damped_max_size`` policy entries, the **damped
   best-response iteration** ``pi <- mix_1/2(pi, BR(mu^pi))`` (see :mod:`.iterative`)
   for ``damped_iterations`` steps, and the pure best response to its best iterate.
   Where the plain iteration cycles between pure profiles, the half step can lock onto a
   pure equilibrium that sits between them: sis-v0, not monotone, where fictitious play
   and mirror descent oscillate around a mixed "singular arc" whose support no polish
   finds, has a pure bang-bang equilibrium (keep distance / go out alternating as the
   infected share crosses its threshold) that this iteration reaches in ~130 steps;
   the weight off that profile halves every step, and its best response is exact.
2. **Warm start + active-set Newton polish.** A first-order method (fictitious play after
   ``warm_stages`` iterations, one run checkpointed at growing counts; then online mirror
   descent; then the same fictitious play run continued to 4x, 16x ... the last stage while
   the budget lasts) gives a rough equilibrium. Its *support* (first the actions it
   plays with weight >= 1e-3 of the largest, then the actions within ``gap`` of the best
   response, for a ladder of gaps) fixes which actions may be mixed;
   the Newton polish (:mod:`.newton`) solves the indifference equations on that support
   to machine precision and corrects the support (drop actions whose weight vanishes, add
   actions that become better). The first support that certifies wins. A wrong support is
   cheap to reject: the polished profile's exact exploitability says so.
3. Otherwise the best profile found is returned, uncertified, with the reason.

Not in the pipeline (measured, see :func:`.newton.logit_homotopy`): the logit homotopy
tau -> 0 follows the regularised equilibria of crowd-motion-v0 (6x6) down to tau ~ 3e-5
(exploitability 1e-5, ~2 min) where its Jacobian turns nearly singular, and no polish
from there certifies (the crowd games' rewards do not depend on the action, so many
policies induce one flow and the indifference system is degenerate); on sis-v0 it
follows a mixed "singular arc" that is not the limit equilibrium.

The answer is never taken on trust: ``certified`` is decided by the exact exploitability
of the returned profile (the caller recomputes it with ``mfgbench.core.evaluate``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgbench.core.policy import greedy_policy
from reference_solvers.discrete import iterative
from reference_solvers.discrete.complementarity import solve_complementarity
from reference_solvers.discrete.newton import newton_polish
from reference_solvers.discrete.potential import solve_potential
from reference_solvers.discrete.problem import analyse, clock, is_stationary

GAP_LADDER = (1e-2, 3e-3, 1e-3, 1e-1, 3e-2, 3e-4, 1e-4, 1e-5)
"""Support thresholds tried by the polish, relative to the game's reward scale, in the order
that found supports soonest on the toolkit's games (1e-2: garnet-v0, beach-bar-v0;
3e-3: crowd-1d-v0; 1e-3: crowd-2d-v0; 1e-1: braess-v0). Wide gaps make big supports
and slow polishes, so they come after the narrow ones."""


EXTRA_STAGE_GROWTH = 4
"""Growth of the fictitious play warm starts after ``warm_stages`` (1600 -> 6400 -> 25600 ...).
Fictitious play's exploitability falls about as 1/n, so each stage brings the warm start about
4x closer; a random monotone garnet (S=6, A=2, T=5, coupling 2.75, seed 256) whose support none
of the stages up to 1600 gave certifies from the one at 6400."""


@dataclass
class Solution:
    """What the pipeline found: the best analysis (see :mod:`.problem`), the method that
    produced it, iterations of all stages, and why it stopped."""

    analysis: object
    method: str
    iterations: int
    reason: str


def _reward_scale(analysis) -> float:
    return max(1.0, max(float(np.ptp(q)) / max(1, q.shape[0]) for q in analysis.q_best))


def _cycle_start(game, analysis, max_mixed: int = 400):
    """Half-half mixture of the best best-response iterate and its own best response, or
    None when they agree or differ at more than ``max_mixed`` states.

    Where best-response iteration cycles near a pure equilibrium (large weakly coupled
    games), the states at which consecutive iterates disagree are where the equilibrium
    mixes; this mixture gives the polish that support."""
    nxt = tuple(greedy_policy(q) for q in analysis.q_best)
    differ = sum(int((np.abs(a - b).sum(axis=-1) > 0).sum()) for a, b in zip(analysis.policy, nxt))
    if differ == 0 or differ > max_mixed:
        return None
    return analyse(game, tuple(0.5 * (a + b) for a, b in zip(analysis.policy, nxt)), validate=False)


def _size(analysis) -> int:
    return sum(int(pi.size) for pi in analysis.policy)


def damped_stage(game, tol: float, iterations: int = 300, alpha: float = 0.5):
    """Damped best-response iteration with constant step ``alpha`` (stopping at ``tol``),
    then the pure best response to its best iterate: returns (the better analysis, the
    method, iterations). When the iteration locks onto a pure equilibrium the mixture is
    only ``(1 - alpha)^n`` away from it, and its best response is the equilibrium itself."""
    res = iterative.damped_fixed_point(game, iterations, alpha=alpha, tol=tol)
    snap = analyse(game, tuple(greedy_policy(q) for q in res.analysis.q_best), validate=False)
    if snap.exploitability <= res.exploitability:
        return snap, f"{res.method} + best response", res.iterations + 1
    return res.analysis, res.method, res.iterations


def solve(game, tol: float = 1e-8, max_seconds: float = 120.0, warm_stages: tuple = (100, 400, 1600),
          polish_rounds: int = 4, damped_iterations: int = 300, damped_max_size: int = 20_000,
          extra_stages: int = 4) -> Solution:
    """Run the pipeline of the module docstring until the exact exploitability is at most
    ``tol`` (absolute, in the game's reward units) or ``max_seconds`` of CPU time (see
    :func:`.problem.clock`) have passed. After the ``warm_stages`` and mirror descent, the
    fictitious play run goes on for ``extra_stages`` more warm starts, each
    ``EXTRA_STAGE_GROWTH`` times longer than the one before."""
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol!r}")
    start = clock()
    potential = None
    if getattr(game, "log_coupling", None) is not None and not is_stationary(game):
        ip = solve_potential(game, target=0.1 * tol, deadline=start + max_seconds, warm=50)
        potential = ip.analysis
        how = f"interior point (Mehrotra) on the {game.log_coupling.problem}"
        if potential.exploitability <= tol:
            return Solution(potential, how, ip.iterations, "converged")
    elif getattr(game, "affine_coupling", None) is not None and not is_stationary(game):
        ip = solve_complementarity(game, target=0.1 * tol, deadline=start + max_seconds, warm=50)
        potential = ip.analysis
        how = "interior point (Mehrotra) on the complementarity system (types on their own state spaces)"
        if potential.exploitability <= tol:
            return Solution(potential, how, ip.iterations, "converged")
    br = iterative.best_response_iteration(game, iterations=30, tol=tol)
    best, method, its = br.analysis, br.method, br.iterations
    if potential is not None:
        its += ip.iterations
        if potential.exploitability < best.exploitability:
            best, method = potential, how
    if best.exploitability <= tol:
        return Solution(best, method, its, "converged")
    cycle = _cycle_start(game, br.analysis)
    if cycle is not None:
        pol = newton_polish(game, cycle, tol, rounds=polish_rounds, weight_floor=0.1, deadline=start + max_seconds)
        its += pol.iterations
        if pol.analysis.exploitability < best.exploitability:
            best, method = pol.analysis, "best-response iteration + active-set Newton (support: the BR cycle)"
        if best.exploitability <= tol:
            return Solution(best, method, its, "converged")
    scale = _reward_scale(best)
    fp_stages = tuple(warm_stages) + tuple(warm_stages[-1] * EXTRA_STAGE_GROWTH ** j
                                           for j in range(1, extra_stages + 1))
    fp = iterative.fictitious_play_stages(game, stages=fp_stages, deadline=start + max_seconds)
    warm_starts = [lambda: next(fp) for _ in warm_stages]
    warm_starts.append(lambda: iterative.mirror_descent(game, warm_stages[0], learning_rate=1.0 / scale, tol=tol))
    # the same fictitious play run continued: closer warm starts for supports that the first
    # stages leave ambiguous (an action whose weight or gap is still near a threshold)
    warm_starts.extend(lambda: next(fp) for _ in range(extra_stages))
    fp_done = 0
    for stage, make_warm in enumerate(warm_starts):
        if clock() - start > max_seconds:
            break
        if stage == 1 and damped_iterations and _size(best) <= damped_max_size:
            # after the first warm start and its polishes, which settle most games sooner
            damped, how, n = damped_stage(game, tol, damped_iterations)
            its += n
            if damped.exploitability < best.exploitability:
                best, method = damped, how
            if best.exploitability <= tol:
                return Solution(best, method, its, "converged")
        warm = make_warm()
        if warm.method == "fictitious-play":
            its += warm.iterations - fp_done
            fp_done = warm.iterations
        else:
            its += warm.iterations
        if warm.exploitability < best.exploitability:
            best, method = warm.analysis, warm.method
        if best.exploitability <= tol:
            return Solution(best, method, its, "converged")
        for gap in (None,) + GAP_LADDER:
            if clock() - start > max_seconds:
                return Solution(best, method, its, f"time budget of {max_seconds:g} CPU s spent; best "
                                                   f"exploitability {best.exploitability:.3g} > {tol:g}")
            if gap is None:  # support: the actions the warm start plays with weight >= 1e-3 x the largest
                pol = newton_polish(game, warm.analysis, tol, rounds=polish_rounds, weight_floor=1e-3,
                                    deadline=start + max_seconds)
                how = "support: weights >= 1e-3"
            else:
                pol = newton_polish(game, warm.analysis, tol, rounds=polish_rounds, weight_floor=0.0,
                                    gap=gap * scale, deadline=start + max_seconds)
                how = f"support gap {gap * scale:.3g}"
            its += pol.iterations
            if pol.analysis.exploitability < best.exploitability:
                best = pol.analysis
                method = f"{warm.method} + active-set Newton ({how})"
            if best.exploitability <= tol:
                return Solution(best, method, its, "converged")
    if clock() - start > max_seconds:
        return Solution(best, method, its, f"time budget of {max_seconds:g} CPU s spent; best "
                                           f"exploitability {best.exploitability:.3g} > {tol:g}")
    return Solution(best, method, its, f"no support of the warm starts polished to {tol:g}; "
                                       f"best exploitability {best.exploitability:.3g}")
