"""The kernel the solvers differentiate (action values of a fixed policy, the core's
``policy_q_values``) against its numpy twin and the core's other evaluators."""
import numpy as np
import pytest

from mfgbench.core import kernels as core
from mfgbench.core import kernels


def _random_model(rng, T, S, A, B, static):
    n = 1 if static else T
    succ = rng.integers(0, S, size=(n, S, A, B)).astype(np.int64)
    prob = rng.random((n, S, A, B))
    prob /= prob.sum(axis=-1, keepdims=True)
    R = rng.standard_normal((T, S, A))
    g = rng.standard_normal(S)
    pi = rng.random((T, S, A))
    pi[rng.random((T, S, A)) < 0.3] = 0.0
    pi[..., 0] += 1e-3
    pi /= pi.sum(axis=-1, keepdims=True)
    return R, succ, prob, g, pi


@pytest.mark.parametrize("static", [True, False])
def test_policy_q_values_matches_numpy_twin(rng, static):
    args = _random_model(rng, 6, 7, 3, 4, static)
    V, Q = kernels.policy_q_values(*args)
    V2, Q2 = kernels.policy_q_values_numpy(*args)
    np.testing.assert_allclose(V, V2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(Q, Q2, rtol=0, atol=1e-12)


def test_policy_values_agree_with_core_policy_value(rng):
    R, succ, prob, g, pi = _random_model(rng, 5, 6, 4, 3, False)
    V, Q = kernels.policy_q_values(R, succ, prob, g, pi)
    np.testing.assert_allclose(V, core.policy_value_numpy(R, succ, prob, g, pi), atol=1e-12)
    np.testing.assert_allclose(V[:-1], (pi * Q).sum(axis=-1), atol=1e-12)


def test_greedy_policy_q_values_are_best_response_q(rng):
    """For the greedy policy of Q^BR, Q^pi = Q^BR (Bellman optimality)."""
    R, succ, prob, g, _ = _random_model(rng, 5, 6, 4, 3, True)
    Vb, Qb = core.best_response_values_numpy(R, succ, prob, g)
    pi = np.zeros_like(Qb)
    np.put_along_axis(pi, Qb.argmax(axis=-1)[..., None], 1.0, axis=-1)
    V, Q = kernels.policy_q_values(R, succ, prob, g, pi)
    np.testing.assert_allclose(Q, Qb, atol=1e-12)
    np.testing.assert_allclose(V, Vb, atol=1e-12)
