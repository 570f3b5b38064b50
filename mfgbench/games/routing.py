"""Mean-field dynamic routing on a road network with congestion (Cabannes et al. 2022).

A network is a directed graph of nodes and links; link l has a free-flow travel time
``t0_l``, a capacity ``c_l`` and a volume-delay (BPR) function
``tau_l(v) = t0_l (1 + alpha_l (v / c_l)^beta_l)``. Each origin-destination demand is a
population of vehicles (mass ``d_k``) that all start at their origin node at time 0.
Time runs in steps of length ``dt``; there are ``horizon`` decision times.

A vehicle at a node chooses the next link among the node's outgoing links (action i
picks the node's i-th outgoing link, in the order the links were declared; actions
beyond the node's out-degree repeat its last link). Its travel time on the link is
set on entry from the link's volume ``v_l,t``: the vehicles on the link when it enters,
those entering with it included, all populations together (as in OpenSpiel, where the
volume is the density of vehicles whose location is the link):

    v_l,t = sum_k d_k * (mass of population k on link l at step t
                         + mass of population k choosing l at step t),

read from ``mu_t`` and the state-action measures ``L_t``. The time ``tau_l(v)/dt = n + f`` (n whole
steps, 0 <= f < 1) is taken as n steps with probability 1 - f and n + 1 with
probability f, so the expected time on the link is exactly ``tau_l(v)`` (the game is
continuous in the mean field; at whole numbers of steps it is deterministic; OpenSpiel
truncates to n steps instead). A
vehicle is in one of: "at node u" (deciding), "on link l with r steps left"
(r >= 1; actions have no effect), or arrived (its destination node, absorbing). It
pays ``-dt`` per step until it arrives, so its return is minus its arrival time (a
vehicle still travelling at the horizon pays ``horizon * dt``). Terminal reward 0.

Free-flow times must be at least one step (``t0_l >= dt``): links of zero length, like
OpenSpiel's origin and destination links, are left out and the origin and destination
are nodes.

``braess-v0`` is OpenSpiel's ``mfg_dynamic_routing`` default network: Braess's
network B -> {C, D}, C -> {D, E}, D -> E with ``tau = 1 + v`` on B->C and D->E, 2 on
B->D and C->E, 0.25 on C->D, one population of mass 1 from B to E, dt = 0.25 (so the
equilibrium travel times are whole steps) and 17 decision times (OpenSpiel's A->B and
E->F have zero travel time and no congestion, so dropping them changes no travel
time). Its Nash equilibrium sends 3/4
to C (2/3 of them on to D) and 1/4 to D: every route takes 3.75. The social optimum
splits 1/2-1/2 with nobody on C->D: 3.5 each, but a lone deviator via C->D then finds
D->E empty and arrives at 2.75, so its exploitability is 0.75.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgbench.errors import GameError
from mfgbench.games.base import Game, Population
from mfgbench.games.registry import register


@dataclass(frozen=True)
class Link:
    """A directed road ``tail -> head`` with BPR volume-delay ``t0 (1 + alpha (v / capacity)^beta)``."""

    tail: str
    head: str
    free_flow_time: float
    capacity: float = 1.0
    alpha: float = 0.0
    beta: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.tail}->{self.head}"

    def travel_time(self, volume):
        """``tau(v)`` for a volume (scalar or array) entering the link together."""
        return self.free_flow_time * (1.0 + self.alpha * (np.asarray(volume) / self.capacity) ** self.beta)


@dataclass(frozen=True)
class Demand:
    """A population of vehicles of total mass ``mass`` going from ``origin`` to ``destination``."""

    origin: str
    destination: str
    mass: float = 1.0


@dataclass(frozen=True)
class Network:
    """Nodes (names) and links; ``out_links(u)`` lists u's outgoing links in declaration order."""

    nodes: tuple
    links: tuple

    def out_links(self, node) -> list:
        return [i for i, link in enumerate(self.links) if link.tail == node]


