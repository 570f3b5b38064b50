"""Active-set Newton polish: exact equilibria from a rough one, to machine precision.

At an equilibrium every state (t, s) of population k that carries mass plays only actions
maximising ``Q^BR_k[t, s, .]`` (see :mod:`.problem`). Fix a *support* ``A(t, s)`` per state.
Where it holds one action the policy plays that action; at *mixed* states (two or more
actions, mass above ``mass_floor``) the policy is a softmax of logits ``z(t, s, a)``,
a in A(t, s), with the logit of a reference action a0 held at 0. The unknowns are the
other logits and the equations say the supported actions are equally good for the policy
itself:

    F(z)[t, s, a] = Q^pi[t, s, a] - Q^pi[t, s, a0] = 0,      a in A(t, s) \\ {a0},

a square system, smooth in z because ``Q^pi`` (unlike ``Q^BR``) has no max, and every z is
a valid policy (no constraint to keep). It is solved with finite-difference Jacobians:
up to ``dense_limit`` unknowns by Levenberg–Marquardt on the SVD of the dense Jacobian
(Gauss–Newton, quadratically convergent, where the support is right; bounded
least-squares steps where the Jacobian is singular, e.g. ties that do not depend on the
flow in uncoupled games, or where the support is wrong and the system inconsistent),
above that by Jacobian-free Newton–Krylov (GMRES) with backtracking. This is the
complementarity formulation of MF-OMO (Guo et al. 2022) solved by an active-set Newton
method instead of gradient descent. Between Newton solves the active set is updated:

- an action whose weight falls below ``drop_weight`` leaves the support,
- where LM ends at a least-squares point with an indifference still violated, the worse
  of its two actions leaves (only the worst residuals, as one false tie spoils others),
- an action with ``Q^BR`` above the supported best (beyond round-off) joins it,
- actions with identical reward and transition rows at (t, s) are merged into the lowest
  index (their Q are identical, so their split is arbitrary and would make F singular),
- states with mass at most ``mass_floor`` play the greedy best response (their share of
  the exploitability is then exactly 0, whatever their tiny effect on the flow),

until the exact exploitability is at most ``tol`` (or the active set drives it up tenfold,
which marks a hopeless start). With the right support Newton converges quadratically, so
a polished reference typically reaches 1e-12 or below. The support must come from a
decent warm start (:mod:`.certified` tries several); the method does not search for it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from mfgbench.core.policy import greedy_policy
from reference_solvers.discrete._blas import one_blas_thread
from reference_solvers.discrete.problem import analyse, clock


@dataclass
class PolishResult:
    """The best profile's analysis, Newton iterations and active-set rounds used, why it stopped."""

    analysis: object
    iterations: int
    rounds: int
    reason: str


def initial_support(analysis, weight_floor: float = 1e-3, gap: float | None = None) -> tuple:
    """Support per population ``sup[k][t, s, a]`` (bool) from a rough profile: actions with
    weight at least ``weight_floor`` times the state's largest weight and (if ``gap`` is
    given) ``Q^BR`` within ``gap`` of the best, plus the greedy best response."""
    out = []
    for pi, qb in zip(analysis.policy, analysis.q_best):
        sup = pi >= weight_floor * pi.max(axis=-1, keepdims=True)
        if gap is not None:
            sup &= qb.max(axis=-1, keepdims=True) - qb <= gap
        sup |= greedy_policy(qb) > 0
        out.append(sup)
    return tuple(out)


def merge_duplicate_actions(support, model) -> tuple:
    """Drop from each support the actions whose reward and transition rows at (t, s) equal
    those of a lower-index supported action (finite games; a no-op without a model)."""
    if model is None:
        return support
    out = []
    for k, sup in enumerate(support):
        sup = sup.copy()
        R, succ, prob = model.rewards[k], model.succ[k], model.prob[k]
        T, S, A = sup.shape
        static = succ.shape[0] == 1
        for a in range(1, A):
            for b in range(a):
                sa, pa = (succ[:, :, a], prob[:, :, a])
                sb, pb = (succ[:, :, b], prob[:, :, b])
                same = (sa == sb).all(axis=-1) & (pa == pb).all(axis=-1)
                same = np.broadcast_to(same, (T, S)) if static else same
                same = same & (R[:, :, a] == R[:, :, b]) & sup[:, :, b]
                sup[:, :, a] &= ~same
        out.append(sup)
    return tuple(out)


