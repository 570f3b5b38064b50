"""Exact evaluation of a policy profile in a finite-horizon game.

For a profile ``pi`` the induced flow is ``mu^pi`` (exact forward propagation from
``mu0``). Along a fixed flow each population k faces a finite-horizon MDP
(``R_k[t, s, a]``, ``P_k[t]``, ``g_k``); its policy value ``V^pi_k`` and best-response
value ``V^BR_k`` follow by backward induction. The exploitability of population k is

    E_k(pi) = sum_s mu0_k(s) (V^BR_k[0, s] - V^pi_k[0, s]),

and the game's exploitability is ``E = sum_k E_k`` (REFERENCES.md). All in float64.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from mfgbench.core import kernels
from mfgbench.core.policy import as_profile, greedy_policy
from mfgbench.games.base import MeanField, check_rewards, check_transitions


@dataclass(frozen=True)
class FlowModel:
    """The single-agent MDPs the populations face along one flow.

    Per population k: ``flow[k][t, s]`` (t = 0..T), ``rewards[k][t, s, a]`` (t < T),
    ``succ[k][tt, s, a, b]`` and ``prob[k][tt, s, a, b]`` (one table per time, or a
    single static table), ``terminal[k][s]``.
    """

    flow: tuple
    rewards: tuple
    succ: tuple
    prob: tuple
    terminal: tuple

    def transition_at(self, k: int, t: int):
        tt = 0 if self.succ[k].shape[0] == 1 else t
        return self.succ[k][tt], self.prob[k][tt]


@dataclass(frozen=True)
class BestResponse:
    """Best response of every population to a fixed flow: greedy policy, values and Q."""

    policy: tuple
    values: tuple
    q_values: tuple


@dataclass(frozen=True)
class Evaluation:
    """Everything exact evaluation gives for one profile: the flow it induces, its values,
    the best responses against that flow, and the exploitability (total and per population)."""

    flow: tuple
    values: tuple
    best_response: BestResponse
    per_population: np.ndarray
    exploitability: float
    model: FlowModel


class _GameQueries:
    """Calls a game's functions, validating what they return on the game's first evaluation."""

    def __init__(self, game):
        self.game = game
        self.validate = not game._validated
        self._checked_static = set()

    def rewards(self, k, t, mf):
        R = self.game.rewards(k, t, mf)
        if self.validate:
            return check_rewards(self.game, k, t, R)
        return np.asarray(R, dtype=np.float64)

    def terminal(self, k, mf):
        g = self.game.terminal(k, mf)
        if self.validate:
            return check_rewards(self.game, k, "T", g)
        return np.asarray(g, dtype=np.float64)

    def transitions(self, k, t, mf):
        if self.game.static_transitions:
            if self.validate and k not in self._checked_static:
                check_transitions(self.game, k, t, *self.game.static_transition(k))
                self._checked_static.add(k)
            return self.game.static_transition(k)
        succ, prob = self.game.transitions(k, t, mf)
        if self.validate:
            return check_transitions(self.game, k, t, succ, prob)
        return np.asarray(succ, dtype=np.int64), np.asarray(prob, dtype=np.float64)

    def done(self):
        self.game._validated = True


def _stack(tables, static):
    if static:
        return tables[0][None]
    return np.stack(tables)


def induced_model(game, policy) -> FlowModel:
    """Propagate ``policy`` forward from mu0 and record the MDPs along the induced flow."""
    return model_of_profile(game, as_profile(game, policy))


def model_of_profile(game, profile) -> FlowModel:
    """``induced_model`` of a profile already validated by ``as_profile`` (the learners' own
    iterates): no validation of the policy, and with static transitions the whole flow is
    pushed in one compiled call before the rewards are read along it."""
    q = _GameQueries(game)
    pops = game.populations
    K, T = len(pops), game.horizon
    if game.static_transitions:
        succ, prob = _static_tables(game, q)
        if sum(pi.size for pi in profile) <= _MEASURE_IN_KERNEL_MAX:
            # small games: L_t for every t from the flow's own pass (no numpy call per step)
            flows, L = zip(*[kernels.flow_and_measure(pops[k].mu0, profile[k], succ[k], prob[k])
                             for k in range(K)])
        else:   # large games: L_t one step at a time, no T x S x A array held
            flows = [kernels.push_flow(pops[k].mu0, profile[k], succ[k], prob[k]) for k in range(K)]
            L = None
        R = _rewards_over_time(game, q, flows, L)
        if R is None:
            R = [np.empty((T, p.n_states, p.n_actions)) for p in pops]
            for t in range(T):
                L_t = tuple([x[t] for x in L]) if L is not None else \
                    tuple([f[t][:, None] * pi[t] for f, pi in zip(flows, profile)])
                mf = MeanField(t, tuple([f[t] for f in flows]), L_t)
                for k in range(K):
                    R[k][t] = q.rewards(k, t, mf)
    elif (compiled := _compiled_flow(game, q, profile)) is not None:
        # single population, mean-field-dependent transitions the game builds along the flow itself
        flow, s_all, p_all = compiled
        flows, succ, prob = (flow,), (s_all,), (p_all,)
        R = _rewards_over_time(game, q, flows, (flow[:-1, :, None] * profile[0],))
        if R is None:
            R = [np.empty((T, pops[0].n_states, pops[0].n_actions))]
            for t in range(T):
                mf = MeanField(t, (flow[t],), (flow[t][:, None] * profile[0][t],))
                R[0][t] = q.rewards(0, t, mf)
    else:
        R = [np.empty((T, p.n_states, p.n_actions)) for p in pops]
        flows = [np.empty((T + 1, p.n_states)) for p in pops]
        for k in range(K):
            flows[k][0] = pops[k].mu0
        succ = [[] for _ in range(K)]
        prob = [[] for _ in range(K)]
        for t in range(T):
            mu_t = tuple([f[t] for f in flows])
            mf = MeanField(t, mu_t, tuple([m[:, None] * pi[t] for m, pi in zip(mu_t, profile)]))
            for k in range(K):
                R[k][t] = q.rewards(k, t, mf)
                s_t, p_t = q.transitions(k, t, mf)
                succ[k].append(s_t)
                prob[k].append(p_t)
                flows[k][t + 1] = kernels.push_forward(mu_t[k], profile[k][t], s_t, p_t)
        succ = [np.stack(x) for x in succ]
        prob = [np.stack(x) for x in prob]
    if getattr(game, "zero_terminal", False) and not q.validate:
        g = tuple([np.zeros(p.n_states) for p in pops])
    else:
        mf_T = MeanField(T, tuple([f[T] for f in flows]), (None,) * K)
        g = tuple([q.terminal(k, mf_T) for k in range(K)])
    q.done()
    return FlowModel(tuple(flows), tuple(R), tuple(succ), tuple(prob), g)


def current_static_tables(game):
    """The one-slice tables ``(succ, prob)`` (tuples over populations) held for a game with
    static transitions, while they are still those of the game's own transition cache; else None."""
    entry = _STATIC_TABLES.get(game)
    if entry is None:
        return None
    cache = game._transition_cache
    for k, pair in enumerate(entry[0]):
        if cache.get(k) is not pair:
            return None
    return entry[1]


