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


def load_trials(folder) -> list[dict]:
    """Every finished trial under ``folder``: its summary with ``history`` and ``path`` added."""
    trials = []
    for sub in sorted(Path(folder).iterdir()):
        if not sub.is_dir():
            continue
        summary = store.finished_summary(sub)
        if summary is None:
            continue
        summary["path"] = str(sub)
        metrics = sub / "metrics.jsonl"
        summary["history"] = store.read_jsonl(metrics) if summary.get("status") == "ok" and metrics.exists() else []
        trials.append(summary)
    return trials


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


def _learner_row(game, label, ts) -> dict:
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
            "error": "; ".join(e for e in errors if e)[:200]}


def _frame_row(game, kind, label, exploitability, tv, w1, baseline, certified=None, method="") -> dict:
    """A baseline or reference row (one value, no seeds)."""
    return {"game": game, "learner": label, "row": kind, "seeds": 0, "failed": 0,
            "exploitability_mean": exploitability, "exploitability_std": math.nan, "tv_mean": tv, "tv_std": math.nan,
            "w1_mean": w1, "w1_std": math.nan, "pde_l1_mean": math.nan, "pde_l1_std": math.nan,
            "samples": math.nan, "seconds": math.nan, "iterations": 0, "reference_certified": certified,
            "x_below_uniform": _ratio(baseline, exploitability), "worse_than_uniform": None, "error": "",
            "method": method}


def _frame_rows(game, trials) -> list:
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
        rows.append(_frame_row(game, "baseline", name + suffix, base, _num(ref.get("baseline_tv")),
                               _num(ref.get("baseline_w1")), base))
        if _has_reference(t):
            rows.append(_frame_row(game, "reference", "reference" + suffix, _num(ref.get("exploitability")),
                                   0.0, 0.0, base, certified=bool(ref["certified"]), method=str(ref.get("method", ""))))
    return rows


def leaderboard_rows(trials) -> list[dict]:
    """Per game: the baseline row, the reference row and one row per learner (``row`` says which)."""
    groups = defaultdict(list)
    for t in trials:
        groups[(t["game"], _label(t))].append(t)
    rows = []
    for game in sorted({g for g, _ in groups}):
        rows += _frame_rows(game, [t for t in trials if t["game"] == game])
        rows += [_learner_row(game, label, ts) for (g, label), ts in sorted(groups.items()) if g == game]
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


def leaderboard_markdown(rows) -> str:
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
    return "\n".join(out)


CSV_FIELDS = ["game", "learner", "seeds", "failed", "exploitability_mean", "exploitability_std", "tv_mean", "tv_std",
              "w1_mean", "w1_std", "pde_l1_mean", "pde_l1_std", "samples", "seconds", "iterations",
              "reference_certified", "error", "row", "x_below_uniform", "worse_than_uniform"]


def leaderboard_csv(rows) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r[k] for k in CSV_FIELDS})
    return buf.getvalue()


def write_report(folder, quiet: bool = True) -> dict:
    """Write leaderboard.md, leaderboard.csv and the figures for the suite in ``folder``."""
    from mfgbench.report import figures
    folder = Path(folder)
    trials = load_trials(folder)
    rows = leaderboard_rows(trials)
    store.write_text_atomic(folder / "leaderboard.md", leaderboard_markdown(rows))
    store.write_text_atomic(folder / "leaderboard.csv", leaderboard_csv(rows))
    written = figures.write_figures(folder, trials)
    if not quiet:
        print(f"report: {folder / 'leaderboard.md'} ({len(rows)} rows), {len(written)} figures")
    return {"rows": rows, "figures": written}
