"""Reports of a suite folder: the leaderboard (Markdown and CSV) and figures (PNG).

The leaderboard has, per game, one row per learner: final exploitability and distribution
error (TV, W1) as mean ± std over seeds, samples, learner wall time, and how many seeds
finished or failed (a failed trial shows its error). Two rows frame the learners:

- the **baseline**, what no learning scores: the uniform policy (finite and stationary
  games), or the zero control on a continuous game played by a neural learner, as each
  trial recorded it (``summary["reference"]["baseline_*"]``, see ``mfgbench.trial``);
- the **reference**: its own exploitability, certified or not, and the method that found it.

The column "× below uniform" is the baseline's exploitability divided by the row's: 10
means ten times less exploitable than playing uniformly; below 1 the learner is worse than
not learning at all, and the row says so. Rows are sorted by exploitability (lower is
better), so the baseline row sits among the learners it beats and those it does not.

A spread over seeds below ``ROUND_OFF`` of the value (a deterministic learner's seeds agree
up to round-off) is shown as ± 0. Results written before the baseline was recorded report
"-" in its place.

**Per type.** A game with several populations (types, possibly on their own state spaces) also
gets, under its table, each row's exploitability, TV and W1 per type, named by the types' names
(the game's exploitability is the sum of its types', its TV and W1 their mean): from the
checkpoints' ``per_population``, ``tv_per_population``, ``w1_per_population``, the baseline's
``baseline_*_per_population`` and the reference's ``per_population``. In the CSV these are extra
rows with the type's name in the column ``population`` (empty on the rows of the whole game).

**Which trials.** A run lists its suite's trials in the folder's ``manifest.json``
(``mfgbench.bench.store.write_manifest``) and the report shows those only: a trial folder left
by an earlier run with other games, budgets or configs, or holding the result of another spec
than the one listed, is not shown; the leaderboard's header says which trials are shown and what
was left out. A folder without a manifest (results written before runs recorded one) shows
every finished trial folder, and says so.

Figures: ``mfgbench.report.figures``.
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from mfgbench.bench import store

ROUND_OFF = 1e-9
"""Seeds whose values differ by less than this fraction of the value agree: their spread is ± 0."""


def load_trials(folder, manifest=None) -> list[dict]:
    """The finished trials of the suite in ``folder``, each its summary with ``history`` and ``path``
    added: those ``manifest`` lists (default: the folder's ``manifest.json``, written by the last
    run into it) whose folder holds a result with the listed key, or every finished trial folder
    when the folder has no manifest or ``manifest`` is False."""
    folder = Path(folder)
    if manifest is None:
        manifest = store.read_manifest(folder)
    if manifest:
        keys = {t["name"]: t.get("key") for t in manifest["trials"] if Path(str(t["name"])).name == t["name"]}
        subs = [folder / name for name in sorted(keys)]
    else:
        keys, subs = None, sorted(p for p in folder.iterdir() if p.is_dir())
    trials = []
    for sub in subs:
        summary = store.finished_summary(sub) if sub.is_dir() else None
        listed_key = keys.get(sub.name) if keys is not None else None
        if summary is None or (listed_key is not None and summary.get("key") != listed_key):
            continue   # not finished, or an earlier run's result for another spec under the same name
        summary["path"] = str(sub)
        metrics = sub / "metrics.jsonl"
        summary["history"] = store.read_jsonl(metrics) if summary.get("status") == "ok" and metrics.exists() else []
        trials.append(summary)
    return trials


def selection(folder, manifest, trials) -> dict:
    """What a report on ``folder`` shows, given the ``manifest`` its trials were loaded with (a dict;
    None: the folder has none; False: every folder was asked for): ``manifest`` (or None),
    ``every`` (every folder was asked for), ``shown`` (trial names), ``missing`` (listed trials with
    no finished result for their spec: interrupted, still running) and ``left_out`` (finished trial
    folders not listed)."""
    folder = Path(folder)
    finished = {p.name for p in folder.iterdir() if p.is_dir() and (p / "summary.json").exists()}
    shown = [Path(t["path"]).name for t in trials]
    listed = [t["name"] for t in manifest["trials"]] if manifest else []
    return {"manifest": manifest or None, "every": manifest is False, "shown": shown,
            "missing": [n for n in listed if n not in set(shown)],
            "left_out": sorted(finished - set(listed)) if manifest else []}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _selection_note(sel: dict) -> str:
    """The leaderboard header's paragraph on which trials it shows."""
    manifest, n = sel["manifest"], len(sel["shown"])
    if sel["every"]:
        return f"**Trials shown:** every finished trial folder here ({n}), as asked (`report --all`)."
    if manifest is None:
        return (f"**Trials shown:** every finished trial folder here ({n}). This folder has no `manifest.json` "
                "(where a run records its suite; older results have none), so trials of earlier runs with other "
                "games, budgets or configs may be mixed in.")
    specs = manifest["trials"]
    learners = sorted({t.get("learner", "?") + (f" [{t['tag']}]" if t.get("tag") else "") for t in specs})
    seeds = sorted({t.get("seed") for t in specs if isinstance(t.get("seed"), int)})
    budgets = sorted({t.get("iterations") for t in specs if isinstance(t.get("iterations"), int)})
    budget = (f"{budgets[0]}" if len(budgets) == 1 else f"{budgets[0]}-{budgets[-1]}") if budgets else "?"
    out = (f"**Trials shown:** the {_count(len(specs), 'trial')} of suite `{manifest.get('suite', '?')}` as last "
           f"run into this folder (started {manifest.get('started', '?')}, listed in `manifest.json`): "
           f"{_count(len({t.get('game') for t in specs}), 'game')}; "
           f"{'learner' if len(learners) == 1 else 'learners'} {', '.join(learners)}; "
           f"{'seed' if len(seeds) == 1 else 'seeds'} {', '.join(map(str, seeds))}; {budget} iterations.")
    if sel["missing"]:
        names = ", ".join(sel["missing"][:5]) + (", ..." if len(sel["missing"]) > 5 else "")
        one = len(sel["missing"]) == 1
        out += (f" {len(sel['missing'])} of them {'has' if one else 'have'} no finished result for this spec "
                f"(interrupted, or still running), and {'is' if one else 'are'} not shown: {names}.")
    if sel["left_out"]:
        out += (f" {_count(len(sel['left_out']), 'other trial folder')} here, left by earlier runs (other games, "
                "budgets or configs), not shown (`python -m mfgbench report --all` shows every folder).")
    return out


