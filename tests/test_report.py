"""The report: leaderboard baseline and reference rows, the ratio column, ± 0, learner colours, figures."""
import copy
import math

import matplotlib.colors as mcolors
import numpy as np
import pytest

import mfgbench as mb
from mfgbench.bench import Suite, TrialSpec, run_suite, store
from mfgbench.metrics import distribution_error
from mfgbench.report import figures, leaderboard_csv, leaderboard_markdown, leaderboard_rows, load_trials, mean_std


def _run(tmp_path, name, trials):
    run_suite(Suite(name, trials), out=tmp_path, workers=1, quiet=True)
    return tmp_path / name


@pytest.fixture(scope="module")
def crowd_suite(tmp_path_factory):
    """crowd-1d-v0: fictitious play (deterministic) on two seeds, mirror descent on one."""
    tmp = tmp_path_factory.mktemp("report")
    trials = [TrialSpec("crowd-1d-v0", "fictitious-play", s, 6) for s in (0, 1)]
    trials.append(TrialSpec("crowd-1d-v0", "mirror-descent", 0, 6))
    return _run(tmp, "crowd", trials), tmp / "references"


def _row(rows, kind, learner=None):
    return next(r for r in rows if r["row"] == kind and (learner is None or r["learner"] == learner))


def test_baseline_and_reference_rows_match_independent_evaluations(crowd_suite):
    folder, cache = crowd_suite
    rows = leaderboard_rows(load_trials(folder))
    game = mb.make("crowd-1d-v0")
    uniform = mb.uniform_policy(game)
    from mfgbench.reference import reference
    ref = reference(game, cache_path=cache)
    base = _row(rows, "baseline")
    assert base["learner"] == "uniform policy"
    assert base["exploitability_mean"] == pytest.approx(mb.exploitability(game, uniform), rel=1e-12)
    err = distribution_error(game, mb.distribution(game, uniform), ref.flow)
    assert base["tv_mean"] == pytest.approx(err.tv, rel=1e-12) and base["w1_mean"] == pytest.approx(err.w1, rel=1e-12)
    # the reference row: the reference policy's own exploitability, evaluated here from scratch
    reference_row = _row(rows, "reference")
    own = mb.exploitability(game, ref.policy)
    assert reference_row["exploitability_mean"] == pytest.approx(own, rel=1e-6, abs=1e-12)
    assert reference_row["reference_certified"] is True and reference_row["method"]
    board = leaderboard_markdown(rows)
    assert "| *uniform policy* | - | 2.79 | 1.00 |" in board
    assert "| *reference* | - |" in board and "certified (" in board


def test_ratio_column_divides_the_baseline_by_each_learner(crowd_suite):
    folder, _ = crowd_suite
    trials = load_trials(folder)
    rows = leaderboard_rows(trials)
    uniform = _row(rows, "baseline")["exploitability_mean"]
    for learner in ("fictitious-play", "mirror-descent"):
        row = _row(rows, "learner", learner)
        finals = [t["final"]["exploitability"] for t in trials if t["learner"] == learner]
        assert row["x_below_uniform"] == pytest.approx(uniform / np.mean(finals), rel=1e-12)
        assert row["worse_than_uniform"] is bool(uniform / np.mean(finals) < 1)
    csv_text = leaderboard_csv(rows)
    assert csv_text.splitlines()[0].endswith("row,x_below_uniform,worse_than_uniform,population")


def test_a_learner_worse_than_uniform_is_flagged(crowd_suite):
    folder, _ = crowd_suite
    trials = load_trials(folder)
    for t in trials:                       # make mirror descent 4x more exploitable than uniform
        if t["learner"] == "mirror-descent":
            t["final"]["exploitability"] = 4 * t["reference"]["baseline_exploitability"]
    rows = leaderboard_rows(trials)
    md = _row(rows, "learner", "mirror-descent")
    assert md["x_below_uniform"] == pytest.approx(0.25) and md["worse_than_uniform"] is True
    assert _row(rows, "learner", "fictitious-play")["worse_than_uniform"] is False
    line = next(s for s in leaderboard_markdown(rows).splitlines() if s.startswith("| mirror-descent"))
    assert "**0.250 (worse than uniform)**" in line and "WORSE THAN UNIFORM" in line


