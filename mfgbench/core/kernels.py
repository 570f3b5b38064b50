"""Kernels of exact finite-horizon evaluation: forward push of a distribution, backward
induction for a policy's value and for the best-response value.

Arrays, for one population along a fixed flow (the single-agent MDP it faces):
``R[t, s, a]`` rewards (t < T), ``g[s]`` terminal reward, and sparse transitions
``succ[tt, s, a, b]`` (int64), ``prob[tt, s, a, b]`` with ``tt = t`` when there is
one table per time (``succ.shape[0] == T``) and ``tt = 0`` when the table is static
(``succ.shape[0] == 1``). Each compiled kernel has a plain numpy twin below it; the
tests hold them equal to 1e-12.
"""
from __future__ import annotations

import numpy as np

from mfgbench._jit import jit, jit_inline


# -- forward ------------------------------------------------------------------------
@jit
def push_forward(mu, pi_t, succ_t, prob_t):
    """mu_{t+1}[s'] = sum_{s,a,b: succ=s'} mu[s] pi_t[s, a] prob_t[s, a, b]."""
    out = np.zeros(succ_t.shape[0])
    push_forward_into(mu, pi_t, succ_t, prob_t, out)
    return out


@jit
def push_forward_into(mu, pi_t, succ_t, prob_t, out):
    """``push_forward`` accumulated into ``out`` (zeroed by the caller), in the same loop order."""
    S, A, B = succ_t.shape
    for s in range(S):
        m = mu[s]
        if m == 0.0:
            continue
        for a in range(A):
            w = m * pi_t[s, a]
            if w == 0.0:
                continue
            for b in range(B):
                out[succ_t[s, a, b]] += w * prob_t[s, a, b]


def push_forward_numpy(mu, pi_t, succ_t, prob_t):
    out = np.zeros(succ_t.shape[0])
    np.add.at(out, succ_t.ravel(), ((mu[:, None] * pi_t)[:, :, None] * prob_t).ravel())
    return out


# -- backward: policy value -----------------------------------------------------------
@jit
def policy_value(R, succ, prob, g, pi):
    """V[t, s] = sum_a pi[t,s,a] (R[t,s,a] + sum_b prob V[t+1, succ]); V[T] = g."""
    T, S, A = R.shape
    B = succ.shape[3]
    static = succ.shape[0] == 1
    V = np.empty((T + 1, S))
    V[T] = g
    for t in range(T - 1, -1, -1):
        tt = 0 if static else t
        for s in range(S):
            v = 0.0
            for a in range(A):
                p = pi[t, s, a]
                if p == 0.0:
                    continue
                q = R[t, s, a]
                for b in range(B):
                    q += prob[tt, s, a, b] * V[t + 1, succ[tt, s, a, b]]
                v += p * q
            V[t, s] = v
    return V


@jit
def policy_q_values(R, succ, prob, g, pi):
    """Q^pi[t, s, a] = R[t,s,a] + sum_b prob V^pi[t+1, succ], with V^pi as in ``policy_value``."""
    T, S, A = R.shape
    B = succ.shape[3]
    static = succ.shape[0] == 1
    V = np.empty((T + 1, S))
    Q = np.empty((T, S, A))
    V[T] = g
    for t in range(T - 1, -1, -1):
        tt = 0 if static else t
        for s in range(S):
            v = 0.0
            for a in range(A):
                q = R[t, s, a]
                for b in range(B):
                    q += prob[tt, s, a, b] * V[t + 1, succ[tt, s, a, b]]
                Q[t, s, a] = q
                v += pi[t, s, a] * q
            V[t, s] = v
    return V, Q


def policy_q_values_numpy(R, succ, prob, g, pi):
    T = R.shape[0]
    V = np.empty((T + 1, R.shape[1]))
    Q = np.empty(R.shape)
    V[T] = g
    for t in range(T - 1, -1, -1):
        tt = 0 if succ.shape[0] == 1 else t
        Q[t] = R[t] + _continuation_numpy(succ[tt], prob[tt], V[t + 1])
        V[t] = (pi[t] * Q[t]).sum(axis=1)
    return V, Q


def _continuation_numpy(succ_tt, prob_tt, v_next):
    return (prob_tt * v_next[succ_tt]).sum(axis=2)


def policy_value_numpy(R, succ, prob, g, pi):
    T = R.shape[0]
    V = np.empty((T + 1, R.shape[1]))
    V[T] = g
    for t in range(T - 1, -1, -1):
        tt = 0 if succ.shape[0] == 1 else t
        Q = R[t] + _continuation_numpy(succ[tt], prob[tt], V[t + 1])
        V[t] = (pi[t] * Q).sum(axis=1)
    return V


