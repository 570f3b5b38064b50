"""The Markov-chain bridge: a valid finite game whose equilibrium flow approaches the PDE density."""
import numpy as np
import pytest

from mfgbench.core import distribution, evaluate, exploitability, uniform_policy
from mfgbench.games import make
from reference_solvers.pde import solve
from reference_solvers.pde.discretize import discretize


@pytest.mark.parametrize("game_id,nx,nt,na", [("crowd-continuous-v0", 10, 30, 5), ("lq-continuous-v0", 12, 20, 5),
                                               ("exit-room-2d-v0", 5, 40, 3), ("segregation-2pop-v0", 8, 30, 3)])
def test_discretized_games_follow_the_finite_contract(game_id, nx, nt, na):
    fin = discretize(make(game_id), nx, nt, na)
    pi = uniform_policy(fin)
    ex = exploitability(fin, pi)  # the core validates rewards and transitions on first use
    assert ex >= -1e-12
    for mu in distribution(fin, pi):
        np.testing.assert_allclose(mu.sum(axis=1), 1.0, atol=1e-12)
        assert mu.min() >= 0


def test_discretize_checks_the_time_step():
    with pytest.raises(ValueError, match="nt >="):
        discretize(make("crowd-continuous-v0"), 50, 5, 5)
    with pytest.raises(ValueError, match="n_actions"):
        discretize(make("crowd-continuous-v0"), 10, 50, 1)


def test_chain_moments_match_the_diffusion():
    """One step from an interior cell: mean displacement v dt, variance 2 nu dt (+ O(h dt))."""
    game = make("crowd-continuous-v0")
    fin = discretize(game, 40, 400, 5, max_speed=1.0)
    succ, prob = fin.transitions(0, 0, None)
    h, dt, nu = fin.grid.h[0], fin.dt, game.populations[0].nu
    s = 20
    for a, v in enumerate(fin.actions[0]):
        disp = np.array([0.0, h, -h])
        mean = prob[s, a] @ disp
        var = prob[s, a] @ disp ** 2 - mean ** 2
        assert mean == pytest.approx(v * dt, rel=1e-12, abs=1e-15)
        assert var == pytest.approx(2 * nu * dt + abs(v) * h * dt - (v * dt) ** 2, rel=1e-10)


def _finite_equilibrium(fin, iterations):
    """Fictitious play on the finite game with the exact core (flow-weighted average of best responses)."""
    from mfgbench.core import best_response
    pi = uniform_policy(fin)[0]
    avg_mu = distribution(fin, (pi,))[0]
    for j in range(iterations):
        br = best_response(fin, (pi,)).policy[0]
        mu_br = distribution(fin, (br,))[0]
        w = 1.0 / (j + 2)
        num = (1 - w) * avg_mu[:-1, :, None] * pi + w * mu_br[:-1, :, None] * br
        avg_mu = (1 - w) * avg_mu + w * mu_br
        den = avg_mu[:-1, :, None]
        pi = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0 / pi.shape[-1])
        pi /= pi.sum(axis=-1, keepdims=True)
    return (pi,)


def test_finite_equilibrium_flow_approaches_pde_density():
    """L1 gap between the finite game's equilibrium flow (as a density) and the PDE density shrinks."""
    game = make("crowd-continuous-v0")
    gaps = []
    for nx, nt, na in ((10, 30, 9), (20, 100, 17)):
        fin = discretize(game, nx, nt, na, max_speed=2.0)
        pi = _finite_equilibrium(fin, 150)
        ev = evaluate(fin, pi)
        assert ev.exploitability < 0.02
        pde = solve(game, nx=nx, nt=nt)
        gap = np.abs(fin.density(ev.flow[0]) - pde.m[0]).sum(axis=1).max() * fin.dv
        gaps.append(gap)
    assert gaps[1] < 0.7 * gaps[0], gaps
    assert gaps[1] < 0.05