def _num(x):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return math.nan
    return x


def mean_std(values) -> tuple:
    """Mean and sample std of the finite values; std is nan for one value, and 0.0 when the
    values agree to ``ROUND_OFF`` of their size (identical seeds, up to round-off)."""
    vals = np.array([v for v in map(_num, values) if math.isfinite(v)])
    if vals.size == 0:
        return math.nan, math.nan
    mean = float(vals.mean())
    if vals.size == 1:
        return mean, math.nan
    if np.ptp(vals) <= ROUND_OFF * np.abs(vals).max():
        return mean, 0.0
    return mean, float(vals.std(ddof=1))


def _label(t) -> str:
    return t["learner"] + (f" [{t['tag']}]" if t.get("tag") else "")


def _has_reference(t) -> bool:
    return "certified" in (t.get("reference") or {})


def _certified(trials):
    """True if every trial's reference is certified, False if one is not, None without references."""
    if not trials or not all(_has_reference(t) for t in trials):
        return None
    return all(t["reference"].get("certified", False) for t in trials)


def _ratio(baseline, value) -> float:
    """How many times ``value`` is below ``baseline`` (inf when value is 0 or round-off below it)."""
    if not (math.isfinite(baseline) and math.isfinite(value)):
        return math.nan
    return baseline / value if value > 0 else math.inf


TYPE_METRICS = {"exploitability": "per_population", "tv": "tv_per_population", "w1": "w1_per_population",
                "pde_l1": "pde_l1_per_population"}
"""Per-type columns, and the per-population list of a checkpoint each comes from."""


def _at(values, k: int) -> float:
    """Entry k of a per-population list (nan when the list or the entry was not recorded)."""
    return _num(values[k]) if isinstance(values, (list, tuple)) and k < len(values) else math.nan


def _per_type(names, finals, baselines, flag: bool) -> list:
    """Per type k (named ``names[k]``): each metric's mean ± std over ``finals`` (dicts of
    per-population lists, one per seed) and the ratio of the ``baselines``' (per-population
    exploitability lists) to it; ``flag`` says whether to flag a type worse than its baseline."""
    out = []
    for k, name in enumerate(names):
        entry = {"population": name}
        for metric, key in TYPE_METRICS.items():
            entry[f"{metric}_mean"], entry[f"{metric}_std"] = mean_std(_at(f.get(key), k) for f in finals)
        ratio = _ratio(mean_std(_at(b, k) for b in baselines)[0], entry["exploitability_mean"])
        entry["x_below_uniform"] = ratio
        entry["worse_than_uniform"] = bool(ratio < 1) if flag and math.isfinite(ratio) else None
        out.append(entry)
    return out


