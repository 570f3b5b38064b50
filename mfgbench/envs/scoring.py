"""Exact scoring of a policy that lives outside mfgbench.

An external policy of population k is a map ``(t, s) -> pi_t(.|s)``, given as a function
``policy(t, state, population)`` that returns the action probabilities (length ``A_k``) or a
single action, or as a trained model with ``predict`` (a Stable-Baselines3 model: duck-typed, SB3
is never imported). ``tabulate_policy`` reads it on every time t < T and state s into the array
``pi_k[t, s, a]`` (``pi_k[s, a]`` in a stationary game, where ``t`` is passed as None), and
``score`` evaluates the tabulated profile exactly (``mfgbench.core.evaluate``: flow, values, best
responses, exploitability total and per population) and measures its flow's distance to the
certified reference (``mfgbench.metrics.distribution_error``).

A model is read through the observation it was trained on (``model.observation_space``, one of the
``BestResponseEnv`` encodings, ``mfgbench.envs.observations``): a policy that exposes its action
distribution (``model.policy.get_distribution``: PPO, A2C) is tabulated as that distribution,
others (DQN) as the greedy action ``model.predict(obs, deterministic=True)``; ``deterministic=True``
takes the greedy action for every model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfgbench.core import as_profile, evaluate
from mfgbench.core.evaluate import Evaluation
from mfgbench.core.policy import ROW_SUM_TOL
from mfgbench.envs.observations import ObservationEncoding
from mfgbench.errors import PolicyError
from mfgbench.metrics import DistributionError, distribution_error

RENORMALISE_TOL = 1e-6
"""Action probabilities whose sum is this close to 1 (float32 network outputs) are renormalised."""


@dataclass(frozen=True)
class Score:
    """The exact evaluation of an external policy.

    ``policy``: the tabulated profile; ``exploitability`` (total) and ``per_population``;
    ``flow``: the flow it induces (``mu_k[t, s]``; the stationary distribution ``mu_k[s]`` in a
    stationary game); ``distance``: total variation and W1 of that flow to the reference flow
    (None when scored without a reference); ``reference_exploitability``: the reference's own
    certificate; ``evaluation``: everything ``mb.evaluate`` gives (values, best responses).
    """

    policy: tuple
    exploitability: float
    per_population: np.ndarray
    flow: tuple
    distance: DistributionError | None
    reference_exploitability: float | None
    evaluation: Evaluation

    def as_dict(self) -> dict:
        """The scalar scores, as the results files write them."""
        out = {"exploitability": self.exploitability, "per_population": self.per_population.tolist(),
               "reference_exploitability": self.reference_exploitability}
        if self.distance is not None:
            out.update(self.distance.as_dict())
        return out


def score(game, policy, reference=None, *, deterministic: bool = False) -> Score:
    """Tabulate ``policy`` on every (t, s) of ``game`` and evaluate it exactly.

    ``policy``: a function ``policy(t, state, population)`` returning action probabilities or an
    action; a trained model with ``predict`` (single-population games); a sequence with one entry
    per population (functions, models or arrays ``pi_k[t, s, a]``); or a tabular profile.
    ``reference``: a reference (anything with ``flow`` and ``exploitability``), None for the
    game's certified reference (``mb.reference``, cached), or False to skip the distances.
    """
    kind = getattr(game, "kind", "finite")
    if kind not in ("finite", "stationary"):
        raise ValueError(f"game {game.id}: mb.score evaluates finite and stationary games exactly, not kind "
                         f"{kind!r} (continuous games are scored by mfgbench.learners.neural.score_continuous)")
    profile = tabulate_policy(game, policy, deterministic=deterministic)
    ev = evaluate(game, profile)
    if reference is None:
        from mfgbench.reference import reference as certified_reference
        reference = certified_reference(game)
    distance, ref_exploitability = None, None
    if reference is not False:
        distance = distribution_error(game, ev.flow, reference.flow)
        ref_exploitability = float(reference.exploitability)
    return Score(profile, ev.exploitability, np.asarray(ev.per_population, dtype=np.float64), tuple(ev.flow),
                 distance, ref_exploitability, ev)


def tabulate_policy(game, policy, *, deterministic: bool = False) -> tuple:
    """The profile ``(pi_0, ..., pi_{K-1})`` of an external policy (see ``score`` for the forms accepted)."""
    K = game.n_populations
    if _is_model(policy) or callable(policy):
        if _is_model(policy) and K > 1:
            raise PolicyError(f"game {game.id}: one model cannot play {K} populations; pass a sequence of "
                              f"{K} models (one per population)")
        entries = [policy] * K
    elif isinstance(policy, np.ndarray):
        return as_profile(game, policy)
    else:
        entries = list(policy)
        if not any(_is_model(e) or callable(e) for e in entries):
            return as_profile(game, entries)
        if len(entries) != K:
            raise PolicyError(f"game {game.id}: the policy has {len(entries)} per-population entries, the game "
                              f"has {K} populations")
    return as_profile(game, [population_policy(game, k, entry, deterministic=deterministic)
                             for k, entry in enumerate(entries)])


def population_policy(game, k: int, policy, *, deterministic: bool = False) -> np.ndarray:
    """Population k's external policy (a function of (t, state, population), a model, or an array)
    as an array ``pi_k[t, s, a]`` (``pi_k[s, a]`` in a stationary game); arrays are returned as given
    (the profile is validated as a whole)."""
    if _is_model(policy):
        return _tabulate_model(game, k, policy, deterministic)
    if callable(policy):
        return _tabulate_function(game, k, policy)
    return policy


def _is_model(obj) -> bool:
    return hasattr(obj, "predict") and hasattr(obj, "observation_space")


def _where(game, k) -> str:
    return f"game {game.id}, population {k} ({game.populations[k].name})"


def _times(game):
    """The times at which a policy acts: 0..T-1, or [None] in a stationary game."""
    return [None] if getattr(game, "kind", "finite") == "stationary" else list(range(game.horizon))


def _tabulate_function(game, k, fn) -> np.ndarray:
    A = game.populations[k].n_actions
    S = game.populations[k].n_states
    times = _times(game)
    pi = np.empty((len(times), S, A))
    for i, t in enumerate(times):
        for s in range(S):
            pi[i, s] = action_distribution(fn(t, s, k), A, f"{_where(game, k)}, time {t}, state {s}")
    return pi[0] if times == [None] else pi


def action_distribution(out, n_actions: int, where: str) -> np.ndarray:
    """What a policy returned at one (t, s), as a probability vector: an integer action becomes its
    one-hot vector; probabilities are checked, and renormalised when their sum is off by more than
    the profile tolerance but less than ``RENORMALISE_TOL`` (rows within tolerance are kept as given)."""
    arr = np.asarray(out)
    if arr.ndim == 0 or arr.shape == (1,) and n_actions != 1:
        if not np.issubdtype(arr.dtype, np.integer):
            raise PolicyError(f"{where}: the policy returned {out!r}; return an action (an integer) or "
                              f"{n_actions} action probabilities")
        a = int(arr.reshape(()))
        if not 0 <= a < n_actions:
            raise PolicyError(f"{where}: the policy returned action {a}, outside 0..{n_actions - 1}")
        row = np.zeros(n_actions)
        row[a] = 1.0
        return row
    row = np.asarray(arr, dtype=np.float64).ravel()
    if arr.shape != (n_actions,):
        raise PolicyError(f"{where}: the policy returned an array of shape {arr.shape}; return an action (an "
                          f"integer) or {n_actions} action probabilities")
    if not np.all(np.isfinite(row)) or np.any(row < 0):
        raise PolicyError(f"{where}: action probabilities {row.tolist()} are negative or not finite")
    total = float(row.sum())
    if abs(total - 1.0) > RENORMALISE_TOL:
        raise PolicyError(f"{where}: action probabilities sum to {total!r}, not 1")
    return row if abs(total - 1.0) <= ROW_SUM_TOL else row / total


def _tabulate_model(game, k, model, deterministic) -> np.ndarray:
    where = _where(game, k)
    pop = game.populations[k]
    stationary = getattr(game, "kind", "finite") == "stationary"
    n_times = None if stationary else game.horizon + 1
    encoding = ObservationEncoding.of_space(model.observation_space, n_times, pop.n_states, where)
    n_actions = getattr(getattr(model, "action_space", None), "n", None)
    if n_actions is None or int(n_actions) != pop.n_actions:
        raise PolicyError(f"{where}: the model acts in {getattr(model, 'action_space', None)}, the population "
                          f"has Discrete({pop.n_actions}) actions")
    T = 1 if stationary else game.horizon
    t, s = np.divmod(np.arange(T * pop.n_states), pop.n_states)
    obs = encoding.encode_batch(t, s)
    policy_net = getattr(model, "policy", None)
    if not deterministic and hasattr(policy_net, "get_distribution") and hasattr(policy_net, "obs_to_tensor"):
        import torch   # the model is a torch model: torch is installed
        obs_tensor = policy_net.obs_to_tensor(obs)[0]
        with torch.no_grad():
            probs = policy_net.get_distribution(obs_tensor).distribution.probs
        rows = probs.cpu().numpy().astype(np.float64)
        if rows.shape != (len(s), pop.n_actions):
            raise PolicyError(f"{where}: the model's action distribution has shape {rows.shape}, expected "
                              f"{(len(s), pop.n_actions)}")
        table = np.stack([action_distribution(r, pop.n_actions, f"{where}, time {None if stationary else ti}, "
                                                                  f"state {si}")
                          for r, ti, si in zip(rows, t, s)])
    else:
        actions, _ = model.predict(obs, deterministic=True)
        actions = np.asarray(actions).reshape(-1)
        if actions.shape != (len(s),) or not np.issubdtype(actions.dtype, np.integer):
            raise PolicyError(f"{where}: model.predict returned {actions.dtype} actions of shape {actions.shape}, "
                              f"expected {len(s)} integer actions")
        bad = (actions < 0) | (actions >= pop.n_actions)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise PolicyError(f"{where}, time {None if stationary else t[i]}, state {s[i]}: the model chose action "
                              f"{actions[i]}, outside 0..{pop.n_actions - 1}")
        table = np.zeros((len(s), pop.n_actions))
        table[np.arange(len(s)), actions] = 1.0
    return table.reshape((pop.n_states, pop.n_actions) if stationary else (T, pop.n_states, pop.n_actions))
