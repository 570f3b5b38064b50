"""The tuning protocol behind ``python -m mfgbench tune``.

For one learner and a game or a family of games, search the learner's config space with
Optuna (TPE sampler seeded by ``sampler_seed``; median pruning) under a fixed budget:
every trial runs the learner for ``iterations`` iterations with each of ``seeds`` on each
game and scores its final policy exactly (``mfgbench.trial.run_trial``, no reference
needed). A continuous game is tuned on the finite game the suites have tabular learners play,
its discretization on ``mfgbench.bench.suite.DEFAULT_BRIDGE`` (recorded in the entry as
``discretize``). The objective, to minimise:

- one game: the mean over seeds of the final exploitability;
- several games: the mean over games of (that mean / the uniform policy's exploitability
  on the game), so that games whose rewards differ by orders of magnitude weigh alike.

After each game (or each seed, with one game) the running objective is reported to
Optuna's median pruner, which stops a trial that is worse than the median of the earlier
trials at the same point. The result is one ``[[tuned]]`` entry of a tuned file
(``mfgbench.learners.tuned``): the best config with the search space, the budget, the
seeds, the trial count, the best value, the package versions and the command line.

A search space maps config fields to ``{"low": a, "high": b, "log": bool}`` (float, or
int when both bounds are integers) or ``{"choices": [...]}``; ``SPACES`` holds each
tabular learner's default one. Optuna is an optional dependency (``pip install
"mfgbench[tune]"``); everything else imports without it.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path

import numpy as np

SPACES = {
    "mirror-descent": {"learning_rate": {"low": 0.01, "high": 0.3, "log": True}},
    "fictitious-play": {"best_response": {"choices": ["exact", "softmax"]},
                        "temperature": {"low": 0.01, "high": 1.0, "log": True}},
    "qmi": {"temperature": {"low": 0.1, "high": 3.0, "log": True},
            "temperature_decay": {"low": 0.0, "high": 1.0},
            "alpha": {"low": 0.01, "high": 0.5, "log": True},
            "exploration": {"low": 0.5, "high": 10.0, "log": True},
            "average_weighting": {"choices": [0.0, 1.0]},
            "policy_output": {"choices": ["average", "greedy"]}},
    "nash-q": {"temperature": {"low": 0.1, "high": 3.0, "log": True},
               "temperature_decay": {"low": 0.5, "high": 1.5},
               "alpha_floor": {"low": 0.2, "high": 1.0},
               "epsilon": {"low": 0.01, "high": 0.3, "log": True},
               "policy_output": {"choices": ["average", "greedy"]}},
}
"""Default search spaces of the tabular learners (fields of their configs)."""


class TuneError(ValueError):
    """Bad tuning input: unknown learner or game, a space naming no config field, ..."""


def check_space(learner: str, space: dict) -> dict:
    """Validate a search space against the learner's config fields; return it normalised."""
    import dataclasses

    from mfgbench.learners import learner_class
    try:
        cls = learner_class(learner)
    except KeyError as exc:
        raise TuneError(str(exc.args[0])) from None
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    if not isinstance(space, dict) or not space:
        raise TuneError(f"tune {learner}: the search space must be a non-empty table of config fields")
    out = {}
    for name, spec in space.items():
        if name not in fields:
            raise TuneError(f"tune {learner}: search space names {name!r}, not a config field; fields are "
                            f"{', '.join(sorted(fields))}")
        if isinstance(spec, list):
            spec = {"choices": spec}
        if not isinstance(spec, dict) or not ("choices" in spec or {"low", "high"} <= set(spec)):
            raise TuneError(f"tune {learner}: search space entry {name!r} needs choices = [...] or low and high")
        if "choices" in spec:
            if not spec["choices"]:
                raise TuneError(f"tune {learner}: search space entry {name!r} has no choices")
            out[name] = {"choices": list(spec["choices"])}
        else:
            low, high = spec["low"], spec["high"]
            if not (isinstance(low, (int, float)) and isinstance(high, (int, float)) and low < high):
                raise TuneError(f"tune {learner}: search space entry {name!r} needs numbers low < high, "
                                f"got {low!r}, {high!r}")
            if spec.get("log") and low <= 0:
                raise TuneError(f"tune {learner}: search space entry {name!r} is logarithmic but low = {low}")
            out[name] = {"low": low, "high": high, "log": bool(spec.get("log", False))}
    return out


def _suggest(trial, name, spec):
    if "choices" in spec:
        return trial.suggest_categorical(name, spec["choices"])
    if isinstance(spec["low"], int) and isinstance(spec["high"], int):
        return trial.suggest_int(name, spec["low"], spec["high"], log=spec["log"])
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=spec["log"])


def default_params(learner: str, space: dict) -> dict:
    """The learner's default config on the parameters of ``space`` that hold its default value:
    the search's first trial, so that a search never ends on a config worse than the default
    (on its own objective) for want of having tried it."""
    from mfgbench.learners import make_config
    default, params = make_config(learner), {}
    for name, spec in space.items():
        value = getattr(default, name, None)
        if "choices" in spec:
            if value in spec["choices"]:
                params[name] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and spec["low"] <= value <= spec["high"]:
            params[name] = value
    return params


def tuning_game(game_id: str):
    """The game a tabular learner is tuned on: the registered game, or a continuous game's
    discretization on ``DEFAULT_BRIDGE`` (the grid of the suites' tabular trials)."""
    import mfgbench as mb
    from mfgbench.games import spec
    game = mb.make(game_id)
    if spec(game_id).kind == "continuous":
        from mfgbench.bench.suite import DEFAULT_BRIDGE
        from reference_solvers.pde.discretize import discretize
        game = discretize(game, **DEFAULT_BRIDGE)
    return game


