"""Suites of trials. A trial is (game, game parameters, learner, config, seed, budget).

Built-in suites:

- ``quick``: a few small games, every tabular learner, 2 seeds, tiny budgets (about a
  minute on 2 cores; the tests run it end to end);
- ``standard`` (the default of ``run``): every tabular learner on a representative set
  of finite, stationary, multi-population and PDE-bridged games, 3 seeds; with torch
  installed also the neural learners' trials of ``NEURAL_EPISODES`` (about 3 CPU-min in all);
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
"""
from __future__ import annotations

import json
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
            trials = [replace(t, iterations=int(iterations)) for t in trials]
        return Suite(self.name, trials)


class SuiteError(ValueError):
    """A suite (file) names something that does not exist or has a bad field."""


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
            trials += [TrialSpec(g, lr, int(s), int(iterations), dict(game_params.get(g, {})),
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


TUNED = {
    ("qmi", "finite"): {"temperature": 0.3, "alpha": 0.01, "beta": 0.01, "mean_field": "average"},
    ("mirror-descent", "ring-road-v0"): {"learning_rate": 1000.0},
    ("qmi", "predator-prey-v0"): {"q_init": 30.0, "temperature": 0.5, "alpha": 0.01, "beta": 1e-3,
                                  "mean_field": "average"},
}
"""Learner settings the standard suite uses where a learner's paper defaults do not fit a game:
QMI's defaults are the ring-road values (temperature 1e-5 for rewards of order 1e-3), and
mirror descent's step must be scaled up by as much on ring-road's tiny rewards."""


def tuned(trials) -> list:
    """Apply ``TUNED`` (by game id first, then by the kind of game the learner plays)."""
    out = []
    for t in trials:
        kind = "finite" if t.discretize else _kind(t.game)
        extra = TUNED.get((t.learner, t.game), TUNED.get((t.learner, kind), {}))
        out.append(replace(t, config={**extra, **t.config}) if extra else t)
    return out


NEURAL_EPISODES = {("ddpg", "lq-continuous-v0"): 40, ("maddpg", "lq-2pop-continuous-v0"): 50,
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
    from mfgbench.learners import learner_class
    trials = []
    for (learner, game), iterations in NEURAL_LONG.items():
        if not (_available([learner]) and _registered(game)):
            continue
        default = grid([game], [learner], [0, 1, 2], iterations)
        trials += default
        if "paper" in learner_class(learner).PRESETS:
            trials += [replace(t, config={"preset": "paper"}, tag="paper") for t in default]
    return Suite("neural", trials)


def standard() -> Suite:
    games = [g for g in ["crowd-1d-v0", "beach-bar-v0", "lq-v0", "sis-v0", "predator-prey-v0",
                         "traffic-2type-v0", "garnet-v0", "ring-road-v0", "crowd-continuous-v0",
                         "segregation-2pop-v0"] if _registered(g)]
    return Suite("standard", tuned(grid(games, _available(TABULAR), [0, 1, 2], 100)) + neural_trials([0, 1, 2]))


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
    trials = []
    if "games" in data or "learners" in data:
        games, learners = data.get("games", []), data.get("learners", [])
        _check_names(games, learners, where)
        trials += grid(games, learners, data.get("seeds", [0]), data.get("iterations", 100),
                       data.get("game_params"), data.get("configs"), data.get("discretize"))
    for i, t in enumerate(data.get("trials", [])):
        if not isinstance(t, dict) or "game" not in t or "learner" not in t:
            raise SuiteError(f"{where}: trial {i} needs at least 'game' and 'learner'")
        _check_names([t["game"]], [t["learner"]], f"{where}, trial {i}")
        fields = {"game", "learner", "seed", "iterations", "game_params", "config", "tag", "discretize"}
        bad = sorted(set(t) - fields)
        if bad:
            raise SuiteError(f"{where}, trial {i}: unknown field {bad[0]!r}")
        trials.append(TrialSpec(**t))
    if not trials:
        raise SuiteError(f"{where}: holds no trial (give games and learners, or trials)")
    return Suite(str(data.get("name", default_name)), trials)


def _check_names(games, learners, where):
    from mfgbench.games import list_games
    from mfgbench.learners import list_learners
    for g in games:
        if g not in list_games():
            raise SuiteError(f"{where}: unknown game {g!r}")
    for lr in learners:
        if lr not in list_learners():
            raise SuiteError(f"{where}: unknown learner {lr!r}; learners: {', '.join(list_learners())}")
