"""Monte Carlo estimates of a policy's expected return, the independent check of exact values.

Agents of one population are sampled one by one (no finite-population effect): each
draws ``s0 ~ mu0``, then at every t an action ``a ~ pi_t(.|s)``, collects
``R_t[s, a]`` and moves to ``s' ~ P_t(.|s, a)`` of the model along a fixed flow; at T
it collects ``g[s]``. The sample mean of the returns estimates ``<mu0, V^pi[0]>``.
Sampling is vectorised over agents with inverse-CDF draws from a seeded Generator.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MonteCarloEstimate:
    mean: float
    stderr: float
    n_agents: int
    final_states: np.ndarray

    def histogram(self, n_states: int) -> np.ndarray:
        return np.bincount(self.final_states, minlength=n_states) / self.n_agents


def _draw(cdf_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index drawn from each row's CDF with the uniforms ``u`` (one per row)."""
    idx = (cdf_rows < u[:, None] * cdf_rows[:, -1:]).sum(axis=1)
    return np.minimum(idx, cdf_rows.shape[1] - 1)


def sample_returns(model, k: int, pi: np.ndarray, mu0: np.ndarray, n_agents: int, rng: np.random.Generator,
                   until: int | None = None) -> MonteCarloEstimate:
    """Sample ``n_agents`` returns of population ``k`` playing ``pi[t, s, a]`` along ``model``.

    With ``until`` the simulation stops at that time (no terminal reward) and
    ``final_states`` are the agents' states then, for comparing with the flow.
    """
    T = model.rewards[k].shape[0] if until is None else until
    cdf0 = np.cumsum(mu0)
    s = np.minimum(np.searchsorted(cdf0, rng.random(n_agents) * cdf0[-1], side="right"), len(mu0) - 1)
    ret = np.zeros(n_agents)
    for t in range(T):
        a = _draw(np.cumsum(pi[t][s], axis=1), rng.random(n_agents))
        ret += model.rewards[k][t][s, a]
        succ_t, prob_t = model.transition_at(k, t)
        b = _draw(np.cumsum(prob_t[s, a], axis=1), rng.random(n_agents))
        s = succ_t[s, a, b]
    if until is None:
        ret += model.terminal[k][s]
    return MonteCarloEstimate(float(ret.mean()), float(ret.std(ddof=1) / np.sqrt(n_agents)), n_agents, s)
