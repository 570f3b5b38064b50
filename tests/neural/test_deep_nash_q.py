"""Deep mean-field Nash-Q on finite games, scored by exact exploitability of its tabular read-out."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mfgbench as mb  # noqa: E402
from mfgbench.learners import make_config, make_learner  # noqa: E402
from mfgbench.learners.neural import DeepNashQ, DeepNashQConfig  # noqa: E402

torch.set_num_threads(1)

SMALL = dict(n_agents=100, transitions_per_step=20, batch_size=16, learning_starts=16, buffer_size=400,
             hidden=8, encoder_width=4, eval_agents=100)


@pytest.mark.parametrize("game_id,iterations", [("crowd-1d-v0", 100), ("predator-prey-v0", 100)])
def test_default_config_ends_3x_below_uniform(game_id, iterations):
    """Defaults, 100 iterations (200 episodes): about 6 CPU-s on crowd-1d, 20 on predator-prey (three
    populations). The reference is the uniform policy's exact exploitability."""
    game = mb.make(game_id)
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    learner = DeepNashQ(game, None, np.random.default_rng(0))
    for _ in range(iterations):
        learner.step()
    final = mb.exploitability(game, learner.policy)
    assert final <= uniform / 3, (uniform, final)


def test_q_network_sees_every_populations_histogram():
    game = mb.make("predator-prey-v0")
    learner = DeepNashQ(game, DeepNashQConfig(**SMALL), np.random.default_rng(1))
    net = learner.nets[0]
    assert net.layout.summaries == (25, 25, 25) and len(net.encoders) == 3
    assert net.layout.n_head == 1 + game.horizon + 25  # 2t/T - 1, one-hot(t), one-hot(s)
    mu = tuple(p.mu0 for p in game.populations)
    q0 = learner.q_table(0, 3, mu)
    moved = (mu[0], mu[1], np.roll(mu[2], 7))  # only the third population's histogram changes
    assert q0.shape == (25, 5) and np.abs(learner.q_table(0, 3, moved) - q0).max() > 0


def test_targets_are_the_nash_value_of_the_target_network():
    """y = r + (1 - done) max_a' Q'(t + 1, s', a', m'): the update regresses Q(t, s, a, m) on it."""
    game = mb.make("crowd-1d-v0")
    learner = DeepNashQ(game, DeepNashQConfig(**SMALL, lr=1e-12), np.random.default_rng(2))
    learner.step()
    buf = learner.buffers[0]
    t, s, a, r, s1, m, m1, done = (buf.data[n][:buf.size] for n in buf.names)
    assert set(done.tolist()) == {0.0, 1.0} and (done == (t == game.horizon - 1)).all()
    with torch.no_grad():
        nxt = learner.targets[0](learner._inputs(0, t + 1, s1, learner.mean_fields[m1])).max(dim=1).values
        q = learner.nets[0](learner._inputs(0, t, s, learner.mean_fields[m])).gather(1, a[:, None]).squeeze(1)
    y = r + (1 - done) * nxt
    gen_state = learner.gen.get_state()
    i = torch.randint(0, buf.size, (learner.config.batch_size,), generator=learner.gen)
    learner.gen.set_state(gen_state)
    loss = float(((q[i] - y[i]) ** 2).mean())
    learner.update(0)
    assert learner.last_loss == pytest.approx(loss, rel=1e-5)


def test_fictitious_play_outputs_the_policy_of_the_averaged_measure():
    """mbar_1 = m_1, mbar_{j+1} = mbar_j + (m_{j+1} - mbar_j)/(j + 1) (flow and state-action measure of the
    policy played); the output policy is Lbar / mubar (uniform where mubar = 0)."""
    game = mb.make("crowd-1d-v0")
    learner = DeepNashQ(game, DeepNashQConfig(**SMALL, episodes_per_iteration=1), np.random.default_rng(3))
    played = []
    episode = learner._episode

    def recording_episode(rng, N, choose, learn):
        out = episode(rng, N, choose, learn)
        played.append(out)
        return out

    learner._episode = recording_episode
    for _ in range(4):
        learner.step()
    mus = np.mean([p[0][0] for p in played], axis=0)
    Ls = np.mean([p[1][0] for p in played], axis=0)
    np.testing.assert_allclose(learner.average[0][0], mus, atol=1e-12)
    np.testing.assert_allclose(learner.average[1][0], Ls, atol=1e-12)
    pi = learner.policy[0]
    np.testing.assert_allclose(pi.sum(axis=2), 1.0, atol=1e-12)
    seen = Ls.sum(axis=2) > 0
    np.testing.assert_allclose(pi[seen], Ls[seen] / Ls.sum(axis=2)[seen][:, None], rtol=1e-10)
    np.testing.assert_allclose(Ls.sum(axis=2), mus[:-1], atol=1e-12)  # the measure's marginal is the flow


