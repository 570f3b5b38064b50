"""Suites of trials. A trial is (game, game parameters, learner, config, seed, budget).

Built-in suites:

- ``quick``: a few small games, every tabular learner, 2 seeds, tiny budgets (about a
  minute on 2 cores; the tests run it end to end);
- ``standard`` (the default of ``run``): every tabular learner on a representative set
  of finite, stationary, multi-population and PDE-bridged games, 3 seeds, twice: with the
  tuned configs the package ships (tag "tuned") and with its source paper's preset (tag
  "paper"); with torch installed also the neural learners' trials of ``NEURAL_EPISODES``
  (default configs, about 3 CPU-min in all);
- ``paper``: the budgets of the source papers (e.g. QMI on ring-road-v0: 200 outer
  iterations x 1e5 samples x 20 seeds);
- ``neural``: longer runs of the neural learners, default and paper configs (``NEURAL_LONG``).

A suite file (TOML or JSON) either lists trials, or gives a grid::

    name = "mine"
    games = ["crowd-1d-v0", "lq-v0"]
    learners = ["fictitious-play", "mirror-descent"]
    seeds = [0, 1, 2]
    iterations = 100
    [[trials]]                       # optional explicit trials, added to the grid
    game = "garnet-v0"
    game_params = { S = 50 }
    learner = "mirror-descent"
    config = { learning_rate = 0.5 }
    seed = 0
    iterations = 50

A learner is paired only with games of a kind it plays (finite, stationary).

Every field is checked when a suite is read (types, ranges, names that are single path
components), and every value that could only fail once a trial runs - game parameters,
learner configs - is checked by ``check_buildable`` before the first trial starts.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class TrialSpec:
    """One trial: what to run and for how long."""

    game: str
    learner: str
    seed: int = 0
    iterations: int = 100
    game_params: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    tag: str = ""
    """Distinguishes trials of the same game, learner and seed that differ in parameters."""
    discretize: dict = field(default_factory=dict)
    """For a continuous game: ``nx``, ``nt``, ``n_actions`` (and optionally ``max_speed``) of the
    Markov-chain finite game the learner plays; its flow is also compared with the PDE density."""

    def __post_init__(self):
        where = f"trial ({self.game!r}, {self.learner!r}, seed {self.seed!r})"
        for name in ("game", "learner"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise SuiteError(f"{where}: {name} must be a name (a string), got {getattr(self, name)!r}")
        object.__setattr__(self, "seed", _integer(self.seed, f"{where}: seed", 0))
        object.__setattr__(self, "iterations", _integer(self.iterations, f"{where}: iterations", 1))
        for name in ("game_params", "config", "discretize"):
            if not isinstance(getattr(self, name), dict):
                raise SuiteError(f"{where}: {name} must be a table (key = value pairs), "
                                 f"got {getattr(self, name)!r}")
        if not isinstance(self.tag, str) or (self.tag and not SAFE_NAME.match(self.tag)):
            raise SuiteError(f"{where}: tag must be letters, digits, '.', '_' or '-' (it names a folder), "
                             f"got {self.tag!r}")

    @property
    def name(self) -> str:
        from mfgbench.bench.store import trial_dir_name
        return trial_dir_name(self.game, self.learner, self.seed, self.tag)

    def as_dict(self) -> dict:
        out = {"game": self.game, "learner": self.learner, "seed": self.seed, "iterations": self.iterations,
               "game_params": dict(self.game_params), "config": dict(self.config), "tag": self.tag}
        if self.discretize:
            out["discretize"] = dict(self.discretize)
        return out


@dataclass
class Suite:
    name: str
    trials: list

    def select(self, games=None, learners=None, seeds=None, iterations=None) -> "Suite":
        """The suite restricted to some games / learners / seeds, optionally with a new budget."""
        trials = [t for t in self.trials
                  if (games is None or t.game in games) and (learners is None or t.learner in learners)]
        if seeds is not None:
            base = {(t.game, t.learner, t.tag): t for t in trials}
            trials = [replace(t, seed=s) for t in base.values() for s in seeds]
        if iterations is not None:
            trials = [replace(t, iterations=iterations) for t in trials]
        return Suite(self.name, trials)


class SuiteError(ValueError):
    """A suite (file) names something that does not exist or has a bad field."""


SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
"""Suite names and trial tags name folders under ``--out``: one path component, no ``..``."""


def _integer(value, where: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum`` (an integral float is accepted), else a SuiteError."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SuiteError(f"{where} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise SuiteError(f"{where} must be >= {minimum}, got {value}")
    return int(value)


def _names(value, where: str) -> list:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        example = f' (e.g. ["{value}"])' if isinstance(value, str) else ""
        raise SuiteError(f"{where} must be a list of names{example}, got {value!r}")
    return value


def _tables(value, where: str) -> dict:
    """A table of tables (``game -> params``, ``learner -> config``)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise SuiteError(f"{where} must be a table of tables (e.g. [{where.rsplit(' ', 1)[-1]}.NAME]), got {value!r}")
    return value


