"""Side by side with the peers: OpenSpiel 2.0.2 and MFGLib 0.3.0, on this machine, in one run.

The same algorithm with the same step rule runs for the same number of iterations in each
toolkit, on the same games:

- fictitious play, weight 1/(j+1) on the j-th best response, averaging by the flows
  (OpenSpiel ``FictitiousPlay``, MFGLib ``FictitiousPlay(alpha=0)``, ours ``FictitiousPlay``);
- online mirror descent, y += lr * Q^pi, pi = softmax(y), lr = 0.1 in every toolkit
  (OpenSpiel ``MirrorDescent(lr=0.1)``, MFGLib ``OnlineMirrorDescent(alpha=0.1)``, ours
  ``MirrorDescent``).

Per game it prints the time of one iteration in each toolkit, wall and CPU
(``time.process_time``), and their ratios, the exploitability the peer reports for its final policy, that same policy's exploitability by
our exact evaluator (float64), and ours after the same iterations; where values differ, the
output says why and checks the explanation (OpenSpiel's (x, t)-keyed value cache, against a
value cache keyed by (x, t, previous action) over OpenSpiel's own state machine; MFGLib's
float32, against MFGLib rerun in float64). It also checks that our ports of the MFGLib
classics give MFGLib's exploitability for the same policies (uniform and random).

Timing is interleaved so that a change of load hits both contenders alike: a fresh run of the
peer, then a fresh run of ours, for the same iterations, repeated ``--pairs`` times (default 3;
A B A B ...). A run's time is the median of its iterations; a side's time is the median over the
pairs, and a ratio is the median of the pairs' ratios. CPU time is the steadier figure on a
shared machine, so the targets are judged on it; the load (``os.getloadavg``) is printed at the
start, before each section and at the end. Our kernels are compiled before anything is timed.

Run in a separate environment holding the peers (see benchmarks/README.md):
``/tmp/peers-venv/bin/python benchmarks/peers.py [--quick] [--pairs 3] [--peer mfglib] [--games sis-v0,...]``
(about 25 minutes in full on this 2-core machine, 1-2 minutes with ``--quick``). Without the
peers installed it says so and exits 0.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import mfgbench as mb  # noqa: E402
from mfgbench.core.policy import greedy_policy  # noqa: E402
from mfgbench.learners.fictitious_play import FictitiousPlay  # noqa: E402
from mfgbench.learners.mirror_descent import MirrorDescent, MirrorDescentConfig  # noqa: E402

LR = 0.1
TARGET_OPENSPIEL = 100.0
TARGET_MFGLIB = 30.0
PAIRS = 3
"""Interleaved (peer, ours) run pairs per comparison: the medians are over these."""


def _have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# -- timing -------------------------------------------------------------------------------
def per_iteration(step, n):
    """Median wall time of one call of ``step`` over ``n`` consecutive calls."""
    return per_iteration_wall_cpu(step, n)[0]


def per_iteration_wall_cpu(step, n):
    """Median wall time and median CPU time (``time.process_time``, this process) of one call of
    ``step`` over ``n`` consecutive calls: on a loaded machine the CPU time is the steadier one."""
    walls, cpus = [], []
    for _ in range(n):
        start, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


@dataclass
class Timing:
    """Per-iteration seconds of the peer and of ours over interleaved run pairs: each side's
    median over the pairs, and the median of the pairs' ratios (peer / ours)."""

    peer_wall: float
    peer_cpu: float
    ours_wall: float
    ours_cpu: float
    wall_ratio: float
    cpu_ratio: float
    pairs: int


