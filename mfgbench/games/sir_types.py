"""An epidemic with two age groups: each type has its own health states, actions, contact rates
and costs; infection comes from the joint infected mass of both groups.

Source: the heterogeneous-populations design note (``/work/shared/sources/004_*``, sec. 5.3:
S-I-R with infection from contact with the infected, recovery at a fixed rate, social
distancing and isolation actions with their costs; sec. 1.1: types with their own state and
action spaces), after the discrete-time SIR games of Laguzet & Turinici (2015, individual
vaccination/distancing as a Nash equilibrium) and MFGLib's SIS. Our finite version:

**Types** (shares ``young_share`` and the rest old):

- young: states S, I_1..I_m, R (``stages + 2``); actions normal, distance (2);
- old: states S, I_1..I_m, H (in hospital), R (``stages + 3``); actions normal, distance,
  isolate (3).

``stages`` (the size parameter) splits the infectious period into m stages (an Erlang
duration of mean ``1 / recovery``).

**Dynamics**, one step a day. A susceptible of type k choosing a is infected with probability

    lambda_k,t(a) = beta * c(a) * sum_j M[k, j] n_j I_j,t,       I_j,t = sum_i mu_j,t(I_i),

with contact factors ``c = (1, distance_factor, isolate_factor)``, the contact matrix
``M = [[1, cross_contact], [cross_contact, old_contact]]`` and the types' shares n_j (the
parameters must keep lambda <= 1 whatever the infected mass). An infectious stage ends with
probability ``m * recovery``: into the next stage, or out of the last one into R (young) or,
for the old, into H with probability ``hospital`` and R otherwise; H ends into R with
probability ``discharge``. R is absorbing (immune).

**Rewards** per day: ``-cost_k(a)`` for the chosen action (young: distancing ``young_distance_cost``;
old: ``old_distance_cost``, isolation ``isolation_cost``), minus ``sick_cost`` while infectious
and ``hospital_cost`` in hospital. At the horizon a vaccine arrives: the susceptible are safe,
and an illness under way is charged its expected remaining cost (sick days still to come, and
for the old the hospital stay they may still need), so that catching it late is no bargain.

Each type trades its own distancing cost against its own infection risk, which depends on
everybody's behaviour through the infected masses: the old, facing hospital, distance or
isolate while the epidemic is high; the young, who only pay sick days, keep more contacts;
raising the old's isolation cost moves and raises the epidemic peak (see
``notebooks/heterogeneous.ipynb``).

**Equilibrium: certified, not unique.** Only the transitions depend on the mean field (the
infection probability), so the Lasry–Lions monotonicity argument does not apply, and indeed the
default game has at least two equilibria: started from fictitious play or from the uniform
policy, the solver finds two certified profiles (exploitability < 1e-11, recomputed by the numpy
twins in the tests) that differ in whether the young, exactly indifferent on one late day, mix
(flows differ by ~1e-3 at the end). The reference solves the equilibrium's complementarity
system with an interior-point Newton method (:mod:`reference_solvers.discrete.complementarity`),
from fictitious play, and is certified by its exact exploitability (<= 1e-8); learners are scored
by exploitability first, and their distance to *this* equilibrium's flow is only indicative late
in the epidemic. Where the young's indifference lasts many days (cheap distancing, e.g.
``young_distance_cost=0.05``), the solver's path folds and the reference is not certified (measured:
the pipeline's fallbacks reach ~1e-4); the defaults and the notebook's isolation costs certify.
"""
from __future__ import annotations

import numpy as np

from mfgbench.games.base import Game, Population
from mfgbench.games.coupling import AffineCoupling
from mfgbench.games.registry import register

WIDTH = 3
"""Successor-list width: the old's last infectious stage may stay, go to H or go to R."""


@register("sir-types-v0", description="an epidemic with young (S-I-R, distance) and old (S-I-H-R, distance or "
                                      "isolate) agents, infected by the joint infected mass",
          source="heterogeneous-populations note (sources/004, sec. 5.3: SIR with distancing and isolation); "
                 "after Laguzet & Turinici 2015; mfgbench's finite version")