def check_name(name, where: str) -> str:
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise SuiteError(f"{where}: name must be letters, digits, '.', '_' or '-' and start with a letter, digit "
                         f"or '_' (it names the results folder), got {name!r}")
    return name


def check_config(learner: str, config: dict, where: str):
    """The learner's config built from ``config``, each value checked against its field's type
    (a float must be a finite number, an int an integer, ...), then by the config itself."""
    from mfgbench.learners import learner_class, make_config
    cls = learner_class(learner)
    hints = typing.get_type_hints(cls.Config)
    values = dict(config)
    preset = values.pop("preset", None)
    if preset is not None and not isinstance(preset, str):
        raise SuiteError(f"{where}: learner {learner}: preset must be a name, got {preset!r}")
    for name, value in values.items():
        if name in hints and not _fits(value, hints[name]):
            raise SuiteError(f"{where}: learner {learner}: {name} must be {_describe_type(hints[name])}, "
                             f"got {value!r}")
    try:
        built = make_config(learner, preset=preset, **values)
    except (TypeError, ValueError) as exc:
        raise SuiteError(f"{where}: {exc}") from None
    for f in dataclasses.fields(built):
        value = getattr(built, f.name)
        if isinstance(value, float) and math.isnan(value):
            raise SuiteError(f"{where}: learner {learner}: {f.name} must be a number, got nan")
    return built


