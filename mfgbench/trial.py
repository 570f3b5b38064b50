"""A trial: one learner on one game with one seed for a budget of iterations, scored at
checkpoints against the game's certified reference.

At each checkpoint the current policy profile is scored exactly: exploitability
(total and per population), the distance of its flow to the reference flow (total
variation averaged over time; W1 on ordered or grid states; per population), the
samples the learner has drawn so far, and the learner's own wall time (scoring time
excluded, and so is the time spent compiling Numba kernels or loading them from the disk
cache, which a fresh process pays once: ``compile_time`` records it apart). Checkpoints
are spaced geometrically (for log-log plots) and always include the last iteration.

The trial also scores a no-learning baseline the same way, once, and records it beside the
reference (``TrialResult.reference["baseline_*"]``): the uniform policy on a finite or
stationary game; on a continuous game played by a neural learner, the zero control
(alpha = 0: agents move by the game's drift and noise only) evaluated on the PDE grid like the
actor's feedback. A learner that scores worse than its baseline has learned nothing useful.
Per population (type) the reference records its own exploitability (``per_population``) and the
baseline its exploitability, TV and W1 (``baseline_*_per_population``), as the checkpoints do.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numba.core.event
import numpy as np

from mfgbench.core import evaluate, uniform_policy
from mfgbench.learners import config_dict, make_learner
from mfgbench.metrics import distribution_error


def geometric_checkpoints(iterations: int, count: int = 20) -> list[int]:
    """About ``count`` iteration numbers in 1..iterations, evenly spaced in log scale, with the last."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    pts = np.unique(np.round(np.geomspace(1, iterations, num=max(2, count))).astype(int))
    return sorted(set(pts.tolist()) | {iterations})


@dataclass
class TrialResult:
    """What a trial produced: the scored checkpoints, the final policy and flow, and what it ran."""

    game_id: str
    game_params: dict
    learner: str
    config: dict
    seed: int
    history: list = field(default_factory=list)
    policy: tuple = ()
    flow: tuple = ()
    reference: dict = field(default_factory=dict)
    reference_flow: tuple = ()

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


class KernelClock(numba.core.event.Listener):
    """Seconds each thread has spent holding (or waiting for) Numba's compiler lock, which it
    takes to compile a kernel or to load one from the disk cache; nested acquisitions count once."""

    def __init__(self):
        self._threads = {}  # thread id -> [seconds, depth, start]

    def on_start(self, event):
        state = self._threads.setdefault(threading.get_ident(), [0.0, 0, 0.0])
        if state[1] == 0:
            state[2] = time.perf_counter()
        state[1] += 1

    def on_end(self, event):
        state = self._threads[threading.get_ident()]
        state[1] -= 1
        if state[1] == 0:
            state[0] += time.perf_counter() - state[2]

    def seconds(self) -> float:
        """This thread's total so far."""
        return self._threads.get(threading.get_ident(), (0.0,))[0]


KERNEL_CLOCK = KernelClock()
numba.core.event.register("numba:compiler_lock", KERNEL_CLOCK)


def timed_step(agent) -> tuple[dict, float, float]:
    """One learner step: what it returns, its wall time less kernel compilation, and that compilation."""
    compiled = KERNEL_CLOCK.seconds()
    start = time.perf_counter()
    info = agent.step()
    elapsed = time.perf_counter() - start
    compiling = KERNEL_CLOCK.seconds() - compiled
    return info, elapsed - compiling, compiling


def _reference_for(game, reference):
    """The reference to score against: the given one, or a freshly computed (cached) one."""
    if reference is False:
        return None
    if reference is not None:
        return reference
    try:
        from mfgbench.reference import reference as compute_reference
    except ImportError:  # the reference solvers are an optional part of a partial install
        return None
    return compute_reference(game)


def uniform_baseline(game, reference_flow=None, with_w1: bool = True) -> dict:
    """The uniform policy's exact exploitability (total and per population) and, given the
    reference flow, the TV and W1 distances of its flow to it: ``baseline_*`` entries."""
    ev = evaluate(game, uniform_policy(game))
    out = {"baseline": "uniform policy", "baseline_exploitability": float(ev.exploitability),
           "baseline_per_population": ev.per_population.tolist()}
    if reference_flow is not None:
        err = distribution_error(game, ev.flow, reference_flow, with_w1=with_w1)
        out.update({"baseline_tv": err.tv, "baseline_w1": err.w1,
                    "baseline_tv_per_population": list(err.tv_per_population),
                    "baseline_w1_per_population": list(err.w1_per_population)})
    return out


def zero_control_baseline(game, ref) -> dict:
    """The zero control alpha = 0 on the PDE grid of ``ref`` (a PDE ``SolveResult``), scored as
    ``mfgbench.learners.neural.scoring`` scores an actor's feedback: exploitability by PDE policy
    evaluation, TV (half the L1) and W1 of the density it induces to the equilibrium density."""
    from mfgbench.learners.neural.scoring import distribution_errors
    from reference_solvers.pde.policy import evaluate_control

    problem = ref.problem
    zero = tuple(np.zeros((problem.nt, problem.grid.dim, problem.n)) for _ in range(game.n_populations))
    ev = evaluate_control(game, zero, None, None, problem=problem)
    err = distribution_errors([np.asarray(m) for m in ev.m], np.asarray(problem.times), ref)
    return {"baseline": "zero control", "baseline_exploitability": float(ev.exploitability),
            "baseline_per_population": ev.exploitability_per_population.tolist(),
            "baseline_tv": err["l1"] / 2, "baseline_w1": err["w1"],
            "baseline_tv_per_population": [v / 2 for v in err["l1_per_population"]],
            "baseline_w1_per_population": list(err["w1_per_population"])}


