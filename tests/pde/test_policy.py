"""Policy evaluation of feedback controls: exploitability >= 0, ~0 at equilibrium, larger when perturbed."""
import numpy as np
import pytest

from mfgbench.games import make
from reference_solvers.pde import solve
from reference_solvers.pde.analytic import lq_solution
from reference_solvers.pde.policy import evaluate_control


@pytest.mark.parametrize("game_id,nx,nt", [("crowd-continuous-v0", 100, 50), ("lq-continuous-v0", 200, 100),
                                           ("segregation-2pop-v0", 80, 40)])
def test_equilibrium_control_is_nearly_unexploitable_and_perturbation_is_worse(game_id, nx, nt):
    game = make(game_id)
    res = solve(game, nx=nx, nt=nt)
    controls = tuple(res.control(k) for k in range(game.n_populations))
    eq = evaluate_control(game, controls, nx, nt, problem=res.problem)
    bad = evaluate_control(game, tuple(0.7 * c + 0.1 for c in controls), nx, nt, problem=res.problem)
    assert eq.exploitability >= -1e-12
    assert np.all(eq.exploitability_per_population >= -1e-12)
    # discretisation level (it shrinks with the grid: see the next test), well below the perturbed control's
    assert eq.exploitability < 0.03
    assert bad.exploitability > 3 * eq.exploitability
    # the equilibrium control reproduces the equilibrium flow up to the discretisation
    for k in range(game.n_populations):
        assert np.abs(eq.m[k] - res.m[k]).sum(axis=1).max() * res.grid.dv < 0.1


def test_equilibrium_exploitability_shrinks_with_the_grid():
    game = make("crowd-continuous-v0")
    values = []
    for n in (50, 100):
        res = solve(game, nx=n, nt=n // 2)
        values.append(evaluate_control(game, res.control(), n, n // 2, problem=res.problem).exploitability)
    assert values[1] < 0.6 * values[0]


def test_lq_closed_form_control_is_nearly_unexploitable():
    game = make("lq-continuous-v0")
    sol = lq_solution(**game.params)
    eq = evaluate_control(game, lambda t, x: sol.alpha(t, x[0]), 200, 100)
    worse = evaluate_control(game, lambda t, x: 0.5 * sol.alpha(t, x[0]), 200, 100)
    assert -1e-12 <= eq.exploitability < 2e-3
    assert worse.exploitability > 5 * eq.exploitability
    # its cost converges (order 1) to the closed-form value int u(0, x) m0(x) dx
    gaps = []
    for n in (100, 200):
        ev = eq if n == 200 else evaluate_control(game, lambda t, x: sol.alpha(t, x[0]), n, n // 2)
        x = ev.problem.x[0]
        gaps.append(abs(ev.cost[0] - sol.value(0.0, x) @ ev.problem.m0[0] * ev.problem.dv))
    assert gaps[1] < 0.6 * gaps[0] and gaps[1] < 0.03


def test_random_controls_have_nonnegative_exploitability(rng):
    game = make("exit-room-2d-v0", control_bound=1.0)
    for _ in range(3):
        a = rng.uniform(-1, 1, size=(8, 2, 100))
        ev = evaluate_control(game, a, 10, 8)
        assert ev.exploitability >= -1e-12
        assert abs(ev.problem.grid.mass(ev.m[0]) - 1).max() < 1e-12 and ev.m[0].min() >= 0


def test_evaluate_control_validates():
    game = make("crowd-continuous-v0")
    with pytest.raises(ValueError, match="shape"):
        evaluate_control(game, np.zeros((3, 3)), 10, 5)
    with pytest.raises(ValueError, match="populations"):
        evaluate_control(game, (np.zeros((5, 10)), np.zeros((5, 10))), 10, 5)
    with pytest.raises(ValueError, match="bound"):
        evaluate_control(make("exit-room-2d-v0", control_bound=1.0), np.full((5, 2, 100), 3.0), 10, 5)
