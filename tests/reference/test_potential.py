"""The interior-point solver for log-coupled potential games (reference_solvers.discrete.potential)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mfgbench as mb
from mfgbench.errors import GameError
from mfgbench.games.base import Game, LogCoupling, Population
from reference_solvers.discrete import solve
from reference_solvers.discrete.potential import _gradient_and_curvature, potential_problem, solve_potential
from reference_solvers.discrete.problem import analyse
from tests.reference.test_reference import independent_exploitability

SMALL = [
    ("crowd-1d-v0", {}),
    ("crowd-2d-v0", {"size": 5, "horizon": 5}),
    ("crowd-2d-four-rooms-v0", {"size": 7, "horizon": 6}),
    ("crowd-motion-v0", {"length": 6, "width": 6, "bar_path": ((3, 3), (3, 3), (2, 4), (2, 4))}),
    ("building-evacuation-v0", {"n_floor": 2, "length": 4, "width": 4}),
    ("beach-bar-v0", {}),
]


@pytest.mark.parametrize("game_id, params", SMALL)
def test_dual_start_is_the_best_response(game_id, params):
    """The multipliers built from the best response to the uniform flow zero the dual residual
    on every mu variable, and leave reduced costs on rho that are the best response's action
    gaps: >= 0, with 0 at every state's best action. (Checks the signs of the whole program.)"""
    game = mb.make(game_id, **params)
    prob = potential_problem(game)
    grad, _ = _gradient_and_curvature(prob, prob.start)
    reduced = grad - prob.A.T @ prob.start_dual
    scale = max(1.0, np.abs(grad).max())
    assert np.abs(reduced[prob.n_rho:]).max() <= 1e-12 * scale
    gaps = reduced[:prob.n_rho]
    assert gaps.min() >= -1e-12 * scale
    for idx in prob.rho_index:
        reached = idx[:, 0] >= 0
        assert np.abs(gaps[idx[reached]].min(axis=1)).max() <= 1e-12 * scale


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


def test_a_wrong_declaration_is_refused():
    sis = mb.make("sis-v0")
    sis.log_coupling = LogCoupling(1.0, 1e-20)   # its rewards do not depend on log mu
    with pytest.raises(GameError, match="sis-v0: rewards do not follow the declared log coupling"):
        potential_problem(sis)
    evac = mb.make("building-evacuation-v0", n_floor=2, length=3, width=3)
    evac.log_coupling = LogCoupling(2.0, 1e-20, floor="max", terminal=False)   # wrong eta
    with pytest.raises(GameError, match="rewards do not follow"):
        potential_problem(evac)
    with pytest.raises(GameError, match="not a single-population game with a declared"):
        potential_problem(mb.make("left-right-v0"))


class RandomLogGame(Game):
    """A random finite game with rewards ``B_t(s, a) - eta log(mu_t(s) + eps)``, terminal
    ``g(s) - eta log(mu_T(s) + eps)`` and random static sparse transitions."""

    id = "random-log-game"
    static_transitions = True

    def __init__(self, S, A, T, eta, seed):
        rng = np.random.default_rng(seed)
        mu0 = rng.dirichlet(np.ones(S))
        super().__init__(T, Population("p", S, A, mu0))
        self.B = rng.normal(size=(T, S, A))
        self.g = rng.normal(size=S)
        self.succ = rng.integers(0, S, size=(S, A, 2))
        self.prob = np.stack([np.full((S, A), 0.7), np.full((S, A), 0.3)], axis=-1)
        self.log_coupling = LogCoupling(eta, 1e-25, "add", terminal=True)

    def rewards(self, k, t, mf):
        return self.B[t] - self.log_coupling.eta * np.log(mf.mu[0] + 1e-25)[:, None]

    def terminal(self, k, mf):
        return self.g - self.log_coupling.eta * np.log(mf.mu[0] + 1e-25)

    def transitions(self, k, t, mf):
        return self.succ, self.prob


@settings(max_examples=15, deadline=None)
@given(S=st.integers(2, 8), A=st.integers(1, 4), T=st.integers(1, 5), eta=st.floats(0.05, 3.0),
       seed=st.integers(0, 10_000))
def test_random_log_coupled_games_are_certified(S, A, T, eta, seed):
    game = RandomLogGame(S, A, T, eta, seed)
    res = solve_potential(game, target=1e-10)
    assert res.exploitability <= 1e-10, res.reason
    assert independent_exploitability(game, res.profile) == pytest.approx(res.exploitability, abs=1e-12)
