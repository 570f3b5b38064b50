"""Reports of a suite folder: the leaderboard (Markdown and CSV) and figures (PNG).

The leaderboard has one row per (game, learner): final exploitability and distribution
error (TV, W1) as mean ± std over seeds, samples, learner wall time, and how many seeds
finished or failed (a failed trial shows its error). Figures: exploitability against
iterations and against samples (log-log, one panel per game, mean over seeds with a
min-max band), and learner flow against reference flow over time (heatmaps, one per
population) for every game.
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from mfgbench.bench import store


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


def _mean_std(values):
    vals = np.array([v for v in map(_num, values) if math.isfinite(v)])
    if vals.size == 0:
        return math.nan, math.nan
    return float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else 0.0


def _certified(trials):
    """True if every trial's reference is certified, False if one is not, None without references."""
    refs = [t.get("reference") or {} for t in trials]
    if not refs or not all(refs):
        return None
    return all(r.get("certified", False) for r in refs)


def leaderboard_rows(trials) -> list[dict]:
    groups = defaultdict(list)
    for t in trials:
        groups[(t["game"], t["learner"], t.get("tag", ""))].append(t)
    rows = []
    for (game, learner, tag), ts in sorted(groups.items()):
        ok = [t for t in ts if t.get("status") == "ok"]
        finals = [t["final"] for t in ok]
        ex = _mean_std(f.get("exploitability") for f in finals)
        tv = _mean_std(f.get("tv") for f in finals)
        w1 = _mean_std(f.get("w1") for f in finals)
        samples = _mean_std(f.get("samples") for f in finals)
        secs = _mean_std(f.get("wall_time") for f in finals)
        pde = _mean_std(f.get("pde_l1") for f in finals)
        errors = sorted({t.get("error", "") for t in ts if t.get("status") != "ok"})
        rows.append({"game": game, "learner": learner + (f" [{tag}]" if tag else ""), "seeds": len(ok),
                     "failed": len(ts) - len(ok), "exploitability_mean": ex[0], "exploitability_std": ex[1],
                     "tv_mean": tv[0], "tv_std": tv[1], "w1_mean": w1[0], "w1_std": w1[1],
                     "pde_l1_mean": pde[0], "pde_l1_std": pde[1], "samples": samples[0], "seconds": secs[0],
                     "iterations": max((f.get("iteration", 0) for f in finals), default=0),
                     "reference_certified": _certified(ok), "error": "; ".join(e for e in errors if e)[:200]})
    return rows


def _pm(mean, std, fmt="{:.3g}"):
    if not math.isfinite(mean):
        return "-"
    return fmt.format(mean) + (" ± " + fmt.format(std) if math.isfinite(std) and std > 0 else "")


def leaderboard_markdown(rows) -> str:
    out = ["# Leaderboard", "",
           "Final scores per (game, learner): mean ± std over seeds. Exploitability is exact; "
           "TV and W1 are distances of the learner's flow to the certified reference flow, averaged over time. "
           "On a continuous game played by a neural learner, exploitability is that of the actor's feedback "
           "evaluated on the PDE grid, and TV (half the L1) and W1 compare the particle density with the PDE "
           "equilibrium density.",
           ""]
    for game in sorted({r["game"] for r in rows}):
        game_rows = [r for r in rows if r["game"] == game]
        with_pde = any(math.isfinite(_num(r["pde_l1_mean"])) for r in game_rows)
        pde_head, pde_rule = (" L1 to PDE density |", "---|") if with_pde else ("", "")
        out += [f"## {game}", "",
                "| learner | seeds | exploitability | TV to reference | W1 to reference |" + pde_head
                + " samples | time (s) | iterations | status |",
                "|---|---|---|---|---|" + pde_rule + "---|---|---|---|"]
        for r in sorted(game_rows, key=lambda r: _num(r["exploitability_mean"])):
            status = "ok" if not r["failed"] else f"{r['failed']} failed: {r['error']}"
            if r["seeds"] and r["reference_certified"] is None:
                status += " (no reference)"
            elif r["seeds"] and not r["reference_certified"]:
                status += " (reference not certified)"
            out.append(f"| {r['learner']} | {r['seeds']} | {_pm(r['exploitability_mean'], r['exploitability_std'])} | "
                       f"{_pm(r['tv_mean'], r['tv_std'])} | {_pm(r['w1_mean'], r['w1_std'])} | "
                       + (f"{_pm(r['pde_l1_mean'], r['pde_l1_std'])} | " if with_pde else "")
                       + f"{_pm(r['samples'], math.nan, '{:.3g}')} | {_pm(r['seconds'], math.nan)} | "
                       f"{r['iterations']} | {status} |")
        out.append("")
    return "\n".join(out)


def leaderboard_csv(rows) -> str:
    buf = io.StringIO()
    fields = ["game", "learner", "seeds", "failed", "exploitability_mean", "exploitability_std", "tv_mean", "tv_std",
              "w1_mean", "w1_std", "pde_l1_mean", "pde_l1_std", "samples", "seconds", "iterations", "reference_certified", "error"]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r[k] for k in fields})
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
