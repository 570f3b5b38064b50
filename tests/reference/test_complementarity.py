"""The interior point on the complementarity system (reference_solvers.discrete.complementarity) and
the certified references of the heterogeneous games."""
import numpy as np
import pytest

import mfgbench as mb
import mfgbench.core.kernels as ck
from mfgbench.errors import GameError
from mfgbench.games import check_game
from mfgbench.games.base import MeanField
from mfgbench.games.coupling import AffineCoupling
from reference_solvers.discrete.complementarity import (_newton_matrix, _residuals, _Tables, complementarity_problem,
                                                        solve_complementarity)

HETEROGENEOUS = ["predator-prey-capture-v0", "traffic-3type-v0", "sir-types-v0"]
SMALL = {"predator-prey-capture-v0": dict(size=5, horizon=5), "traffic-3type-v0": dict(length=4, horizon=4),
         "sir-types-v0": dict(stages=2, horizon=6)}


def independent_exploitability_per_population(game, profile):
    """E_k(pi) from the game's own functions and the numpy twins only (no core.evaluate)."""
    K, T = game.n_populations, game.horizon
    mu = [[p.mu0.copy()] for p in game.populations]
    R, P = [[] for _ in range(K)], [[] for _ in range(K)]
    for t in range(T):
        mf = MeanField(t, tuple(m[t] for m in mu), tuple(m[t][:, None] * profile[k][t] for k, m in enumerate(mu)))
        for k in range(K):
            R[k].append(np.asarray(game.rewards(k, t, mf), dtype=float))
            succ, prob = game.transitions(k, t, mf)
            P[k].append((np.asarray(succ, dtype=np.int64), np.asarray(prob, dtype=float)))
        for k in range(K):
            mu[k].append(ck.push_forward_numpy(mu[k][t], profile[k][t], *P[k][t]))
    mf_T = MeanField(T, tuple(m[T] for m in mu), (None,) * K)
    out = []
    for k in range(K):
        succ, prob = np.stack([s for s, _ in P[k]]), np.stack([p for _, p in P[k]])
        g = np.asarray(game.terminal(k, mf_T), dtype=float)
        v_pi = ck.policy_value_numpy(np.stack(R[k]), succ, prob, g, profile[k])
        v_br, _ = ck.best_response_values_numpy(np.stack(R[k]), succ, prob, g)
        out.append(float(game.populations[k].mu0 @ (v_br[0] - v_pi[0])))
    return np.array(out)


@pytest.mark.parametrize("game_id", HETEROGENEOUS)
def test_reference_is_certified_and_its_certificate_is_independent(game_id, tmp_path):
    game = mb.make(game_id)
    ref = mb.reference(game, tol=1e-8, cache_path=tmp_path)
    assert ref.certified and ref.exploitability <= 1e-8, ref.reason
    assert "complementarity" in ref.method
    per = independent_exploitability_per_population(game, ref.policy)
    assert (per >= -1e-12).all()
    np.testing.assert_allclose(ref.per_population, per, atol=1e-12)
    # the exact values along the reference equal Monte Carlo (and its flow equals the simulated one)
    check_game(game, rng=np.random.default_rng(11), policies=[ref.policy], n_agents=20000)


@pytest.mark.parametrize("game_id", HETEROGENEOUS)
def test_the_newton_matrix_is_the_jacobian(game_id):
    """The assembled matrix minus the z / rho diagonal equals central finite differences of the
    residuals (a)-(c) in (rho, mu, U), at a random interior point."""
    game = mb.make(game_id, **SMALL[game_id])
    prob = complementarity_problem(game)
    rng = np.random.default_rng(4)
    # a well-scaled point (the start's margins put z ~ 1e10 on states of mass 1e-12, where finite
    # differences lose every digit); the Jacobian's formula does not depend on the point
    x = np.r_[rng.uniform(0.05, 1.0, prob.n_rho + prob.n_mu), rng.normal(size=prob.n_u)]
    z = rng.uniform(0.5, 1.5, prob.n_rho)
    J = _newton_matrix(prob, _Tables(prob, x), x, z).toarray()
    J[np.arange(prob.n_rho), np.arange(prob.n_rho)] -= z / x[:prob.n_rho]
    fd = np.empty_like(J)
    for i in range(x.size):
        h = 1e-5 * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        r_up = _residuals(prob, _Tables(prob, up), up, z)
        fd[:, i] = (r_up - _residuals(prob, _Tables(prob, down), down, z)) / (2 * h)
    scale = np.abs(J).max()
    assert np.abs(J - fd).max() <= 1e-7 * scale