def test_identical_seeds_show_plus_minus_zero(crowd_suite):
    folder, _ = crowd_suite
    trials = load_trials(folder)
    fp = [t["final"]["exploitability"] for t in trials if t["learner"] == "fictitious-play"]
    assert len(fp) == 2 and fp[0] == fp[1]      # fictitious play is deterministic
    line = next(s for s in leaderboard_markdown(leaderboard_rows(trials)).splitlines()
                if s.startswith("| fictitious-play"))
    assert f"| {fp[0]:.3g} ± 0 |" in line
    one_seed = next(s for s in leaderboard_markdown(leaderboard_rows(trials)).splitlines()
                    if s.startswith("| mirror-descent"))
    assert "±" not in one_seed.split("|")[3]    # one seed: no spread to show


def test_mean_std_rounds_off_only_round_off():
    assert mean_std([0.1, 0.1 * (1 + 1e-15)]) == (pytest.approx(0.1), 0.0)
    assert mean_std([2.0, 2.0]) == (2.0, 0.0)
    mean, std = mean_std([1.0, 2.0])
    assert (mean, std) == (1.5, pytest.approx(math.sqrt(0.5)))
    assert mean_std([1e-3, 1.1e-3])[1] > 0     # a real spread, however small the values
    assert math.isnan(mean_std([3.0])[1]) and math.isnan(mean_std([])[0])


def test_results_without_a_recorded_baseline_still_report(crowd_suite):
    folder, _ = crowd_suite
    trials = copy.deepcopy(load_trials(folder))
    for t in trials:                           # as written before the trial recorded its baseline
        t["reference"] = {k: v for k, v in t["reference"].items() if not k.startswith("baseline")}
    rows = leaderboard_rows(trials)
    assert all(math.isnan(r["x_below_uniform"]) for r in rows if r["row"] == "learner")
    board = leaderboard_markdown(rows)
    assert "| *uniform policy* | - | - | - |" in board and "not recorded (older results)" in board
    assert "| *reference* |" in board


def test_learner_colours_are_fixed_whatever_the_subset():
    names = ["fictitious-play", "mirror-descent", "qmi", "nash-q", "ddpg", "maddpg"]
    colours = [figures.learner_colour(n) for n in names]
    assert len(set(colours)) == len(names)
    assert figures.REFERENCE_COLOUR not in colours and figures.BASELINE_COLOUR not in colours
    # a custom learner's colour is a function of its name only, not of who else is plotted
    assert figures.learner_colour("my-learner [lr0.5]") == figures.learner_colour("my-learner [lr0.5]")
    assert figures.learner_colour("my-learner") in figures.OTHER_COLOURS
    assert not set(figures.OTHER_COLOURS) & set(figures.LEARNER_COLOURS.values())


def _line_colours(fig) -> dict:
    out = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                out.setdefault(line.get_label(), set()).add(mcolors.to_hex(line.get_color()))
    return out


def test_each_learner_has_one_colour_across_figures(crowd_suite):
    folder, _ = crowd_suite
    trials = load_trials(folder)
    subsets = [trials, [t for t in trials if t["learner"] == "mirror-descent"]]
    for subset in subsets:
        seen = _line_colours(figures.exploitability_figure(subset, "iteration"))
        for learner in {t["learner"] for t in subset}:
            assert seen[learner] == {figures.learner_colour(learner)}
        flow = figures.flow_figure("crowd-1d-v0", subset)
        titles = {ax.get_title(): mcolors.to_hex(ax.title.get_color()) for ax in flow.axes if ax.get_title()}
        for learner in {t["learner"] for t in subset}:
            assert titles[learner] == figures.learner_colour(learner)
        assert titles["reference"] == mcolors.to_hex(figures.REFERENCE_COLOUR)


def test_exploitability_figure_draws_the_baseline_and_reference_levels(tmp_path):
    # sis-v0: the reference (exploitability 0) cannot sit on a log axis: the panel title names it
    folder = _run(tmp_path, "levels", [TrialSpec("sis-v0", "mirror-descent", 0, 3)])
    trials = load_trials(folder)
    fig = figures.exploitability_figure(trials, "iteration")
    ax = fig.axes[0]
    flat = [line for line in ax.get_lines() if len(set(line.get_ydata())) == 1 and len(line.get_ydata()) == 2]
    levels = {float(line.get_ydata()[0]) for line in flat}
    assert trials[0]["reference"]["baseline_exploitability"] in levels
    assert "reference" in ax.get_title()