def interleaved(peer_run, our_run, pairs):
    """Run ``peer_run()`` then ``our_run()``, ``pairs`` times (A B A B ...); each returns the
    (wall, cpu, result) of one fresh run, times per iteration. Returns the ``Timing`` and the
    last results of both (the runs are deterministic: every pair computes the same iterates)."""
    rows = []
    for _ in range(pairs):
        pw, pc, peer_result = peer_run()
        ow, oc, our_result = our_run()
        rows.append((pw, pc, ow, oc))
    pw, pc, ow, oc = (statistics.median(col) for col in zip(*rows))
    ratio = lambda a, b: a / b if b > 0 else float("inf")  # noqa: E731
    return (Timing(pw, pc, ow, oc, statistics.median(ratio(r[0], r[2]) for r in rows),
                   statistics.median(ratio(r[1], r[3]) for r in rows), pairs), peer_result, our_result)


def our_run(game, learner, n):
    """One fresh run of our ``learner`` for ``n`` iterations: ``(wall, cpu, policy)`` per iteration."""
    def run():
        lrn = learner(game)
        wall, cpu = per_iteration_wall_cpu(lrn.step, n)
        return wall, cpu, lrn.policy
    return run


def run_ours(game, learner, n):
    """Median per-iteration wall time of our learner over ``PAIRS`` fresh runs, and the final
    exploitability (used where the peer fails and there is nothing to interleave with)."""
    runs = [our_run(game, learner, n)() for _ in range(PAIRS)]
    return statistics.median(r[0] for r in runs), mb.exploitability(game, runs[-1][2])


def ours_fp(game):
    return FictitiousPlay(game, rng=np.random.default_rng(0))


def ours_md(game):
    return MirrorDescent(game, MirrorDescentConfig(learning_rate=LR), rng=np.random.default_rng(0))


def _fmt_ratio(ratio, target):
    if target is None:
        return f"{ratio:8.0f}x"
    return f"{ratio:8.0f}x {'(target >= %.0fx: %s)' % (target, 'met' if ratio >= target else 'NOT MET')}"


def print_timing(peer, timing, target, indent):
    """Wall and CPU lines of one comparison; the target is judged on the CPU ratio."""
    note = f"(median of {timing.pairs} interleaved pairs)"
    print(f"{indent}time / iteration   {peer} {1e3 * timing.peer_wall:10.2f} ms   "
          f"ours {1e3 * timing.ours_wall:8.3f} ms   "
          f"ratio {_fmt_ratio(timing.wall_ratio, None)}   wall {note}")
    print(f"{indent}CPU / iteration    {peer} {1e3 * timing.peer_cpu:10.2f} ms   "
          f"ours {1e3 * timing.ours_cpu:8.3f} ms   "
          f"ratio {_fmt_ratio(timing.cpu_ratio, target)}")


# -- OpenSpiel ----------------------------------------------------------------------------------
def _ints(text):
    return [int(v) for v in re.findall(r"-?\d+", text)]


def _parse_line(text):
    """(population, t, state) of a decision state "(x, t)" of the 1D games."""
    x, t = _ints(text)
    return 0, t, x


def _parse_predator_prey(size):
    def parse(text):
        pop, t, x, y = _ints(text)
        return pop, t, x * size + y   # our index of cell (x, y); OpenSpiel prints pos=[x y]
    return parse


OPENSPIEL_GAMES = [
    # (OpenSpiel game, our id, our params, state parser, why values may differ)
    ("mfg_crowd_modelling", "crowd-1d-v0", {}, _parse_line,
     "OpenSpiel caches values by the observation (x, t) while the reward at (x, t) charges the "
     "move that led there: every path into (x, t) gets the value of the first one visited."),
    ("mean_field_lin_quad", "lq-v0", {}, _parse_line,
     "Different games by definition: OpenSpiel's LQ never applies the terminal cost and charges "
     "each action's cost at the next time (with the next mean), ours follows the paper; and its "
     "(x, t) value cache mixes paths with different previous actions, as in crowd modelling."),
    ("python_mfg_predator_prey", "predator-prey-v0", {}, _parse_predator_prey(5),
     "Rewards do not depend on the previous action here, so the values should agree."),
]


