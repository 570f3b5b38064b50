"""The interior-point solver for log-coupled potential games (reference_solvers.discrete.potential)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mfgbench as mb
from mfgbench.errors import GameError
from mfgbench.games.base import Game, LogCoupling, Population
from reference_solvers.discrete import solve
from reference_solvers.discrete.potential import (KKT_SOLVERS, _gradient_and_curvature, potential_problem,
                                                  solve_potential)
from reference_solvers.discrete.problem import analyse
from tests.reference.test_reference import independent_exploitability

SMALL = [
    ("crowd-1d-v0", {}),
    ("crowd-2d-v0", {"size": 5, "horizon": 5}),
    ("crowd-2d-four-rooms-v0", {"size": 7, "horizon": 6}),
    ("crowd-motion-v0", {"length": 6, "width": 6, "bar_path": ((3, 3), (3, 3), (2, 4), (2, 4))}),
    ("building-evacuation-v0", {"n_floor": 2, "length": 4, "width": 4}),
    ("beach-bar-v0", {}),
    ("predator-prey-v0", {"horizon": 5}),
    ("predator-prey-4pop-v0", {"horizon": 5}),
    ("traffic-2type-v0", {"size": 8, "horizon": 8}),
]


@pytest.mark.parametrize("game_id, params", SMALL)
def test_dual_start_is_the_best_response(game_id, params):
    """The multipliers built from the best response to the uniform flow zero the dual residual
    on every mu variable, and leave reduced costs on rho that are the best response's action
    gaps: >= 0, with 0 at every state's best action. (Checks the signs of the whole program.)"""
    check_dual_start(mb.make(game_id, **params))


def check_dual_start(game):
    prob = potential_problem(game)
    grad, _ = _gradient_and_curvature(prob, prob.start)
    reduced = grad - prob.A.T @ prob.start_dual
    scale = max(1.0, np.abs(grad).max())
    assert np.abs(reduced[prob.n_rho:]).max() <= 1e-12 * scale
    gaps = reduced[:prob.n_rho]
    assert gaps.min() >= -1e-12 * scale
    for idx in (i for per_pop in prob.rho_index for i in per_pop):
        reached = idx[:, 0] >= 0
        assert np.abs(gaps[idx[reached]].min(axis=1)).max() <= 1e-12 * scale


@pytest.mark.parametrize("game_id, params", [("crowd-2d-v0", {"size": 4, "horizon": 4}),
                                             ("predator-prey-v0", {"horizon": 4}),
                                             ("traffic-2type-v0", {"size": 6, "horizon": 5})])
def test_kkt_solvers_agree(game_id, params):
    """Normal equations (games without cross terms), rho eliminated, and the full LU solve
    the same KKT system: each is checked against the full one and by its residual."""
    prob = potential_problem(mb.make(game_id, **params))
    rng = np.random.default_rng(1)
    n, m = prob.A.shape[1], prob.A.shape[0]
    M = np.concatenate([rng.uniform(0.1, 10.0, prob.n_rho), rng.uniform(0.1, 10.0, n - prob.n_rho)])
    q, r = rng.normal(size=n), rng.normal(size=m)
    K = np.block([[np.diag(M) + prob.lin.toarray(), -prob.A.T.toarray()], [prob.A.toarray(), np.zeros((m, m))]])
    exact = np.linalg.solve(K, np.concatenate([q, r]))
    for solver in KKT_SOLVERS:
        if solver.__name__ == "_NormalKKT" and prob.lin.nnz:
            continue
        dw, dy = solver(M, prob.lin, prob.A, prob.n_rho).solve(q, r)
        assert np.concatenate([dw, dy]) == pytest.approx(exact, rel=1e-7, abs=1e-9), solver.__name__


def test_start_is_feasible():
    game = mb.make("crowd-2d-four-rooms-v0", size=7, horizon=6)
    prob = potential_problem(game)
    assert np.abs(prob.A @ prob.start - prob.b).max() <= 1e-15
    assert (prob.start[:prob.n_rho] > 0).all()


@pytest.mark.parametrize("game_id, params", SMALL)
def test_interior_point_certifies_and_the_certificate_is_real(game_id, params):
    game = mb.make(game_id, **params)
    res = solve_potential(game, target=1e-10)
    assert res.reason == "converged", res.reason
    assert res.exploitability <= 1e-10
    assert independent_exploitability(game, res.profile) == pytest.approx(res.exploitability, abs=1e-12)