class _Parametrisation:
    """Logits at mixed states <-> a full profile (pure elsewhere)."""

    def __init__(self, base, support, policy, mass, mass_floor):
        self.base = tuple(b.copy() for b in base)
        ks, ts, ss, acts_, refs, states = [], [], [], [], [], []
        z0 = []
        n_states = 0
        for k, (sup, pi, m) in enumerate(zip(support, policy, mass)):
            mixed = (sup.sum(axis=-1) >= 2) & (m > mass_floor)
            for t, s in zip(*np.nonzero(mixed)):
                acts = np.flatnonzero(sup[t, s])
                w = np.maximum(pi[t, s, acts], 1e-12)
                r = int(np.argmax(w))
                for j, a in enumerate(acts):
                    if j != r:
                        ks.append(k); ts.append(t); ss.append(s); acts_.append(a); refs.append(acts[r])
                        states.append(n_states); z0.append(np.log(w[j] / w[r]))
                n_states += 1
                self.base[k][t, s, :] = 0.0
        self.k, self.t, self.s, self.a, self.ref, self.state = (
            np.array(v, dtype=np.int64) for v in (ks, ts, ss, acts_, refs, states))
        self.n_mixed = n_states
        self.z0 = np.array(z0, dtype=np.float64)
        self._sel = [np.flatnonzero(self.k == k) for k in range(len(self.base))]

    def __len__(self):
        return len(self.z0)

    def policy(self, z):
        shift = np.zeros(self.n_mixed)
        np.maximum.at(shift, self.state, z)  # stabilise the softmax (reference logit is 0)
        e = np.exp(z - shift[self.state])
        e_ref = np.exp(-shift)
        denom = e_ref + np.bincount(self.state, weights=e, minlength=self.n_mixed)
        w, w_ref = e / denom[self.state], e_ref / denom
        out = []
        for k, b in enumerate(self.base):
            pi = b.copy()
            sel = self._sel[k]
            pi[self.t[sel], self.s[sel], self.a[sel]] = w[sel]
            pi[self.t[sel], self.s[sel], self.ref[sel]] = w_ref[self.state[sel]]
            out.append(pi)
        return tuple(out)

    def entropy_bonus(self, z, tau):
        """``tau`` times the policy's entropy at each (t, s), per population (0 at pure
        states), computed from the logits: ``log pi_a = z_a - logsumexp`` never underflows."""
        shift = np.zeros(self.n_mixed)
        np.maximum.at(shift, self.state, z)
        e = np.exp(z - shift[self.state])
        e_ref = np.exp(-shift)
        denom = e_ref + np.bincount(self.state, weights=e, minlength=self.n_mixed)
        lse = shift + np.log(denom)
        w, w_ref = e / denom[self.state], e_ref / denom
        # H = -sum_a pi_a log pi_a, the reference action having logit 0
        h = w_ref * lse - np.bincount(self.state, weights=w * (z - lse[self.state]), minlength=self.n_mixed)
        out = []
        for k, b in enumerate(self.base):
            hk = np.zeros(b.shape[:-1])
            sel = self._sel[k]
            hk[self.t[sel], self.s[sel]] = tau * h[self.state[sel]]
            out.append(hk)
        return tuple(out)

    def residual(self, q_policy):
        r = np.empty(len(self.z0))
        for k, q in enumerate(q_policy):
            sel = self._sel[k]
            r[sel] = q[self.t[sel], self.s[sel], self.a[sel]] - q[self.t[sel], self.s[sel], self.ref[sel]]
        return r