def test_figures_on_a_multi_population_grid_game_and_a_stationary_game(tmp_path):
    trials = [TrialSpec("predator-prey-v0", lr, 0, 3) for lr in ("fictitious-play", "mirror-descent")]
    trials += [TrialSpec("garnet-stationary-v0", lr, 0, 3, {"S": 8, "A": 3})
               for lr in ("fictitious-play", "mirror-descent")]
    folder = _run(tmp_path, "shapes", trials)
    for name in ("exploitability_vs_iterations.png", "flows__predator-prey-v0.png", "flows__garnet-stationary-v0.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    loaded = load_trials(folder)
    # predator-prey: three populations on their 5 x 5 grids, snapshots after mu_0, one colour scale
    pp = figures.flow_figure("predator-prey-v0", loaded)
    images = [im for ax in pp.axes for im in ax.get_images()]
    assert images and all(im.get_array().shape == (5, 5) for im in images)
    assert len(images) == 3 * 3 * 3          # 3 populations x 3 times x (2 learners + reference)
    assert len({(im.norm.vmin, im.norm.vmax) for im in images}) == 1
    assert any(ax.get_label() == "<colorbar>" for ax in pp.axes)
    # stationary: a distribution over states per learner, no time axis
    st = figures.flow_figure("garnet-stationary-v0", loaded)
    assert not any("time" in ax.get_ylabel() for ax in st.axes)
    assert not any(ax.get_images() for ax in st.axes)
    lines = _line_colours(st)
    assert lines["fictitious-play"] == {figures.learner_colour("fictitious-play")}
    assert list(st.axes[0].get_xticks()) == list(range(8))    # a tick on every state of a tiny space


def test_populations_are_drawn_on_their_own_geometries(tmp_path, monkeypatch):
    """Two populations with different state spaces: a 2 x 3 grid and a line of 5 states."""
    T = 4
    rng = np.random.default_rng(0)
    flows = {"learner": [rng.dirichlet(np.ones(6), T + 1), rng.dirichlet(np.ones(5), T + 1)],
             "reference": [rng.dirichlet(np.ones(6), T + 1), rng.dirichlet(np.ones(5), T + 1)]}
    trial_dir = tmp_path / "two-spaces__fictitious-play__0"
    store.write_npz_atomic(trial_dir / "flow.npz", flow_0=flows["learner"][0], flow_1=flows["learner"][1],
                           reference_0=flows["reference"][0], reference_1=flows["reference"][1])
    trial = {"game": "two-spaces", "learner": "fictitious-play", "seed": 0, "status": "ok", "path": str(trial_dir),
             "history": [], "kind": "finite"}
    monkeypatch.setattr(figures, "geometries", lambda t: [figures.Geometry((2, 3), name="a"),
                                                          figures.Geometry((5,), name="b")])
    fig = figures.flow_figure("two-spaces", [trial])
    shapes = sorted({im.get_array().shape for ax in fig.axes for im in ax.get_images()})
    assert shapes == [(2, 3), (T + 1, 5)]     # grid snapshots for population 0, a (time, state) map for 1
    heat = next(ax for ax in fig.axes if any(im.get_array().shape == (T + 1, 5) for im in ax.get_images()))
    assert list(heat.get_xticks()) == list(range(5))
    np.testing.assert_array_equal(heat.get_images()[0].get_array(), flows["learner"][1])


@pytest.mark.slow
def test_neural_trial_records_the_zero_control_baseline():
    pytest.importorskip("torch")
    from mfgbench.learners.neural.scoring import pde_reference
    from mfgbench.trial import run_trial
    from reference_solvers.pde.policy import evaluate_control
    result = run_trial("lq-continuous-v0", "ddpg", iterations=1)
    game = mb.make("lq-continuous-v0")
    ref = pde_reference(game)
    # the zero control as a callable on a grid of the same size, built afresh
    zero = evaluate_control(game, lambda t, x: np.zeros_like(x), ref.problem.grid.shape, ref.problem.nt)
    assert result.reference["baseline"] == "zero control"
    assert result.reference["baseline_exploitability"] == pytest.approx(zero.exploitability, rel=1e-9)
    assert result.reference["baseline_exploitability"] > result.reference["exploitability"] > 0
    assert result.reference["baseline_tv"] > 0 and result.reference["baseline_w1"] > 0
    # per population too (one population here: the same numbers)
    assert result.reference["baseline_tv_per_population"] == [pytest.approx(result.reference["baseline_tv"])]
    assert result.reference["baseline_w1_per_population"] == [pytest.approx(result.reference["baseline_w1"])]


# ----------------------------------------------------------------------------- which trials a report shows
def _board(folder) -> str:
    return (folder / "leaderboard.md").read_text()


def test_the_report_shows_the_suite_that_ran_not_what_earlier_runs_left(tmp_path, capsys):
    from mfgbench import cli
    folder = _run(tmp_path, "mixed", [TrialSpec("crowd-1d-v0", "fictitious-play", 0, 4),
                                      TrialSpec("sis-v0", "fictitious-play", 0, 4)])
    assert "## sis-v0" in _board(folder) and (folder / "flows__sis-v0.png").exists()
    # a second run into the same folder: one game only, another budget
    _run(tmp_path, "mixed", [TrialSpec("crowd-1d-v0", "fictitious-play", 0, 2)])
    manifest = store.read_manifest(folder)
    assert [(t["name"], t["iterations"]) for t in manifest["trials"]] == [("crowd-1d-v0__fictitious-play__0", 2)]
    assert not list(folder.glob(".*.tmp"))                  # written atomically: no temporary left
    board = _board(folder)
    assert "## sis-v0" not in board and "## crowd-1d-v0" in board
    assert "the 1 trial of suite `mixed`" in board and "2 iterations" in board
    assert "1 other trial folder here" in board and "report --all" in board
    rows = leaderboard_rows(load_trials(folder))
    assert {r["game"] for r in rows} == {"crowd-1d-v0"} and _row(rows, "learner")["iterations"] == 2
    assert "sis-v0" not in (folder / "leaderboard.csv").read_text()
    assert not (folder / "flows__sis-v0.png").exists()      # the earlier game's figure is gone with it
    # `report FOLDER` keeps to the manifest; --all shows every trial folder, and says so
    assert cli.main(["report", str(folder)]) == 0 and "## sis-v0" not in _board(folder)
    assert cli.main(["report", "--all", str(folder)]) == 0
    assert "## sis-v0" in _board(folder) and "as asked (`report --all`)" in _board(folder)
    assert "every trial folder (2)" in capsys.readouterr().out
    # a folder written before runs recorded their suite: every trial folder, with a warning
    (folder / "manifest.json").unlink()
    assert cli.main(["report", str(folder)]) == 0
    assert "## sis-v0" in _board(folder) and "no `manifest.json`" in _board(folder)


def test_a_listed_trial_whose_folder_holds_another_specs_result_is_not_shown(tmp_path):
    from mfgbench.bench.resume import trial_key
    from mfgbench.report import write_report
    folder = _run(tmp_path, "stale", [TrialSpec("crowd-1d-v0", "fictitious-play", 0, 3)])
    # a run of the same trial with another budget lists it, then stops before it finishes (Ctrl-C)
    spec = TrialSpec("crowd-1d-v0", "fictitious-play", 0, 5)
    store.write_manifest(folder, "stale", [{"name": spec.name, "key": trial_key(spec), **spec.as_dict()}])
    assert load_trials(folder) == []                         # the 3-iteration result is not this suite's
    out = write_report(folder)
    assert out["rows"] == [] and out["selection"]["missing"] == [spec.name]
    assert f"1 of them has no finished result for this spec (interrupted, or still running), and is not shown: " \
           f"{spec.name}" in _board(folder)
    assert [t["iterations"] for t in load_trials(folder, manifest=False)] == [3]


def test_figures_drawn_in_parallel_are_those_drawn_one_by_one(crowd_suite, tmp_path):
    folder, _ = crowd_suite
    trials = load_trials(folder)
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    serial = figures.write_figures(one, trials, workers=1)
    parallel = figures.write_figures(two, trials, workers=2)
    assert [p.rsplit("/", 1)[1] for p in serial] == [p.rsplit("/", 1)[1] for p in parallel]
    assert len(serial) >= 2   # exploitability against iterations (exact learners draw no samples) and the flows
    for path in serial:
        name = path.rsplit("/", 1)[1]
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_a_seed_at_exactly_zero_does_not_stretch_the_log_axis(tmp_path):
    # two seeds of one learner: one ends at exploitability 0 (an exact equilibrium), the other at 1e-2
    folder = _run(tmp_path, "zero", [TrialSpec("crowd-1d-v0", "mirror-descent", 0, 3)])
    (trial,) = load_trials(folder)
    other = copy.deepcopy(trial)
    other["seed"] = 1
    for h in trial["history"]:
        h["exploitability"] = 0.0 if h is trial["history"][-1] else h["exploitability"]
    trial["history"][-1]["exploitability"] = 0.0
    for h in other["history"]:
        h["exploitability"] = max(h["exploitability"], 1e-2)
    fig = figures.exploitability_figure([trial, other], "iteration")
    bottom = fig.axes[0].get_ylim()[0]
    means = [y for line in fig.axes[0].get_lines() for y in line.get_ydata() if len(line.get_ydata()) > 2]
    assert bottom >= min(means) / 10 / 2, bottom   # the band ends at a tenth of the lowest mean (log margins aside)