# -- backward: best response ------------------------------------------------------------
@jit_inline
def bellman_row(R, succ, prob, v_next, t, tt, s, q):
    """q[a] = R[t, s, a] + sum_b prob[tt, s, a, b] v_next[succ[tt, s, a, b]] for every a (the action
    values at (t, s) against the next values); returns max_a q[a]."""
    best = -np.inf
    for a in range(q.shape[0]):
        v = R[t, s, a]
        for b in range(succ.shape[3]):
            v += prob[tt, s, a, b] * v_next[succ[tt, s, a, b]]
        q[a] = v
        if v > best:
            best = v
    return best


@jit
def best_response_values(R, succ, prob, g):
    """Q[t, s, a] = R[t,s,a] + sum_b prob V[t+1, succ]; V[t, s] = max_a Q[t, s, a]; V[T] = g."""
    T, S, A = R.shape
    static = succ.shape[0] == 1
    V = np.empty((T + 1, S))
    Q = np.empty((T, S, A))
    V[T] = g
    for t in range(T - 1, -1, -1):
        tt = 0 if static else t
        for s in range(S):
            V[t, s] = bellman_row(R, succ, prob, V[t + 1], t, tt, s, Q[t, s])
    return V, Q


def best_response_values_numpy(R, succ, prob, g):
    T = R.shape[0]
    V = np.empty((T + 1, R.shape[1]))
    Q = np.empty(R.shape)
    V[T] = g
    for t in range(T - 1, -1, -1):
        tt = 0 if succ.shape[0] == 1 else t
        Q[t] = R[t] + _continuation_numpy(succ[tt], prob[tt], V[t + 1])
        V[t] = Q[t].max(axis=1)
    return V, Q


# -- whole-horizon and fused kernels --------------------------------------------------------
# The kernels above work one sweep (or one step) at a time; these run a whole horizon, or
# several sweeps that read the same arrays, in one compiled call. They exist for speed:
# each reads ``R``, ``succ`` and ``prob`` once per time step instead of once per sweep,
# and small games pay one dispatch instead of one per time step.

TIE_TOL = 1e-12
"""Relative tie tolerance of greedy choices, the same as ``policy.greedy_policy``."""


@jit
def push_flow(mu0, pi, succ, prob):
    """The flow ``mu[t, s]`` (t = 0..T) of ``pi`` from ``mu0``: ``push_forward`` at every t."""
    T, S, A = pi.shape
    B = succ.shape[3]
    static = succ.shape[0] == 1
    mu = np.zeros((T + 1, S))
    mu[0] = mu0
    for t in range(T):
        tt = 0 if static else t
        for s in range(S):
            m = mu[t, s]
            if m == 0.0:
                continue
            for a in range(A):
                w = m * pi[t, s, a]
                if w == 0.0:
                    continue
                for b in range(B):
                    mu[t + 1, succ[tt, s, a, b]] += w * prob[tt, s, a, b]
    return mu


@jit
def flow_and_measure(mu0, pi, succ, prob):
    """``push_flow`` and, from the same pass, the state-action measure ``L[t, s, a] = mu[t, s] pi[t, s, a]``."""
    T, S, A = pi.shape
    mu = np.empty((T + 1, S))
    L = np.empty((T, S, A))
    flow_and_measure_into(mu0, pi, succ, prob, mu, L)
    return mu, L


def flow_and_measure_numpy(mu0, pi, succ, prob):
    mu = push_flow_numpy(mu0, pi, succ, prob)
    return mu, mu[:-1, :, None] * pi


def push_flow_numpy(mu0, pi, succ, prob):
    T = pi.shape[0]
    mu = np.empty((T + 1, mu0.shape[0]))
    mu[0] = mu0
    for t in range(T):
        tt = 0 if succ.shape[0] == 1 else t
        mu[t + 1] = push_forward_numpy(mu[t], pi[t], succ[tt], prob[tt])
    return mu


@jit
def evaluation_sweep(R, succ, prob, g, pi):
    """Policy value and best response in one backward pass over the same arrays.

    Returns ``(V^pi[t, s], V^BR[t, s], Q^BR[t, s, a], BR[t, s, a])``, equal to
    ``policy_value``, ``best_response_values`` and ``greedy_policy`` of its Q (the lowest
    action within the relative tie tolerance)."""
    T, S, A = R.shape
    B = succ.shape[3]
    static = succ.shape[0] == 1
    V = np.empty((T + 1, S))
    W = np.empty((T + 1, S))
    Q = np.empty((T, S, A))
    br = np.zeros((T, S, A))
    V[T] = g
    W[T] = g
    for t in range(T - 1, -1, -1):
        tt = 0 if static else t
        for s in range(S):
            v = 0.0
            best = -np.inf
            for a in range(A):
                q_pi = R[t, s, a]
                q_br = R[t, s, a]
                for b in range(B):
                    nxt = succ[tt, s, a, b]
                    p = prob[tt, s, a, b]
                    q_pi += p * V[t + 1, nxt]
                    q_br += p * W[t + 1, nxt]
                v += pi[t, s, a] * q_pi
                Q[t, s, a] = q_br
                if q_br > best:
                    best = q_br
            V[t, s] = v
            W[t, s] = best
            threshold = best - TIE_TOL * max(1.0, abs(best))
            for a in range(A):
                if Q[t, s, a] >= threshold:
                    br[t, s, a] = 1.0
                    break
    return V, W, Q, br


