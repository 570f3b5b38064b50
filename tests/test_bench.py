"""The harness: suites end to end, resuming after SIGKILL, executors agree, failures recorded."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mfgbench.bench import Suite, SuiteError, TrialSpec, load_suite_file, run_suite, store
from mfgbench.cli import main
from mfgbench.learners import Learner, register_learner
from mfgbench.learners.fictitious_play import FictitiousPlayConfig

VOLATILE = {"wall_time", "seconds", "path", "traceback", "compile_time", "compile_seconds"}


def scores(folder):
    """Everything a suite wrote that must not depend on how it ran (wall times left out)."""
    out = {}
    for sub in sorted(Path(folder).iterdir()):
        if not (sub / "summary.json").exists():
            continue
        summary = {k: v for k, v in store.read_json(sub / "summary.json").items() if k not in VOLATILE}
        summary["final"] = {k: v for k, v in summary.get("final", {}).items() if k not in VOLATILE}
        metrics = [{k: v for k, v in r.items() if k not in VOLATILE} for r in store.read_jsonl(sub / "metrics.jsonl")]
        with np.load(sub / "policy.npz") as data:
            policy = {k: data[k].tobytes() for k in data.files}
        out[sub.name] = (summary, metrics, policy)
    return out


def assert_every_file_parses(folder, temporaries_allowed=False):
    """Every real file parses; a kill may leave an orphan temporary (never a torn real file)."""
    for sub in Path(folder).iterdir():
        if not sub.is_dir():
            continue
        if not temporaries_allowed:
            assert not [p for p in sub.iterdir() if p.name.endswith(".tmp")], f"temporary file left in {sub}"
        for path in sub.iterdir():
            if path.suffix == ".json":
                store.read_json(path)
            elif path.suffix == ".jsonl":
                store.read_jsonl(path)
            elif path.suffix == ".npz":
                with np.load(path) as data:
                    [data[k] for k in data.files]


def small_suite(name, n_seeds=3, iterations=15):
    trials = [TrialSpec(g, lr, s, iterations, params) for g, params in
              [("garnet-v0", {"S": 40, "A": 4, "B": 3, "T": 10}), ("crowd-1d-v0", {})]
              for lr in ("fictitious-play", "mirror-descent") for s in range(n_seeds)]
    return Suite(name, trials)


def test_quick_suite_end_to_end(tmp_path, capsys):
    assert main(["run", "--suite", "quick", "--out", str(tmp_path), "--quiet", "--workers", "2"]) == 0
    folder = tmp_path / "quick"
    from mfgbench.bench import builtin
    suite = builtin("quick")
    for spec in suite.trials:
        summary = store.read_json(folder / spec.name / "summary.json")
        assert summary["status"] == "ok", summary
        for name in ("config.json", "metrics.jsonl", "policy.npz", "flow.npz"):
            assert (folder / spec.name / name).exists()
    assert (folder / "leaderboard.md").read_text().count("## ") == len({t.game for t in suite.trials})
    assert (folder / "leaderboard.csv").read_text().startswith("game,learner,seeds")
    for fig in ("exploitability_vs_iterations.png", *[f"flows__{g}.png" for g in {t.game for t in suite.trials}]):
        assert (folder / fig).read_bytes()[:4] == b"\x89PNG"
    config = store.read_json(folder / suite.trials[0].name / "config.json")
    assert config["seed"] == suite.trials[0].seed and "numpy" in config["versions"]
    assert_every_file_parses(folder)


def test_sigkill_in_the_middle_then_resume(tmp_path):
    suite_file = tmp_path / "suite.json"
    suite = small_suite("killme", n_seeds=4, iterations=40)
    suite_file.write_text(json.dumps({"name": "killme", "trials": [t.as_dict() for t in suite.trials]}))
    cmd = [sys.executable, "-m", "mfgbench", "run", "--suite", str(suite_file), "--out", str(tmp_path / "a"),
           "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "a" / "killme"
    deadline = time.time() + 120
    while time.time() < deadline:
        done = len(list(folder.glob("*/summary.json"))) if folder.exists() else 0
        if done >= 2:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = len(list(folder.glob("*/summary.json")))
    assert 0 < finished_before < len(suite.trials), "the kill should land in the middle of the suite"
    assert_every_file_parses(folder, temporaries_allowed=True)

    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{len(suite.trials) - finished_before} trials run, {finished_before} already done" in again.stdout
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(t.name for t in suite.trials)
    assert_every_file_parses(folder)

    # an uninterrupted run of the same trials, sharing the reference cache as one results folder does
    run_suite(Suite("uninterrupted", suite.trials), out=tmp_path / "a", workers=1, quiet=True, report=False)
    assert scores(folder) == scores(tmp_path / "a" / "uninterrupted")


def test_dask_cluster_and_process_pool_agree(tmp_path):
    pytest.importorskip("dask.distributed")
    suite = small_suite("exec", n_seeds=2, iterations=8)
    suite.trials.append(TrialSpec("crowd-1d-v0", "fictitious-play", 5, 8, {}, {"best_response": "sampled"},
                                  tag="sampled"))
    pool = run_suite(Suite("pool", suite.trials), out=tmp_path, workers=2, quiet=True, report=False)
    dask = run_suite(Suite("dask", suite.trials), out=tmp_path, dask_local=2, quiet=True, report=False)
    assert not pool["failed"] and not dask["failed"]
    assert scores(tmp_path / "pool") == scores(tmp_path / "dask")


@register_learner
class Exploding(Learner):
    """A learner that raises on its third step (for the harness tests)."""

    name = "test-exploding"
    Config = FictitiousPlayConfig

    def step(self):
        self.iteration += 1
        if self.iteration == 3:
            raise FloatingPointError("step 3 blew up")
        return {"iteration": self.iteration, "samples": 0}

    @property
    def policy(self):
        from mfgbench.core import uniform_policy
        return uniform_policy(self.game)


def test_a_failing_learner_is_reported_while_the_others_finish(tmp_path):
    suite = Suite("failing", [TrialSpec("crowd-1d-v0", "test-exploding", 0, 10),
                              TrialSpec("crowd-1d-v0", "fictitious-play", 0, 10)])
    out = run_suite(suite, out=tmp_path, workers=1, quiet=True)
    assert out["failed"] == ["crowd-1d-v0__test-exploding__0"]
    summary = store.read_json(tmp_path / "failing" / "crowd-1d-v0__test-exploding__0" / "summary.json")
    assert summary["status"] == "failed" and "step 3 blew up" in summary["error"]
    board = (tmp_path / "failing" / "leaderboard.md").read_text()
    assert "1 failed: FloatingPointError: step 3 blew up" in board
    assert store.read_json(tmp_path / "failing" / "crowd-1d-v0__fictitious-play__0" / "summary.json")["status"] == "ok"


def test_a_config_that_would_fail_at_run_time_stops_the_suite_before_any_trial(tmp_path):
    suite = Suite("badconfig", [TrialSpec("crowd-1d-v0", "fictitious-play", 0, 10),
                                TrialSpec("crowd-1d-v0", "mirror-descent", 0, 10, config={"learning_rate": -1.0})])
    with pytest.raises(SuiteError, match="trial crowd-1d-v0__mirror-descent__0: mirror-descent: learning_rate must "
                                         "be positive, got -1.0"):
        run_suite(suite, out=tmp_path, workers=1, quiet=True)
    assert not list((tmp_path / "badconfig").glob("*/summary.json"))


@pytest.mark.parametrize("argv,message", [
    (["run", "--games", "no-such-game"], "unknown game 'no-such-game'"),
    (["run", "--learners", "no-such-learner"], "unknown learner 'no-such-learner'"),
    (["run", "--budget", "0"], "bad --budget 0"),
    (["run", "--budget", "many"], "invalid int value"),
    (["run", "--seeds", "a,b"], "bad seed list"),
    (["run", "--suite", "nope"], "unknown suite 'nope'"),
    (["run", "--suite", "/nonexistent/suite.toml"], "cannot read suite file"),
    (["report", "/nonexistent/folder"], "no results folder"),
])
def test_bad_run_input_exits_2_with_one_line(argv, message, capsys, tmp_path):
    assert main(argv + (["--out", str(tmp_path)] if argv[0] == "run" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_unreadable_suite_files_exit_2(tmp_path, capsys):
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("games = [unclosed")
    assert main(["run", "--suite", str(bad_toml), "--out", str(tmp_path)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    bad_field = tmp_path / "bad.json"
    bad_field.write_text(json.dumps({"games": ["crowd-1d-v0"], "learners": ["fictitious-play"], "sedes": [1]}))
    assert main(["run", "--suite", str(bad_field), "--out", str(tmp_path)]) == 2
    assert "unknown field 'sedes'" in capsys.readouterr().err


def test_toml_suite_file_grid_and_trials(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\ngames = ["crowd-1d-v0"]\nlearners = ["fictitious-play", "mirror-descent"]\n'
                    'seeds = [0, 1]\niterations = 5\n[[trials]]\ngame = "garnet-v0"\nlearner = "mirror-descent"\n'
                    'game_params = { S = 7 }\nconfig = { learning_rate = 0.5 }\nseed = 3\niterations = 4\n')
    suite = load_suite_file(path)
    assert suite.name == "mine" and len(suite.trials) == 5
    assert suite.trials[-1] == TrialSpec("garnet-v0", "mirror-descent", 3, 4, {"S": 7}, {"learning_rate": 0.5})