def type_names(trials) -> list:
    """The names of the populations (types) of the game ``trials`` played, [] for a one-population
    game: as the game names them (rebuilt from a trial's summary), else ``population k``; made
    unique by their index when two share a name."""
    ok = [t for t in trials if t.get("status") == "ok"]
    if not ok:
        return []
    first = ok[0]
    count = int(first.get("n_populations") or len((first.get("final") or {}).get("per_population") or [0]))
    if count <= 1:
        return []
    from mfgbench.report.figures import geometries   # rebuilds the game (cheap, cached)
    geo = geometries(first) or []
    names = [str(geo[k].name) if k < len(geo) and geo[k].name else f"population {k}" for k in range(count)]
    return [f"{n} ({k})" if names.count(n) > 1 else n for k, n in enumerate(names)]


def _learner_row(game, label, ts, names=()) -> dict:
    ok = [t for t in ts if t.get("status") == "ok"]
    finals = [t["final"] for t in ok]
    stats = {key: mean_std(f.get(key) for f in finals)
             for key in ("exploitability", "tv", "w1", "pde_l1", "samples", "wall_time")}
    baseline = mean_std((t.get("reference") or {}).get("baseline_exploitability") for t in ok)[0]
    ratio = _ratio(baseline, stats["exploitability"][0])
    errors = sorted({t.get("error", "") for t in ts if t.get("status") != "ok"})
    return {"game": game, "learner": label, "row": "learner", "seeds": len(ok), "failed": len(ts) - len(ok),
            "exploitability_mean": stats["exploitability"][0], "exploitability_std": stats["exploitability"][1],
            "tv_mean": stats["tv"][0], "tv_std": stats["tv"][1], "w1_mean": stats["w1"][0], "w1_std": stats["w1"][1],
            "pde_l1_mean": stats["pde_l1"][0], "pde_l1_std": stats["pde_l1"][1], "samples": stats["samples"][0],
            "seconds": stats["wall_time"][0], "iterations": max((f.get("iteration", 0) for f in finals), default=0),
            "reference_certified": _certified(ok), "x_below_uniform": ratio,
            "worse_than_uniform": bool(ratio < 1) if math.isfinite(ratio) else None,
            "error": "; ".join(e for e in errors if e)[:200],
            "per_type": _per_type(names, finals, [(t.get("reference") or {}).get("baseline_per_population")
                                                  for t in ok], flag=True)}


def _frame_row(game, kind, label, exploitability, tv, w1, baseline, certified=None, method="", per_type=()) -> dict:
    """A baseline or reference row (one value, no seeds)."""
    return {"game": game, "learner": label, "row": kind, "seeds": 0, "failed": 0,
            "exploitability_mean": exploitability, "exploitability_std": math.nan, "tv_mean": tv, "tv_std": math.nan,
            "w1_mean": w1, "w1_std": math.nan, "pde_l1_mean": math.nan, "pde_l1_std": math.nan,
            "samples": math.nan, "seconds": math.nan, "iterations": 0, "reference_certified": certified,
            "x_below_uniform": _ratio(baseline, exploitability), "worse_than_uniform": None, "error": "",
            "method": method, "per_type": list(per_type)}


def _frame_rows(game, trials, names=()) -> list:
    """The game's baseline and reference rows, from what its trials recorded (one pair per
    distinct value, labelled by tag when the game's variants differ)."""
    ok = sorted((t for t in trials if t.get("status") == "ok"), key=lambda t: t.get("path", ""))
    rows, seen = [], set()
    for t in ok:
        ref = t.get("reference") or {}
        base = _num(ref.get("baseline_exploitability"))
        key = (ref.get("baseline"), base, _num(ref.get("exploitability")), ref.get("certified"))
        if key in seen:
            continue
        seen.add(key)
        suffix = f" [{t['tag']}]" if t.get("tag") and len(seen) > 1 else ""
        name = ref.get("baseline") or ("zero control" if t.get("kind") == "continuous" else "uniform policy")
        baseline_types = ref.get("baseline_per_population")
        recorded = {"per_population": baseline_types, "tv_per_population": ref.get("baseline_tv_per_population"),
                    "w1_per_population": ref.get("baseline_w1_per_population")}
        rows.append(_frame_row(game, "baseline", name + suffix, base, _num(ref.get("baseline_tv")),
                               _num(ref.get("baseline_w1")), base,
                               per_type=_per_type(names, [recorded], [baseline_types], flag=False)))
        if _has_reference(t):
            exact = {"per_population": ref.get("per_population"), "tv_per_population": [0.0] * len(names),
                     "w1_per_population": [0.0] * len(names)}
            rows.append(_frame_row(game, "reference", "reference" + suffix, _num(ref.get("exploitability")),
                                   0.0, 0.0, base, certified=bool(ref["certified"]), method=str(ref.get("method", "")),
                                   per_type=_per_type(names, [exact], [baseline_types], flag=False)))
    return rows