def evaluate_config(learner: str, games: list, config: dict, iterations: int, seeds: list, report=None) -> float:
    """The tuning objective of ``config`` (module docstring); ``report(value, step)`` is called with
    the running objective after each game (each seed when there is one game)."""
    import mfgbench as mb
    from mfgbench.learners import make_config
    from mfgbench.trial import run_trial

    cfg = make_config(learner, **config)
    per_game = []
    step = 0
    for game_id in games:
        game = tuning_game(game_id)
        finals = []
        for seed in seeds:
            res = run_trial(game, learner, iterations=iterations, seed=seed, config=cfg, reference=False,
                            checkpoints=[iterations])
            value = float(res.final["exploitability"])
            finals.append(value if math.isfinite(value) else math.inf)
            if len(games) == 1 and report is not None:
                report(float(np.mean(finals)), step)
                step += 1
        mean = float(np.mean(finals))
        if len(games) > 1:
            uniform = mb.exploitability(game, mb.uniform_policy(game))
            per_game.append(mean / uniform if uniform > 0 else mean)
            if report is not None:
                report(float(np.mean(per_game)), step)
                step += 1
        else:
            per_game.append(mean)
    return float(np.mean(per_game))


def versions() -> dict:
    import numba
    import scipy

    import mfgbench
    out = {"mfgbench": mfgbench.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
           "numba": numba.__version__}
    try:
        import optuna
        out["optuna"] = optuna.__version__
    except ImportError:
        pass
    return out


def tune(learner: str, games: list, family: str | None = None, space: dict | None = None, trials: int = 30,
         iterations: int = 100, seeds=(0, 1, 2), sampler_seed: int = 0, timeout: float | None = None,
         command: str = "", progress=None) -> dict:
    """Run the search; return the ``[[tuned]]`` entry (a dict) of the best config."""
    try:
        import optuna
    except ImportError:
        raise TuneError("tuning needs Optuna: pip install 'mfgbench[tune]'") from None
    from mfgbench.bench.suite import DEFAULT_BRIDGE, plays
    from mfgbench.games import spec

    if not games:
        raise TuneError(f"tune {learner}: no game to tune on")
    for g in games:
        if not plays(learner, g, bridged=True):
            raise TuneError(f"tune {learner}: the learner does not play {g}")
    space = check_space(learner, space if space is not None else SPACES.get(learner, {}))
    if iterations < 1 or trials < 1 or not seeds:
        raise TuneError("tune: iterations and trials must be >= 1 and seeds non-empty")
    seeds = [int(s) for s in seeds]

    def objective(trial):
        config = {name: _suggest(trial, name, spec) for name, spec in space.items()}

        def report(value, step):
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        value = evaluate_config(learner, games, config, iterations, seeds, report)
        if progress is not None:
            progress(trial.number, config, value)
        return value if math.isfinite(value) else float("inf")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=sampler_seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5))
    study.enqueue_trial(default_params(learner, space))
    study.optimize(objective, n_trials=trials, timeout=timeout)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise TuneError(f"tune {learner}: no trial completed")
    best = study.best_trial
    objective_name = ("mean final exploitability over seeds" if len(games) == 1 else
                      "mean over games of (mean final exploitability over seeds / uniform policy's exploitability)")
    entry = {"learner": learner, "games": list(games), "config": dict(best.params),
             "objective": objective_name, "best_value": float(best.value), "iterations": int(iterations),
             "seeds": seeds, "trials": len(study.trials), "completed_trials": len(completed),
             "pruned_trials": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
             "sampler": f"optuna TPESampler(seed={sampler_seed}), MedianPruner(n_startup_trials=5)",
             "space": space, "versions": versions(), "command": command,
             "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if family:
        entry["family"] = family
    bridged = [g for g in games if spec(g).kind == "continuous"]
    if bridged:
        entry["discretize"] = {g: dict(DEFAULT_BRIDGE) for g in bridged}
    return entry


# -- writing tuned files -----------------------------------------------------------------------------
def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k) -> str:
    k = str(k)
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def tuned_toml(entries: list, header: str = "") -> str:
    """A tuned file holding ``entries`` (``[[tuned]]`` tables; nested tables inline)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for e in entries:
        lines += ["", "[[tuned]]"]
        for key, value in e.items():
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


HEADER = ("Tuned learner configs written by `python -m mfgbench tune` (mfgbench.bench.tune).\n"
          "Each [[tuned]] entry: the best config found for a learner on a game or a family, with the\n"
          "search space, budget, seeds, versions and the command that produced it.")


def write_tuned(path, entry: dict, merge: bool = True) -> list:
    """Write ``entry`` to the tuned file ``path`` (atomically). With ``merge`` the file's other
    entries are kept, and the one it supersedes is replaced: for a family entry, the learner's
    entry of that family (whatever games the family held then); else the learner's entry for the
    same games."""
    from mfgbench.bench.store import write_text_atomic
    from mfgbench.learners.tuned import load_tuned

    def same(e):
        if e["learner"] != entry["learner"] or e.get("family") != entry.get("family"):
            return False
        return entry.get("family") is not None or list(e["games"]) == list(entry["games"])

    path = Path(path)
    entries = load_tuned(path) if merge and path.exists() else []
    entries = [e for e in entries if not same(e)]
    entries.append(entry)
    entries.sort(key=lambda e: (e["learner"], e.get("family", ""), ",".join(e["games"])))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, tuned_toml(entries, HEADER))
    return entries
