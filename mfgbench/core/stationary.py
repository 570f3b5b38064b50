"""Exact evaluation of a policy profile in a stationary discounted game.

For population k with stationary policy ``pi_k[s, a]`` and a fixed kernel
``P_k(s' | s, a)``, ``P^pi_k = sum_a pi_k(a|s) P_k(.|s, a)``. The profile induces the
stationary distribution ``mu^pi`` solving ``mu_k = mu_k P^pi_k(mu)`` for every k (a linear
solve when kernels do not depend on the mean field; otherwise the fixed point of
``mu -> stationary(P^pi(mu))``, iterated from two different starts, with a GameError when
it is not reached or the starts disagree). Against ``mu^pi``:

    V^pi_k = (I - gamma P^pi_k)^{-1} r^pi_k                     (linear solve, refined),
    V^BR_k = max over policies                                  (policy iteration, exact),
    E_k(pi) = sum_s mu^pi_k(s) (V^BR_k(s) - V^pi_k(s)),   E = sum_k E_k

(REFERENCES.md: the stationary distribution induced by pi in place of mu0). All in
float64; value and best response hold the Bellman equations to ~1e-13.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from mfgbench._jit import jit
from mfgbench.core.evaluate import BestResponse, Evaluation
from mfgbench.core.montecarlo import MonteCarloEstimate, _draw
from mfgbench.core.policy import as_profile, greedy_policy
from mfgbench.errors import GameError
from mfgbench.games.base import MeanField, check_rewards, check_transitions

DENSE_MAX = 2000
"""Largest state count solved with dense LU; larger chains use sparse LU."""


@dataclass(frozen=True)
class StationaryModel:
    """The MDPs the populations face at the stationary distribution of a profile.

    Per population k: ``distribution[k][s]``, ``rewards[k][s, a]``, ``succ[k][s, a, b]``,
    ``prob[k][s, a, b]``; ``iterations`` of the fixed point (0 for a linear solve).
    """

    distribution: tuple
    rewards: tuple
    succ: tuple
    prob: tuple
    gamma: float
    iterations: int


# -- kernels ---------------------------------------------------------------------------
@jit
def q_values(R, succ, prob, V, gamma):
    """Q[s, a] = R[s, a] + gamma sum_b prob[s, a, b] V[succ[s, a, b]]."""
    S, A, B = succ.shape
    Q = np.empty((S, A))
    for s in range(S):
        for a in range(A):
            q = 0.0
            for b in range(B):
                q += prob[s, a, b] * V[succ[s, a, b]]
            Q[s, a] = R[s, a] + gamma * q
    return Q


def q_values_numpy(R, succ, prob, V, gamma):
    return R + gamma * (prob * V[succ]).sum(axis=2)


# -- linear algebra ----------------------------------------------------------------------
def policy_matrix(succ, prob, pi) -> sp.csr_matrix:
    """``P^pi[s, s'] = sum_{a,b: succ = s'} pi[s, a] prob[s, a, b]`` as a sparse matrix."""
    S, A, B = succ.shape
    rows = np.repeat(np.arange(S), A * B)
    data = (pi[:, :, None] * prob).ravel()
    P = sp.csr_matrix((data, (rows, succ.ravel())), shape=(S, S))
    P.sum_duplicates()
    P.eliminate_zeros()
    return P


def _solve(M, b):
    """Solve ``M x = b`` with two steps of iterative refinement.

    Dense LU for small systems. Large ones try GMRES first (``I - gamma P`` is well
    conditioned, and random kernels make sparse LU fill in), then sparse LU if GMRES
    does not reach a residual of 1e-13 relative.
    """
    if M.shape[0] <= DENSE_MAX:
        Md = M.toarray() if sp.issparse(M) else M
        lu = scipy.linalg.lu_factor(Md)
        solve = lambda r: scipy.linalg.lu_solve(lu, r)  # noqa: E731
    else:
        M = sp.csr_matrix(M)
        scale = max(float(np.abs(b).max()), 1e-300)
        x, info = spla.gmres(M, b, rtol=1e-14, atol=0.0, restart=60, maxiter=10)
        if info == 0 and np.abs(M @ x - b).max() <= 1e-13 * scale:
            return x
        lu = spla.splu(sp.csc_matrix(M))
        solve = lu.solve
    x = solve(b)
    for _ in range(2):
        x = x + solve(b - M @ x)
    return x


def policy_value(R, succ, prob, pi, gamma) -> np.ndarray:
    """``V^pi = (I - gamma P^pi)^{-1} r^pi`` for a stationary policy ``pi[s, a]``."""
    S = R.shape[0]
    M = sp.identity(S, format="csr") - gamma * policy_matrix(succ, prob, pi)
    return _solve(M, (pi * R).sum(axis=1))


def best_response_values(R, succ, prob, gamma, max_iter: int = 1000):
    """Optimal values and Q by policy iteration (Howard): ``(V*, Q*)``.

    Each step evaluates a deterministic policy exactly and switches a state's action
    only when it improves Q by more than 1e-13 (relative), so it terminates; the result
    satisfies ``max_a Q*(s, a) = V*(s)`` to round-off.
    """
    S, A = R.shape
    choice = R.argmax(axis=1)
    rows = np.arange(S)
    for _ in range(max_iter):
        pi = np.zeros((S, A))
        pi[rows, choice] = 1.0
        V = policy_value(R, succ, prob, pi, gamma)
        Q = q_values(R, succ, prob, V, gamma)
        best = Q.argmax(axis=1)
        gain = Q[rows, best] - Q[rows, choice]
        improve = gain > 1e-13 * np.maximum(1.0, np.abs(V))
        if not improve.any():
            return Q.max(axis=1), Q
        choice = np.where(improve, best, choice)
    raise GameError(f"policy iteration did not terminate in {max_iter} steps")


def stationary_of_kernel(succ, prob, pi, where: str = "") -> np.ndarray:
    """The unique stationary distribution of ``P^pi`` (GameError if it is not unique).

    It is unique exactly when the chain has one closed communicating class; it is
    solved on that class (transient states get mass 0).
    """
    P = policy_matrix(succ, prob, pi)
    n_classes, labels = connected_components(P, directed=True, connection="strong")
    coo = P.tocoo()
    leaves = labels[coo.row] != labels[coo.col]
    is_open = np.zeros(n_classes, dtype=bool)
    is_open[labels[coo.row[leaves]]] = True
    closed = np.flatnonzero(~is_open)
    if len(closed) != 1:
        examples = "; ".join(f"class of state {int(np.flatnonzero(labels == c)[0])}" for c in closed[:3])
        raise GameError(f"{where}: the policy's chain has {len(closed)} closed classes ({examples}), so its "
                        f"stationary distribution is not unique")
    idx = np.flatnonzero(labels == closed[0])
    Pc = P[idx][:, idx]
    n = len(idx)
    # (I - Pc^T) mu = 0 with its first equation replaced by sum(mu) = 1 (nonsingular: Pc irreducible)
    M = sp.vstack([sp.csr_matrix(np.ones((1, n))), (sp.identity(n, format="csr") - Pc.T.tocsr())[1:]]).tocsr()
    b = np.zeros(n)
    b[0] = 1.0
    mu_c = _solve(M, b)
    mu_c = np.where(np.abs(mu_c) < 1e-300, 0.0, mu_c)
    if mu_c.min() < -1e-12:
        raise GameError(f"{where}: stationary solve lost positivity (min {mu_c.min():.3g})")
    mu = np.zeros(P.shape[0])
    mu[idx] = np.maximum(mu_c, 0.0)
    return mu / mu.sum()


# -- the game's side -------------------------------------------------------------------------
class _Queries:
    """Calls a stationary game's functions, validating what they return on first evaluation."""

    def __init__(self, game):
        self.game = game
        self.validate = not game._validated

    def rewards(self, k, mf):
        R = self.game.rewards(k, mf)
        return check_rewards(self.game, k, "stationary", R) if self.validate else np.asarray(R, dtype=np.float64)

    def transitions(self, k, mf):
        if self.game.static_transitions:
            succ, prob = self.game.static_transition(k)
        else:
            succ, prob = self.game.transitions(k, mf)
        if self.validate:
            return check_transitions(self.game, k, "stationary", succ, prob)
        return np.asarray(succ, dtype=np.int64), np.asarray(prob, dtype=np.float64)


