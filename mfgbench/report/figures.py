"""Figures of a suite: exploitability curves (log-log) and flows against the reference.

Conventions every figure follows:

- **one colour per learner** everywhere (``learner_colour``: a fixed map for the built-in
  learners, a hash of the name for others, so a learner keeps its colour whatever subset of
  learners a suite holds); the reference is black, the no-learning baseline grey;
- exploitability panels draw the reference's own exploitability and the baseline's (uniform
  policy, or zero control on a continuous game) as horizontal lines;
- flows are drawn on each population's own geometry (``Population.grid_shape``; populations
  of one game may differ): a line of states or states without a layout as a (state, time)
  heatmap, a 2D grid as snapshots of the grid at three times (a 3D grid as its layers side by
  side); a stationary game's distribution as mass against state (it has no time axis). All
  heatmaps of a game share one colour scale, shown by a colourbar; a learner's flow and the
  reference flow are drawn against the same time axis (the fraction t / T of the horizon, when
  the two were computed on different time grids);
- constrained layout, so titles and labels do not overlap.

``exploitability_figure``, ``flow_figure`` and ``pde_figure`` return matplotlib figures (None
when there is nothing to draw); ``write_figures`` saves them as PNG.
"""
from __future__ import annotations

import io
import math
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mfgbench.bench import store

LEARNER_COLOURS = {
    "fictitious-play": "#1f77b4",
    "mirror-descent": "#ff7f0e",
    "qmi": "#2ca02c",
    "nash-q": "#d62728",
    "ddpg": "#9467bd",
    "maddpg": "#8c564b",
}
"""Colours of the built-in learners (matplotlib's tab10 order)."""
OTHER_COLOURS = ("#e377c2", "#17becf", "#bcbd22", "#393b79", "#ad494a", "#637939", "#8c6d31", "#7b4173",
                 "#3182bd", "#e6550d", "#31a354", "#756bb1")
"""Colours of other learners (and tagged variants), chosen by a hash of the name."""
REFERENCE_COLOUR = "black"
BASELINE_COLOUR = "0.5"
TINY = 12
"""Axes with at most this many states get a tick (or label) on every state."""


def learner_colour(label: str) -> str:
    """The colour of a learner (or ``learner [tag]`` variant) in every figure."""
    if label in LEARNER_COLOURS:
        return LEARNER_COLOURS[label]
    return OTHER_COLOURS[zlib.crc32(label.encode()) % len(OTHER_COLOURS)]


def _label(t) -> str:
    return t["learner"] + (f" [{t['tag']}]" if t.get("tag") else "")