@pytest.mark.parametrize("game_id", HETEROGENEOUS)
def test_the_start_solves_the_equations_and_is_interior(game_id):
    """The start (a policy's flow and its values with a margin) satisfies (a)-(c); rho, mu, z > 0."""
    game = mb.make(game_id, **SMALL[game_id])
    prob = complementarity_problem(game)
    x, z = prob.start_x, prob.start_z
    r = _residuals(prob, _Tables(prob, x), x, z)
    assert np.abs(r).max() <= 1e-10 * max(1.0, np.abs(x).max())
    assert (x[:prob.n_rho + prob.n_mu] > 0).all() and (z > 0).all()


@pytest.mark.parametrize("game_id, params", [("predator-prey-capture-v0", {}),
                                             ("traffic-3type-v0", SMALL["traffic-3type-v0"])])
def test_other_starts_find_the_same_flow(game_id, params):
    """Started from the uniform policy (no fictitious play) with another margin, the method finds
    the same equilibrium flow: the evidence of uniqueness where no theorem gives it. Compared up to
    time T - 2: nothing after the last move is coupled (no terminal mean-field term), so where the
    last moves tie (predators' moves, prey entering the safe zone now or next, vehicles leaving the
    road) the distributions they lead to are not unique, in any of these games."""
    game = mb.make(game_id, **params)
    a = solve_complementarity(game, target=1e-11)
    b = solve_complementarity(game, target=1e-11, warm=0, start_nus=(0.1,))
    assert a.exploitability <= 1e-11 and b.exploitability <= 1e-11
    for fa, fb in zip(a.analysis.flow, b.analysis.flow):
        np.testing.assert_allclose(fa[:game.horizon - 1], fb[:game.horizon - 1], atol=1e-6)


def test_the_epidemic_has_two_equilibria():
    """sir-types-v0 is not monotone, and its equilibrium is not unique: from the fictitious-play
    start and from the uniform one the method finds two profiles that the numpy twins certify,
    one where the young mix on one late day (indifferent) and one where they do not; their flows differ."""
    game = mb.make("sir-types-v0")
    a = solve_complementarity(game, target=1e-11)
    b = solve_complementarity(game, target=1e-11, warm=0, start_nus=(0.1,))
    for res in (a, b):
        assert independent_exploitability_per_population(game, res.profile).sum() <= 1e-10
    assert np.abs(a.analysis.flow[0] - b.analysis.flow[0]).max() > 1e-4


def test_fictitious_play_start_and_the_pipeline_certify_at_test_sizes():
    for game_id in HETEROGENEOUS:
        game = mb.make(game_id, **SMALL[game_id])
        res = solve_complementarity(game, target=1e-10)
        assert res.reason == "converged" and res.exploitability <= 1e-10
        assert independent_exploitability_per_population(game, res.profile).sum() == \
            pytest.approx(res.exploitability, abs=1e-12)


def test_a_wrong_declaration_is_refused():
    game = mb.make("predator-prey-capture-v0", **SMALL["predator-prey-capture-v0"])
    cp = game.affine_coupling
    game.affine_coupling = AffineCoupling(cp.features, (cp.reward[0] * 1.01, cp.reward[1]), cp.transition,
                                          cp.terminal, cp.eta, cp.eps, cp.terminal_log)
    with pytest.raises(GameError, match="population 0 .predators.: rewards do not follow"):
        complementarity_problem(game)
    game = mb.make("sir-types-v0", **SMALL["sir-types-v0"])
    cp = game.affine_coupling
    game.affine_coupling = AffineCoupling(cp.features, cp.reward, (cp.transition[0], cp.transition[1] * 0.5),
                                          cp.terminal, cp.eta, cp.eps, cp.terminal_log)
    with pytest.raises(GameError, match="population 1 .old.: transition probabilities do not follow"):
        complementarity_problem(game)
