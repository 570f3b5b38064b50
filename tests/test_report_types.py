"""The report on games whose populations (types) have their own state spaces: flows drawn on each
type's own geometry, and the leaderboard's per-type exploitability, TV and W1."""
import csv
import io
import json

import numpy as np
import pytest

import mfgbench as mb
from mfgbench.bench import Suite, TrialSpec, run_suite
from mfgbench.metrics import distribution_error
from mfgbench.report import figures, leaderboard_csv, leaderboard_markdown, leaderboard_rows, load_trials

SMALL = {"predator-prey-capture-v0": {"size": 5, "horizon": 5}, "traffic-3type-v0": {"length": 4, "horizon": 4},
         "sir-types-v0": {"stages": 2, "horizon": 6}}
LEARNERS = ("fictitious-play", "mirror-descent")


@pytest.fixture(scope="module")
def types_suite(tmp_path_factory):
    """The three heterogeneous games (small instances), two learners, and one one-population game;
    mirror descent on two seeds."""
    tmp = tmp_path_factory.mktemp("types")
    trials = [TrialSpec(game, learner, seed, 3, params) for game, params in SMALL.items() for learner in LEARNERS
              for seed in ((0, 1) if learner == "mirror-descent" else (0,))]
    trials.append(TrialSpec("sis-v0", "fictitious-play", 0, 3))
    run_suite(Suite("types", trials), out=tmp, workers=1, quiet=True)
    return tmp / "types", tmp / "references"


def _files(folder, game, learner):
    """Per seed, the final checkpoint as the trial files hold it (summary and last metrics line)."""
    out = []
    for trial in sorted(folder.glob(f"{game}__{learner}__*")):
        summary = json.loads((trial / "summary.json").read_text())
        last = json.loads((trial / "metrics.jsonl").read_text().splitlines()[-1])
        assert summary["final"]["per_population"] == last["per_population"]
        out.append((summary, last))
    return out


def _row(rows, game, kind, learner=None):
    return next(r for r in rows if r["game"] == game and r["row"] == kind
                and (learner is None or r["learner"] == learner))


# ----------------------------------------------------------------------------- leaderboard
def test_per_type_values_are_the_trial_files_per_population_numbers(types_suite):
    folder, _ = types_suite
    rows = leaderboard_rows(load_trials(folder))
    for game, params in SMALL.items():
        names = [p.name for p in mb.make(game, **params).populations]
        for learner in LEARNERS:
            row = _row(rows, game, "learner", learner)
            assert [e["population"] for e in row["per_type"]] == names
            finals = [last for _, last in _files(folder, game, learner)]
            assert len(finals) == (2 if learner == "mirror-descent" else 1)
            for k, entry in enumerate(row["per_type"]):
                for metric, key in (("exploitability", "per_population"), ("tv", "tv_per_population"),
                                    ("w1", "w1_per_population")):
                    assert entry[f"{metric}_mean"] == pytest.approx(np.mean([f[key][k] for f in finals]), rel=1e-12)
            # the game's exploitability is the sum of its types', its TV and W1 their mean
            assert sum(e["exploitability_mean"] for e in row["per_type"]) == pytest.approx(row["exploitability_mean"],
                                                                                           rel=1e-9)
            assert np.mean([e["tv_mean"] for e in row["per_type"]]) == pytest.approx(row["tv_mean"], rel=1e-9)
            assert np.mean([e["w1_mean"] for e in row["per_type"]]) == pytest.approx(row["w1_mean"], rel=1e-9)


def test_per_type_baseline_and_reference_match_independent_evaluations(types_suite):
    folder, cache = types_suite
    rows = leaderboard_rows(load_trials(folder))
    from mfgbench.reference import reference
    for game_id, params in SMALL.items():
        game = mb.make(game_id, **params)
        ref = reference(game, cache_path=cache)
        uniform = mb.uniform_policy(game)
        ev = mb.evaluate(game, uniform)
        err = distribution_error(game, ev.flow, ref.flow)
        base = _row(rows, game_id, "baseline")
        for k, entry in enumerate(base["per_type"]):
            assert entry["exploitability_mean"] == pytest.approx(ev.per_population[k], rel=1e-12)
            assert entry["tv_mean"] == pytest.approx(err.tv_per_population[k], rel=1e-12)
            assert entry["w1_mean"] == pytest.approx(err.w1_per_population[k], rel=1e-9)
            assert entry["x_below_uniform"] == pytest.approx(1.0)
        own = mb.evaluate(game, ref.policy).per_population   # the reference policy, evaluated here from scratch
        for k, entry in enumerate(_row(rows, game_id, "reference")["per_type"]):
            assert entry["exploitability_mean"] == pytest.approx(own[k], rel=1e-6, abs=1e-12)
            assert entry["tv_mean"] == 0.0 and entry["w1_mean"] == 0.0