def _subplots(rows, cols, figsize):
    """A figure with a rows x cols array of axes, built without pyplot (no global state, whatever
    backend the caller uses), with constrained layout."""
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def _save(fig, path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    store.write_bytes_atomic(path, buf.getvalue())
    return str(path)


# ----------------------------------------------------------------------------- exploitability
def _curves(trials, x_key):
    """(game -> learner -> (x, mean, lo, hi)) over seeds, on the checkpoints all seeds share."""
    by = defaultdict(lambda: defaultdict(list))
    for t in trials:
        if t.get("status") == "ok" and t["history"]:
            by[t["game"]][_label(t)].append(t["history"])
    out = {}
    for game, learners in by.items():
        out[game] = {}
        for learner, histories in learners.items():
            n = min(len(h) for h in histories)
            x = np.array([histories[0][i].get(x_key, 0) for i in range(n)], dtype=float)
            y = np.array([[float(h[i]["exploitability"]) for i in range(n)] for h in histories])
            if x_key == "samples" and not np.any(x > 0):
                continue
            out[game][learner] = (x, y.mean(axis=0), y.min(axis=0), y.max(axis=0))
    return out


def _levels(trials, game) -> dict:
    """The reference's and the baseline's exploitability for ``game`` (first trial that recorded them)."""
    out = {}
    for t in sorted(trials, key=lambda t: t.get("path", "")):
        ref = t.get("reference") or {} if t.get("status") == "ok" and t["game"] == game else {}
        if "reference" not in out and "certified" in ref and _finite(ref.get("exploitability")):
            out["reference"] = (float(ref["exploitability"]), bool(ref["certified"]))
        if "baseline" not in out and _finite(ref.get("baseline_exploitability")):
            out["baseline"] = (float(ref["baseline_exploitability"]), ref.get("baseline", "uniform policy"))
    return out


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def exploitability_figure(trials, x_key):
    """One log-log panel per game: each learner's mean over seeds with a min-max band, and the
    reference and baseline levels as horizontal lines."""
    curves = {g: c for g, c in _curves(trials, x_key).items() if c}
    if not curves:
        return None
    n = len(curves)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = _subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows + 0.8))
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    handles = {}
    x_name = "iterations" if x_key == "iteration" else "samples"
    for ax, (game, learners) in zip(axes.ravel(), sorted(curves.items())):
        low = math.inf
        for learner, (x, mean, lo, hi) in sorted(learners.items()):
            keep = (x > 0) & (mean > 0)
            colour = learner_colour(learner)
            handles[learner], = ax.plot(x[keep], mean[keep], color=colour, label=learner)
            ax.fill_between(x[keep], np.maximum(lo[keep], 1e-300), hi[keep], color=colour, alpha=0.2, lw=0)
            if np.any(keep):
                low = min(low, float(np.min(np.where(lo[keep] > 0, lo[keep], mean[keep]))))
        levels = _levels(trials, game)
        if "baseline" in levels and levels["baseline"][0] > 0:
            value, name = levels["baseline"]
            handles["baseline"] = ax.axhline(value, color=BASELINE_COLOUR, ls=":", lw=1.5,
                                             label="no learning (uniform policy; zero control for neural learners)")
            low = min(low, value)
        if "reference" in levels:
            value, certified = levels["reference"]
            # a reference far below every learner (a certificate at round-off level) would squash the
            # curves into the top of the panel: it is then named in the panel instead of drawn
            drawn = value > 0 and (not math.isfinite(low) or value >= low / 1e3)
            if drawn:
                handles["reference"] = ax.axhline(value, color=REFERENCE_COLOUR, ls="--", lw=1,
                                                  label="reference (its own exploitability)")
            note = (f"reference {value:.2g}" + ("" if certified else " (NOT certified)")
                    + ("" if drawn else ", below the axis"))
        else:
            note = "no reference"
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{game}\n{note}", fontsize=8)
        ax.set_xlabel(x_name)
        ax.set_ylabel("exploitability")
    order = sorted(k for k in handles if k not in ("baseline", "reference")) + \
        [k for k in ("baseline", "reference") if k in handles]
    fig.legend([handles[k] for k in order], [handles[k].get_label() for k in order], loc="outside lower center",
               ncol=min(4, len(order)), fontsize=8, frameon=False)
    fig.suptitle(f"Exploitability against {x_name} (mean over seeds, min-max band)", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Geometry:
    """How one population's states are laid out (``Population`` fields), for drawing."""

    grid_shape: tuple | None = None
    periodic: bool = False
    state_labels: tuple | None = None
    name: str = ""


_GEOMETRY: dict = {}


def geometries(trial) -> list | None:
    """Per population, the geometry of the game ``trial`` played (rebuilt from its summary: games
    are cheap to build); None if it cannot be rebuilt (e.g. a game no longer registered)."""
    key = (trial["game"], store.dumps(trial.get("game_params") or {}), store.dumps(trial.get("discretize") or {}))
    if key not in _GEOMETRY:
        try:
            from mfgbench.bench.runner import build_game
            from mfgbench.bench.suite import TrialSpec
            game = build_game(TrialSpec(trial["game"], trial["learner"], game_params=trial.get("game_params") or {},
                                        discretize=trial.get("discretize") or {}))
            if getattr(game, "kind", "finite") == "continuous":   # scored on the PDE grid of the neural scorer
                from mfgbench.learners.neural.env import default_grid
                nx = default_grid(game)[0]
                _GEOMETRY[key] = [Geometry((nx,) * game.dim, name=p.name) for p in game.populations]
            else:
                _GEOMETRY[key] = [Geometry(p.grid_shape, bool(p.periodic), p.state_labels, str(p.name))
                                  for p in game.populations]
        except Exception:  # noqa: BLE001  (a figure without geometry still draws, as plain states)
            _GEOMETRY[key] = None
    return _GEOMETRY[key]


def _fit(geometry: Geometry | None, n_states: int) -> Geometry:
    """The geometry if it describes ``n_states`` states, else plain states."""
    if geometry is None:
        return Geometry()
    shape = geometry.grid_shape if geometry.grid_shape and int(np.prod(geometry.grid_shape)) == n_states else None
    labels = geometry.state_labels if geometry.state_labels and len(geometry.state_labels) == n_states else None
    return Geometry(shape, geometry.periodic, labels, geometry.name)


def _state_ticks(ax, geometry: Geometry, n_states: int, axis="x"):
    """Readable state ticks: every state (by label when there are labels) on tiny state spaces."""
    set_ticks, set_labels = (ax.set_xticks, ax.set_xticklabels) if axis == "x" else (ax.set_yticks, ax.set_yticklabels)
    if geometry.state_labels is not None and n_states <= 3 * TINY:
        set_ticks(range(n_states))
        set_labels([str(s) for s in geometry.state_labels], rotation=90 if n_states > 6 else 0, fontsize=6)
    elif n_states <= TINY:
        set_ticks(range(n_states))
    else:
        (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(6, integer=True))


def _tiling(shape: tuple) -> tuple:
    """(layers, tile rows, tile columns) of a grid's image: a 3D grid's layers tiled near-square."""
    layers = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    cols = math.ceil(math.sqrt(layers))
    return layers, math.ceil(layers / cols), cols


def _as_image(mu: np.ndarray, shape: tuple) -> np.ndarray:
    """A distribution on a 2D grid as an image; on a 3D grid its layers tiled left to right, bottom
    to top, with a blank line between them."""
    grid = np.asarray(mu, dtype=float).reshape(shape)
    if grid.ndim == 2:
        return grid
    layers, rows, cols = _tiling(shape)
    h, w = shape[-2:]
    image = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for i, layer in enumerate(grid.reshape((layers, h, w))):
        r, c = divmod(i, cols)
        image[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = layer
    return image


def _population_name(geometry: Geometry, k: int, n_pop: int) -> str:
    if n_pop == 1:
        return ""
    named = geometry.name and geometry.name not in (str(k), f"pop{k}", f"population {k}")
    return f"population {k}" + (f" ({geometry.name})" if named else "")


# ----------------------------------------------------------------------------- flows
def _load_flows(game, trials):
    """(learner -> per-population flows of its first seed, reference flows, first trial)."""
    chosen = {}
    for t in sorted(trials, key=lambda t: t["seed"]):
        if t.get("status") == "ok" and t["game"] == game:
            chosen.setdefault(_label(t), t)
    flows, reference, first = {}, None, None
    for learner, t in sorted(chosen.items()):
        try:
            with np.load(Path(t["path"]) / "flow.npz") as data:
                count = len([f for f in data.files if f.startswith("flow_")])
                flows[learner] = [np.asarray(data[f"flow_{k}"], dtype=float) for k in range(count)]
                if reference is None and "reference_0" in data.files:
                    reference = [np.asarray(data[f"reference_{k}"], dtype=float) for k in range(count)]
        except (OSError, KeyError, ValueError):
            continue
        first = first or t
    return flows, reference, first


def flow_figure(game, trials):
    """Each learner's final flow (first seed) beside the reference flow, per population."""
    flows, reference, first = _load_flows(game, trials)
    if not flows:
        return None
    columns = sorted(flows) + (["reference"] if reference is not None else [])
    pops = {name: (reference if name == "reference" else flows[name]) for name in columns}
    n_pop = len(pops[columns[0]])
    geo = geometries(first) or [None] * n_pop
    geo = [_fit(geo[k] if k < len(geo) else None, pops[columns[0]][k].shape[-1]) for k in range(n_pop)]
    continuous = first.get("kind") == "continuous"
    if pops[columns[0]][0].ndim == 1:
        return _stationary_figure(game, columns, pops, geo)
    return _flow_heatmaps(game, columns, pops, geo, continuous)


def _column_title(ax, name):
    ax.set_title(name, fontsize=8, color=REFERENCE_COLOUR if name == "reference" else learner_colour(name),
                 fontweight="bold")


def _flow_heatmaps(game, columns, pops, geo, continuous):
    """(state, time) heatmaps for populations on a line or without a layout; grid snapshots at
    t = 0, T/2, T for populations on a 2D (or 3D) grid; one colour scale for the whole game."""
    n_pop = len(geo)
    panel_rows = []   # (population, time step or None for a full heatmap)
    for k in range(n_pop):
        if geo[k].grid_shape is not None and len(geo[k].grid_shape) >= 2:
            T = min(pops[c][k].shape[0] for c in columns) - 1
            # mu_0 is given, the same in every column: the snapshots start after it
            steps = sorted({max(1, round(T * f)) for f in (1 / 3, 2 / 3, 1.0)}) if T >= 1 else [0]
            panel_rows += [(k, step / T if T else 0.0) for step in steps]
        else:
            panel_rows.append((k, None))
    vmax = max(float(np.max(pops[c][k] if frac is None else pops[c][k][_step(frac, pops[c][k])]))
               for c in columns for k, frac in panel_rows)
    norm = PowerNorm(0.5, vmin=0.0, vmax=max(vmax, 1e-12))
    snapshots = all(r[1] is not None for r in panel_rows)
    height = (2.0 if snapshots else 2.3) * len(panel_rows) + 0.6
    width = (2.2 if snapshots else 2.8) * len(columns) + 1.2
    fig, axes = _subplots(len(panel_rows), len(columns), figsize=(width, height))
    image = None
    time_unit = "t / T" if continuous else "time t"
    for i, (k, frac) in enumerate(panel_rows):
        pop_name = _population_name(geo[k], k, n_pop)
        for j, name in enumerate(columns):
            ax, mu = axes[i, j], pops[name][k]
            n_times, n_states = mu.shape
            if frac is None:
                # the learner's and the reference's times may be different grids on [0, T]: draw on t / T
                extent = (-0.5, n_states - 0.5, 0.0, 1.0) if continuous else (-0.5, n_states - 0.5, -0.5, n_times - 0.5)
                image = ax.imshow(mu, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                                  norm=norm, extent=extent)
                ax.set_xlabel("cell" if continuous else "state", fontsize=7)
                _state_ticks(ax, geo[k], n_states)
                if not continuous:
                    ax.yaxis.set_major_locator(MaxNLocator(6, integer=True))
                if j == 0:
                    ax.set_ylabel((pop_name + "\n" if pop_name else "") + time_unit, fontsize=7)
            else:
                step = _step(frac, mu)
                shape = geo[k].grid_shape
                image = ax.imshow(_as_image(mu[step], shape), origin="lower", cmap="viridis", interpolation="nearest",
                                  norm=norm)
                _grid_ticks(ax, shape)
                if j == 0:
                    when = f"t / T = {frac:g}" if continuous else f"t = {step}"
                    ax.set_ylabel((pop_name + ", " if pop_name else "") + when + "\nrow", fontsize=7)
                if i + 1 == len(panel_rows) or panel_rows[i + 1][0] != k:   # the population's last row
                    ax.set_xlabel("column" if len(shape) == 2 else
                                  f"layers 0-{_tiling(shape)[0] - 1}, left to right, bottom to top", fontsize=7)
            ax.tick_params(labelsize=6)
            if i == 0:
                _column_title(ax, name)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=min(0.9, 4.0 / height),
                 label=("density" if continuous else "mass per state") + " (square-root scale)")
    fig.suptitle(f"{game}: flows of the final policies (first seed) against the reference", fontsize=10)
    return fig


def _step(frac: float, mu: np.ndarray) -> int:
    """The row of flow ``mu`` (times 0..n) at the fraction ``frac`` of the horizon."""
    return int(round(frac * (mu.shape[0] - 1)))


def _grid_ticks(ax, shape):
    if len(shape) > 2:   # tiled layers: a label on each layer instead of ticks
        ax.set_xticks([])
        ax.set_yticks([])
        layers, _, cols = _tiling(shape)
        h, w = shape[-2:]
        for i in range(layers):
            r, c = divmod(i, cols)
            ax.text(c * (w + 1) - 0.3, r * (h + 1) + h - 0.7, str(i), color="white", fontsize=6, va="top")
        return
    rows, cols = shape[-2], shape[-1]
    if rows <= TINY:
        ax.set_yticks(range(rows))
    else:
        ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
    if len(shape) == 2 and cols <= TINY:
        ax.set_xticks(range(cols))
    elif len(shape) == 2:
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))


