"""Where a learner misses its target: the algorithm, or the implementation? (issue 16)

For a model-free learner the same update is run on exact expectations instead of samples,
with the same hyperparameters (the shipped tuned config of the game, or the default or paper
config when the pair says so), for the same number of iterations, and its final
exploitability is printed beside the sampled learner's (mean over seeds 0, 1, 2):

- QMI: each outer iteration's Q is the limit of its Q-learning against the frozen mean field,
  i.e. the exact optimal Q of that MDP (infinitely many samples), and the flow estimate of
  the behaviour softmax(Q / tau_k) is its exact flow (under the frozen mean field's
  transitions); averaging, annealing and read-out as configured (exploration, alpha, replay
  and the step schedule only matter with samples). With a small step floor (alpha) the
  sampled Q also carries values over from earlier outer iterations, which this limit does not:
  the sampled learner can then end below its exact twin;
- Nash-Q: infinitely many agents: the histograms are the behaviour's exact flow (under the
  transitions at the rewards' mean field, as the agents move), and the mini-batch target of
  every (t, s, a) is its expectation; same steps max(n^-p, floor), backward order, annealing,
  averaging and read-out;
- mirror descent is exact already: the best ratio over a dense scan of constant relative
  steps shows whether any step reaches the target.

A scan runs the sampled learner with one config field at several values (e.g. Nash-Q's episodes
per iteration): what a larger sample budget than the standard suite's buys, at what CPU cost.

Run: ``python benchmarks/exact_expectations.py [--pairs qmi:building-evacuation-v0,nash-q:sir-types-v0:default,...]
[--scans nash-q:segregation-2pop-v0:tuned:episodes_per_iteration:1/2/5]`` (a few CPU minutes in all).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import mfgbench as mb  # noqa: E402
from mfgbench.core import best_response_along, model_along_flow  # noqa: E402
from mfgbench.core.policy import greedy_policy  # noqa: E402
from mfgbench.games import spec  # noqa: E402
from mfgbench.bench.tune import tuning_game  # noqa: E402
from mfgbench.learners import learner_class, make_config, make_learner  # noqa: E402
from mfgbench.learners.fictitious_play import softmax  # noqa: E402
from mfgbench.learners.scale import resolve_scale  # noqa: E402
from mfgbench.learners.tuned import tuned_config  # noqa: E402

DEFAULT_PAIRS = ("mirror-descent:rps-v0,qmi:building-evacuation-v0,nash-q:building-evacuation-v0,qmi:crowd-1d-v0,"
                 "nash-q:crowd-1d-v0,qmi:sir-types-v0,qmi:sir-types-v0:default,nash-q:sir-types-v0,"
                 "nash-q:sir-types-v0:default,qmi:segregation-2pop-v0,nash-q:segregation-2pop-v0")
DEFAULT_SCANS = "nash-q:segregation-2pop-v0:tuned:episodes_per_iteration:1/2/5"


def _average(num, den, fallback):
    return tuple(np.where(d[..., None] > 0, n / np.maximum(d[..., None], 1e-300), b)
                 for n, d, b in zip(num, den, fallback))


def qmi_exact(game, cfg, iterations):
    """QMI's outer iterations with exact Q-learning limits and exact flows (finite-horizon games)."""
    scale = resolve_scale(game, cfg.reward_scale)
    T, K = game.horizon, game.n_populations
    Q = [np.full((T, p.n_states, p.n_actions), cfg.q_init * scale) for p in game.populations]
    M = [np.full((T + 1, p.n_states), 1.0 / p.n_states) for p in game.populations]
    flow_sum = [np.zeros_like(m) for m in M]
    measure_sum = [np.zeros_like(q) for q in Q]
    weight_sum = 0.0
    for k in range(iterations):
        tau = cfg.temperature * scale * (1.0 + k) ** -cfg.temperature_decay
        behaviour = tuple(softmax(q, tau) for q in Q)
        if cfg.mean_field == "average" and k > 0:
            Mbar = [f / weight_sum for f in flow_sum]
            L = [m / weight_sum for m in measure_sum]
        else:
            Mbar = [m / m.sum(axis=-1, keepdims=True) for m in M]
            L = [m[:-1, :, None] * b for m, b in zip(Mbar, behaviour)]
        model = model_along_flow(game, tuple(Mbar), tuple(L))
        Q = [q.copy() for q in best_response_along(model).q_values]
        # the behaviour's exact flow under the frozen mean field's transitions
        flows = []
        for j in range(K):
            mu = np.empty((T + 1, game.populations[j].n_states))
            mu[0] = game.populations[j].mu0
            for t in range(T):
                succ, prob = model.transition_at(j, t)
                nxt = np.zeros_like(mu[t])
                np.add.at(nxt, succ, (mu[t][:, None, None] * behaviour[j][t][:, :, None] * prob))
                mu[t + 1] = nxt
            flows.append(mu)
        M = flows
        w = (1.0 + k) ** cfg.average_weighting
        for j in range(K):
            flow_sum[j] += w * flows[j]
            measure_sum[j] += w * flows[j][:-1, :, None] * behaviour[j]
        weight_sum += w
    tau = cfg.temperature * scale * (1.0 + iterations) ** -cfg.temperature_decay
    if cfg.policy_output == "greedy":
        return tuple(greedy_policy(q) for q in Q)
    if cfg.policy_output == "average":
        return _average(measure_sum, [f[:-1] for f in flow_sum], tuple(softmax(q, tau) for q in Q))
    return tuple(softmax(q, tau) for q in Q)