def test_markdown_and_csv_have_a_per_type_table_named_by_the_types(types_suite):
    folder, _ = types_suite
    rows = leaderboard_rows(load_trials(folder))
    board = leaderboard_markdown(rows)
    sections = {s.split("\n", 1)[0]: s for s in board.split("\n## ")[1:]}
    header = ("| learner | cars: exploitability | cars: TV | cars: W1 | trucks: exploitability | trucks: TV "
              "| trucks: W1 | motorcycles: exploitability | motorcycles: TV | motorcycles: W1 |")
    assert header in sections["traffic-3type-v0"]
    assert "| learner | young: exploitability |" in sections["sir-types-v0"]
    assert "| learner | predators: exploitability |" in sections["predator-prey-capture-v0"]
    fp = _row(rows, "sir-types-v0", "learner", "fictitious-play")
    line = next(s for s in sections["sir-types-v0"].split("**Per type**")[1].splitlines()
                if s.startswith("| fictitious-play |"))
    assert line.split(" | ")[1] == f"{fp['per_type'][0]['exploitability_mean']:.3g}"
    # a one-population game keeps its table unchanged: no per-type table, no per-type CSV line
    assert "Per type" not in sections["sis-v0"]
    lines = list(csv.DictReader(io.StringIO(leaderboard_csv(rows))))
    assert all(r["population"] == "" for r in lines if r["game"] == "sis-v0")
    typed = [r for r in lines if r["game"] == "traffic-3type-v0" and r["learner"] == "mirror-descent"
             and r["population"]]
    assert [r["population"] for r in typed] == ["cars", "trucks", "motorcycles"]
    md = _row(rows, "traffic-3type-v0", "learner", "mirror-descent")
    for r, entry in zip(typed, md["per_type"]):
        assert float(r["exploitability_mean"]) == entry["exploitability_mean"]
        assert float(r["w1_mean"]) == entry["w1_mean"] and r["samples"] == ""


def test_a_type_worse_than_its_uniform_policy_is_flagged(types_suite):
    folder, _ = types_suite
    trials = load_trials(folder)
    for t in trials:        # fictitious play's prey 3x more exploitable than the uniform prey
        if t["game"] == "predator-prey-capture-v0" and t["learner"] == "fictitious-play":
            t["final"]["per_population"][1] = 3 * t["reference"]["baseline_per_population"][1]
    rows = leaderboard_rows(trials)
    prey = _row(rows, "predator-prey-capture-v0", "learner", "fictitious-play")["per_type"][1]
    assert prey["x_below_uniform"] == pytest.approx(1 / 3) and prey["worse_than_uniform"] is True
    table = leaderboard_markdown(rows).split("## predator-prey-capture-v0")[1].split("**Per type**")[1]
    line = next(s for s in table.splitlines() if s.startswith("| fictitious-play |"))
    assert "(worse than uniform)**" in line.split(" | ")[4]


# ----------------------------------------------------------------------------- figures
def _blocks(fig):
    """Per type: (its block title, its grid or map images' axes, its bar axes, its hatched collections)."""
    out = []
    for block in fig.subfigs:
        title = " ".join(t.get_text() for t in block.texts)
        maps = [ax for ax in block.axes if ax.get_images() and ax.get_label() != "<colorbar>"]
        bars = [ax for ax in block.axes if ax.patches and not ax.get_images()]
        hatched = [c for ax in maps for c in ax.collections if c.get_hatch()]
        out.append((title, maps, bars, hatched))
    return out


def _flows(folder, game, learner):
    with np.load(next(folder.glob(f"{game}__{learner}__0")) / "flow.npz") as data:
        count = len([f for f in data.files if f.startswith("flow_")])
        return [data[f"flow_{k}"] for k in range(count)], [data[f"reference_{k}"] for k in range(count)]