def _fits(value, hint) -> bool:
    """Whether ``value`` (from a suite file) fits the type annotation ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if (origin or hint) in (tuple, list):
        return isinstance(value, (tuple, list))
    return True  # other annotations: left to the config's own checks


def _describe_type(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe_type(h) for h in typing.get_args(hint))
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string",
            type(None): "none"}.get(hint, getattr(hint, "__name__", str(hint)))


def check_buildable(trials, where: str = "suite") -> dict:
    """Build every distinct game and learner config of ``trials`` once, and each learner on its
    game, so that values which only fail at run time (``size = -1``, ``learning_rate = "fast"``,
    a learner that does not play a game) are reported before any trial runs; evaluate the
    uniform policy on each finite game (which checks what its functions return, and compiles the
    evaluation kernels once in this process). Returns the built games, keyed by ``game_key``.
    Raises SuiteError naming the trial and the problem."""
    import numpy as np

    from mfgbench.bench.runner import build_game
    from mfgbench.core import evaluate, uniform_policy
    from mfgbench.learners import make_learner
    games, configs, pairs = {}, {}, set()
    for t in trials:
        at = f"{where}, trial {t.name}"
        key = game_key(t)
        if key not in games:
            try:
                games[key] = build_game(t)
                if getattr(games[key], "kind", "finite") in ("finite", "stationary"):
                    evaluate(games[key], uniform_policy(games[key]))  # checks the game's functions once
            except (KeyError, TypeError, ValueError, MemoryError) as exc:
                raise SuiteError(f"{at}: {_message(exc)}") from None
        ckey = (t.learner, _canonical(t.config))
        if ckey not in configs:
            configs[ckey] = check_config(t.learner, t.config, at)
        if (key, ckey) not in pairs:
            pairs.add((key, ckey))
            try:
                make_learner(t.learner, games[key], configs[ckey], np.random.default_rng(t.seed))
            except ImportError:  # an optional dependency: the trial records it as its failure
                pass
            except (KeyError, TypeError, ValueError) as exc:
                raise SuiteError(f"{at}: {_message(exc)}") from None
    return games


def game_key(spec) -> tuple:
    """What identifies the game a trial plays: id, parameters, discretization grid."""
    return spec.game, _canonical(spec.game_params), _canonical(spec.discretize)


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=repr)


def _message(exc) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _kind(game_id):
    from mfgbench.games import spec
    return spec(game_id).kind


def plays(learner: str, game_id: str, bridged: bool = False) -> bool:
    """Whether ``learner`` plays ``game_id`` (a continuous game counts as finite once discretized)."""
    from mfgbench.learners import learner_class
    kind = _kind(game_id)
    if kind == "continuous":
        kind = "finite" if bridged else "continuous"
    return kind in learner_class(learner).kinds


DEFAULT_BRIDGE = {"nx": 20, "nt": 80, "n_actions": 5, "max_speed": 1.0}
"""Grid on which a continuous game is discretized for tabular learners unless a suite says otherwise."""


def grid(games, learners, seeds, iterations, game_params=None, configs=None, bridges=None) -> list:
    """Every compatible (game, learner) pair for every seed (continuous games are discretized)."""
    game_params, configs, bridges = game_params or {}, configs or {}, bridges or {}
    trials = []
    for g in games:
        bridge = dict(bridges.get(g, DEFAULT_BRIDGE)) if _kind(g) == "continuous" else {}
        for lr in learners:
            if plays(lr, g):
                use = {}
            elif bridge and plays(lr, g, bridged=True):  # a tabular learner plays the discretized game
                use = bridge
            else:
                continue
            trials += [TrialSpec(g, lr, s, iterations, dict(game_params.get(g, {})),
                                 dict(configs.get(lr, {})), discretize=use) for s in seeds]
    return trials


TABULAR = ["fictitious-play", "mirror-descent", "qmi", "nash-q"]


def _available(learners):
    """The learners that are registered and usable here (a torch-less neural stub is registered but
    has ``available = False``)."""
    from mfgbench.learners import learner_class, list_learners
    have = set(list_learners())
    return [lr for lr in learners if lr in have and getattr(learner_class(lr), "available", True)]


def quick() -> Suite:
    exact = _available(["fictitious-play", "mirror-descent"])
    trials = grid(["crowd-1d-v0", "predator-prey-v0"], exact, [0, 1], 20)
    trials += grid([g for g in ["left-right-v0"] if _registered(g)], _available(TABULAR), [0, 1], 10)
    return Suite("quick", trials)


def tuned(trials, path=None) -> list:
    """The trials with the tuned configs of the tuned file ``path`` (default: the one the package
    ships, ``mfgbench/learners/tuned.toml``, written by ``python -m mfgbench tune``): the entry for
    the game first, then the one for the kind of game the learner plays; tagged "tuned"."""
    from mfgbench.learners.tuned import tuned_config
    out = []
    for t in trials:
        kind = "finite" if t.discretize else _kind(t.game)
        extra = tuned_config(t.learner, t.game, kind, path) or {}
        out.append(replace(t, config={**extra, **t.config}, tag="tuned"))
    return out


def retuned(suite: Suite, path) -> Suite:
    """``suite`` with the configs of the tuned file ``path`` for its trials tagged "tuned" and its
    untagged trials without a config of their own."""
    from mfgbench.learners.tuned import tuned_config
    trials = []
    for t in suite.trials:
        if t.tag == "tuned" or (not t.tag and not t.config):
            kind = "finite" if t.discretize else _kind(t.game)
            t = replace(t, config=tuned_config(t.learner, t.game, kind, path) or {}, tag="tuned")
        trials.append(t)
    return Suite(suite.name, trials)


def paper_presets(trials) -> list:
    """The trials of learners that have a "paper" preset, with it, tagged "paper"."""
    from mfgbench.learners import learner_class
    return [replace(t, config={"preset": "paper", **t.config}, tag="paper") for t in trials
            if "paper" in learner_class(t.learner).PRESETS]


NEURAL_EPISODES = {("ddpg", "lq-continuous-v0"): 40, ("maddpg", "lq-2pop-continuous-v0"): 40,
                   ("maddpg", "segregation-2pop-v0"): 30, ("deep-nash-q", "crowd-1d-v0"): 100}
"""The neural learners' trials in the standard suite (only with torch installed) and their iterations
(episodes; deep-nash-q: 2 episodes each), sized to the main job's budget: each trial about 5-30 CPU-s with
its default config (benchmarks/out/neural_speed.txt). DDPG on the one-population LQ game, MADDPG on the
heterogeneous LQ game (semi-analytic equilibrium) and on segregation (the hard case: its numbers are
recorded, no target), deep Nash-Q on a finite crowd game. Longer runs, the paper configs included, are
in the ``neural`` suite."""


def neural_trials(seeds) -> list:
    """The neural learners' trials, when torch is installed (``_available`` drops them otherwise)."""
    trials = []
    for (learner, game), episodes in NEURAL_EPISODES.items():
        if _available([learner]) and _registered(game):
            trials += grid([game], [learner], seeds, episodes)
    return trials


NEURAL_LONG = {("ddpg", "lq-continuous-v0"): 200, ("maddpg", "lq-2pop-continuous-v0"): 150,
               ("maddpg", "segregation-2pop-v0"): 160, ("deep-nash-q", "crowd-1d-v0"): 300,
               ("deep-nash-q", "predator-prey-v0"): 300, ("deep-nash-q", "crowd-continuous-v0"): 100}
"""The ``neural`` suite: longer runs of every neural learner (3 seeds); DDPG and MADDPG also with the
sources' exact hyperparameters (``preset = "paper"``, tag "paper"). deep-nash-q plays crowd-continuous-v0 on
its Markov-chain discretization (``DEFAULT_BRIDGE``)."""