def static_model_arrays(game, profile):
    """``(rewards, succ, prob, terminal)`` of ``model_of_profile`` (tuples over populations) on the
    shortest path: for small games with static transitions, rewards vectorised over time and a
    zero terminal reward, after the game's first (validating) evaluation. None otherwise. For the
    learners' per-iteration calls on tiny games, where the model's Python overhead is the cost."""
    if not game.static_transitions or not game._validated or not getattr(game, "zero_terminal", False):
        return None
    tables = current_static_tables(game)
    if tables is None:
        return None
    succ, prob = tables
    pops = game.populations
    if len(pops) == 1:   # the common case, without the per-population lists
        pi = profile[0]
        if pi.size > _MEASURE_IN_KERNEL_MAX:
            return None
        flow, L = kernels.flow_and_measure(pops[0].mu0, pi, succ[0], prob[0])
        R = game.rewards_over_time(0, (flow,), (L,))
        if R is None:
            return None
        return (R,), succ, prob, (np.zeros(pops[0].n_states),)
    if sum(pi.size for pi in profile) > _MEASURE_IN_KERNEL_MAX:
        return None
    flows, L = zip(*[kernels.flow_and_measure(p.mu0, pi, s, pr) for p, pi, s, pr in zip(pops, profile, succ, prob)])
    R = []
    for k in range(len(pops)):
        r = game.rewards_over_time(k, flows, L)
        if r is None:
            return None
        R.append(r)
    return tuple(R), succ, prob, tuple([np.zeros(p.n_states) for p in pops])


