"""The command line: list, evaluate, one-line errors with exit status 2."""
import json
import subprocess
import sys

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
