"""Every tabular learner plays the heterogeneous games and is scored per type; fictitious play gets
within the standard budget to a twentieth of the uniform policy's exploitability; the tuned QMI and
Nash-Q end below the uniform policy at a small budget."""
import numpy as np
import pytest

import mfgbench as mb
from mfgbench.bench.suite import TABULAR, standard
from mfgbench.learners import make_config
from mfgbench.learners.tuned import tuned_config

HETEROGENEOUS = ["predator-prey-capture-v0", "traffic-3type-v0", "sir-types-v0"]


@pytest.mark.parametrize("game_id", HETEROGENEOUS)
def test_fictitious_play_lowers_exploitability_twentyfold_in_the_standard_budget(game_id):
    """The standard suite's budget for this learner: 100 iterations from the uniform policy."""
    game = mb.make(game_id)
    budget = {t.iterations for t in standard().trials if t.game == game_id and t.learner == "fictitious-play"}
    assert budget == {100}
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    res = mb.run_trial(game, "fictitious-play", iterations=100, reference=False)
    assert res.final["exploitability"] <= uniform / 20.0


@pytest.mark.parametrize("game_id", HETEROGENEOUS)
@pytest.mark.parametrize("learner", ["qmi", "nash-q"])
def test_tuned_model_free_learners_end_below_uniform(game_id, learner):
    """The shipped tuned config (the game's entry, else the finite family's) at a fifth of the
    standard budget (QMI with a fifth of its samples too) ends below the uniform policy on every
    seed; the same seed gives the same numbers, another seed others."""
    game = mb.make(game_id)
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    small = {"samples_per_iteration": 20_000} if learner == "qmi" else {}
    config = make_config(learner, **{**tuned_config(learner, game_id, "finite"), **small})
    finals = [mb.run_trial(game, learner, iterations=20, seed=seed, config=config, reference=False,
                           checkpoints=[20]).final["exploitability"] for seed in (0, 0, 1)]
    assert finals[0] == finals[1] and finals[0] != finals[2]
    assert max(finals) < uniform, (finals, uniform)


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """One certified reference per game for the whole module (cached in a temporary folder)."""
    folder = tmp_path_factory.mktemp("references")
    return lambda game: mb.reference(game, cache_path=folder)


@pytest.mark.parametrize("game_id", HETEROGENEOUS)
@pytest.mark.parametrize("learner", TABULAR)
def test_every_tabular_learner_is_scored_per_type(game_id, learner, references):
    game = mb.make(game_id)
    ref = references(game)
    assert ref.certified
    res = mb.run_trial(game, learner, iterations=3, seed=1, reference=ref)
    final = res.final
    K = game.n_populations
    assert len(final["per_population"]) == K and len(final["tv_per_population"]) == K
    assert all(w is not None and w >= 0 for w in final["w1_per_population"])
    assert final["exploitability"] == pytest.approx(sum(final["per_population"]))
    assert [f.shape for f in res.flow] == [(game.horizon + 1, p.n_states) for p in game.populations]
    np.testing.assert_allclose([f.sum(axis=1) for f in res.flow], 1.0, atol=1e-10)