def _rewards_over_time(game, q, flows, measures):
    """The game's vectorised rewards ``R[k][t, s, a]`` for all k, or None when it has none (or on
    its first, validating, evaluation: the per-time calls are the ones checked)."""
    if q.validate or measures is None:   # measures None: a large game, stepped one time at a time
        return None
    R = []
    for k in range(len(flows)):
        r = game.rewards_over_time(k, flows, measures) if hasattr(game, "rewards_over_time") else None
        if r is None:
            return None
        R.append(np.asarray(r, dtype=np.float64))
    return R


def _compiled_flow(game, q, profile):
    """``game.flow_and_transitions`` of a single-population game with mean-field-dependent
    transitions, or None (several populations, no such method, or the validating first use)."""
    if q.validate or len(profile) != 1 or not hasattr(game, "flow_and_transitions"):
        return None
    return game.flow_and_transitions(profile[0])


_MEASURE_IN_KERNEL_MAX = 1 << 16
"""Policy entries (all populations) up to which ``model_of_profile`` takes L_t from the
flow kernel; above, one step at a time (a T x S x A array costs more in page faults)."""

_STATIC_TABLES = weakref.WeakKeyDictionary()
"""Per game with static transitions: its tables as one-time-slice arrays ``succ[None]``,
``prob[None]`` (what the kernels take), and the game's cached pairs they were made from."""


def _static_tables(game, q):
    entry = _STATIC_TABLES.get(game)
    K = game.n_populations
    # rebuilt on a game's first (validating) use and whenever its own transition cache changed
    if entry is None or q.validate or any(game._transition_cache.get(k) is not entry[0][k] for k in range(K)):
        pairs = [q.transitions(k, 0, None) for k in range(K)]
        entry = (pairs, (tuple(s[None] for s, _ in pairs), tuple(p[None] for _, p in pairs)))
        _STATIC_TABLES[game] = entry
    return entry[1]


def flow_of_profile(game, profile) -> tuple:
    """The flow ``mu_k[t, s]`` of a validated profile, without reading any reward: one compiled
    call per population with static transitions, else the game's transitions step by step."""
    q = _GameQueries(game)
    K, T = game.n_populations, game.horizon
    if game.static_transitions:
        succ, prob = _static_tables(game, q)
        return tuple([kernels.push_flow(game.populations[k].mu0, profile[k], succ[k], prob[k]) for k in range(K)])
    compiled = _compiled_flow(game, q, profile)
    if compiled is not None:
        return (compiled[0],)
    flows = [np.empty((T + 1, p.n_states)) for p in game.populations]
    for k in range(K):
        flows[k][0] = game.populations[k].mu0
    for t in range(T):
        mu_t = tuple([f[t] for f in flows])
        mf = MeanField(t, mu_t, tuple([m[:, None] * pi[t] for m, pi in zip(mu_t, profile)]))
        for k in range(K):
            s_t, p_t = q.transitions(k, t, mf)
            flows[k][t + 1] = kernels.push_forward(mu_t[k], profile[k][t], s_t, p_t)
    return tuple(flows)