def leaderboard_rows(trials) -> list[dict]:
    """Per game: the baseline row, the reference row and one row per learner (``row`` says which),
    each with its per-type values (``per_type``: one dict per population, [] for one population)."""
    groups = defaultdict(list)
    for t in trials:
        groups[(t["game"], _label(t))].append(t)
    rows = []
    for game in sorted({g for g, _ in groups}):
        played = [t for t in trials if t["game"] == game]
        names = type_names(played)
        rows += _frame_rows(game, played, names)
        rows += [_learner_row(game, label, ts, names) for (g, label), ts in sorted(groups.items()) if g == game]
    return rows


def _fmt(x, fmt="{:.3g}") -> str:
    return fmt.format(x) if math.isfinite(x) else "-"


def _pm(mean, std, fmt="{:.3g}"):
    if not math.isfinite(mean):
        return "-"
    if not math.isfinite(std):
        return fmt.format(mean)
    return fmt.format(mean) + " ± " + ("0" if std == 0 else fmt.format(std))


def _ratio_cell(r) -> str:
    ratio = r["x_below_uniform"]
    if math.isnan(ratio):
        return "-"
    text = "∞" if math.isinf(ratio) else f"{ratio:#.3g}"
    return f"**{text} (worse than uniform)**" if r["worse_than_uniform"] else text


def _status(r) -> str:
    if r["row"] == "baseline":
        return "no learning" if math.isfinite(r["exploitability_mean"]) else "not recorded (older results)"
    if r["row"] == "reference":
        certified = "certified" if r["reference_certified"] else "NOT certified"
        return certified + (f" ({r['method']})" if r["method"] else "")
    status = "ok" if not r["failed"] else f"{r['failed']} failed: {r['error']}"
    if r["seeds"] and r["reference_certified"] is None:
        status += " (no reference)"
    elif r["seeds"] and not r["reference_certified"]:
        status += " (reference not certified)"
    if r["worse_than_uniform"]:
        status += "; WORSE THAN UNIFORM"
    return status


def _sort_key(r):
    ex = _num(r["exploitability_mean"])
    return (0, ex) if math.isfinite(ex) else (1, 0.0)


def _type_cell(entry, metric) -> str:
    cell = _pm(entry[f"{metric}_mean"], entry[f"{metric}_std"])
    return f"**{cell} (worse than uniform)**" if metric == "exploitability" and entry["worse_than_uniform"] else cell


def _per_type_table(game_rows, with_pde) -> list:
    """The per-type sub-table of a game with several populations (Markdown lines), rows in the
    order of the game's table."""
    names = [e["population"] for e in game_rows[0]["per_type"]]
    metrics = [("exploitability", "exploitability"), ("tv", "TV"), ("w1", "W1")] + \
        ([("pde_l1", "L1 to PDE")] if with_pde else [])
    out = ["**Per type** (each type's own exploitability, and the TV and W1 distances of its flow to the "
           "reference's; the game's exploitability is their sum, its TV and W1 their mean):", "",
           "| learner | " + " | ".join(f"{name}: {head}" for name in names for _, head in metrics) + " |",
           "|---|" + "---|" * (len(names) * len(metrics))]
    for r in sorted(game_rows, key=_sort_key):
        learner = r["learner"] if r["row"] == "learner" else f"*{r['learner']}*"
        out.append(f"| {learner} | " + " | ".join(_type_cell(e, m) for e in r["per_type"] for m, _ in metrics) + " |")
    return out + [""]