class RoutingGame(Game):
    """Dynamic routing on ``network`` for the ``demands`` (one population each); see the module docstring."""

    def __init__(self, network: Network, demands, dt: float, horizon: int):
        demands = tuple(demands)
        self._check(network, demands, dt)
        self.network, self.demands, self.dt = network, demands, float(dt)
        nodes = list(network.nodes)
        self.node_index = {u: i for i, u in enumerate(nodes)}
        N, links = len(nodes), network.links
        total = sum(d.mass for d in demands)
        # most whole steps a link can take (all vehicles entering together), capped past the horizon
        steps_max = [min(int(np.ceil(link.travel_time(total) / self.dt - 1e-12)) + 1, int(horizon) + 1)
                     for link in links]
        # states: nodes 0..N-1, then (link l, r steps left) for r = 1..steps_max[l]-1
        self.transit_offset = np.cumsum([N] + [m - 1 for m in steps_max])[:-1]
        self.steps_max = np.array(steps_max)
        S = int(N + sum(m - 1 for m in steps_max))
        A = max(max(len(network.out_links(u)) for u in nodes), 1)
        self.out = [network.out_links(u) for u in nodes]
        # chosen[s, a]: link entered by action a at node state s, -1 elsewhere
        self.chosen = np.full((S, A), -1, dtype=np.int64)
        for u, outs in enumerate(self.out):
            if outs:
                self.chosen[u] = [outs[min(a, len(outs) - 1)] for a in range(A)]
        self.labels = tuple(nodes) + tuple(f"{link.name} ({r} left)" for link, m in zip(links, steps_max)
                                           for r in range(1, m))
        pops = []
        for k, d in enumerate(demands):
            mu0 = np.zeros(S)
            mu0[self.node_index[d.origin]] = 1.0
            pops.append(Population(f"{d.origin}->{d.destination}", S, A, mu0, state_labels=self.labels))
        super().__init__(int(horizon), pops)
        self._dest = [self.node_index[d.destination] for d in demands]
        self._transit_succ = self._transit_successors()
        self._on_link = np.full(S, -1, dtype=np.int64)  # link of each on-link state, -1 for nodes
        for l in range(len(links)):
            self._on_link[self.transit_offset[l]:self.transit_offset[l] + steps_max[l] - 1] = l

    def _check(self, network, demands, dt):
        where = f"game {self.id}"
        if not dt > 0:
            raise ValueError(f"{where}: dt must be positive, got {dt}")
        names = set(network.nodes)
        if len(names) != len(network.nodes):
            raise ValueError(f"{where}: network has repeated node names")
        for link in network.links:
            if link.tail not in names or link.head not in names:
                raise ValueError(f"{where}: link {link.name} joins a node not in the network")
            if link.free_flow_time < dt:
                raise ValueError(f"{where}: link {link.name} has free-flow time {link.free_flow_time} below one "
                                 f"step dt={dt}; leave zero-length links out")
            if link.capacity <= 0 or link.alpha < 0 or link.beta <= 0:
                raise ValueError(f"{where}: link {link.name} needs capacity > 0, alpha >= 0, beta > 0")
        if not demands:
            raise ValueError(f"{where}: needs at least one demand")
        for d in demands:
            if d.origin not in names or d.destination not in names or d.origin == d.destination:
                raise ValueError(f"{where}: demand {d.origin}->{d.destination} needs two distinct network nodes")
            if not d.mass > 0:
                raise ValueError(f"{where}: demand {d.origin}->{d.destination} needs a positive mass, got {d.mass}")

    def _transit_successors(self):
        """Successor of each on-link state (one step less, or the link's head node)."""
        succ = np.arange(self.populations[0].n_states)
        for l, link in enumerate(self.network.links):
            base = self.transit_offset[l]
            for r in range(1, self.steps_max[l]):
                succ[base + r - 1] = self.node_index[link.head] if r == 1 else base + r - 2
        return succ

    def entry_state(self, l: int, n: np.ndarray) -> np.ndarray:
        """State right after entering link l with ``n`` steps to go (its head node when n == 1)."""
        n = np.minimum(n, self.steps_max[l])
        head = self.node_index[self.network.links[l].head]
        return np.where(n <= 1, head, self.transit_offset[l] + n - 2)

    def volumes(self, mf) -> np.ndarray:
        """``v_l,t``: the mass of all populations on each link or entering it at this step."""
        n_links = len(self.network.links)
        v = np.zeros(n_links)
        on_link = self._on_link >= 0
        entering = self.chosen >= 0
        for k, d in enumerate(self.demands):
            L = mf.L[k] if mf is not None and mf.L is not None else None
            if L is None:
                raise GameError(f"game {self.id}: link volumes read the state-action measure L_t, but the mean "
                                f"field at time {getattr(mf, 't', None)} carries none")
            mu = np.asarray(mf.mu[k])
            v += d.mass * (np.bincount(self._on_link[on_link], weights=mu[on_link], minlength=n_links)
                           + np.bincount(self.chosen[entering], weights=np.asarray(L)[entering], minlength=n_links))
        return v

    def rewards(self, k, t, mf):
        R = np.full((self.populations[k].n_states, self.populations[k].n_actions), -self.dt)
        R[self._dest[k]] = 0.0
        return R

    def transitions(self, k, t, mf):
        S, A = self.populations[k].n_states, self.populations[k].n_actions
        succ = np.empty((S, A, 2), dtype=np.int64)
        prob = np.zeros((S, A, 2))
        succ[:, :, 0] = self._transit_succ[:, None]
        succ[:, :, 1] = succ[:, :, 0]
        prob[:, :, 0] = 1.0
        v = self.volumes(mf)
        for u, outs in enumerate(self.out):
            if u == self._dest[k] or not outs:
                continue  # arrived (absorbing) or a dead end: stay
            for a in range(A):
                l = self.chosen[u, a]
                x = float(self.network.links[l].travel_time(v[l])) / self.dt
                n = int(np.floor(x))
                f = x - n
                succ[u, a] = self.entry_state(l, np.array([n, n + 1]))
                prob[u, a] = (1.0 - f, f)
        return succ, prob

    def travel_time(self, policy) -> np.ndarray:
        """Expected arrival time of each population under ``policy`` (minus its value at mu0)."""
        from mfgbench.core.evaluate import policy_value
        values = policy_value(self, policy)
        return np.array([-float(p.mu0 @ v[0]) for p, v in zip(self.populations, values)])


BRAESS = Network(("B", "C", "D", "E"), (
    Link("B", "C", 1.0, capacity=1.0, alpha=1.0, beta=1.0),
    Link("B", "D", 2.0),
    Link("C", "D", 0.25),
    Link("C", "E", 2.0),
    Link("D", "E", 1.0, capacity=1.0, alpha=1.0, beta=1.0),
))


@register("braess-v0", description="dynamic routing on Braess's network: NE 3.75, social optimum 3.5",
          source="Cabannes et al. 2022, Solving N-player dynamic routing games with congestion: a mean field "
                 "approach; OpenSpiel mfg_dynamic_routing (Braess network)")
class Braess(RoutingGame):
    id = "braess-v0"

    def __init__(self, dt: float = 0.25, horizon: int = 17):
        super().__init__(BRAESS, (Demand("B", "E", 1.0),), dt, horizon)