def _newton(game, par, res_tol, max_newton, fd_step, dense_limit, tau=0.0, deadline=np.inf, residual=None):
    """Levenberg–Marquardt Newton on F(z) = 0; returns (z, F(z), iterations).

    Dense: finite-difference Jacobian, its SVD, and the damped step
    ``dz = -V diag(s / (s^2 + lam)) U^T F`` with ``lam`` cut tenfold after a step that
    lowers ``|F|`` and raised tenfold otherwise: Gauss–Newton on consistent systems, a
    bounded least-squares step on singular or inconsistent ones (a wrong support). After a
    successful step the Jacobian is updated by Broyden's rank-one formula (superlinear
    convergence for one evaluation of F instead of n); it is rebuilt by differences when
    an updated one fails to lower ``|F|``. Above ``dense_limit`` unknowns: Jacobian-free Newton–Krylov (GMRES
    on finite-difference Jacobian-vector products) with backtracking.
    """
    def F(z):
        if residual is not None:
            return residual(z)
        return par.residual(analyse(game, par.policy(z), best=False, tau=tau, validate=False).q_policy)

    z = par.z0.copy()
    f = F(z)
    its = 0
    n = len(z)
    lam = None
    J, fresh = None, False
    while its < max_newton and np.max(np.abs(f), initial=0.0) > res_tol and clock() < deadline:
        its += 1
        norm0 = np.linalg.norm(f)
        if n <= dense_limit:
            if J is None:
                J, fresh = np.empty((n, n)), True
                for j in range(n):
                    zp = z.copy()
                    zp[j] += fd_step
                    J[:, j] = (F(zp) - f) / fd_step
            with one_blas_thread():
                U, sv, Vt = np.linalg.svd(J)
            if not sv[0] > 0.0:
                break  # F does not depend on these weights here: nothing to solve
            uf = U.T @ f
            if lam is None:
                lam = 1e-8 * float(sv[0]) ** 2
            for _ in range(12 if fresh else 3):
                dz = -Vt.T @ (sv / (sv * sv + lam) * uf)
                f_new = F(z + dz)
                if np.linalg.norm(f_new) < norm0:
                    lam = max(lam / 10.0, 1e-16 * float(sv[0]) ** 2)
                    break
                lam *= 10.0
            if not np.linalg.norm(f_new) < norm0:
                if fresh:
                    break
                J = None  # the Broyden-updated Jacobian misled: rebuild it by differences
                continue
            # Broyden rank-one update: the next steps reuse J instead of n more evaluations
            J = J + np.outer((f_new - f) - J @ dz, dz) / float(dz @ dz)
            fresh = False
        else:
            dz = _newton_krylov_step(F, z, f, fd_step, res_tol, rtol=1e-8, restart=60, maxiter=6)
            step, f_new = _backtrack(F, z, dz, norm0, min_step=1e-4)
            dz = step * dz
        if not np.linalg.norm(f_new) < norm0:
            break
        z, f = z + dz, f_new
    return z, f, its


def _unresolved(par, f, q_policy, res_tol):
    """Per population, the (t, s, a) to drop where an indifference could not be met: the
    worse of the two actions of each equation with a residual above ``res_tol``."""
    worst = float(np.max(np.abs(f), initial=0.0))
    bad = (np.abs(f) > res_tol) & (np.abs(f) >= 0.5 * worst)  # the worst first: one bad tie spoils others
    out = [[] for _ in q_policy]
    for j in np.flatnonzero(bad):
        k, t, s = par.k[j], par.t[j], par.s[j]
        worse = par.a[j] if f[j] < 0 else par.ref[j]
        out[k].append((t, s, worse))
    return out


