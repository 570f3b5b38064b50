"""The tuning protocol (python -m mfgbench tune), the tuned files, and the shipped one the standard
suite reads."""
import json
import tomllib

import pytest

from mfgbench.bench.suite import Suite, TrialSpec, builtin, retuned
from mfgbench.bench.tune import TuneError, check_space, evaluate_config, tuned_toml
from mfgbench.cli import main
from mfgbench.games import spec
from mfgbench.learners import make_config
from mfgbench.learners.tuned import SHIPPED, load_tuned, tuned_config


def test_tune_finds_the_better_of_two_configs_and_run_reads_the_file(tmp_path, capsys):
    pytest.importorskip("optuna")
    out = tmp_path / "tuned.toml"
    # mirror descent on crowd-1d-v0 after 10 iterations: a relative step of 0.03 beats 0.001 (neither is
    # the default 0.06, which a search tries first)
    good = evaluate_config("mirror-descent", ["crowd-1d-v0"], {"learning_rate": 0.03}, 10, [0])
    bad = evaluate_config("mirror-descent", ["crowd-1d-v0"], {"learning_rate": 0.001}, 10, [0])
    assert good < bad
    space = json.dumps({"learning_rate": [0.001, 0.03]})
    assert main(["tune", "mirror-descent", "--games", "crowd-1d-v0", "--space", space, "--trials", "4",
                 "--budget", "10", "--seeds", "0", "--out", str(out), "--quiet"]) == 0
    (entry,) = load_tuned(out)
    assert entry["config"] == {"learning_rate": 0.03}
    assert entry["best_value"] == pytest.approx(good)
    assert entry["iterations"] == 10 and entry["seeds"] == [0] and entry["trials"] == 4
    assert entry["space"] == {"learning_rate": {"choices": [0.001, 0.03]}}
    assert "optuna" in entry["versions"] and "numpy" in entry["versions"]
    assert entry["command"].startswith("python -m mfgbench tune mirror-descent --games crowd-1d-v0")
    # run reads it: the trial tagged tuned runs with the tuned step
    results = tmp_path / "results"
    assert main(["run", "--suite", "quick", "--games", "crowd-1d-v0", "--learners", "mirror-descent",
                 "--seeds", "0", "--budget", "3", "--tuned", str(out), "--out", str(results), "--quiet"]) == 0
    config = json.loads((results / "quick" / "crowd-1d-v0__mirror-descent__0__tuned" / "config.json").read_text())
    assert config["config"] == {"learning_rate": 0.03} and config["tag"] == "tuned"
    assert "mirror-descent [tuned]" in (results / "quick" / "leaderboard.md").read_text()


def test_a_search_tries_the_default_config_first():
    pytest.importorskip("optuna")
    from mfgbench.bench.tune import default_params, tune
    space = check_space("nash-q", {"temperature": {"low": 0.1, "high": 3.0}, "epsilon": {"low": 0.01, "high": 0.3},
                                   "policy_output": {"choices": ["average", "greedy"]}})
    default = make_config("nash-q")
    # the default's epsilon (None: no epsilon-greedy) is not in the space: that parameter is sampled
    assert default_params("nash-q", space) == {"temperature": default.temperature, "policy_output": default.policy_output}
    space = check_space("mirror-descent", {"learning_rate": {"low": 0.001, "high": 0.1}})
    tried = []
    entry = tune("mirror-descent", ["crowd-1d-v0"], space=space, trials=1, iterations=3, seeds=[0],
                 progress=lambda number, config, value: tried.append(config))
    assert tried == [{"learning_rate": make_config("mirror-descent").learning_rate}] == [entry["config"]]