def test_grid_types_are_drawn_on_their_cells_with_blank_cells_hatched_and_off_grid_states_labelled(types_suite):
    folder, _ = types_suite
    trials = load_trials(folder)
    for game_id in ("predator-prey-capture-v0", "traffic-3type-v0"):
        game = mb.make(game_id, **SMALL[game_id])
        fig = figures.flow_figure(game_id, trials)
        columns = 2 + 1                                    # two learners and the reference
        flows, reference = _flows(folder, game_id, "fictitious-play")
        blocks = _blocks(fig)
        assert len(blocks) == game.n_populations
        for k, (pop, (title, maps, bars, hatched)) in enumerate(zip(game.populations, blocks)):
            assert pop.name in title
            cells = np.asarray(pop.cells)
            shape = pop.grid_shape
            n_blank = int(np.prod(shape)) - int((cells >= 0).sum())
            assert maps and len(maps) % columns == 0
            for ax in maps:
                image = np.ma.filled(ax.get_images()[0].get_array(), np.nan)
                assert image.shape == shape
                assert np.isfinite(image).sum() == (cells >= 0).sum()   # one drawn cell per state with a cell
            # the cells that hold no state are hatched (a wall, the safe zone for predators, a truck's third lane)
            assert [len(c.get_paths()) for c in hatched] == ([n_blank] * len(maps) if n_blank else [])
            # a state's mass is drawn on its own cell: the reference column's last snapshot
            ref_ax = maps[-1]
            step = int(maps[-columns].get_ylabel().split("t = ")[1].split("\n")[0])   # the row's label
            image = np.ma.filled(ref_ax.get_images()[0].get_array(), np.nan)
            on = np.flatnonzero(cells >= 0)
            rows, cols = np.divmod(cells[on], shape[1])
            np.testing.assert_allclose(image[rows, cols], reference[k][step, on], rtol=1e-12)
            # states with no cell: labelled bars beside the grid, one per column, the reference's in black
            off = np.flatnonzero(cells < 0)
            assert len(bars) == (len(maps) // columns if off.size else 0)
            if off.size:
                assert [t.get_text() for t in bars[-1].get_xticklabels()] == [pop.state_labels[s] for s in off]
                heights = [p.get_height() for p in bars[-1].patches]
                assert heights[0] == pytest.approx(flows[k][step, off[0]], rel=1e-12)
                assert heights[-1] == pytest.approx(reference[k][step, off[0]], rel=1e-12)
            # learner and reference share one colour scale per type, shown by the block's colourbar
            assert len({(ax.get_images()[0].norm.vmin, ax.get_images()[0].norm.vmax) for ax in maps}) == 1
        assert sum(ax.get_label() == "<colorbar>" for ax in fig.axes) == game.n_populations
        trucks = game.populations[1] if game_id == "traffic-3type-v0" else None
        if trucks is not None:   # trucks keep to the two right lanes: the whole third lane (row 2) is blank
            blank_rows = {int(round(p.vertices[:, 1].mean())) for p in blocks[1][3][0].get_paths()}
            assert trucks.grid_shape == (3, 4) and blank_rows == {2}


def test_graph_types_are_labelled_state_by_time_maps(types_suite):
    folder, _ = types_suite
    game = mb.make("sir-types-v0", **SMALL["sir-types-v0"])
    fig = figures.flow_figure("sir-types-v0", load_trials(folder))
    learner, reference = _flows(folder, "sir-types-v0", "fictitious-play")
    other, _ = _flows(folder, "sir-types-v0", "mirror-descent")
    for k, (pop, (title, maps, bars, hatched)) in enumerate(zip(game.populations, _blocks(fig))):
        assert pop.name in title and not bars and not hatched
        assert len(maps) == 3
        labels = [t.get_text() for t in maps[0].get_yticklabels()]
        assert labels == list(pop.state_labels)                      # a named row per state
        assert "time" in maps[0].get_xlabel()
        image = maps[-1].get_images()[0].get_array()
        np.testing.assert_array_equal(image, reference[k].T)         # states by time
        # one colour scale for the type's learners and reference, its own: the top of its own flows
        assert {ax.get_images()[0].norm.vmax for ax in maps} == {max(learner[k].max(), other[k].max(),
                                                                     reference[k].max())}


def test_flow_figures_are_written_as_png(types_suite):
    folder, _ = types_suite
    for game in SMALL:
        assert (folder / f"flows__{game}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_learner_far_above_the_reference_saturates_a_clipped_scale(tmp_path, monkeypatch):
    """A learner piling 5 times the reference's largest mass on one cell: the scale ends at CLIP times
    the reference's, the learner's cell takes the top colour, and the colourbar says it is clipped."""
    from mfgbench.bench import store
    T, rng = 3, np.random.default_rng(0)
    reference = rng.dirichlet(np.ones(6) * 50, T + 1)
    learner = reference.copy()
    learner[:, 0] = 5 * reference.max()
    learner /= learner.sum(axis=1, keepdims=True)
    folder = tmp_path / "spike__fictitious-play__0"
    store.write_npz_atomic(folder / "flow.npz", flow_0=learner, reference_0=reference)
    trial = {"game": "spike", "learner": "fictitious-play", "seed": 0, "status": "ok", "path": str(folder),
             "history": [], "kind": "finite"}
    monkeypatch.setattr(figures, "geometries", lambda t: [figures.Geometry((2, 3), name="a")])
    fig = figures.flow_figure("spike", [trial])
    images = [im for ax in fig.axes if ax.get_label() != "<colorbar>" for im in ax.get_images()]
    steps = [round(f * T) for f in figures._snapshots(T)]
    assert len({im.norm.vmax for im in images}) == 1
    assert images[0].norm.vmax == pytest.approx(figures.CLIP * reference[steps].max(), rel=1e-12)
    assert learner[steps, 0].min() > images[0].norm.vmax
    colourbar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    assert "clipped" in colourbar.get_ylabel()