def openspiel_policy_arrays(os_game, policy, game, parse):
    """Our ``pi[t, s, a]`` profile of an OpenSpiel policy: walk the decision states time by
    time (one state per observation string) and read its action probabilities. OpenSpiel's
    last decision (t = T for our games with a terminal reward) has no effect and is dropped."""
    import pyspiel
    arrays = [np.full((game.horizon, p.n_states, p.n_actions), 1.0 / p.n_actions) for p in game.populations]
    frontier, seen = list(os_game.new_initial_states()), set()
    while frontier:
        nxt = []
        for st in frontier:
            if st.is_terminal():
                continue
            player = st.current_player()
            if player == pyspiel.PlayerId.CHANCE:
                children = [st.child(a) for a, _ in st.chance_outcomes()]
            elif player == pyspiel.PlayerId.MEAN_FIELD:
                child = st.clone()
                support = child.distribution_support()
                child.update_distribution([1.0 / len(support)] * len(support))
                children = [child]
            else:
                k, t, s = parse(str(st))
                if t < game.horizon:
                    row = np.zeros(game.populations[k].n_actions)
                    for a, p in policy.action_probabilities(st).items():
                        row[a] = p
                    arrays[k][t, s] = row / row.sum()
                children = [st.child(a) for a in st.legal_actions()]
            for child in children:
                key = str(child)
                if key not in seen:
                    seen.add(key)
                    nxt.append(child)
        frontier = nxt
    return tuple(arrays)


def openspiel_true_exploitability(os_game, policy):
    """Exploitability of ``policy`` in OpenSpiel's own game (its state machine, its rewards,
    its distribution), with the value cache keyed by (observation, previous action) instead
    of the observation alone: the exact expectation of OpenSpiel's game."""
    import pyspiel
    from open_spiel.python.mfg.algorithms import distribution
    distrib = distribution.DistributionPolicy(os_game, policy)

    def solve(best):
        cache = {}

        def value(st):
            key = (st.observation_string(pyspiel.PlayerId.DEFAULT_PLAYER_ID), getattr(st, "_last_action", None))
            if key in cache:
                return cache[key]
            pop = st.mean_field_population()
            if st.is_terminal():
                v = st.rewards()[pop]
            elif st.current_player() == pyspiel.PlayerId.CHANCE:
                v = sum(p * value(st.child(a)) for a, p in st.chance_outcomes())
            elif st.current_player() == pyspiel.PlayerId.MEAN_FIELD:
                child = st.clone()
                child.update_distribution([distrib.value_str(s, 0.0) for s in st.distribution_support()])
                v = st.rewards()[pop] + value(child)
            elif best:
                v = st.rewards()[pop] + max(value(st.child(a)) for a in st.legal_actions())
            else:
                v = st.rewards()[pop] + sum(p * value(st.child(a))
                                            for a, p in policy.action_probabilities(st).items())
            cache[key] = v
            return v
        return sum(value(st) for st in os_game.new_initial_states())

    return solve(True) - solve(False)