def test_epsilon_greedy_and_softmax_behaviour():
    game = mb.make("crowd-1d-v0")
    cfg = DeepNashQConfig(**SMALL, exploration="epsilon", epsilon_start=0.9, epsilon_final=0.1,
                          epsilon_decay_episodes=4, episodes_per_iteration=1)
    learner = DeepNashQ(game, cfg, np.random.default_rng(4))
    q = np.array([[0.0, 1.0, 0.5], [2.0, 0.0, 0.0]])
    eps = []
    for _ in range(6):
        eps.append(learner.epsilon)
        b = learner.behaviour(q)
        np.testing.assert_allclose(b, [[eps[-1] / 3, 1 - 2 * eps[-1] / 3, eps[-1] / 3],
                                       [1 - 2 * eps[-1] / 3, eps[-1] / 3, eps[-1] / 3]])
        learner.step()
    np.testing.assert_allclose(eps, [0.9, 0.7, 0.5, 0.3, 0.1, 0.1])
    soft = DeepNashQ(game, DeepNashQConfig(**SMALL, exploration="softmax", temperature=0.5), np.random.default_rng(4))
    e = np.exp(q / 0.5)
    np.testing.assert_allclose(soft.behaviour(q), e / e.sum(axis=1, keepdims=True))


@pytest.mark.parametrize("update", ["polyak", "periodic"])
def test_target_network_updates(update):
    game = mb.make("crowd-1d-v0")
    learner = DeepNashQ(game, DeepNashQConfig(**SMALL, target_update=update, target_period=5, tau=0.25),
                        np.random.default_rng(5))
    learner.step()
    net, target = learner.nets[0], learner.targets[0]
    before = [p.clone() for p in target.parameters()]
    while learner.updates[0] % 5 != 4:
        learner.update(0)
    learner.update(0)  # the 5th, 10th, ... step: a periodic copy
    for b, p, q in zip(before, target.parameters(), net.parameters()):
        if update == "periodic":
            torch.testing.assert_close(p, q)
        else:  # theta' <- 0.25 theta + 0.75 theta' at every step: never equal to theta, always moved
            assert not torch.equal(p, b) and not torch.equal(p, q)


def test_same_seed_same_numbers():
    game = mb.make("predator-prey-v0")
    runs = []
    for _ in range(2):
        learner = make_learner("deep-nash-q", game, make_config("deep-nash-q", **SMALL), np.random.default_rng(7))
        infos = [learner.step() for _ in range(3)]
        runs.append((infos, learner.policy))
    assert runs[0][0] == runs[1][0] and runs[0][0][-1]["updates"] > 0
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    other = make_learner("deep-nash-q", game, make_config("deep-nash-q", **SMALL), np.random.default_rng(8))
    assert [other.step() for _ in range(3)][-1]["loss"] != runs[0][0][-1]["loss"]


@pytest.mark.parametrize("mean_field,output", [("fictitious", "average"), ("current", "behaviour"),
                                               ("current", "greedy")])
def test_plays_a_discretized_continuous_game(mean_field, output):
    from reference_solvers.pde.discretize import discretize
    game = discretize(mb.make("segregation-2pop-v0"), 10, 40, 3, max_speed=1.0)
    learner = DeepNashQ(game, DeepNashQConfig(**SMALL, mean_field=mean_field, policy_output=output),
                        np.random.default_rng(9))
    learner.step()
    pi = learner.policy
    assert [p.shape for p in pi] == [(40, 10, 3)] * 2
    for p in pi:
        np.testing.assert_allclose(p.sum(axis=2), 1.0, atol=1e-12)
        if output == "greedy":
            assert set(np.unique(p)) <= {0.0, 1.0}
    assert np.isfinite(mb.exploitability(game, pi))


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="exploration"):
        DeepNashQConfig(exploration="boltzmann")
    with pytest.raises(ValueError, match="policy_output 'average'"):
        DeepNashQConfig(mean_field="current")
    with pytest.raises(ValueError, match="tau"):
        DeepNashQConfig(tau=0.0)
    with pytest.raises(ValueError, match="does not play"):
        make_learner("deep-nash-q", mb.make("lq-continuous-v0"))