def _mean_field(mu, profile):
    return MeanField(None, tuple(mu), tuple(m[:, None] * pi for m, pi in zip(mu, profile)))


def _where(game, k):
    return f"game {game.id}, population {k} ({game.populations[k].name})"


def _fixed_point(game, profile, q, start, tol, max_iter):
    """Damped iteration of ``mu -> stationary(P^pi(mu))`` from ``start``; (mu, iterations)."""
    K = game.n_populations
    mu = tuple(np.asarray(m, dtype=np.float64) for m in start)
    eta, previous = 1.0, np.inf
    for it in range(1, max_iter + 1):
        mf = _mean_field(mu, profile)
        target = tuple(stationary_of_kernel(*q.transitions(k, mf), profile[k], _where(game, k)) for k in range(K))
        gap = max(float(np.abs(t - m).sum()) for t, m in zip(target, mu))
        if gap <= tol:
            return target, it
        if gap > 0.9 * previous:  # not contracting: damp harder
            eta = max(eta / 2.0, 1.0 / 256.0)
        previous = gap
        mu = tuple((1.0 - eta) * m + eta * t for m, t in zip(mu, target))
    raise GameError(f"game {game.id}: the stationary distribution of the policy was not reached: the fixed-point "
                    f"iteration of mu -> stationary(P^pi(mu)) still moves by {gap:.3g} (L1) after {max_iter} "
                    f"iterations")