def nash_q_exact(game, cfg, iterations):
    """Mean-field Nash-Q with infinitely many agents (finite-horizon games, explorers excluded).

    As in the sampled learner, an episode's agents move forward in time by the transitions at the
    mean field the rewards use: with mean_field="average", the running average of the episodes'
    flows at t, this episode's included (so in a game whose transitions depend on the mean field
    the flows averaged are the behaviours' flows under the *average's* dynamics); with
    "empirical", this episode's own flow. The averages weigh episode n by n^average_weighting;
    the noise tolerance does not apply (exact targets have no sampling noise: the floor is
    alpha_floor).
    """
    from mfgbench.games.base import MeanField
    scale = resolve_scale(game, cfg.reward_scale)
    T, K = game.horizon, game.n_populations
    pops = game.populations
    episodes = learner_class("nash-q")(game, cfg).episodes_per_iteration
    Q = [np.zeros((T, p.n_states, p.n_actions)) for p in pops]
    flow_sum = [np.zeros((T + 1, p.n_states)) for p in pops]
    measure_sum = [np.zeros((T, p.n_states, p.n_actions)) for p in pops]
    policy_sum = [np.zeros((T, p.n_states, p.n_actions)) for p in pops]
    n, weight_sum = 0, 0.0
    for j in range(iterations):
        tau = cfg.temperature * scale * (1.0 + j) ** -cfg.temperature_decay
        for _ in range(episodes):
            n += 1
            w = float(n) ** cfg.average_weighting
            weight_sum += w
            behaviour = tuple(greedy_policy(q) if cfg.behaviour == "greedy" else softmax(q, tau) for q in Q)
            mu = [p.mu0.copy() for p in pops]
            R, P = [[None] * T for _ in range(K)], [[None] * T for _ in range(K)]
            for t in range(T):
                L = [m[:, None] * b[t] for m, b in zip(mu, behaviour)]
                for k in range(K):
                    flow_sum[k][t] += w * mu[k]
                    measure_sum[k][t] += w * L[k]
                    policy_sum[k][t] += w * L[k]
                if cfg.mean_field == "average":
                    mf = MeanField(t, tuple(f[t] / weight_sum for f in flow_sum),
                                   tuple(m[t] / weight_sum for m in measure_sum))
                else:
                    mf = MeanField(t, tuple(mu), tuple(L))
                nxt = []
                for k in range(K):
                    R[k][t] = np.asarray(game.rewards(k, t, mf), dtype=np.float64)
                    succ, prob = game.transitions(k, t, mf)
                    P[k][t] = (np.asarray(succ), np.asarray(prob))
                    m2 = np.zeros(pops[k].n_states)
                    np.add.at(m2, P[k][t][0], L[k][:, :, None] * P[k][t][1])
                    nxt.append(m2)
                mu = nxt
            for k in range(K):
                flow_sum[k][T] += w * mu[k]
            mf_T = MeanField(T, tuple(f[T] / weight_sum for f in flow_sum) if cfg.mean_field == "average"
                             else tuple(mu),
                             (None,) * K)
            step = max(n ** -cfg.alpha_power, cfg.alpha_floor)
            for k in range(K):
                g = np.asarray(game.terminal(k, mf_T), dtype=np.float64)
                for t in range(T - 1, -1, -1):
                    succ, prob = P[k][t]
                    V = Q[k][t + 1].max(axis=-1) if t + 1 < T else g
                    Q[k][t] += step * (R[k][t] + (prob * V[succ]).sum(axis=-1) - Q[k][t])
    tau = cfg.temperature * scale * (1.0 + iterations) ** -cfg.temperature_decay
    behaviour = tuple(greedy_policy(q) if cfg.behaviour == "greedy" else softmax(q, tau) for q in Q)
    if cfg.policy_output == "greedy":
        return tuple(greedy_policy(q) for q in Q)
    if cfg.policy_output == "average":
        return _average(policy_sum, [f[:-1] for f in flow_sum], behaviour)
    return behaviour