def neural() -> Suite:
    trials = []
    for (learner, game), iterations in NEURAL_LONG.items():
        if _available([learner]) and _registered(game):
            default = grid([game], [learner], [0, 1, 2], iterations)
            trials += default + paper_presets(default)
    return Suite("neural", trials)


def standard() -> Suite:
    games = [g for g in ["crowd-1d-v0", "beach-bar-v0", "lq-v0", "sis-v0", "predator-prey-v0",
                         "traffic-2type-v0", "garnet-v0", "ring-road-v0", "crowd-continuous-v0",
                         "segregation-2pop-v0", "predator-prey-capture-v0", "traffic-3type-v0", "sir-types-v0"]
             if _registered(g)]
    tabular = grid(games, _available(TABULAR), [0, 1, 2], 100)
    return Suite("standard", tuned(tabular) + paper_presets(tabular) + neural_trials([0, 1, 2]))


def paper() -> Suite:
    trials = grid([g for g in ["crowd-1d-v0", "lq-v0", "predator-prey-v0"] if _registered(g)],
                  _available(["fictitious-play", "mirror-descent"]), list(range(5)), 1000)
    if _registered("ring-road-v0"):
        trials += grid(["ring-road-v0"], _available(["qmi"]), list(range(20)), 200)
    return Suite("paper", trials)


BUILTIN = {"quick": quick, "standard": standard, "paper": paper, "neural": neural}


def _registered(game_id) -> bool:
    from mfgbench.games import list_games
    return game_id in list_games()


def builtin(name: str) -> Suite:
    try:
        return BUILTIN[name]()
    except KeyError:
        raise SuiteError(f"unknown suite {name!r}; built-in suites: {', '.join(BUILTIN)}") from None


def load_suite_file(path) -> Suite:
    """Read a suite from a TOML or JSON file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SuiteError(f"cannot read suite file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:
        raise SuiteError(f"suite file {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"suite file {path}: expected a table/object at the top level")
    return suite_from_dict(data, default_name=path.stem, where=f"suite file {path}")


def suite_from_dict(data: dict, default_name="custom", where="suite") -> Suite:
    known = {"name", "games", "learners", "seeds", "iterations", "trials", "game_params", "configs", "discretize"}
    extra = sorted(set(data) - known)
    if extra:
        raise SuiteError(f"{where}: unknown field {extra[0]!r}; fields are {', '.join(sorted(known))}")
    name = check_name(data.get("name", default_name), where)
    trials = []
    if "games" in data or "learners" in data:
        games = _names(data.get("games", []), f"{where}: games")
        learners = _names(data.get("learners", []), f"{where}: learners")
        seeds = data.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds:
            raise SuiteError(f"{where}: seeds must be a list of integers >= 0, got {seeds!r}")
        seeds = [_integer(s, f"{where}: seeds", 0) for s in seeds]
        iterations = _integer(data.get("iterations", 100), f"{where}: iterations", 1)
        _check_names(games, learners, where)
        trials += grid(games, learners, seeds, iterations, _tables(data.get("game_params"), f"{where}: game_params"),
                       _tables(data.get("configs"), f"{where}: configs"),
                       _tables(data.get("discretize"), f"{where}: discretize"))
    listed = data.get("trials", [])
    if not isinstance(listed, list):
        raise SuiteError(f"{where}: trials must be a list of tables ([[trials]]), got {listed!r}")
    for i, t in enumerate(listed):
        if not isinstance(t, dict) or "game" not in t or "learner" not in t:
            raise SuiteError(f"{where}: trial {i} needs at least 'game' and 'learner'")
        fields = {"game", "learner", "seed", "iterations", "game_params", "config", "tag", "discretize"}
        bad = sorted(set(t) - fields)
        if bad:
            raise SuiteError(f"{where}, trial {i}: unknown field {bad[0]!r}")
        _check_names(_names([t["game"]], f"{where}, trial {i}: game"),
                     _names([t["learner"]], f"{where}, trial {i}: learner"), f"{where}, trial {i}")
        try:
            trials.append(TrialSpec(**t))
        except SuiteError as exc:
            raise SuiteError(f"{where}, trial {i}: {exc}") from None
    if not trials:
        raise SuiteError(f"{where}: holds no trial (give games and learners, or trials)")
    return Suite(name, trials)


def _check_names(games, learners, where):
    from mfgbench.games import list_games
    from mfgbench.learners import list_learners
    for g in games:
        if g not in list_games():
            raise SuiteError(f"{where}: unknown game {g!r}")
    for lr in learners:
        if lr not in list_learners():
            raise SuiteError(f"{where}: unknown learner {lr!r}; learners: {', '.join(list_learners())}")