def openspiel_section(n_iter, only=None, pairs=PAIRS):
    import pyspiel
    from open_spiel.python.mfg import games as _registered  # noqa: F401  (registers the Python games)
    from open_spiel.python.mfg.algorithms import fictitious_play, mirror_descent, nash_conv
    print(f"\n== OpenSpiel {_version('open_spiel')} ({n_iter} iterations each; time = median of one iteration, "
          f"median over {pairs} interleaved pairs; exploitability of the final policy; {load()})")
    rows = []
    for os_name, our_id, params, parse, why in OPENSPIEL_GAMES:
        if only and not ({os_name, our_id} & only):
            continue
        os_game = pyspiel.load_game(os_name)
        game = mb.make(our_id, **params)
        # the same 1D game through OpenSpiel's Python state machine, for the previous action
        check_game = pyspiel.load_game("python_mfg_crowd_modelling") if os_name == "mfg_crowd_modelling" else os_game
        for algo in ("fictitious play", "mirror descent"):
            if algo == "fictitious play":
                make_solver = lambda: fictitious_play.FictitiousPlay(os_game)  # noqa: E731
                ours = ours_fp
            else:
                make_solver = lambda: mirror_descent.MirrorDescent(os_game, lr=LR)  # noqa: E731
                ours = ours_md

            def peer_run():
                solver = make_solver()
                wall, cpu = per_iteration_wall_cpu(solver.iteration, n_iter)
                return wall, cpu, solver
            timing, solver, our_policy = interleaved(peer_run, our_run(game, ours, n_iter), pairs)
            os_policy = solver.get_policy()
            peer_expl = nash_conv.NashConv(os_game, os_policy).nash_conv()
            profile = openspiel_policy_arrays(os_game, os_policy, game, parse)
            exact_of_peer = mb.exploitability(game, profile)
            our_expl = mb.exploitability(game, our_policy)
            target = TARGET_OPENSPIEL if (algo == "fictitious play" and our_id != "crowd-1d-v0") else None
            rows.append(("OpenSpiel", os_name, our_id, algo, timing, target))
            print(f"\n{os_name} vs {our_id}, {algo}")
            print_timing("OpenSpiel", timing, target, "  ")
            print(f"  exploitability     OpenSpiel reports {peer_expl:.6f}; the same policy, exact here: "
                  f"{exact_of_peer:.6f}; ours after {n_iter} iterations: {our_expl:.6f}")
            if abs(peer_expl - exact_of_peer) > 1e-6 * max(1.0, abs(exact_of_peer)):
                true_os = openspiel_true_exploitability(check_game, _array_policy(check_game, profile, parse))
                print(f"  differs: {why}")
                print(f"  check: OpenSpiel's own game with the cache keyed by (x, t, previous action) gives "
                      f"{true_os:.6f} for that policy (OpenSpiel's cache: {peer_expl:.6f}; ours: {exact_of_peer:.6f})")
            else:
                print(f"  agrees to {abs(peer_expl - exact_of_peer):.1e}. {why if 'agree' in why else ''}")
    return rows


def _array_policy(os_game, profile, parse):
    """Our profile as an OpenSpiel policy over the decision states of ``os_game`` (the
    policy read back from the peer, so it answers for every state, also those a tabular
    policy has no key for; the last decision, which has no effect, repeats the one before)."""
    from open_spiel.python import policy as policy_lib

    class ArrayPolicy(policy_lib.Policy):
        def action_probabilities(self, state, player_id=None):
            k, t, s = parse(str(state))
            row = profile[k][min(t, profile[k].shape[0] - 1), s]
            return {a: float(row[a]) for a in state.legal_actions()}
    return ArrayPolicy(os_game, list(range(os_game.num_players())))


# -- MFGLib -------------------------------------------------------------------------------------
MFGLIB_GAMES = [
    # (MFGLib constructor, our id)
    ("beach_bar", "beach-bar-v0"),
    ("rock_paper_scissors", "rps-v0"),
    ("susceptible_infected", "sis-v0"),
    ("crowd_motion", "crowd-motion-v0"),
    ("left_right", "left-right-v0"),
    ("linear_quadratic", "lq-small-v0"),
    ("building_evacuation", "building-evacuation-v0"),
    ("equilibrium_price", "equilibrium-price-v0"),
    ("conservative_treasure_hunting", "treasure-hunting-v0"),
]
MU_DEPENDENT = {"sis-v0", "treasure-hunting-v0"}


def _mfglib_env(name, dtype):
    import torch
    from mfglib.env import Environment
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return getattr(Environment, name)()
    finally:
        torch.set_default_dtype(old)


def _mfglib_expl(env, pi, dtype):
    import torch
    from mfglib.scoring import exploitability_score
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return exploitability_score(env, pi.to(dtype))
    finally:
        torch.set_default_dtype(old)