def stationary_distribution(game, policy, tol: float = 1e-13, max_iter: int = 2000):
    """``(mu^pi, iterations)``: the stationary distribution the profile induces, per population."""
    profile = as_profile(game, policy)
    q = _Queries(game)
    K = game.n_populations
    if game.static_transitions:
        return tuple(stationary_of_kernel(*q.transitions(k, None), profile[k], _where(game, k))
                     for k in range(K)), 0
    first, it1 = _fixed_point(game, profile, q, game.mu0, tol, max_iter)
    uniform = tuple(np.full(p.n_states, 1.0 / p.n_states) for p in game.populations)
    second, it2 = _fixed_point(game, profile, q, uniform, tol, max_iter)
    gap = max(float(np.abs(a - b).sum()) for a, b in zip(first, second))
    if gap > 1e-8:
        raise GameError(f"game {game.id}: the stationary distribution of the policy is not unique: the "
                        f"fixed-point iterations from mu0 and from the uniform law end {gap:.3g} apart (L1)")
    return first, it1 + it2


def induced_model(game, policy) -> StationaryModel:
    """The stationary distribution of ``policy`` and the MDPs the populations face there."""
    profile = as_profile(game, policy)
    mu, iterations = stationary_distribution(game, profile)
    q = _Queries(game)
    mf = _mean_field(mu, profile)
    K = game.n_populations
    R = tuple(q.rewards(k, mf) for k in range(K))
    kernels = [q.transitions(k, mf) for k in range(K)]
    game._validated = True
    return StationaryModel(tuple(mu), R, tuple(s for s, _ in kernels), tuple(p for _, p in kernels),
                           game.gamma, iterations)


def values_along(model: StationaryModel, profile) -> tuple:
    return tuple(policy_value(model.rewards[k], model.succ[k], model.prob[k], pi, model.gamma)
                 for k, pi in enumerate(profile))


def best_response_along(model: StationaryModel) -> BestResponse:
    V, Q = zip(*(best_response_values(model.rewards[k], model.succ[k], model.prob[k], model.gamma)
                 for k in range(len(model.rewards))))
    return BestResponse(tuple(greedy_policy(q) for q in Q), tuple(V), tuple(Q))


def evaluate(game, policy) -> Evaluation:
    """Stationary distribution, values, best responses and exploitability of ``policy``.

    ``flow[k]`` is the stationary distribution ``mu_k[s]``, ``values[k]`` is ``V^pi_k[s]``,
    ``model`` a :class:`StationaryModel`.
    """
    profile = as_profile(game, policy)
    model = induced_model(game, profile)
    values = values_along(model, profile)
    br = best_response_along(model)
    per = np.array([float(model.distribution[k] @ (br.values[k] - values[k])) for k in range(game.n_populations)])
    return Evaluation(model.distribution, values, br, per, float(per.sum()), model)


def distribution(game, policy) -> tuple:
    """The stationary distribution ``mu_k[s]`` that ``policy`` induces, one array per population."""
    return stationary_distribution(game, policy)[0]


def exploitability(game, policy) -> float:
    return evaluate(game, policy).exploitability


def sample_discounted_returns(model: StationaryModel, k: int, pi: np.ndarray, n_agents: int,
                              rng: np.random.Generator, horizon: int, start=None) -> MonteCarloEstimate:
    """Monte Carlo of ``<mu, V^pi>`` truncated at ``horizon`` steps: agents start from
    ``start`` (default the model's stationary distribution) and sum
    ``gamma^t R(s_t, a_t)`` for t < horizon. The truncation bias is at most
    ``gamma^horizon max|R| / (1 - gamma)``."""
    mu = model.distribution[k] if start is None else start
    cdf0 = np.cumsum(mu)
    s = np.minimum(np.searchsorted(cdf0, rng.random(n_agents) * cdf0[-1], side="right"), len(mu) - 1)
    pi_cdf = np.cumsum(pi, axis=1)
    R, succ, prob = model.rewards[k], model.succ[k], model.prob[k]
    prob_cdf = np.cumsum(prob, axis=2)
    ret = np.zeros(n_agents)
    discount = 1.0
    for _ in range(horizon):
        a = _draw(pi_cdf[s], rng.random(n_agents))
        ret += discount * R[s, a]
        b = _draw(prob_cdf[s, a], rng.random(n_agents))
        s = succ[s, a, b]
        discount *= model.gamma
    return MonteCarloEstimate(float(ret.mean()), float(ret.std(ddof=1) / np.sqrt(n_agents)), n_agents, s)