def evaluation_sweep_numpy(R, succ, prob, g, pi):
    from mfgbench.core.policy import greedy_policy
    V = policy_value_numpy(R, succ, prob, g, pi)
    W, Q = best_response_values_numpy(R, succ, prob, g)
    return V, W, Q, greedy_policy(Q, TIE_TOL)


@jit
def fictitious_play_update(R, succ, prob, g, mu0, weighted, weights, pi):
    """One fictitious-play step along a fixed model (transitions independent of the flow).

    Greedy best response ``BR`` to the model (as ``evaluation_sweep``), its flow ``mu^BR``
    from ``mu0`` through the same transitions, then, in place,
    ``weighted += mu^BR[t, s] BR[t, s, a]``, ``weights += mu^BR[t, s]`` (t < T), and the new
    average policy: ``weighted / weights`` where ``weights > 0``, else ``pi``, each row
    renormalised. Returns the new policy."""
    T, S, A = R.shape
    B = succ.shape[3]
    static = succ.shape[0] == 1
    choice = greedy_choice(R, succ, prob, g)
    mu = mu0.copy()
    out = np.empty((T, S, A))
    for t in range(T):
        tt = 0 if static else t
        nxt = np.zeros(S)
        for s in range(S):
            m = mu[s]
            a_br = choice[t, s]
            weighted[t, s, a_br] += m
            weights[t, s] += m
            if m != 0.0:
                for b in range(B):
                    nxt[succ[tt, s, a_br, b]] += m * prob[tt, s, a_br, b]
            if weights[t, s] > 0.0:
                total = 0.0
                for a in range(A):
                    out[t, s, a] = weighted[t, s, a] / weights[t, s]
                    total += out[t, s, a]
                for a in range(A):
                    out[t, s, a] /= total
            else:
                total = 0.0
                for a in range(A):
                    total += pi[t, s, a]
                for a in range(A):
                    out[t, s, a] = pi[t, s, a] / total
        mu = nxt
    return out


def fictitious_play_update_numpy(R, succ, prob, g, mu0, weighted, weights, pi):
    from mfgbench.core.policy import greedy_policy
    _, Q = best_response_values_numpy(R, succ, prob, g)
    br = greedy_policy(Q, TIE_TOL)
    mu = push_flow_numpy(mu0, br, succ, prob)[:-1]
    weighted += mu[..., None] * br
    weights += mu
    out = pi.copy()
    seen = weights > 0
    out[seen] = weighted[seen] / weights[seen][:, None]
    return out / out.sum(axis=-1, keepdims=True)


@jit
def flow_and_measure_into(mu0, pi, succ, prob, mu, L):
    """``flow_and_measure`` written into the caller's arrays ``mu[T+1, S]`` and ``L[T, S, A]``."""
    T, S, A = pi.shape
    B = succ.shape[3]
    static = succ.shape[0] == 1
    mu[:] = 0.0
    mu[0] = mu0
    for t in range(T):
        tt = 0 if static else t
        for s in range(S):
            m = mu[t, s]
            for a in range(A):
                w = m * pi[t, s, a]
                L[t, s, a] = w
                if w == 0.0:
                    continue
                for b in range(B):
                    mu[t + 1, succ[tt, s, a, b]] += w * prob[tt, s, a, b]


@jit
def fictitious_play_update_and_flow(R, succ, prob, g, mu0, weighted, weights, pi, mu, L):
    """``fictitious_play_update``, then ``flow_and_measure`` of the new policy written into ``mu``
    and ``L`` (the next iteration's rewards read them): tiny games pay one compiled call per
    iteration instead of two, and box one array instead of three. Returns the new policy."""
    out = fictitious_play_update(R, succ, prob, g, mu0, weighted, weights, pi)
    flow_and_measure_into(mu0, out, succ, prob, mu, L)
    return out


def fictitious_play_update_and_flow_numpy(R, succ, prob, g, mu0, weighted, weights, pi, mu, L):
    out = fictitious_play_update_numpy(R, succ, prob, g, mu0, weighted, weights, pi)
    mu[:], L[:] = flow_and_measure_numpy(mu0, out, succ, prob)
    return out