def _mfglib_run(alg, env, n_iter, dtype):
    """Median wall and CPU time of one ``step_next_state`` over ``n_iter`` from the uniform policy
    (MFGLib's ``solve`` also scores every iterate; only the algorithm's step is timed, as for
    ours), and the final policy: ``(wall, cpu, policy)``."""
    import torch
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        pi0 = torch.ones((env.T + 1,) + env.S + env.A, dtype=dtype) / env.n_actions
        state = alg.init_state(env, pi0)
        walls, cpus = [], []
        for _ in range(n_iter):
            start, c0 = time.perf_counter(), time.process_time()
            state = alg.step_next_state(state, None, None)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - c0)
        return statistics.median(walls), statistics.median(cpus), state.pi
    finally:
        torch.set_default_dtype(old)


def _to_profile(pi, game):
    arr = pi.detach().to("cpu").double().numpy().reshape(game.horizon, game.populations[0].n_states, -1)
    arr = np.maximum(arr, 0.0)
    return (arr / arr.sum(axis=-1, keepdims=True),)


def mfglib_section(n_iter, only=None, pairs=PAIRS):
    import torch
    from mfglib.alg import FictitiousPlay as LibFP
    from mfglib.alg import OnlineMirrorDescent as LibOMD
    # one intra-op thread: MFGLib's tensors are tiny, and on a shared machine a second torch
    # thread only adds wake-up latency (measured: steps of 15-20 ms instead of 0.2-0.5 ms)
    torch.set_num_threads(1)
    print(f"\n== MFGLib {_version('mfglib')} ({n_iter} iterations each; time = median of one iteration, median "
          f"over {pairs} interleaved pairs; MFGLib default float32 (timed) and rerun in float64; ours exact float64; "
          f"{load()})")
    rows, mismatches = [], []
    for name, our_id in MFGLIB_GAMES:
        if only and not ({name, our_id} & only):
            continue
        game = mb.make(our_id)
        env32 = _mfglib_env(name, torch.float32)
        env64 = _mfglib_env(name, torch.float64)
        print(f"\n{name} vs {our_id}")
        for algo, lib_alg, ours in (("fictitious play", LibFP(alpha=0.0), ours_fp),
                                    ("mirror descent", LibOMD(alpha=LR), ours_md)):
            print(f"  {algo}")
            try:
                _, _, pi64 = _mfglib_run(lib_alg, env64, n_iter, torch.float64)
                timing, pi32, our_policy = interleaved(lambda: _mfglib_run(lib_alg, env32, n_iter, torch.float32),
                                                       our_run(game, ours, n_iter), pairs)
            except Exception as exc:  # noqa: BLE001  (a peer's failure is a result to report)
                t_ours, our_expl = run_ours(game, ours, n_iter)
                rows.append(("MFGLib", name, our_id, algo, None, None, t_ours))
                print(f"    MFGLib fails on this game: {type(exc).__name__}: {exc}")
                print(f"    ours {1e3 * t_ours:8.3f} ms / iteration, exploitability {our_expl:.3e}")
                continue
            e32 = _mfglib_expl(env32, pi32, torch.float32)
            e64 = _mfglib_expl(env64, pi64, torch.float64)
            exact32 = mb.exploitability(game, _to_profile(pi32, game))
            exact64 = mb.exploitability(game, _to_profile(pi64, game))
            our_expl = mb.exploitability(game, our_policy)
            target = TARGET_MFGLIB if algo == "fictitious play" else None
            rows.append(("MFGLib", name, our_id, algo, timing, target))
            print_timing("MFGLib", timing, target, "    ")
            print(f"    exploitability    MFGLib float32 {e32:.3e} (its policy, exact: {exact32:.3e}); "
                  f"MFGLib float64 {e64:.3e} (exact: {exact64:.3e}); ours {our_expl:.3e}")
            gap32, gap64 = abs(e32 - exact32), abs(e64 - exact64)
            if gap32 > 1e-9 * max(1.0, abs(exact32)):
                print(f"    MFGLib's float32 score is off by {gap32:.1e}: float32 round-off in its flow and "
                      f"Q; in float64 the same algorithm's score is off by {gap64:.1e}"
                      f" ({'gap closes' if gap64 < 0.01 * gap32 or gap64 < 1e-10 else 'gap does NOT close'}).")
            if algo == "fictitious play" and abs(e64 - our_expl) > 1e-6 * max(1.0, abs(our_expl)):
                explain_fp_gap(game, env64, n_iter, e64, our_expl)
        mismatches += port_check(name, our_id, game, env64)
    return rows, mismatches