def leaderboard_markdown(rows, selection=None) -> str:
    """The leaderboard as Markdown; ``selection`` (see ``selection``) adds which trials it shows."""
    out = ["# Leaderboard", "",
           "Final scores per (game, learner): mean ± std over seeds (± 0: the seeds agree to round-off). "
           "Exploitability is exact; TV and W1 are distances of the learner's flow to the reference flow, "
           "averaged over time. Each game also shows the *uniform policy* (no learning; on a continuous game "
           "played by a neural learner, the *zero control*) and the *reference* itself, certified or not. "
           "\"× below uniform\" is the baseline's exploitability divided by the row's: below 1, the learner "
           "is worse than not learning. Rows are sorted by exploitability, lower is better. "
           "On a continuous game played by a neural learner, exploitability is that of the actor's feedback "
           "evaluated on the PDE grid, and TV (half the L1) and W1 compare the particle density with the PDE "
           "equilibrium density; the reference row is the PDE equilibrium's own feedback scored the same way.",
           ""]
    if selection is not None:
        out += [_selection_note(selection), ""]
    for game in sorted({r["game"] for r in rows}):
        game_rows = [r for r in rows if r["game"] == game]
        with_pde = any(math.isfinite(_num(r["pde_l1_mean"])) for r in game_rows)
        pde_head, pde_rule = (" L1 to PDE density |", "---|") if with_pde else ("", "")
        out += [f"## {game}", "",
                "| learner | seeds | exploitability | × below uniform | TV to reference | W1 to reference |" + pde_head
                + " samples | time (s) | iterations | status |",
                "|---|---|---|---|---|---|" + pde_rule + "---|---|---|---|"]
        for r in sorted(game_rows, key=_sort_key):
            learner = r["learner"] if r["row"] == "learner" else f"*{r['learner']}*"
            seeds = str(r["seeds"]) if r["row"] == "learner" else "-"
            iterations = str(r["iterations"]) if r["row"] == "learner" else "-"
            out.append(f"| {learner} | {seeds} | {_pm(r['exploitability_mean'], r['exploitability_std'])} | "
                       f"{_ratio_cell(r)} | {_pm(r['tv_mean'], r['tv_std'])} | {_pm(r['w1_mean'], r['w1_std'])} | "
                       + (f"{_pm(r['pde_l1_mean'], r['pde_l1_std'])} | " if with_pde else "")
                       + f"{_fmt(r['samples'])} | {_fmt(r['seconds'])} | {iterations} | {_status(r)} |")
        out.append("")
        if game_rows[0]["per_type"]:
            out += _per_type_table(game_rows, with_pde)
    return "\n".join(out)


CSV_FIELDS = ["game", "learner", "seeds", "failed", "exploitability_mean", "exploitability_std", "tv_mean", "tv_std",
              "w1_mean", "w1_std", "pde_l1_mean", "pde_l1_std", "samples", "seconds", "iterations",
              "reference_certified", "error", "row", "x_below_uniform", "worse_than_uniform", "population"]


def leaderboard_csv(rows) -> str:
    """The leaderboard as CSV: one line per row of the Markdown tables, each followed, on a game
    with several populations, by one line per type (``population`` names the type; it is empty on
    the lines of the whole game; samples and time belong to trials, not types: empty)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for r in rows:
        writer.writerow({**{k: r.get(k, "") for k in CSV_FIELDS}, "population": ""})
        for entry in r["per_type"]:
            writer.writerow({**{k: r.get(k, "") for k in CSV_FIELDS}, "samples": "", "seconds": "", **entry})
    return buf.getvalue()


REPORT_FIGURES = ("exploitability_vs_*.png", "flows__*.png", "pde_density__*.png")
"""The names of the figures a report writes: those it does not rewrite are an earlier report's."""


def write_report(folder, quiet: bool = True, manifest=None) -> dict:
    """Write leaderboard.md, leaderboard.csv and the figures for the suite in ``folder``: the trials
    ``manifest`` lists (default the folder's ``manifest.json``; False: every trial folder, see
    ``load_trials``). Figures of an earlier report that this one does not rewrite (games no
    longer in the suite) are removed."""
    from mfgbench.report import figures
    folder = Path(folder)
    if manifest is None:
        manifest = store.read_manifest(folder)
    trials = load_trials(folder, manifest if manifest else False)
    rows = leaderboard_rows(trials)
    shown = selection(folder, manifest, trials)
    store.write_text_atomic(folder / "leaderboard.md", leaderboard_markdown(rows, shown))
    store.write_text_atomic(folder / "leaderboard.csv", leaderboard_csv(rows))
    written = figures.write_figures(folder, trials)
    for pattern in REPORT_FIGURES:
        for stale in folder.glob(pattern):
            if str(stale) not in written:
                stale.unlink(missing_ok=True)
    if not quiet:
        note = (f"{len(trials)} trials of suite {manifest.get('suite')}" if manifest
                else f"every trial folder ({len(trials)})")
        print(f"report: {folder / 'leaderboard.md'} ({note}, {len(rows)} rows), {len(written)} figures")
    return {"rows": rows, "figures": written, "selection": shown}