@jit
def greedy_best_response(R, succ, prob, g):
    """The greedy best response ``greedy_policy(best_response_values(R, succ, prob, g)[1])``
    (one-hot on the lowest action within the relative tie tolerance), in one call."""
    T, S, A = R.shape
    choice = greedy_choice(R, succ, prob, g)
    br = np.zeros((T, S, A))
    for t in range(T):
        for s in range(S):
            br[t, s, choice[t, s]] = 1.0
    return br


@jit
def greedy_choice(R, succ, prob, g):
    """Backward induction of the optimal values; (T, S) int64 array of the greedy action at each
    (t, s): the lowest action within the relative tie tolerance ``TIE_TOL`` of the best."""
    T, S, A = R.shape
    static = succ.shape[0] == 1
    W = np.empty(S)
    W_next = g.copy()
    choice = np.empty((T, S), dtype=np.int64)
    q_row = np.empty(A)
    for t in range(T - 1, -1, -1):
        tt = 0 if static else t
        for s in range(S):
            best = bellman_row(R, succ, prob, W_next, t, tt, s, q_row)
            W[s] = best
            threshold = best - TIE_TOL * max(1.0, abs(best))
            for a in range(A):
                if q_row[a] >= threshold:
                    choice[t, s] = a
                    break
        W_next[:] = W
    return choice


def greedy_best_response_numpy(R, succ, prob, g):
    from mfgbench.core.policy import greedy_policy
    return greedy_policy(best_response_values_numpy(R, succ, prob, g)[1], TIE_TOL)


PAIRWISE_BLOCK = 128
"""numpy's block size for pairwise summation; ``numpy_sum`` reproduces sums up to this length."""


@jit
def numpy_sum(x):
    """``np.sum`` of a 1-d float64 array of at most ``PAIRWISE_BLOCK`` entries in numpy's order
    (pairwise, with eight accumulators from eight entries on), hence the same bits."""
    n = x.shape[0]
    if n < 8:
        res = -0.0
        for i in range(n):
            res += x[i]
        return res
    r = x[:8].copy()
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] += x[i + j]
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        res += x[i]
        i += 1
    return res


@jit
def fictitious_play_average(weighted, weights, pi, mu, br):
    """The averaging of a fictitious-play step, in place as the learner's numpy code does it:
    ``weighted += mu[t, s] br[t, s, a]``, ``weights += mu[t, s]``, and the new policy
    ``weighted / weights`` where ``weights > 0``, else ``pi``, each row divided by its sum (summed
    in numpy's order: at most ``PAIRWISE_BLOCK`` actions). Returns the new policy."""
    T, S, A = pi.shape
    out = np.empty((T, S, A))
    for t in range(T):
        for s in range(S):
            m = mu[t, s]
            for a in range(A):
                weighted[t, s, a] += m * br[t, s, a]
            weights[t, s] += m
            if weights[t, s] > 0.0:
                for a in range(A):
                    out[t, s, a] = weighted[t, s, a] / weights[t, s]
            else:
                for a in range(A):
                    out[t, s, a] = pi[t, s, a]
            total = numpy_sum(out[t, s])
            for a in range(A):
                out[t, s, a] /= total
    return out


def fictitious_play_average_numpy(weighted, weights, pi, mu, br):
    weighted += mu[..., None] * br
    weights += mu
    seen = weights > 0
    out = pi.copy()
    out[seen] = weighted[seen] / weights[seen][:, None]
    return out / out.sum(axis=-1, keepdims=True)


@jit
def mirror_descent_update(R, succ, prob, g, pi, score, lr):
    """One mirror-descent step along the model of ``pi``: ``score += lr * Q^pi`` (in place)
    and the new policy ``softmax(score)`` over actions, which it returns."""
    T, S, A = R.shape
    B = succ.shape[3]
    static = succ.shape[0] == 1
    V = np.empty(S)
    V_next = g.copy()
    out = np.empty((T, S, A))
    for t in range(T - 1, -1, -1):
        tt = 0 if static else t
        for s in range(S):
            v = 0.0
            top = -np.inf
            for a in range(A):
                q = R[t, s, a]
                for b in range(B):
                    q += prob[tt, s, a, b] * V_next[succ[tt, s, a, b]]
                v += pi[t, s, a] * q
                score[t, s, a] += lr * q
                if score[t, s, a] > top:
                    top = score[t, s, a]
            V[s] = v
            total = 0.0
            for a in range(A):
                e = np.exp(score[t, s, a] - top)
                out[t, s, a] = e
                total += e
            for a in range(A):
                out[t, s, a] /= total
        V_next[:] = V
    return out


def mirror_descent_update_numpy(R, succ, prob, g, pi, score, lr):
    _, Q = policy_q_values_numpy(R, succ, prob, g, pi)
    score += lr * Q
    z = np.exp(score - score.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)
