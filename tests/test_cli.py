"""The command line: list, evaluate, one-line errors with exit status 2."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest

import mfgbench as mb
from mfgbench.cli import main


def test_list_shows_every_game(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for game_id in mb.list_games():
        assert game_id in out


def test_evaluate_uniform_json_matches_the_api(capsys):
    assert main(["evaluate", "predator-prey-v0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    game = mb.make("predator-prey-v0")
    ev = mb.evaluate(game, mb.uniform_policy(game))
    assert result["exploitability"] == pytest.approx(ev.exploitability, rel=1e-14)
    assert list(result["per_population"].values()) == pytest.approx(list(ev.per_population), rel=1e-14)


def test_evaluate_policy_file_with_params(tmp_path, capsys):
    game = mb.make("lq-v0", size=8, horizon=4)
    br = mb.best_response(game, mb.uniform_policy(game)).policy
    path = tmp_path / "br.npz"
    mb.save_policy(path, game, br)
    assert main(["evaluate", "lq-v0", "--param", "size=8", "--param", "horizon=4",
                 "--policy", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["exploitability"] == pytest.approx(mb.exploitability(game, br), rel=1e-14)


@pytest.mark.parametrize("argv,message", [
    (["evaluate", "no-such-game"], "unknown game 'no-such-game'"),
    (["evaluate", "lq-v0", "--param", "bogus=1"], "unknown parameter 'bogus'"),
    (["evaluate", "lq-v0", "--param", "size"], "expected key=value"),
    (["evaluate", "lq-v0", "--param", "size=big"], "parameter size must be int"),
    (["evaluate", "lq-v0", "--policy", "/nonexistent/p.npz"], "cannot read policy file"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_prints_one_line_and_exits_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_malformed_policy_file_is_named(tmp_path, capsys):
    path = tmp_path / "bad.npz"
    np.savez(path, policy_0=np.ones((2, 3, 4)))
    assert main(["evaluate", "lq-v0", "--policy", str(path)]) == 2
    err = capsys.readouterr().err
    assert "policy has shape (2, 3, 4), expected (10, 10, 7)" in err and err.count("\n") == 1


def test_module_entry_point_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "mfgbench", "evaluate", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


# ----------------------------------------------------------------------------- bad input, section by section
def _one_line_exit_2(argv, capsys, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("game,params,needs", [("crowd-1d-v0", ["size=100000000"], "about"),
                                               ("garnet-v0", ["S=100000000"], "about"),
                                               ("lq-v0", ["size=100000", "horizon=100000"], "at least")])
def test_a_game_too_large_for_memory_is_refused_before_allocating(game, params, needs, capsys):
    """crowd-1d and garnet declare their sizes (checked before building); lq-v0 is checked once built,
    before any policy array is allocated (its own arrays are O(size))."""
    argv = ["evaluate", game] + [a for p in params for a in ("--param", p)]
    _one_line_exit_2(argv, capsys, f"evaluating a policy needs {needs} ")


def test_the_memory_estimate_counts_the_evaluation_arrays():
    from mfgbench.games.registry import evaluation_bytes
    # T=9, one population S=10, A=3, B=3, static: 2*9*30 + 3*10*10 + 2*30*3 = 540 + 300 + 180 floats
    assert evaluation_bytes(9, [(10, 3, 3)], True) == 8 * (540 + 300 + 180)
    assert evaluation_bytes(9, [(10, 3, 3)], False) == 8 * (540 + 300 + 9 * 180)


@pytest.fixture
def policy_files(tmp_path):
    game = mb.make("lq-v0")
    good = tmp_path / "good.npz"
    mb.save_policy(good, game, mb.uniform_policy(game))
    data = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    prey = mb.make("predator-prey-v0")
    np.save(tmp_path / "one.npy", mb.uniform_policy(prey)[0])
    np.savez(tmp_path / "complex.npz", policy_0=mb.uniform_policy(game)[0].astype(complex))
    return tmp_path


@pytest.mark.parametrize("game,name,message", [
    ("lq-v0", "truncated.npz", "not a readable .npz or .npy file"),
    ("lq-v0", "empty.npz", "not a readable .npz or .npy file"),
    ("predator-prey-v0", "one.npy", "holds one array, the game predator-prey-v0 has 3 populations"),
    ("lq-v0", "complex.npz", "policy has complex dtype complex128"),
])
def test_bad_policy_files_are_one_line(game, name, message, policy_files, capsys):
    _one_line_exit_2(["evaluate", game, "--policy", str(policy_files / name)], capsys, message)


def test_a_float32_policy_is_renormalised_and_a_single_array_npy_accepted(tmp_path, capsys, rng):
    game = mb.make("lq-v0", size=8, horizon=4)
    pi = rng.dirichlet(np.ones(7), size=(4, 8)).astype(np.float32)
    assert np.abs(pi.astype(np.float64).sum(axis=-1) - 1).max() > 1e-9  # not normalised in float64
    np.savez(tmp_path / "p32.npz", policy_0=pi)
    np.save(tmp_path / "p32.npy", pi)
    exact = pi.astype(np.float64)
    expected = mb.exploitability(game, exact / exact.sum(axis=-1, keepdims=True))
    for name in ("p32.npz", "p32.npy"):
        assert main(["evaluate", "lq-v0", "--param", "size=8", "--param", "horizon=4",
                     "--policy", str(tmp_path / name), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["exploitability"] == pytest.approx(expected, rel=1e-13)
    with pytest.raises(mb.PolicyError, match="sum to"):  # float64 rows are held to 1e-9
        mb.exploitability(game, exact * (1 + 1e-6))


@pytest.mark.parametrize("game", ["crowd-continuous-v0", "lq-continuous-v0"])
def test_evaluate_on_a_continuous_game_scores_its_discretization(game, capsys):
    from mfgbench.bench.suite import DEFAULT_BRIDGE
    from reference_solvers.pde.discretize import discretize
    finite = discretize(mb.make(game), **DEFAULT_BRIDGE)
    assert main(["evaluate", game, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["discretize"] == DEFAULT_BRIDGE
    assert result["exploitability"] == pytest.approx(mb.exploitability(finite, mb.uniform_policy(finite)), rel=1e-13)
    assert main(["evaluate", game]) == 0
    assert f"{game} is continuous: evaluated on its Markov-chain discretization" in capsys.readouterr().out


SUITE = 'name = "bad"\ngames = ["crowd-1d-v0"]\nlearners = ["mirror-descent"]\nseeds = [0]\niterations = 3\n'


@pytest.mark.parametrize("text,message", [
    (SUITE.replace("iterations = 3", 'iterations = "abc"'), "iterations must be an integer >= 1, got 'abc'"),
    (SUITE.replace("iterations = 3", "iterations = 2.5"), "iterations must be an integer >= 1, got 2.5"),
    (SUITE.replace("iterations = 3", "iterations = -4"), "iterations must be >= 1, got -4"),
    (SUITE.replace("seeds = [0]", 'seeds = ["a"]'), "seeds must be an integer >= 0, got 'a'"),
    (SUITE.replace("seeds = [0]", "seeds = [-1]"), "seeds must be >= 0, got -1"),
    (SUITE.replace('games = ["crowd-1d-v0"]', 'games = "crowd-1d-v0"'),
     'games must be a list of names (e.g. ["crowd-1d-v0"])'),
    (SUITE + '[configs.mirror-descent]\nlearning_rate = "fast"\n', "learning_rate must be a number, got 'fast'"),
    (SUITE + "[configs.mirror-descent]\nlearning_rate = nan\n", "learning_rate must be a number, got nan"),
    (SUITE + "[configs.mirror-descent]\nlearning_rat = 0.5\n", "unknown config field 'learning_rat'"),
    (SUITE + '[game_params.crowd-1d-v0]\nsize = -1\n', "needs size >= 3"),
    (SUITE + '[[trials]]\ngame = "garnet-v0"\nlearner = "mirror-descent"\nseed = -2\n', "seed must be >= 0, got -2"),
    (SUITE + '[[trials]]\ngame = "garnet-v0"\nlearner = "mirror-descent"\ntag = "../up"\n', "tag must be letters"),
    (SUITE.replace('name = "bad"', 'name = "../../escape"'), "name must be letters, digits"),
])
def test_bad_suite_values_stop_the_run_before_any_trial(text, message, tmp_path, capsys):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    out = tmp_path / "out"
    _one_line_exit_2(["run", "--suite", str(path), "--out", str(out), "--quiet"], capsys, message)
    assert not list(tmp_path.rglob("summary.json")) and not (tmp_path.parent / "escape").exists()


def test_run_into_an_unwritable_folder_is_one_line(capsys):
    _one_line_exit_2(["run", "--suite", "quick", "--out", "/proc/nope", "--quiet"], capsys,
                     "cannot write results to /proc/nope/quick")


def test_an_unreachable_scheduler_is_one_line_within_seconds(tmp_path):
    pytest.importorskip("dask.distributed")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mfgbench", "run", "--suite", "quick", "--out", str(tmp_path),
                           "--scheduler", "tcp://127.0.0.1:1", "--quiet"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1 within 5 s" in proc.stderr
    assert time.monotonic() - start < 60