def fp_with_mfglib_rule(game, n_iter, ties):
    """MFGLib's fictitious play written with our exact core: weight 1/(i+2) on the greedy best
    response, averaged with the flows of the current average policy and of the best response;
    ``ties="split"`` spreads exactly tied actions uniformly (MFGLib's greedy policy),
    ``ties="lowest"`` takes the lowest tied action (ours). Returns the final exploitability."""
    pi = mb.uniform_policy(game)[0]
    for i in range(n_iter):
        Q = mb.best_response(game, (pi,)).q_values[0]
        if ties == "split":   # ties within 1e-12 (relative): what exact arithmetic would call ties
            top = Q.max(axis=-1, keepdims=True)
            mask = (Q >= top - 1e-12 * np.maximum(1.0, np.abs(top))).astype(float)
            br = mask / mask.sum(axis=-1, keepdims=True)
        else:
            br = greedy_policy(Q)
        mu = mb.distribution(game, (pi,))[0][:-1, :, None]
        mu_br = mb.distribution(game, (br,))[0][:-1, :, None]
        w = 1.0 / (i + 2)
        num, den = (1 - w) * mu * pi + w * mu_br * br, (1 - w) * mu + w * mu_br
        with np.errstate(invalid="ignore", divide="ignore"):
            pi = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0 / pi.shape[-1])
    return mb.exploitability(game, (pi,))


def mfglib_fp_lowest_ties(env64, game, n_iter):
    """MFGLib's own fictitious play (float64) with its greedy policy patched to put all mass on
    the lowest tied action, as ours does; returns the exact exploitability of its final policy."""
    import torch
    from mfglib.alg import FictitiousPlay as LibFP
    from mfglib.alg import fictitious_play as lib_fp
    original = lib_fp.Greedy_Policy

    def lowest(env, L):
        pi = original(env, L)
        flat = pi.flatten(start_dim=1 + len(env.S))
        first = (flat > 0).to(torch.int64).argmax(dim=-1, keepdim=True)
        return torch.zeros_like(flat).scatter_(-1, first, 1.0).reshape(pi.shape)

    lib_fp.Greedy_Policy = lowest
    try:
        _, _, pi = _mfglib_run(LibFP(alpha=0.0), env64, n_iter, torch.float64)
    finally:
        lib_fp.Greedy_Policy = original
    return mb.exploitability(game, _to_profile(pi, game))


def explain_fp_gap(game, env64, n_iter, lib64, ours):
    split = fp_with_mfglib_rule(game, n_iter, "split")
    lowest = fp_with_mfglib_rule(game, n_iter, "lowest")
    print(f"    why MFGLib float64 ({lib64:.6e}) and ours ({ours:.6e}) differ: MFGLib's step rule re-run on our "
          f"core gives {split:.6e} with MFGLib's ties (tied actions split uniformly) and {lowest:.6e} "
          f"with ours (lowest tied action).")
    if abs(split - lib64) > 1e-9 * max(1.0, abs(lib64)):
        print("    (MFGLib splits only ties that are exact in its own float arithmetic; states that are tied by "
              "symmetry can differ in the last bit in one toolkit and not the other, so this re-run need not "
              "reproduce MFGLib bit for bit.)")
    if game.id in MU_DEPENDENT:
        print("    The transitions depend on the mean field, so the two averages differ as well: MFGLib (and "
              "OpenSpiel) weight by the current average policy's flow, ours by the cumulative best-response "
              "flows; they coincide only when the dynamics ignore the mean field.")
    else:
        patched = mfglib_fp_lowest_ties(env64, game, n_iter)
        print(f"    check inside MFGLib: its fictitious play with its greedy policy patched to take the lowest "
              f"tied action gives {patched:.6e} (ours {ours:.6e}): "
              + ("the tie rule is the only difference (both are exact best responses; the averages visit "
                 "different ones)." if abs(patched - ours) <= 1e-9 * max(1.0, abs(ours))
                 else f"the gap shrinks from {abs(lib64 - ours):.2e} to {abs(patched - ours):.2e}; the rest comes "
                      f"from near-ties, exact in one toolkit's arithmetic and not in the other's."))