def newton_polish(game, analysis, tol: float, rounds: int = 25, max_newton: int = 12,
                  mass_floor: float = 1e-14, weight_floor: float = 1e-3, drop_weight: float = 1e-10,
                  gap: float | None = None, fd_step: float = 1e-7,
                  dense_limit: int = 400, max_unknowns: int = 20000, deadline: float = np.inf) -> PolishResult:
    """Polish ``analysis`` (a rough equilibrium, as returned by :func:`.problem.analyse`)
    by the active-set Newton method of the module docstring; stop as soon as the exact
    exploitability is at most ``tol``, or :func:`.problem.clock` passes ``deadline``."""
    best = an = analysis
    support = initial_support(analysis, weight_floor, gap)
    total = 0
    for rnd in range(1, rounds + 1):
        support = merge_duplicate_actions(support, an.model)
        base = tuple(greedy_policy(np.where(sup, qb, -np.inf)) for sup, qb in zip(support, an.q_best))
        par = _Parametrisation(base, support, an.policy, an.mass, mass_floor)
        if len(par) > max_unknowns:
            return PolishResult(best, total, rnd - 1,
                                f"{len(par)} mixed-strategy unknowns exceed the limit {max_unknowns}")
        scale = max(1.0, max(float(np.max(np.abs(q))) for q in an.q_best))
        res_tol = 1e-13 * scale
        z, f, its = _newton(game, par, res_tol, max_newton, fd_step, dense_limit, deadline=deadline)
        total += its
        an = analyse(game, par.policy(z), validate=False)
        # LM converges to a least-squares point, so a residual left there marks a tie that
        # cannot hold; an unfinished Krylov solve says nothing of the kind
        drops = _unresolved(par, f, an.q_policy, 1e3 * res_tol) if len(par) <= dense_limit else [[] for _ in support]
        if an.exploitability < best.exploitability:
            best = an
        if best.exploitability <= tol:
            return PolishResult(best, total, rnd, "converged")
        if clock() > deadline:
            return PolishResult(best, total, rnd, "time budget spent")
        if an.exploitability > 10.0 * best.exploitability and rnd > 1:
            return PolishResult(best, total, rnd, f"active set diverging (exploitability {an.exploitability:.3g}, "
                                                  f"best {best.exploitability:.3g})")
        new = []
        for k, (sup, pi, qb) in enumerate(zip(support, an.policy, an.q_best)):
            sup = sup & (pi > drop_weight)
            for t, s, a in drops[k]:
                sup[t, s, a] = False
            sup |= greedy_policy(qb) > 0
            sup_best = np.where(sup, qb, -np.inf).max(axis=-1, keepdims=True)
            sup |= qb > sup_best + 1e-12 * np.maximum(1.0, np.abs(sup_best))
            new.append(sup)
        support = tuple(new)
    return PolishResult(best, total, rounds, f"exploitability {best.exploitability:.3g} above {tol:g} "
                                            f"after {rounds} active-set rounds")


def regularised_path(game, analysis, taus, mass_floor: float = 1e-14, fd_step: float = 1e-7,
                     dense_limit: int = 400, max_newton: int = 20):
    """Entropy-regularised equilibria ``pi = softmax(Q_tau / tau)`` for decreasing ``taus``,
    each by Newton on the logits from the previous one (continuation).

    The equations are those of the polish with the regularised action values (see
    :func:`.problem.analyse`): ``tau (z_a - z_a0) = Q_tau(a) - Q_tau(a0)``, i.e. the polish
    system plus ``tau`` times the identity, which makes it non-singular (the regularised
    equilibrium is unique in monotone games; Cui & Koeppl 2021). Its exploitability is at
    most ``tau`` times the expected entropy of the policy along the flow. Not part of the
    certified pipeline: on the toolkit's games the continuation works down to tau ~ 1e-3
    (crowd-1d-v0: polish from there certifies) but stalls below that on some (a small
    garnet, sis-v0), and it costs more than the fictitious-play warm start. Returns the
    analysis at the last ``tau`` and the total Newton iterations.
    """
    an = analysis
    total = 0
    support = tuple(np.ones(pi.shape, dtype=bool) for pi in an.policy)
    support = merge_duplicate_actions(support, an.model)
    for tau in taus:
        base = tuple(greedy_policy(qb) for qb in an.q_best)
        policy = tuple(np.where(sup, np.maximum(pi, 1e-300), 0.0) for sup, pi in zip(support, an.policy))
        par = _Parametrisation(base, support, policy, an.mass, mass_floor)
        scale = max(1.0, max(float(np.max(np.abs(q))) for q in an.q_best))
        z, _, its = _newton(game, par, 1e-12 * scale, max_newton, fd_step, dense_limit, tau=tau)
        total += its
        an = analyse(game, par.policy(z), validate=False)
    return an, total