def sampled(game, name, cfg, iterations, seeds=(0, 1, 2)):
    out = []
    for seed in seeds:
        agent = make_learner(name, game, cfg, rng=np.random.default_rng(seed))
        for _ in range(iterations):
            agent.step()
        out.append(mb.exploitability(game, agent.policy))
    return float(np.mean(out))


def mirror_descent_scan(game, iterations):
    best = (0.0, None)
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    for lr in np.geomspace(0.005, 0.5, 41):
        agent = make_learner("mirror-descent", game, learning_rate=float(lr))
        for _ in range(iterations):
            agent.step()
        ratio = uniform / mb.exploitability(game, agent.policy)
        best = max(best, (ratio, float(lr)))
    return best


def budget_scan(game, name, cfg, field, values, iterations, seeds=(0, 1, 2)):
    """(value, mean final exploitability over seeds, CPU s per trial) of the sampled learner with
    ``field`` set to each value: what the sample budget buys."""
    import dataclasses
    rows = []
    for value in values:
        c0 = time.process_time()
        e = sampled(game, name, dataclasses.replace(cfg, **{field: value}), iterations, seeds)
        rows.append((value, e, (time.process_time() - c0) / len(seeds)))
    return rows


def config_of(name, game_id, label):
    """The learner's ``label`` config on the game: "tuned" (the shipped file), "default" or "paper"."""
    if label == "paper":
        return make_config(name, preset="paper")
    if label == "default":
        return make_config(name)
    kind = "finite" if spec(game_id).kind == "continuous" else spec(game_id).kind
    return make_config(name, **(tuned_config(name, game_id, kind) or {}))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=DEFAULT_PAIRS,
                    help="learner:game[:config],... (config: tuned, the default, or default or paper)")
    ap.add_argument("--scans", default=DEFAULT_SCANS, help="learner:game:config:field:v1/v2/...,...")
    ap.add_argument("--iterations", type=int, default=100)
    args = ap.parse_args(argv)
    print(f"# benchmarks/exact_expectations.py at {time.strftime('%H:%M UTC %Y-%m-%d', time.gmtime())}, "
          f"load {os.getloadavg()[0]:.1f}; {args.iterations} iterations; sampled: mean over seeds 0, 1, 2")
    for pair in [p for p in args.pairs.split(",") if p]:
        name, game_id, label = (pair.split(":") + ["tuned"])[:3]
        game = tuning_game(game_id)   # a continuous game: its discretization on the suites' grid
        uniform = mb.exploitability(game, mb.uniform_policy(game))
        if name == "mirror-descent":
            ratio, lr = mirror_descent_scan(game, args.iterations)
            print(f"{name:15s} {game_id:24s} uniform {uniform:.3e}; exact already: best ratio over 41 relative steps "
                  f"in [0.005, 0.5]: {ratio:.2f} (at {lr:.3g})", flush=True)
            continue
        cfg = config_of(name, game_id, label)
        exact = (qmi_exact if name == "qmi" else nash_q_exact)(game, cfg, args.iterations)
        e_exact = mb.exploitability(game, exact)
        e_sampled = sampled(game, name, cfg, args.iterations)
        print(f"{name:15s} {game_id:24s} {label:8s} uniform {uniform:.3e}; sampled {e_sampled:.3e} "
              f"(ratio {uniform / e_sampled:.2f}); exact expectations {e_exact:.3e} (ratio {uniform / e_exact:.2f})",
              flush=True)
    for scan in [x for x in args.scans.split(",") if x]:
        name, game_id, label, field, values = scan.split(":")
        game = tuning_game(game_id)
        uniform = mb.exploitability(game, mb.uniform_policy(game))
        cfg = config_of(name, game_id, label)
        cast = type(getattr(cfg, field)) if getattr(cfg, field) is not None else int
        for value, e, cpu in budget_scan(game, name, cfg, field, [cast(v) for v in values.split("/")],
                                         args.iterations):
            print(f"{name:15s} {game_id:24s} {label:8s} {field} = {value}: sampled {e:.3e} (ratio {uniform / e:.2f}), "
                  f"{cpu:.2f} CPU s per trial", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