def port_check(name, our_id, game, env64):
    """Our port against MFGLib (float64) on the uniform policy and two random policies."""
    import torch
    rng = np.random.default_rng(1)
    A = game.populations[0].n_actions
    shape = (game.horizon, game.populations[0].n_states)
    policies = [("uniform", np.full(shape + (A,), 1.0 / A))]
    policies += [(f"random seed 1 #{i}", rng.dirichlet(np.ones(A), size=shape)) for i in range(2)]
    out = []
    for label, arr in policies:
        ours = mb.exploitability(game, (arr,))
        pi = torch.tensor(arr.reshape((env64.T + 1,) + env64.S + env64.A), dtype=torch.float64)
        theirs = _mfglib_expl(env64, pi, torch.float64)
        ok = abs(ours - theirs) <= 1e-9 * max(1.0, abs(ours))
        print(f"    port check, {label:17s}: ours {ours:.12f}  MFGLib float64 {theirs:.12f}  "
              f"{'same' if ok else 'MISMATCH %.3e' % (ours - theirs)}")
        if not ok:
            out.append((our_id, label, ours, theirs))
    return out


# -- summary --------------------------------------------------------------------------------------
def _version(module):
    from importlib.metadata import version
    try:
        return version({"open_spiel": "open-spiel"}.get(module, module))
    except Exception:  # noqa: BLE001  (version is informative only)
        return "?"


def game_function_seconds(game):
    """Time one fictitious-play iteration of ours spends inside the game's own Python functions
    and the ``MeanField`` objects passed to them: T reward calls (plus 2T transition calls
    when the transitions depend on the mean field: the model's and the best response's flow)."""
    from mfgbench.games.base import MeanField
    pi = mb.uniform_policy(game)
    flow = mb.distribution(game, pi)
    K, T = game.n_populations, game.horizon
    mus = [tuple(f[t] for f in flow) for t in range(T)]
    Ls = [tuple(f[t][:, None] * p[t] for f, p in zip(flow, pi)) for t in range(T)]   # ours come from a kernel

    def calls():
        for t in range(T):
            mf = MeanField(t, mus[t], Ls[t])
            for k in range(K):
                game.rewards(k, t, mf)
                if not game.static_transitions:
                    game.transitions(k, t, mf)
                    game.transitions(k, t, mf)
        mf_T = MeanField(T, tuple(f[T] for f in flow), (None,) * K)
        for k in range(K):
            game.terminal(k, mf_T)
    return per_iteration(calls, 200)