def _fd_jacobian(F, z, f, fd_step):
    J = np.empty((len(f), len(z)))
    for j in range(len(z)):
        zp = z.copy()
        zp[j] += fd_step
        J[:, j] = (F(zp) - f) / fd_step
    return J


def _plain_newton(F, z, res_tol, max_newton, fd_step, dense_limit, deadline=np.inf):
    """Newton with backtracking on a non-singular system: a fresh finite-difference
    Jacobian for each step up to ``dense_limit`` unknowns (the chord step with the old one
    is tried first once the residual is small, as it then costs one evaluation), GMRES on
    difference Jacobian-vector products above. Returns (z, F(z), iterations)."""
    f = F(z)
    its, J = 0, None
    n = len(z)
    while its < max_newton and np.max(np.abs(f), initial=0.0) > res_tol and clock() < deadline:
        its += 1
        norm0 = np.linalg.norm(f)
        if n <= dense_limit:
            dz = None
            if J is not None:  # chord step: keep it only if it cuts the residual tenfold
                with one_blas_thread():
                    dz = np.linalg.solve(J, -f)
                f_new = F(z + dz)
                if np.linalg.norm(f_new) < 0.1 * norm0:
                    z, f = z + dz, f_new
                    continue
            J = _fd_jacobian(F, z, f, fd_step)
            with one_blas_thread():
                try:
                    dz = np.linalg.solve(J, -f)
                except np.linalg.LinAlgError:
                    dz = np.linalg.lstsq(J, -f, rcond=None)[0]
        else:
            dz = _newton_krylov_step(F, z, f, fd_step, res_tol, rtol=1e-10, restart=100, maxiter=10)
        step, f_new = _backtrack(F, z, dz, norm0, min_step=1e-3)
        if not np.linalg.norm(f_new) < norm0:
            break
        z, f = z + step * dz, f_new
    return z, f, its


