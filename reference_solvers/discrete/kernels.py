"""Kernels of the discrete reference solvers: the action values of a fixed policy.

For one population along a fixed flow (``R[t, s, a]`` for t < T, terminal ``g[s]``,
sparse transitions ``succ[tt, s, a, b]``, ``prob[tt, s, a, b]`` with ``tt = t`` or, for
a static table, ``tt = 0``), the policy ``pi[t, s, a]`` has

    Q^pi[t, s, a] = R[t, s, a] + sum_b prob[tt, s, a, b] V^pi[t + 1, succ[tt, s, a, b]],
    V^pi[t, s]    = sum_a pi[t, s, a] Q^pi[t, s, a],        V^pi[T] = g.

Unlike the best-response values (a max over actions), ``Q^pi`` is a smooth function
of the policy, which is what the Newton polish differentiates. The discounted
stationary analogue ``Q = R + gamma P V`` with ``V = <pi, Q>`` is a linear solve done
in numpy (``stationary_policy_q``). Every compiled kernel has a numpy twin held equal
to it by the tests.
"""
from __future__ import annotations

import numpy as np

from mfgbench._jit import jit


@jit
def policy_q_values(R, succ, prob, g, pi):
    """``(V^pi[t, s], Q^pi[t, s, a])`` by backward induction (see the module docstring)."""
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
        Q[t] = R[t] + (prob[tt] * V[t + 1][succ[tt]]).sum(axis=2)
        V[t] = (pi[t] * Q[t]).sum(axis=1)
    return V, Q