def summary(rows, mismatches, with_mfglib):
    print("\n== Summary (time per iteration, ms, median over interleaved pairs; ratio = peer / ours, "
          "median of the pairs' ratios; targets judged on CPU)")
    print(f"{'peer game':38s} {'ours':22s} {'algorithm':16s} {'peer wall':>10s} {'ours wall':>10s} {'ratio':>7s}"
          f" {'peer CPU':>10s} {'ours CPU':>10s} {'ratio':>7s}  target")
    for peer, name, our_id, algo, timing, target, *rest in rows:
        head = f"{peer + ' ' + name:38s} {our_id:22s} {algo:16s}"
        if timing is None:
            print(f"{head} {'fails':>10s} {1e3 * rest[0]:10.3f}")
            continue
        mark = "" if target is None else f">= {target:.0f}x {'met' if timing.cpu_ratio >= target else 'NOT MET'}"
        print(f"{head} {1e3 * timing.peer_wall:10.2f} {1e3 * timing.ours_wall:10.3f} {timing.wall_ratio:6.0f}x"
              f" {1e3 * timing.peer_cpu:10.2f} {1e3 * timing.ours_cpu:10.3f} {timing.cpu_ratio:6.0f}x  {mark}")
    missed = [r for r in rows if r[0] == "MFGLib" and r[4] is not None and r[5] is not None and r[4].cpu_ratio < r[5]]
    if missed:
        print("\nWhere the MFGLib target is missed, the share of our iteration spent in the game's own Python "
              "functions (rewards, and transitions when they depend on the mean field) and the MeanField "
              "objects passed to them:")
        for _, name, our_id, algo, timing, target in missed:
            inside = game_function_seconds(mb.make(our_id))
            to = timing.ours_wall
            print(f"  {our_id:22s} ours {1e6 * to:7.1f} us per iteration, of which {1e6 * inside:7.1f} us "
                  f"({100 * inside / to:3.0f}%) in the game's functions; MFGLib {1e6 * timing.peer_wall:7.1f} us")
    if with_mfglib:
        print("\nPort check against MFGLib (float64, same policy): "
              + ("all same to 1e-9" if not mismatches else f"{len(mismatches)} MISMATCH(ES):"))
        for our_id, label, ours, theirs in mismatches:
            print(f"  {our_id}, {label}: ours {ours:.12g}, MFGLib {theirs:.12g}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=20, help="iterations per algorithm on MFGLib's games")
    ap.add_argument("--openspiel-iterations", type=int, default=10,
                    help="iterations per algorithm on OpenSpiel's games (its predator-prey takes ~10 s each)")
    ap.add_argument("--quick", action="store_true", help="5 and 3 iterations (a smoke run)")
    ap.add_argument("--pairs", type=int, default=PAIRS,
                    help="interleaved (peer, ours) run pairs per comparison; medians over them (>= 3 for a figure)")
    ap.add_argument("--peer", choices=("both", "openspiel", "mfglib"), default="both",
                    help="run only one peer's section (the OpenSpiel one takes most of the ~10 min)")
    ap.add_argument("--games", default="",
                    help="comma-separated games to run, by our id or the peer's name "
                         "(e.g. sis-v0,beach_bar); default all")
    args = ap.parse_args(argv)
    only = {g.strip() for g in args.games.split(",") if g.strip()} or None
    known = {n for row in OPENSPIEL_GAMES for n in row[:2]} | {n for row in MFGLIB_GAMES for n in row}
    if only and only - known:
        ap.error(f"unknown game(s) {sorted(only - known)}; known: {sorted(known)}")
    if args.pairs < 1:
        ap.error(f"--pairs must be >= 1, got {args.pairs}")
    n_iter = 5 if args.quick else args.iterations
    n_os = 3 if args.quick else args.openspiel_iterations
    has_os, has_lib = _have("pyspiel"), _have("mfglib")
    if not (has_os or has_lib):
        print("peers: neither OpenSpiel nor MFGLib is installed; nothing to compare. Install them with "
              "`pip install open-spiel==2.0.2 mfglib==0.3.0` (see benchmarks/README.md).")
        return 0
    for module, ok in (("OpenSpiel (open-spiel==2.0.2)", has_os), ("MFGLib (mfglib==0.3.0)", has_lib)):
        if not ok:
            print(f"peers: {module} is not installed; its section is skipped.")
    print(f"# {' '.join(['benchmarks/peers.py'] + list(argv if argv is not None else sys.argv[1:]))} at "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {load()}")
    # compile our kernels before timing anything
    for gid in ("crowd-1d-v0",):
        ours_fp(mb.make(gid)).step()
        ours_md(mb.make(gid)).step()
    os_rows = openspiel_section(n_os, only, args.pairs) if has_os and args.peer in ("both", "openspiel") else []
    with_mfglib = has_lib and args.peer in ("both", "mfglib")
    lib_rows, mismatches = mfglib_section(n_iter, only, args.pairs) if with_mfglib else ([], [])
    summary(os_rows + lib_rows, mismatches, with_mfglib)
    print(f"\nend: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