def test_flow_agrees_with_the_active_set_newton_reference():
    """The equilibrium flow of a strictly monotone game is unique: the interior point's and the
    one the rest of the pipeline (warm start + active-set Newton) certifies agree."""
    game = mb.make("crowd-1d-v0")
    ip = analyse(game, solve_potential(game, target=1e-11).profile)
    plain = mb.make("crowd-1d-v0")
    plain.log_coupling = None            # the pipeline without step 0
    other = solve(plain, tol=1e-9)
    assert other.analysis.exploitability <= 1e-9 and "interior" not in other.method
    assert np.abs(ip.flow[0] - other.analysis.flow[0]).max() <= 1e-7


def test_pipeline_uses_the_potential_on_crowd_games():
    sol = solve(mb.make("crowd-2d-v0", size=5, horizon=5), tol=1e-8)
    assert sol.method.startswith("interior point") and sol.analysis.exploitability <= 1e-8


def test_a_declaration_neither_potential_nor_monotone_is_refused():
    with pytest.raises(ValueError, match="negative semidefinite"):
        LogCoupling(1.0, 1e-25, cross=((0.0, 2.0), (0.0, 0.0)))
    # symmetric cross terms that are not negative semidefinite: a potential game, not concave
    assert LogCoupling(0.0, 1e-25, cross=((-0.2, -1.0), (-1.0, -0.2))).problem == "potential (not concave)"
    assert LogCoupling(1.0, 1e-25, cross=((-1.0, 0.5), (0.5, -1.0))).problem == "potential"


def test_a_wrong_declaration_is_refused():
    sis = mb.make("sis-v0")
    sis.log_coupling = LogCoupling(1.0, 1e-20)   # its rewards do not depend on log mu
    with pytest.raises(GameError, match="sis-v0: rewards do not follow the declared log coupling"):
        potential_problem(sis)
    evac = mb.make("building-evacuation-v0", n_floor=2, length=3, width=3)
    evac.log_coupling = LogCoupling(2.0, 1e-20, floor="max", terminal=False)   # wrong eta
    with pytest.raises(GameError, match="rewards do not follow"):
        potential_problem(evac)
    traffic = mb.make("traffic-2type-v0", size=6, horizon=4)
    cp = traffic.log_coupling
    traffic.log_coupling = LogCoupling(0.0, 1.0, terminal=False, action_cross=tuple(
        tuple(tuple(2.0 * np.asarray(row)) for row in per_pop) for per_pop in cp.action_cross))   # twice kappa
    with pytest.raises(GameError, match="rewards do not follow"):
        potential_problem(traffic)
    with pytest.raises(GameError, match="no declared log-density coupling"):
        potential_problem(mb.make("left-right-v0"))


class RandomLogGame(Game):
    """A random finite game of K populations with rewards ``B_k,t(s, a) - eta log(mu_k,t(s) + eps)
    + sum_j C_kj mu_j,t(s)``, C = (antisymmetric) + (negative semidefinite), the terminal reward
    likewise, and random static sparse transitions per population."""

    id = "random-log-game"
    static_transitions = True

    def __init__(self, K, S, A, T, eta, seed):
        rng = np.random.default_rng(seed)
        pops = [Population(f"p{k}", S, A, rng.dirichlet(np.ones(S))) for k in range(K)]
        super().__init__(T, pops)
        self.B = rng.normal(size=(K, T, S, A))
        self.g = rng.normal(size=(K, S))
        self.succ = rng.integers(0, S, size=(K, S, A, 2))
        self.prob = np.stack([np.full((S, A), 0.7), np.full((S, A), 0.3)], axis=-1)
        W = rng.normal(size=(K, K))
        L = rng.normal(size=(K, K))
        self.C = (W - W.T) - 0.5 * L @ L.T
        self.log_coupling = LogCoupling(eta, 1e-25, "add", terminal=True, cross=tuple(map(tuple, self.C)))

    def _state(self, k, mf):
        return -self.log_coupling.eta * np.log(mf.mu[k] + 1e-25) + sum(
            self.C[k, j] * mf.mu[j] for j in range(self.n_populations))

    def rewards(self, k, t, mf):
        return self.B[k, t] + self._state(k, mf)[:, None]

    def terminal(self, k, mf):
        return self.g[k] + self._state(k, mf)

    def transitions(self, k, t, mf):
        return self.succ[k], self.prob


@settings(max_examples=15, deadline=None)
@given(K=st.integers(1, 3), S=st.integers(2, 8), A=st.integers(1, 4), T=st.integers(1, 5),
       eta=st.floats(0.05, 3.0), seed=st.integers(0, 10_000))
def test_random_monotone_log_coupled_games_are_certified(K, S, A, T, eta, seed):
    game = RandomLogGame(K, S, A, T, eta, seed)
    res = solve_potential(game, target=1e-10)
    assert res.exploitability <= 1e-10, res.reason
    assert independent_exploitability(game, res.profile) == pytest.approx(res.exploitability, abs=1e-12)
