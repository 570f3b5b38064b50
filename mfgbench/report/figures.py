"""Figures of a suite: exploitability curves (log-log) and flow heatmaps against the reference."""
from __future__ import annotations

import io
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mfgbench.bench import store  # noqa: E402


def _save(fig, path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    store.write_bytes_atomic(path, buf.getvalue())
    return str(path)


def _panels(n):
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def _curves(trials, x_key):
    """(game -> learner -> (x, mean, lo, hi)) over seeds, on the checkpoints all seeds share."""
    by = defaultdict(lambda: defaultdict(list))
    for t in trials:
        if t.get("status") == "ok" and t["history"]:
            by[t["game"]][t["learner"] + (f" [{t['tag']}]" if t.get("tag") else "")].append(t["history"])
    out = {}
    for game, learners in by.items():
        out[game] = {}
        for learner, histories in learners.items():
            n = min(len(h) for h in histories)
            x = np.array([h[i].get(x_key, 0) for i in range(n) for h in histories[:1]], dtype=float)
            y = np.array([[float(h[i]["exploitability"]) for i in range(n)] for h in histories])
            if x_key == "samples" and not np.any(x > 0):
                continue
            out[game][learner] = (x, y.mean(axis=0), y.min(axis=0), y.max(axis=0))
    return out


def exploitability_figure(trials, x_key, path):
    curves = {g: c for g, c in _curves(trials, x_key).items() if c}
    if not curves:
        return None
    fig, axes = _panels(len(curves))
    for ax, (game, learners) in zip(axes, sorted(curves.items())):
        for learner, (x, mean, lo, hi) in sorted(learners.items()):
            keep = (x > 0) & (mean > 0)
            line, = ax.plot(x[keep], mean[keep], label=learner)
            ax.fill_between(x[keep], np.maximum(lo[keep], 1e-300), hi[keep], color=line.get_color(), alpha=0.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(game, fontsize=9)
        ax.set_xlabel("iterations" if x_key == "iteration" else "samples")
        ax.set_ylabel("exploitability")
        ax.legend(fontsize=7)
    fig.suptitle(f"Exploitability against {'iterations' if x_key == 'iteration' else 'samples'} "
                 "(mean over seeds, min-max band)", fontsize=10)
    return _save(fig, path)


def flow_figure(game, trials, path):
    """Heatmaps over (time, state): each learner's final flow (first seed) and the reference."""
    chosen = {}
    for t in sorted(trials, key=lambda t: t["seed"]):
        if t.get("status") == "ok" and t["game"] == game:
            chosen.setdefault(t["learner"], t)
    if not chosen:
        return None
    flows, reference = {}, None
    for learner, t in chosen.items():
        try:
            with np.load(Path(t["path"]) / "flow.npz") as data:
                k_count = len([f for f in data.files if f.startswith("flow_")])
                flows[learner] = [np.atleast_2d(data[f"flow_{k}"]) for k in range(k_count)]
                if reference is None and "reference_0" in data.files:
                    reference = [np.atleast_2d(data[f"reference_{k}"]) for k in range(k_count)]
        except (OSError, KeyError, ValueError):
            continue
    if not flows:
        return None
    n_pop = len(next(iter(flows.values())))
    columns = sorted(flows) + (["reference"] if reference is not None else [])
    fig, axes = plt.subplots(n_pop, len(columns), figsize=(2.6 * len(columns), 2.2 * n_pop), squeeze=False,
                             constrained_layout=True)
    for j, name in enumerate(columns):
        pops = reference if name == "reference" else flows[name]
        for k in range(n_pop):
            ax = axes[k, j]
            # square-root colour scale: the concentrated initial mass would hide the rest
            ax.imshow(pops[k], aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                      norm=matplotlib.colors.PowerNorm(0.5, vmin=0.0, vmax=max(float(pops[k].max()), 1e-12)))
            ax.set_title(f"{name}" + (f" (pop {k})" if n_pop > 1 else ""), fontsize=8)
            ax.set_xlabel("state", fontsize=7)
            ax.set_ylabel("time", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.suptitle(f"{game}: flows of the final policies against the reference", fontsize=10)
    return _save(fig, path)


def pde_figure(game, trials, path):
    """Learner density (first seed of each learner) against the PDE density, at three times."""
    curves, pde = {}, None
    for t in sorted(trials, key=lambda t: t["seed"]):
        if t.get("status") != "ok" or t["game"] != game or t["learner"] in curves:
            continue
        try:
            with np.load(Path(t["path"]) / "flow.npz") as data:
                if "pde_0" not in data.files:
                    continue
                n_pop = len([f for f in data.files if f.startswith("pde_")])
                dv = float(data["cell_volume"])
                shape = tuple(int(v) for v in data["grid_shape"])
                curves[t["learner"]] = [data[f"flow_{k}"] / dv for k in range(n_pop)]
                pde = pde or [data[f"pde_{k}"] for k in range(n_pop)]
        except (OSError, KeyError, ValueError):
            continue
    if not curves:
        return None
    n_pop, T = len(pde), pde[0].shape[0] - 1
    times = sorted({0, T // 2, T})
    if len(shape) == 1:
        fig, axes = plt.subplots(n_pop, len(times), figsize=(3.6 * len(times), 2.6 * n_pop), squeeze=False,
                                 constrained_layout=True)
        x = (np.arange(shape[0]) + 0.5) / shape[0]
        for k in range(n_pop):
            for j, n in enumerate(times):
                ax = axes[k, j]
                ax.plot(x, pde[k][n], "k-", lw=2, label="PDE")
                for learner, dens in sorted(curves.items()):
                    ax.plot(x, dens[k][n], "--", label=learner)
                ax.set_title(f"step {n}/{T}" + (f", pop {k}" if n_pop > 1 else ""), fontsize=8)
                ax.set_xlabel("x (fraction of the domain)", fontsize=7)
                ax.set_ylabel("density", fontsize=7)
                ax.legend(fontsize=6)
    else:
        cols = ["PDE"] + sorted(curves)
        fig, axes = plt.subplots(n_pop, len(cols), figsize=(3 * len(cols), 2.8 * n_pop), squeeze=False,
                                 constrained_layout=True)
        for k in range(n_pop):
            for j, name in enumerate(cols):
                dens = pde[k][T] if name == "PDE" else curves[name][k][T]
                axes[k, j].imshow(dens.reshape(shape).T, origin="lower", cmap="viridis")
                axes[k, j].set_title(f"{name}, final time" + (f", pop {k}" if n_pop > 1 else ""), fontsize=8)
    fig.suptitle(f"{game}: learner densities against the PDE equilibrium density", fontsize=10)
    return _save(fig, path)


def write_figures(folder, trials) -> list:
    folder = Path(folder)
    written = [exploitability_figure(trials, "iteration", folder / "exploitability_vs_iterations.png"),
               exploitability_figure(trials, "samples", folder / "exploitability_vs_samples.png")]
    for game in sorted({t["game"] for t in trials}):
        written.append(flow_figure(game, trials, folder / f"flows__{game}.png"))
        written.append(pde_figure(game, trials, folder / f"pde_density__{game}.png"))
    return [w for w in written if w]