def _stationary_figure(game, columns, pops, geo):
    """A stationary game's distribution per population: mass against state (line or no layout),
    or the grid (2D layout) with one shared colour scale."""
    n_pop = len(geo)
    on_grid = [g.grid_shape is not None and len(g.grid_shape) >= 2 for g in geo]
    if any(on_grid):
        vmax = max(float(np.max(pops[c][k])) for c in columns for k in range(n_pop))
        norm = PowerNorm(0.5, vmin=0.0, vmax=max(vmax, 1e-12))
    fig, axes = _subplots(n_pop, len(columns) if any(on_grid) else 1,
                          figsize=(max(7.0, 2.6 * len(columns)) if any(on_grid) else 7.5, 2.8 * n_pop + 0.6))
    image = None
    for k in range(n_pop):
        if on_grid[k]:
            for j, name in enumerate(columns):
                ax = axes[k, j]
                image = ax.imshow(_as_image(pops[name][k], geo[k].grid_shape), origin="lower", cmap="viridis",
                                  interpolation="nearest", norm=norm)
                _grid_ticks(ax, geo[k].grid_shape)
                ax.set_xlabel("column" if len(geo[k].grid_shape) == 2 else
                              f"layers 0-{_tiling(geo[k].grid_shape)[0] - 1}, left to right, bottom to top", fontsize=7)
                if j == 0:
                    name_k = _population_name(geo[k], k, n_pop)
                    ax.set_ylabel((name_k + "\n" if name_k else "") + "row", fontsize=7)
                if k == 0:
                    _column_title(ax, name)
            continue
        for ax in axes[k, 1:]:
            ax.set_visible(False)
        ax = axes[k, 0]
        n_states = pops[columns[0]][k].shape[-1]
        states = np.arange(n_states)
        ordered = geo[k].grid_shape is not None   # states on a line: draw lines; unordered states: points
        for name in columns:
            ref = name == "reference"
            style = (dict(ls="--", lw=2.2) if ordered else dict(ls="none", marker="_", ms=14, mew=2)) if ref else \
                (dict(ls="-", lw=1.3, marker="o" if n_states <= 3 * TINY else None, ms=3) if ordered
                 else dict(ls="none", marker="o", ms=4))
            ax.plot(states, pops[name][k], color=REFERENCE_COLOUR if ref else learner_colour(name), label=name,
                    zorder=1 if ref else 2, **style)
        _state_ticks(ax, geo[k], n_states)
        ax.set_xlabel("state", fontsize=8)
        name_k = _population_name(geo[k], k, n_pop)
        ax.set_ylabel("stationary mass" + (f"\n{name_k}" if name_k else ""), fontsize=8)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9, label="stationary mass (square-root scale)")
    fig.suptitle(f"{game}: stationary distributions of the final policies\n(first seed) against the reference",
                 fontsize=10)
    return fig


