"""The toolkit's convergence properties, as property-based tests over random monotone games
(garnet-v0 with monotone=True: W = (I + 11^T)/2, Lasry-Lions monotone, unique equilibrium):

- fictitious play: exploitability after 4n iterations at most half of that after n (its O(1/k)
  rate, Perrin et al. 2020; measured ratios are about 1/4);
- online mirror descent (scale-aware default step): converges (Perolat et al. 2022: OMD
  converges on monotone games), so its exploitability falls over every window of 4x the
  iterations (5 -> 20 ... 80 -> 320) and ends below a tenth of the start. Not at every step:
  it can stall on a plateau while the best response switches and rise a little there (a CI run
  found +0.9% from iteration 20 to 40 on a garnet with S=2, A=3, T=9; it falls 10^4-fold by 640);
- QMI and Nash-Q with the tuned configs the package ships: below the uniform policy after a
  short run.
"""
import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

import mfgbench as mb
from mfgbench.learners import make_learner
from mfgbench.learners.tuned import tuned_config

monotone_games = st.builds(
    lambda S, A, B, T, seed: mb.make("garnet-v0", S=S, A=A, B=min(B, S), T=T, seed=seed, monotone=True),
    S=st.integers(2, 25), A=st.integers(2, 5), B=st.integers(1, 3), T=st.integers(1, 10),
    seed=st.integers(0, 10_000))


def _exploitability_at(game, learner, marks, **config):
    agent = make_learner(learner, game, rng=np.random.default_rng(0), **config)
    out = {0: mb.exploitability(game, agent.policy)}
    for k in range(1, max(marks) + 1):
        agent.step()
        if k in marks:
            out[k] = mb.exploitability(game, agent.policy)
    return out


@settings(deadline=None, max_examples=8)
@given(monotone_games)
def test_fictitious_play_rate(game):
    e = _exploitability_at(game, "fictitious-play", [10, 40])
    assert e[40] <= 0.5 * e[10] + 1e-12


@settings(deadline=None, max_examples=8)
@given(monotone_games)
@example(mb.make("garnet-v0", S=2, A=3, B=1, T=9, seed=8528, monotone=True))  # the plateau above
def test_mirror_descent_decreases(game):
    marks = [5, 10, 20, 40, 80, 160, 320]
    e = _exploitability_at(game, "mirror-descent", marks)
    for n in (5, 10, 20, 40, 80):
        assert e[4 * n] <= e[n] + 1e-12, (n, e)
    assert e[320] <= 0.1 * e[0] + 1e-12, e


@settings(deadline=None, max_examples=4)
@given(monotone_games)
def test_tuned_model_free_learners_end_below_uniform(game):
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    for learner, budget in [("qmi", {"samples_per_iteration": 20_000}), ("nash-q", {"n_agents": 300})]:
        config = {**tuned_config(learner, game.id, "finite"), **budget}
        e = _exploitability_at(game, learner, [20], **config)
        assert e[20] < uniform, (learner, e[20], uniform)