def logit_homotopy(game, analysis, tau_start: float = 1.0, tau_stop: float = 1e-9, factor: float = 0.1,
                   tol: float = 0.0, mass_floor: float = 1e-14, fd_step: float = 1e-6, dense_limit: int = 1500,
                   max_newton: int = 20, deadline: float = np.inf, on_step=None):
    """Entropy-regularised (logit) equilibria ``pi = softmax(Q_tau / tau)`` for
    ``tau = tau_start * factor^n`` down to ``tau_stop``, each by Newton on the logits
    ``z`` warm-started at the previous ``z`` (continuation; Cui & Koeppl 2021).

    The unknowns are the logits of all actions (duplicates merged) at the states with mass
    at the start, relative to a reference action; the equations

        F(z)[t, s, a] = Q_h(a) - Q_h(a0) - tau z_a = 0,

    with ``Q_h`` the action values of the policy for the reward ``R + tau H_pi(t, s)``
    (H the entropy of the policy at the state), say ``tau log pi_a - tau log pi_a0`` equals
    the difference of regularised action values: ``pi = softmax(Q_tau / tau)``. Written
    with ``z`` rather than ``log pi`` they stay exact when the weight of a dominated action
    underflows (its logit keeps growing like ``-gap / tau``): reading ``log pi`` back from
    an underflowed weight is what stalled the earlier continuation near tau = 2e-3. Its
    Jacobian is the polish's plus ``tau`` times the identity, non-singular where the
    polish's is degenerate (crowd games: many policies induce the same flow).

    The step in tau is adaptive: a step Newton cannot solve is retried from the last
    solved tau with the square root of the factor (until the factor exceeds 0.9); a step
    solved in at most 4 iterations squares it (down to ``factor``).
    The exploitability of the regularised equilibrium is at most ``tau`` times the
    policy's entropy summed along the flow (``<= tau T log A``; it maximises the
    regularised value, so a deviation gains at most the entropy it gives up), so the path
    itself can reach a tolerance; it stops when the exact exploitability is at most
    ``tol``, when Newton fails to solve even a short step (the path turns or bifurcates,
    or, in crowd games below tau ~ 1e-4, the Jacobian becomes nearly singular), or at
    ``deadline``. ``on_step(tau, an)``
    is called after every solved step (e.g. to try a polish). Returns (best analysis,
    Newton iterations, reason).
    """
    an = analysis
    support = merge_duplicate_actions(tuple(np.ones(pi.shape, dtype=bool) for pi in an.policy), an.model)
    base = tuple(greedy_policy(qb) for qb in an.q_best)
    policy = tuple(np.maximum(pi, 1e-300) for pi in an.policy)
    par = _Parametrisation(base, support, policy, an.mass, mass_floor)
    scale = max(1.0, max(float(np.max(np.abs(q))) for q in an.q_best))
    best, total, tau = an, 0, float(tau_start)
    z, step = par.z0.copy(), float(factor)
    while True:
        def residual(z, tau=tau):
            q = analyse(game, par.policy(z), best=False, bonus=par.entropy_bonus(z, tau), validate=False).q_policy
            return par.residual(q) - tau * z
        z_new, f, its = _plain_newton(residual, z, 1e-11 * scale, max_newton, fd_step, dense_limit, deadline)
        total += its
        if not np.max(np.abs(f), initial=0.0) <= 1e-8 * scale:
            if tau == tau_start or step > 0.9 or clock() > deadline:
                return best, total, f"Newton did not solve the step to tau = {tau:.3g} (residual {np.abs(f).max():.3g})"
            tau /= step  # back to the last solved tau, and a shorter step from there
            step = float(np.sqrt(step))
            tau *= step
            continue
        z = z_new
        an = analyse(game, par.policy(z), validate=False)
        if an.exploitability < best.exploitability:
            best = an
        if on_step is not None:
            on_step(tau, an)
        if best.exploitability <= tol:
            return best, total, "converged"
        if clock() > deadline:
            return best, total, "time budget spent"
        if tau <= tau_stop * (1.0 + 1e-12):
            break
        if its <= 4:  # an easy step: lengthen the next one
            step = max(float(factor), step * step)
        tau = max(tau * step, tau_stop)
    return best, total, f"reached tau = {tau_stop:g}"


def _newton_krylov_step(F, z, f, fd_step, res_tol, rtol, restart, maxiter):
    """Matrix-free Newton step: GMRES on J dz = -f with J v ~ (F(z + h v) - f) / h, h = fd_step / |v|."""
    def matvec(v):
        nv = np.linalg.norm(v)
        if nv == 0.0:
            return np.zeros_like(v)
        h = fd_step / nv
        return (F(z + h * v) - f) / h
    op = LinearOperator((z.size, z.size), matvec=matvec, dtype=np.float64)
    dz, _ = gmres(op, -f, rtol=rtol, atol=0.1 * res_tol, restart=restart, maxiter=maxiter)
    return dz


def _backtrack(F, z, dz, norm0, min_step):
    """Halve the step from 1 until ``|F(z + step dz)| < norm0`` or the step falls below ``min_step``;
    returns (step, F(z + step dz))."""
    step = 1.0
    while True:
        f_new = F(z + step * dz)
        if np.linalg.norm(f_new) < norm0 or step < min_step:
            return step, f_new
        step *= 0.5