# ----------------------------------------------------------------------------- PDE densities
def pde_figure(game, trials):
    """Learner density (first seed of each learner) against the PDE density, at three times, on the
    bridge's own time grid (the finite game's time step is the PDE's)."""
    curves, pde, shape = {}, None, None
    for t in sorted(trials, key=lambda t: t["seed"]):
        if t.get("status") != "ok" or t["game"] != game or _label(t) in curves:
            continue
        try:
            with np.load(Path(t["path"]) / "flow.npz") as data:
                if "pde_0" not in data.files:
                    continue
                n_pop = len([f for f in data.files if f.startswith("pde_")])
                dv = float(data["cell_volume"])
                shape = tuple(int(v) for v in data["grid_shape"])
                curves[_label(t)] = [data[f"flow_{k}"] / dv for k in range(n_pop)]
                pde = pde or [data[f"pde_{k}"] for k in range(n_pop)]
        except (OSError, KeyError, ValueError):
            continue
    if not curves:
        return None
    n_pop, T = len(pde), pde[0].shape[0] - 1
    times = sorted({0, T // 2, T})
    if len(shape) == 1:
        fig, axes = _subplots(n_pop, len(times), figsize=(3.6 * len(times), 2.6 * n_pop + 0.8))
        x = (np.arange(shape[0]) + 0.5) / shape[0]
        handles = {}
        for k in range(n_pop):
            for j, n in enumerate(times):
                ax = axes[k, j]
                handles["PDE"], = ax.plot(x, pde[k][n], color=REFERENCE_COLOUR, lw=2, label="PDE equilibrium")
                for learner, dens in sorted(curves.items()):
                    handles[learner], = ax.plot(x, dens[k][n], "--", color=learner_colour(learner), label=learner)
                ax.set_title(f"step {n}/{T}" + (f", population {k}" if n_pop > 1 else ""), fontsize=8)
                ax.set_xlabel("x (fraction of the domain)", fontsize=7)
                ax.set_ylabel("density", fontsize=7)
                ax.tick_params(labelsize=6)
        fig.legend(list(handles.values()), [h.get_label() for h in handles.values()], loc="outside lower center",
                   ncol=min(5, len(handles)), fontsize=8, frameon=False)
    else:
        cols = ["PDE"] + sorted(curves)
        vmax = max(float(np.max(pde[k][T])) for k in range(n_pop))
        vmax = max([vmax] + [float(np.max(c[k][T])) for c in curves.values() for k in range(n_pop)])
        fig, axes = _subplots(n_pop, len(cols), figsize=(2.8 * len(cols) + 1.2, 2.8 * n_pop + 0.4))
        image = None
        for k in range(n_pop):
            for j, name in enumerate(cols):
                ax = axes[k, j]
                dens = pde[k][T] if name == "PDE" else curves[name][k][T]
                image = ax.imshow(np.asarray(dens).reshape(shape).T, origin="lower", cmap="viridis", vmin=0, vmax=vmax)
                ax.set_title(f"{name}, final time" + (f", population {k}" if n_pop > 1 else ""), fontsize=8,
                             color=REFERENCE_COLOUR if name == "PDE" else learner_colour(name))
                ax.set_xlabel("x cell", fontsize=7)
                ax.set_ylabel("y cell", fontsize=7)
                ax.tick_params(labelsize=6)
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.9, label="density")
    fig.suptitle(f"{game}: learner densities against the PDE equilibrium density", fontsize=10)
    return fig


def write_figures(folder, trials) -> list:
    folder = Path(folder)
    builders = [(lambda: exploitability_figure(trials, "iteration"), "exploitability_vs_iterations.png"),
                (lambda: exploitability_figure(trials, "samples"), "exploitability_vs_samples.png")]
    for game in sorted({t["game"] for t in trials}):
        builders.append((lambda game=game: flow_figure(game, trials), f"flows__{game}.png"))
        builders.append((lambda game=game: pde_figure(game, trials), f"pde_density__{game}.png"))
    written = []
    for build, name in builders:   # one figure in memory at a time
        fig = build()
        if fig is not None:
            written.append(_save(fig, folder / name))
    return written