def test_tune_merges_entries(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "t.toml"
    for game in ["left-right-v0", "rps-v0", "left-right-v0"]:
        assert main(["tune", "fictitious-play", "--games", game, "--trials", "2", "--budget", "3", "--seeds", "0",
                     "--out", str(out), "--quiet"]) == 0
    assert sorted(e["games"][0] for e in load_tuned(out)) == ["left-right-v0", "rps-v0"]


def test_a_family_entry_replaces_the_family_entry_whatever_games_it_held(tmp_path):
    # a game registered since the family was tuned changes the family's game list, not its entry
    from mfgbench.bench.tune import write_tuned
    out = tmp_path / "t.toml"
    old = {"learner": "qmi", "games": ["a-v0", "b-v0"], "config": {"alpha": 0.1}, "family": "finite"}
    mine = {"learner": "qmi", "games": ["a-v0"], "config": {"alpha": 0.2}}
    other = {"learner": "nash-q", "games": ["a-v0", "b-v0"], "config": {"epsilon": 0.1}, "family": "finite"}
    for e in (old, mine, other):
        write_tuned(out, e)
    new = {"learner": "qmi", "games": ["a-v0", "b-v0", "c-v0"], "config": {"alpha": 0.3}, "family": "finite"}
    write_tuned(out, new)
    entries = load_tuned(out)
    assert len(entries) == 3 and all(e in entries for e in (mine, other, new))
    assert tuned_config("qmi", "c-v0", "finite", out) == {"alpha": 0.3}
    assert tuned_config("qmi", "a-v0", "finite", out) == {"alpha": 0.2}


def test_bad_tuning_input_is_one_line_and_exit_2(tmp_path, capsys):
    for argv, message in [(["tune", "nope", "--games", "rps-v0"], "unknown learner"),
                          (["tune", "qmi"], "give --games or --family"),
                          (["tune", "ddpg", "--games", "crowd-1d-v0"], "does not play"),
                          (["tune", "qmi", "--games", "rps-v0", "--space", '{"speed": [1, 2]}'], "not a config field")]:
        assert main(argv + ["--out", str(tmp_path / "x.toml")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    with pytest.raises(TuneError, match="low < high"):
        check_space("qmi", {"alpha": {"low": 0.5, "high": 0.1}})


def test_toml_writer_round_trips():
    entry = {"learner": "qmi", "games": ["a-v0"], "config": {"alpha": 0.1, "policy_output": "greedy", "x": True},
             "space": {"alpha": {"low": 0.01, "high": 0.5, "log": True}, "y": {"choices": ["a", 1.5]}},
             "command": 'python -m mfgbench tune qmi --space \'{"a": 1}\'', "best_value": 1e-7, "seeds": [0, 1]}
    assert tomllib.loads(tuned_toml([entry], "header\nline"))["tuned"] == [entry]


def test_shipped_tuned_file():
    entries = load_tuned(SHIPPED)
    families = {(e["learner"], e.get("family")) for e in entries}
    for learner in ["fictitious-play", "mirror-descent", "qmi", "nash-q"]:
        for kind in ["finite", "stationary"]:
            assert (learner, kind) in families, (learner, kind)
    for e in entries:
        make_config(e["learner"], **e["config"])     # every config is valid
        for key in ("space", "iterations", "seeds", "versions", "command", "best_value"):
            assert key in e
        assert e["command"].startswith("python -m mfgbench tune " + e["learner"])
    # mirror descent: one scale-aware step for every game, no per-game rate
    assert not [e for e in entries if e["learner"] == "mirror-descent" and not e.get("family")]
    assert tuned_config("qmi", "ring-road-v0", "stationary")["policy_output"] == "greedy"


def test_the_standard_suite_runs_tuned_and_paper_rows():
    suite = builtin("standard")
    tags = {(t.learner, t.tag) for t in suite.trials if t.learner in ("qmi", "nash-q", "mirror-descent",
                                                                       "fictitious-play")}
    for learner in ["fictitious-play", "mirror-descent", "qmi", "nash-q"]:
        assert (learner, "tuned") in tags and (learner, "paper") in tags
    for t in suite.trials:
        if t.tag == "paper":
            assert t.config == {"preset": "paper"}
            make_config(t.learner, **t.config)
        elif t.tag == "tuned":
            kind = "finite" if t.discretize else spec(t.game).kind
            assert t.config == tuned_config(t.learner, t.game, kind)


def test_retuned_keeps_explicit_configs(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(tuned_toml([{"learner": "qmi", "games": ["rps-v0"], "config": {"alpha": 0.2}}]))
    suite = Suite("s", [TrialSpec("rps-v0", "qmi"), TrialSpec("rps-v0", "qmi", 1, config={"alpha": 0.3}, tag="mine")])
    out = retuned(suite, path)
    assert out.trials[0].config == {"alpha": 0.2} and out.trials[0].tag == "tuned"
    assert out.trials[1] == suite.trials[1]


def test_tune_plays_a_continuous_game_on_the_suites_grid(tmp_path):
    # a continuous game is tuned on its discretization on DEFAULT_BRIDGE, the grid the standard
    # suite's tabular trials play, and the entry says so; the suite's tuned trial then reads it
    pytest.importorskip("optuna")
    from mfgbench.bench.suite import DEFAULT_BRIDGE, grid, tuned
    out = tmp_path / "t.toml"
    assert main(["tune", "mirror-descent", "--games", "crowd-continuous-v0", "--space", '{"learning_rate": [0.07]}',
                 "--trials", "1", "--budget", "2", "--seeds", "0", "--out", str(out), "--quiet"]) == 0
    (entry,) = load_tuned(out)
    assert entry["discretize"] == {"crowd-continuous-v0": DEFAULT_BRIDGE}
    import mfgbench as mb
    from reference_solvers.pde.discretize import discretize
    game = discretize(mb.make("crowd-continuous-v0"), **DEFAULT_BRIDGE)
    res = mb.run_trial(game, "mirror-descent", iterations=2, seed=0, config=make_config("mirror-descent",
                                                                                       learning_rate=0.07),
                       reference=False, checkpoints=[2])
    assert entry["best_value"] == pytest.approx(res.final["exploitability"], rel=1e-12)
    (trial,) = tuned(grid(["crowd-continuous-v0"], ["mirror-descent"], [0], 2), out)
    assert trial.discretize == DEFAULT_BRIDGE and trial.config == {"learning_rate": 0.07}