class SIRTypes(Game):
    """Two age groups in an SIR epidemic (see the module docstring)."""

    id = "sir-types-v0"
    static_transitions = False

    def __init__(self, stages: int = 1, horizon: int = 30, young_share: float = 0.7, beta: float = 0.6,
                 cross_contact: float = 0.5, old_contact: float = 0.5, distance_factor: float = 0.4,
                 isolate_factor: float = 0.1, recovery: float = 0.2, hospital: float = 0.3, discharge: float = 0.2,
                 young_distance_cost: float = 0.1, old_distance_cost: float = 0.1, isolation_cost: float = 0.2,
                 sick_cost: float = 0.8, hospital_cost: float = 8.0, infected0: float = 0.01):
        if not isinstance(stages, (int, np.integer)) or stages < 1:
            raise ValueError(f"game {self.id}: stages must be an integer >= 1, got {stages!r}")
        if not 0 < young_share < 1:
            raise ValueError(f"game {self.id}: young_share must lie in (0, 1), got {young_share}")
        if not 0 < stages * recovery <= 1:
            raise ValueError(f"game {self.id}: stages * recovery must lie in (0, 1] (a stage's end "
                             f"probability), got {stages * recovery}")
        for name, value in (("hospital", hospital), ("discharge", discharge), ("infected0", infected0),
                            ("distance_factor", distance_factor), ("isolate_factor", isolate_factor)):
            if not 0 <= value <= 1:
                raise ValueError(f"game {self.id}: {name} must lie in [0, 1], got {value}")
        for name, value in (("beta", beta), ("cross_contact", cross_contact), ("old_contact", old_contact),
                            ("young_distance_cost", young_distance_cost), ("old_distance_cost", old_distance_cost),
                            ("isolation_cost", isolation_cost), ("sick_cost", sick_cost),
                            ("hospital_cost", hospital_cost)):
            if not value >= 0:
                raise ValueError(f"game {self.id}: {name} must be >= 0, got {value}")
        self.m = int(stages)
        self.beta, self.recovery, self.hospital, self.discharge = float(beta), float(recovery), float(hospital), \
            float(discharge)
        self.shares = np.array([young_share, 1.0 - young_share])
        self.contact = np.array([[1.0, cross_contact], [cross_contact, old_contact]])
        self.factor = np.array([1.0, distance_factor, isolate_factor])
        worst = self.beta * self.factor.max() * (self.contact @ self.shares).max()
        if worst > 1.0:
            raise ValueError(f"game {self.id}: beta * contact can make the infection probability {worst:.3g} > 1 "
                             f"(when everybody is infectious); lower beta or the contacts")
        self.action_cost = (np.array([0.0, young_distance_cost]),
                            np.array([0.0, old_distance_cost, isolation_cost]))
        self.sick_cost, self.hospital_cost = float(sick_cost), float(hospital_cost)
        m = self.m
        infectious = [f"I{i + 1}" if m > 1 else "I" for i in range(m)]
        names = (("S", *infectious, "R"), ("S", *infectious, "H", "R"))
        self.infectious = tuple(np.arange(1, m + 1) for _ in range(2))
        pops = []
        for k, (type_name, labels) in enumerate(zip(("young", "old"), names)):
            S = len(labels)
            mu0 = np.zeros(S)
            mu0[0], mu0[1] = 1.0 - infected0, infected0
            chain = [(i, i + 1, 1.0) for i in range(m)]           # S - I1 - ... - Im
            last = m
            if k == 0:
                links = chain + [(last, S - 1, 1.0)]              # Im - R
            else:
                links = chain + [(last, S - 2, 1.0), (S - 2, S - 1, 1.0), (last, S - 1, 1.0)]   # Im - H - R, Im - R
            pops.append(Population(type_name, S, len(self.action_cost[k]), mu0, state_labels=labels,
                                   links=tuple(links)))
        super().__init__(int(horizon), pops)
        self._base = [self._base_transitions(k) for k in range(2)]   # read-only: handed out as they are
        self._rewards = [self._reward_table(k) for k in range(2)]
        self._terminal = [self._terminal_table(k) for k in range(2)]
        self.affine_coupling = self._declared_coupling()

    def infected(self, mus) -> np.ndarray:
        """``I_j``: the infectious share of each type (H is isolated in hospital)."""
        return np.array([mus[j][..., self.infectious[j]].sum(axis=-1) for j in range(2)])

    def infection_probability(self, k, mus) -> np.ndarray:
        """``lambda_k(a)`` for each action of type k."""
        pressure = self.beta * float(self.contact[k] @ (self.shares * self.infected(mus)))
        return pressure * self.factor[:len(self.action_cost[k])]

    def _base_transitions(self, k):
        """Successor lists and the probabilities with no infection (a susceptible stays susceptible)."""
        S, A = self.populations[k].n_states, self.populations[k].n_actions
        m, end = self.m, self.m * self.recovery
        succ = np.repeat(np.arange(S)[:, None, None], A, axis=1).repeat(WIDTH, axis=2)
        prob = np.zeros((S, A, WIDTH))
        prob[:, :, 0] = 1.0                     # stay, unless below
        succ[0, :, 1] = 1                       # S -> I1 (probability from the infected mass)
        for i in range(1, m + 1):
            if i < m:
                succ[i, :, 1] = i + 1
                prob[i, :, :2] = (1.0 - end, end)
            elif k == 0:
                succ[i, :, 1] = S - 1
                prob[i, :, :2] = (1.0 - end, end)
            else:
                succ[i, :, 1], succ[i, :, 2] = S - 2, S - 1
                prob[i, :, :] = (1.0 - end, end * self.hospital, end * (1.0 - self.hospital))
        if k == 1:                              # H -> R
            succ[S - 2, :, 1] = S - 1
            prob[S - 2, :, :2] = (1.0 - self.discharge, self.discharge)
        succ.setflags(write=False)
        return succ, prob

    def rewards(self, k, t, mf):
        return self._rewards[k]

    def _reward_table(self, k):
        S = self.populations[k].n_states
        state_cost = np.zeros(S)
        state_cost[self.infectious[k]] = self.sick_cost
        if k == 1:
            state_cost[S - 2] = self.hospital_cost
        table = -state_cost[:, None] - self.action_cost[k][None, :]
        table.setflags(write=False)
        return table

    def terminal(self, k, mf):
        return self._terminal[k]

    def _terminal_table(self, k):
        """Minus the expected cost still ahead of an illness under way at the horizon."""
        S, m = self.populations[k].n_states, self.m
        stage_days = 1.0 / (m * self.recovery)
        g = np.zeros(S)
        if k == 1:
            g[S - 2] = -self.hospital_cost / self.discharge
        for i in range(1, m + 1):
            g[i] = -self.sick_cost * (m - i + 1) * stage_days + (self.hospital * g[S - 2] if k == 1 else 0.0)
        g.setflags(write=False)
        return g

    def transitions(self, k, t, mf):
        succ, prob = self._base[k]
        prob = prob.copy()
        lam = self.infection_probability(k, mf.mu)
        prob[0, :, 0], prob[0, :, 1] = 1.0 - lam, lam
        return succ, prob

    def _declared_coupling(self):
        """Features: the infectious share of each type; transitions of S affine in them."""
        F, H = [], []
        for k, pop in enumerate(self.populations):
            f = np.zeros((2, pop.n_states))
            f[k, self.infectious[k]] = 1.0
            F.append(f)
            h = np.zeros((pop.n_states * pop.n_actions * WIDTH, 2))
            for a in range(pop.n_actions):
                row = a * WIDTH                 # state S = 0
                coef = self.beta * self.factor[a] * self.contact[k] * self.shares
                h[row + 0] = -coef
                h[row + 1] = coef
            H.append(h)
        return AffineCoupling.build(self.populations, [WIDTH, WIDTH], F, transition=H)