def model_along_flow(game, flow, state_action=None) -> FlowModel:
    """The MDPs along a given flow ``flow[k][t, s]`` (not necessarily induced by a policy).

    ``state_action[k][t]`` gives L_t for games whose functions read it; without it the
    mean field passed to the game carries ``L = None``.
    """
    q = _GameQueries(game)
    K, T = game.n_populations, game.horizon
    flow = tuple(np.asarray(f, dtype=np.float64) for f in flow)
    R, succ, prob = [[] for _ in range(K)], [[] for _ in range(K)], [[] for _ in range(K)]
    for t in range(T):
        L = tuple(state_action[k][t] for k in range(K)) if state_action is not None else (None,) * K
        mf = MeanField(t, tuple(f[t] for f in flow), L)
        for k in range(K):
            R[k].append(q.rewards(k, t, mf))
            if not (game.static_transitions and t > 0):
                s_t, p_t = q.transitions(k, t, mf)
                succ[k].append(s_t)
                prob[k].append(p_t)
    mf_T = MeanField(T, tuple(f[T] for f in flow), (None,) * K)
    g = tuple(q.terminal(k, mf_T) for k in range(K))
    static = game.static_transitions
    return FlowModel(flow, tuple(np.stack(r) for r in R), tuple(_stack(s, static) for s in succ),
                     tuple(_stack(p, static) for p in prob), g)


def values_along(model: FlowModel, policy) -> tuple:
    """``V^pi_k[t, s]`` of every population along the model's flow."""
    return tuple(kernels.policy_value(model.rewards[k], model.succ[k], model.prob[k], model.terminal[k], pi)
                 for k, pi in enumerate(policy))


def best_response_along(model: FlowModel) -> BestResponse:
    """Best response of every population to the model's flow (ties: lowest action index)."""
    V, Q = zip(*(kernels.best_response_values(model.rewards[k], model.succ[k], model.prob[k], model.terminal[k])
                 for k in range(len(model.rewards))))
    return BestResponse(tuple(greedy_policy(q) for q in Q), tuple(V), tuple(Q))


def evaluate(game, policy) -> Evaluation:
    """Exact flow, values, best responses and exploitability of ``policy`` in ``game``."""
    if getattr(game, "kind", "finite") == "stationary":
        from mfgbench.core import stationary
        return stationary.evaluate(game, policy)
    profile = as_profile(game, policy)
    model = model_of_profile(game, profile)
    # policy value and best response share one backward pass over R, succ and prob
    sweeps = [_evaluation_sweep(model, k, pi) for k, pi in enumerate(profile)]
    values = tuple(sw[0] for sw in sweeps)
    br = BestResponse(tuple(sw[3] for sw in sweeps), tuple(sw[1] for sw in sweeps), tuple(sw[2] for sw in sweeps))
    per = np.array([float(game.populations[k].mu0 @ (br.values[k][0] - values[k][0]))
                    for k in range(game.n_populations)])
    return Evaluation(model.flow, values, br, per, float(per.sum()), model)


def _evaluation_sweep(model: FlowModel, k: int, pi):
    return kernels.evaluation_sweep(model.rewards[k], model.succ[k], model.prob[k], model.terminal[k], pi)


def exploitability(game, policy) -> float:
    """``sum_k <mu0_k, V^BR_k[0] - V^pi_k[0]>`` against the flow ``policy`` induces."""
    return evaluate(game, policy).exploitability


def distribution(game, policy) -> tuple:
    """The flow ``mu_k[t, s]`` (t = 0..T) that ``policy`` induces, one array per population."""
    if getattr(game, "kind", "finite") == "stationary":
        from mfgbench.core import stationary
        return stationary.distribution(game, policy)
    return flow_of_profile(game, as_profile(game, policy))


def best_response(game, policy) -> BestResponse:
    """Best response of each population to the flow (or stationary distribution) ``policy`` induces."""
    if getattr(game, "kind", "finite") == "stationary":
        from mfgbench.core import stationary
        return stationary.best_response_along(stationary.induced_model(game, policy))
    return best_response_along(induced_model(game, policy))


def policy_value(game, policy) -> tuple:
    """``V^pi_k[t, s]`` (``V^pi_k[s]`` in stationary games) against the flow ``policy`` itself induces."""
    profile = as_profile(game, policy)
    if getattr(game, "kind", "finite") == "stationary":
        from mfgbench.core import stationary
        return stationary.values_along(stationary.induced_model(game, profile), profile)
    return values_along(model_of_profile(game, profile), profile)