def run_trial(game, learner: str, iterations: int = 100, seed: int = 0, config=None, game_params=None,
              checkpoints=None, reference=None, with_w1: bool = True, **config_overrides) -> TrialResult:
    """Run ``learner`` on ``game`` (an id or a Game) for ``iterations`` steps and score it.

    ``reference`` is a reference result (anything with ``flow``), None to compute the
    certified reference with ``mfgbench.reference``, or False to skip distribution errors.
    """
    if isinstance(game, str):
        from mfgbench.games import make
        game = make(game, **(game_params or {}))
    elif game_params:
        raise ValueError("game_params are only used with a game id, not with a built game")
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    rng = np.random.default_rng(seed)
    agent = make_learner(learner, game, config, rng, **config_overrides)
    if getattr(game, "kind", None) == "continuous":
        return _run_continuous(game, agent, learner, iterations, seed, checkpoints, reference)
    ref = _reference_for(game, reference)
    marks = sorted(set(checkpoints)) if checkpoints is not None else geometric_checkpoints(iterations)
    result = TrialResult(game.id, dict(getattr(game, "params", {})), learner, config_dict(agent.config), int(seed))
    if ref is not None:
        result.reference = {"exploitability": float(getattr(ref, "exploitability", np.nan)),
                            "certified": bool(getattr(ref, "certified", False)),
                            "method": str(getattr(ref, "method", ""))}
        if getattr(ref, "per_population", None) is not None:
            result.reference["per_population"] = [float(x) for x in ref.per_population]
        result.reference_flow = tuple(np.asarray(f) for f in ref.flow)
    result.reference.update(uniform_baseline(game, result.reference_flow or None, with_w1=with_w1))
    learner_seconds = compile_seconds = 0.0
    next_mark = 0
    ev = None
    for it in range(1, iterations + 1):
        info, seconds, compiling = timed_step(agent)
        learner_seconds += seconds
        compile_seconds += compiling
        if next_mark < len(marks) and it >= marks[next_mark]:
            while next_mark < len(marks) and marks[next_mark] <= it:
                next_mark += 1
            ev = evaluate(game, agent.policy)
            record = {"iteration": it, "samples": int(info.get("samples", 0)), "wall_time": learner_seconds,
                      "compile_time": compile_seconds,
                      "exploitability": ev.exploitability, "per_population": ev.per_population.tolist()}
            if ref is not None:
                err = distribution_error(game, ev.flow, ref.flow, with_w1=with_w1)
                record.update({"tv": err.tv, "tv_per_population": list(err.tv_per_population),
                               "w1": err.w1, "w1_per_population": list(err.w1_per_population)})
            record.update({k: v for k, v in info.items() if k not in record and np.isscalar(v)})
            result.history.append(record)
    if ev is None or result.history[-1]["iteration"] != iterations:
        ev = evaluate(game, agent.policy)
    result.policy = tuple(agent.policy)
    result.flow = tuple(ev.flow)
    return result


def _run_continuous(game, agent, learner, iterations, seed, checkpoints, reference) -> TrialResult:
    """A trial on a continuous game: checkpoints scored against the PDE equilibrium
    (``mfgbench.learners.neural.scoring.score_continuous``); ``policy`` holds the feedback on the
    PDE grid (nt, d, N) per population, ``flow`` the particle densities, ``reference_flow`` the PDE's."""
    from mfgbench.learners.neural.scoring import pde_reference, score_continuous

    ref = pde_reference(game) if reference in (None, False) else reference
    marks = sorted(set(checkpoints)) if checkpoints is not None else geometric_checkpoints(iterations)
    result = TrialResult(game.id, dict(getattr(game, "params", {})), learner, config_dict(agent.config), int(seed))
    result.reference = {"exploitability": float("nan"), "certified": bool(ref.converged), "method": f"pde-{ref.method}"}
    result.reference_flow = tuple(np.asarray(m) for m in ref.m)
    result.reference.update(zero_control_baseline(game, ref))
    learner_seconds = compile_seconds = 0.0
    score = None
    for it in range(1, iterations + 1):
        info, seconds, compiling = timed_step(agent)
        learner_seconds += seconds
        compile_seconds += compiling
        if it in marks or it == iterations:
            score = score_continuous(game, agent, ref)
            record = {"iteration": it, "samples": int(info.get("samples", 0)), "wall_time": learner_seconds,
                      "compile_time": compile_seconds}
            record.update({k: score[k] for k in ("exploitability", "per_population", "w1", "w1_per_population",
                                                 "l1", "l1_per_population")})
            record["tv"], record["tv_per_population"] = score["l1"] / 2, [v / 2 for v in score["l1_per_population"]]
            record.update({k: v for k, v in info.items() if k not in record and np.isscalar(v)})
            result.history.append(record)
    result.reference["exploitability"] = float(score["reference_exploitability"])
    result.policy = tuple(agent.feedback(ref.problem.times[:-1], ref.problem.x))
    result.flow = tuple(score["flow"])
    return result
