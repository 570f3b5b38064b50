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

from mfgbench._jit import jit


# -- forward ------------------------------------------------------------------------
@jit
def push_forward(mu, pi_t, succ_t, prob_t):
    """mu_{t+1}[s'] = sum_{s,a,b: succ=s'} mu[s] pi_t[s, a] prob_t[s, a, b]."""
    S, A, B = succ_t.shape
    out = np.zeros(S)
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
    return out


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
@jit
def best_response_values(R, succ, prob, g):
    """Q[t, s, a] = R[t,s,a] + sum_b prob V[t+1, succ]; V[t, s] = max_a Q[t, s, a]; V[T] = g."""
    T, S, A = R.shape
    B = succ.shape[3]
    static = succ.shape[0] == 1
    V = np.empty((T + 1, S))
    Q = np.empty((T, S, A))
    V[T] = g
    for t in range(T - 1, -1, -1):
        tt = 0 if static else t
        for s in range(S):
            best = -np.inf
            for a in range(A):
                q = R[t, s, a]
                for b in range(B):
                    q += prob[tt, s, a, b] * V[t + 1, succ[tt, s, a, b]]
                Q[t, s, a] = q
                if q > best:
                    best = q
            V[t, s] = best
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
