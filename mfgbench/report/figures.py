"""Figures of a suite: exploitability curves (log-log) and flows against the reference.

Conventions every figure follows:

- **one colour per learner** everywhere (``learner_colour``: a fixed map for the built-in
  learners, a hash of the name for others, so a learner keeps its colour whatever subset of
  learners a suite holds); the reference is black, the no-learning baseline grey;
- exploitability panels draw the reference's own exploitability and the baseline's (uniform
  policy, or zero control on a continuous game) as horizontal lines;
- flows are drawn per population (type), in a block titled with its name, on its own geometry
  (``Population.grid_shape``, ``cells``, ``state_labels``; the types of one game may have their
  own state spaces), learners and reference side by side:

  - a 2D grid (a 3D grid as its layers tiled) as snapshots at T/3, 2T/3 and T; a type on *some*
    cells of its grid (``cells``) has each state drawn on its cell, the cells holding no state
    (walls, a safe zone predators cannot enter, a lane trucks cannot use) hatched, not drawn as
    zero mass, and its states with no cell ("caught", "arrived") as bars beside the grid named
    by their labels; when its mass leaves the grid for such states, the snapshots cover the
    reference's time on the grid (while ``ON_GRID`` of its mass is there);
  - a few named states without a grid (an epidemic's health states) as a state-by-time map
    with a named row per state;
  - a line of cells or unnamed states as a (state, time) map;
  - a stationary game's distribution as mass against state (it has no time axis);

  populations with the same state space share one colour scale (one per game when all do), a
  type with its own state space has its own, shown by the block's colourbar; the scale ends at
  ``CLIP`` times the reference's largest mass (a learner above it takes the top colour, and the
  colourbar's arrow and label say so), so one bad learner does not darken every panel; a learner's flow
  and the reference flow are drawn against the same time axis (the fraction t / T of the
  horizon, when the two were computed on different time grids);
- constrained layout, so titles and labels do not overlap.

``exploitability_figure``, ``flow_figure`` and ``pde_figure`` return matplotlib figures (None
when there is nothing to draw); ``write_figures`` saves them as PNG.
"""
from __future__ import annotations

import io
import math
import multiprocessing
import os
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
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
        # a seed that ends exactly at (or at round-off of) an equilibrium would stretch the log axis
        # over hundreds of decades: bands stop at a tenth of the lowest mean drawn in the panel
        means = [m[(x > 0) & (m > 0)] for x, m, _, _ in learners.values()]
        floor = min((float(np.min(m)) for m in means if m.size), default=1.0) / 10
        for learner, (x, mean, lo, hi) in sorted(learners.items()):
            keep = (x > 0) & (mean > 0)
            colour = learner_colour(learner)
            handles[learner], = ax.plot(x[keep], mean[keep], color=colour, label=learner)
            ax.fill_between(x[keep], np.maximum(lo[keep], floor), hi[keep], color=colour, alpha=0.2, lw=0)
            if np.any(keep):
                low = min(low, float(np.min(np.maximum(lo[keep], floor))))
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
    fig.suptitle(f"Exploitability against {x_name} (mean over seeds, min-max band down to a tenth of the lowest mean)", fontsize=10)
    return fig


# ----------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Geometry:
    """How one population's states are laid out (``Population`` fields), for drawing."""

    grid_shape: tuple | None = None
    periodic: bool = False
    state_labels: tuple | None = None
    name: str = ""
    cells: tuple | None = None
    """Each state's row-major cell on ``grid_shape`` (-1: no cell); None: state s is cell s."""

    @property
    def kind(self) -> str:
        """How its flow is drawn: ``grid`` (snapshots of a 2D or 3D grid), ``line`` (a line of cells:
        a (state, time) map), ``labelled`` (a few named states, e.g. a graph of health states: a
        state-by-time map with a named row per state), ``states`` (a (state, time) map)."""
        if self.grid_shape is not None and len(self.grid_shape) >= 2:
            return "grid"
        if self.grid_shape is not None and self.cells is None:
            return "line"
        return "labelled" if self.state_labels is not None and len(self.state_labels) <= 3 * TINY else "states"

    def cell_of(self, n_states: int) -> np.ndarray:
        """Each state's cell on ``grid_shape`` (-1 for a state with no cell)."""
        return np.arange(n_states) if self.cells is None else np.asarray(self.cells, dtype=np.int64)

    def label(self, s: int) -> str:
        return str(self.state_labels[s]) if self.state_labels is not None else f"state {s}"


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
                _GEOMETRY[key] = [Geometry(p.grid_shape, bool(p.periodic), p.state_labels, str(p.name), p.cells)
                                  for p in game.populations]
        except Exception:  # noqa: BLE001  (a figure without geometry still draws, as plain states)
            _GEOMETRY[key] = None
    return _GEOMETRY[key]


def _fit(geometry: Geometry | None, n_states: int) -> Geometry:
    """The geometry if it describes ``n_states`` states, else plain states (with their labels)."""
    if geometry is None:
        return Geometry()
    labels = geometry.state_labels if geometry.state_labels and len(geometry.state_labels) == n_states else None
    shape, cells = geometry.grid_shape, geometry.cells
    if shape and cells is not None and len(cells) == n_states and max(cells) < int(np.prod(shape)):
        return Geometry(tuple(shape), geometry.periodic, labels, geometry.name, tuple(cells))
    shape = tuple(shape) if shape and int(np.prod(shape)) == n_states else None
    return Geometry(shape, geometry.periodic, labels, geometry.name)


def _state_ticks(ax, geometry: Geometry, n_states: int, axis="x"):
    """Readable state ticks: every state (by label when there are labels) on tiny state spaces;
    labels on the x axis are turned when there are many."""
    set_ticks, set_labels = (ax.set_xticks, ax.set_xticklabels) if axis == "x" else (ax.set_yticks, ax.set_yticklabels)
    if geometry.state_labels is not None and n_states <= 3 * TINY:
        set_ticks(range(n_states))
        set_labels([str(s) for s in geometry.state_labels], rotation=90 if axis == "x" and n_states > 6 else 0,
                   fontsize=6 if n_states > TINY else 8)
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
    """Values on the cells of a 2D grid as an image; on a 3D grid its layers tiled left to right,
    bottom to top, with a blank line (nan) between them."""
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


def _cell_image(mu: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A distribution ``mu[s]`` drawn on its grid: each state with a cell on its cell, nan on the
    cells without a state (and states without a cell left out)."""
    cells = geometry.cell_of(mu.shape[-1])
    on = cells >= 0
    values = np.full(int(np.prod(geometry.grid_shape)), np.nan)
    values[cells[on]] = np.asarray(mu, dtype=float)[on]
    return _as_image(values, geometry.grid_shape)


def _blank_cells(geometry: Geometry, n_states: int) -> list:
    """(row, column) in the image of every grid cell that holds no state (a wall, a lane a truck
    cannot use), not counting the blank lines between a 3D grid's tiled layers."""
    if geometry.cells is None:
        return []
    held = np.zeros(int(np.prod(geometry.grid_shape)))
    cells = geometry.cell_of(n_states)
    held[cells[cells >= 0]] = 1.0
    return [tuple(int(v) for v in rc) for rc in np.argwhere(_as_image(held, geometry.grid_shape) == 0)]


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
    return _flow_blocks(game, columns, pops, geo, continuous)


def _colour(name: str) -> str:
    return REFERENCE_COLOUR if name == "reference" else learner_colour(name)


def _column_title(ax, name):
    ax.set_title(name, fontsize=8, color=_colour(name), fontweight="bold")


ON_GRID = 0.1
"""A type whose mass leaves its grid (to "arrived", "caught") is shown while at least this much of it
is on the grid."""


def _snapshots(T: int, last: int | None = None) -> list:
    """The fractions of the horizon T drawn as grid snapshots: mu_0 is given, the same in every
    column, so they start after it: last/3, 2 last/3 and last (rounded to steps, at least 1), where
    ``last`` is T, or the last step at which a type still has mass on its grid."""
    if T < 1:
        return [0.0]
    last = T if last is None else min(max(last, 1), T)
    return [step / T for step in sorted({max(1, round(last * f)) for f in (1 / 3, 2 / 3, 1.0)})]


def _last_on_grid(flows, on: np.ndarray) -> int:
    """The last step at which one of ``flows`` (mu[t, s]) keeps ``ON_GRID`` of its mass on the
    states with a cell (``on``), as a step of the shortest flow's time grid."""
    T = min(mu.shape[0] for mu in flows) - 1
    last = 0
    for mu in flows:
        kept = np.flatnonzero(mu[:, on].sum(axis=1) >= ON_GRID)
        if kept.size:
            last = max(last, round(kept[-1] / (mu.shape[0] - 1) * T) if mu.shape[0] > 1 else 0)
    return last


def _type_title(k: int, g: Geometry, n_states: int, early: bool) -> str:
    """A type's block title: its name, its states and how they are drawn (``early``: its snapshots
    end before the horizon, when its mass has left the grid)."""
    name = f"population {k}" + (f": {g.name}" if g.name and g.name not in (str(k), f"population {k}") else "")
    text = f"{name} ({n_states} states"
    if g.kind == "grid":
        shape, total = " x ".join(map(str, g.grid_shape)), int(np.prod(g.grid_shape))
        cells = g.cell_of(n_states)
        held = int((cells >= 0).sum())
        text += (f" on a {shape} grid" if held == total else
                 f": {held} of the {total} cells of a {shape} grid, hatched cells hold none")
        off = np.flatnonzero(cells < 0)
        if off.size:
            text += "; off the grid: " + ", ".join(g.label(s) for s in off)
        if early:
            text += f"; snapshots while {ON_GRID:.0%} of its mass is on the grid"
    elif g.kind == "line":
        text += " on a ring" if g.periodic else " on a line"
    return text + ")"


def _flow_blocks(game, columns, pops, geo, continuous):
    """One block per population (type), on its own geometry, learners and reference side by side:
    grid snapshots at T/3, 2T/3, T for a 2D (or 3D) grid, with the cells holding no state hatched
    and the states with no cell as labelled bars beside the grid; a (state, time) map otherwise.
    Populations with the same state space share one colour scale (one per game when they all
    do); a type with its own state space has its own. Each block has its colourbar."""
    n_pop = len(geo)
    n_states = [pops[columns[0]][k].shape[-1] for k in range(n_pop)]
    T = min(pops[c][k].shape[0] for c in columns for k in range(n_pop)) - 1
    # per type: the snapshot times, and the values drawn with its colour scale (its grid cells at
    # the snapshots, or its whole flow)
    fracs, drawn = [], []
    for k in range(n_pop):
        if geo[k].kind == "grid":
            on = geo[k].cell_of(n_states[k]) >= 0
            # the reference's times when there is one: snapshots that do not depend on which learners ran
            timed = [pops["reference"][k]] if "reference" in pops else [pops[c][k] for c in columns]
            last = _last_on_grid(timed, on) if not on.all() else T
            fracs.append(_snapshots(T, last))
            drawn.append({c: max(float(np.max(pops[c][k][_step(f, pops[c][k])][on])) for f in fracs[k])
                          for c in columns})
        else:
            fracs.append(None)
            drawn.append({c: float(np.max(pops[c][k])) for c in columns})
    space = [(n_states[k], geo[k].grid_shape, geo[k].cells) for k in range(n_pop)]
    norms = [_norm([drawn[j] for j in range(n_pop) if space[j] == space[k]]) for k in range(n_pop)]
    off = [np.flatnonzero(geo[k].cell_of(n_states[k]) < 0) if geo[k].kind == "grid" else np.array([], int)
           for k in range(n_pop)]
    n_cols = [len(columns) + (1 if off[k].size else 0) for k in range(n_pop)]
    width = min(18.0, max(7.0, 2.3 * max(n_cols) + 1.6))
    heights = []
    for k in range(n_pop):
        title = 0.3 if n_pop > 1 else 0.0
        if geo[k].kind == "grid":
            image_rows, image_cols = _as_image(np.zeros(int(np.prod(geo[k].grid_shape))), geo[k].grid_shape).shape
            panel = (width - 1.6) / n_cols[k] * image_rows / image_cols
            heights.append(title + len(fracs[k]) * (min(panel, 2.0) + 0.55))
        elif geo[k].kind == "labelled":
            heights.append(title + max(1.6, 0.25 * n_states[k] + 1.1))
        else:
            heights.append(title + 2.4)
    fig = Figure(figsize=(width, sum(heights) + 0.5), layout="constrained")
    blocks = fig.subfigures(n_pop, 1, height_ratios=heights, squeeze=False).ravel()
    for k, block in enumerate(blocks):
        if geo[k].kind == "grid":
            _grid_block(block, k, geo[k], columns, pops, norms[k], fracs[k], off[k], continuous)
        else:
            _map_block(block, k, geo[k], columns, pops, norms[k], continuous)
        if n_pop > 1:
            early = fracs[k] is not None and fracs[k][-1] < 1.0
            block.suptitle(_type_title(k, geo[k], n_states[k], early), fontsize=9, fontweight="bold", x=0.01,
                           ha="left")
    fig.suptitle(f"{game}: flows of the final policies (first seed) against the reference", fontsize=10)
    return fig


CLIP = 2.0
"""A flow's colour scale ends at this multiple of the reference's largest drawn mass: a learner
piling more mass on a state does not darken every other panel; it is drawn in the top colour, and
the colourbar's arrow says that the scale is clipped."""


def _norm(tops) -> PowerNorm:
    """The square-root colour scale of the populations whose drawn maxima per column are ``tops``
    (dicts column -> max): from 0 to the largest, or to ``CLIP`` times the reference's largest."""
    top = max(max(t.values()) for t in tops)
    if all("reference" in t for t in tops):
        top = min(top, CLIP * max(t["reference"] for t in tops))
    return PowerNorm(0.5, vmin=0.0, vmax=max(top, 1e-12))


def _colourbar(block, image, axes, continuous, height):
    clipped = any(float(np.nanmax(ax.get_images()[0].get_array())) > image.norm.vmax * (1 + 1e-12) for ax in axes)
    block.colorbar(image, ax=list(axes), shrink=min(0.95, max(0.5, 2.5 / max(height, 1e-9))), aspect=25,
                   extend="max" if clipped else "neither",
                   label=("density" if continuous else "mass per state") + " (square-root scale)"
                   + (f"\nclipped at {CLIP:g} x the reference's top" if clipped else ""))


def _grid_block(block, k, g, columns, pops, norm, fracs, off, continuous):
    """Grid snapshots of population k (rows: times; columns: learners, reference, then the states
    with no cell as bars)."""
    n_states = pops[columns[0]][k].shape[-1]
    axes = block.subplots(len(fracs), len(columns) + (1 if off.size else 0), squeeze=False,
                          width_ratios=[1.0] * len(columns) + ([0.6] if off.size else []))
    shape, blank = g.grid_shape, _blank_cells(g, n_states)
    off_top = max((float(np.max(pops[c][k][:, off])) for c in columns), default=0.0) if off.size else 0.0
    image = None
    for i, frac in enumerate(fracs):
        for j, name in enumerate(columns):
            ax, mu = axes[i, j], pops[name][k]
            step = _step(frac, mu)
            image = ax.imshow(_cell_image(mu[step], g), origin="lower", cmap="viridis", interpolation="nearest",
                              norm=norm)
            if blank:   # cells that hold no state: hatched, not a density of 0
                ax.add_collection(PatchCollection([Rectangle((c - 0.5, r - 0.5), 1, 1) for r, c in blank],
                                                  facecolor="0.93", edgecolor="0.6", hatch="////", linewidth=0,
                                                  label="no state"), autolim=False)
            _grid_ticks(ax, shape)
            ax.tick_params(labelsize=6)
            if j == 0:
                when = f"t / T = {frac:g}" if continuous else f"t = {step}"
                ax.set_ylabel(when + "\nrow", fontsize=7)
            if i == len(fracs) - 1:
                ax.set_xlabel("column" if len(shape) == 2 else
                              f"layers 0-{_tiling(shape)[0] - 1}, left to right, bottom to top", fontsize=7)
            if i == 0:
                _column_title(ax, name)
        if off.size:
            _off_grid_bars(axes[i, -1], g, columns, pops, k, frac, off, off_top)
            if i == 0:
                axes[i, -1].set_title("off the grid", fontsize=8)
    _colourbar(block, image, axes[:, :len(columns)].ravel(), continuous, len(fracs) * 1.2)


def _off_grid_bars(ax, g, columns, pops, k, frac, off, top):
    """The mass of each state with no cell (``caught``, ``arrived``) at the snapshot ``frac``: one
    bar per learner and the reference, in their colours, named by the state's label."""
    width = 0.8 / len(columns)
    for j, name in enumerate(columns):
        mu = pops[name][k]
        ax.bar(np.arange(off.size) + (j - (len(columns) - 1) / 2) * width, mu[_step(frac, mu), off], width,
               color=_colour(name), label=name)
    ax.set_xticks(range(off.size))
    ax.set_xticklabels([g.label(s) for s in off], fontsize=7)
    ax.set_xlim(-0.5, off.size - 0.5)
    ax.set_ylim(0, max(top, 1e-12) * 1.08)
    ax.set_ylabel("mass", fontsize=7)
    ax.tick_params(labelsize=6)


def _map_block(block, k, g, columns, pops, norm, continuous):
    """(state, time) maps of population k, one per column: named states as rows against time
    (``labelled``), else states along x and time up."""
    axes = block.subplots(1, len(columns), squeeze=False)[0]
    time_unit = "t / T" if continuous else "time t"
    image = None
    for j, name in enumerate(columns):
        ax, mu = axes[j], pops[name][k]
        ax.tick_params(labelsize=6)   # before the state ticks, which may set their own size
        n_times, n_states = mu.shape
        # the learner's and the reference's times may be different grids on [0, T]: draw on t / T
        span = (0.0, 1.0) if continuous else (-0.5, n_times - 0.5)
        if g.kind == "labelled":
            image = ax.imshow(mu.T, aspect="auto", origin="upper", cmap="viridis", interpolation="nearest",
                              norm=norm, extent=(*span, n_states - 0.5, -0.5))
            _state_ticks(ax, g, n_states, axis="y")
            if j:
                ax.set_yticklabels([])
            ax.set_xlabel(time_unit, fontsize=7)
            if not continuous:
                ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        else:
            image = ax.imshow(mu, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest", norm=norm,
                              extent=(-0.5, n_states - 0.5, *span))
            ax.set_xlabel("cell" if continuous else "state", fontsize=7)
            _state_ticks(ax, g, n_states)
            if not continuous:
                ax.yaxis.set_major_locator(MaxNLocator(6, integer=True))
            if j == 0:
                ax.set_ylabel(time_unit, fontsize=7)
        _column_title(ax, name)
    _colourbar(block, image, axes, continuous, 2.0)


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
    on_grid = [g.kind == "grid" and g.cells is None for g in geo]   # (a type with off-grid states: as states)
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
        ordered = geo[k].kind == "line"   # states on a line: draw lines; unordered states: points
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


_JOBS: list = []
"""The figures ``write_figures`` hands to forked workers: (build, path) pairs, inherited by fork."""


def _write_job(index: int):
    build, path = _JOBS[index]
    fig = build()
    return None if fig is None else _save(fig, path)


def _figure_workers(n_jobs: int) -> int:
    """Processes to draw with: the cores, where fork exists (the workers inherit the trials; a
    spawned one would re-import and re-read everything), one otherwise."""
    if n_jobs < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(n_jobs, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def write_figures(folder, trials, workers: int | None = None) -> list:
    """Save every figure of ``trials`` under ``folder``; the paths written, in a fixed order.
    Drawing (constrained layout and PNG encoding, about 1 s a figure) is spread over ``workers``
    forked processes (default: the cores), one figure in memory per process."""
    folder = Path(folder)
    builders = [(lambda: exploitability_figure(trials, "iteration"), folder / "exploitability_vs_iterations.png"),
                (lambda: exploitability_figure(trials, "samples"), folder / "exploitability_vs_samples.png")]
    for game in sorted({t["game"] for t in trials}):
        builders.append((lambda game=game: flow_figure(game, trials), folder / f"flows__{game}.png"))
        builders.append((lambda game=game: pde_figure(game, trials), folder / f"pde_density__{game}.png"))
    workers = _figure_workers(len(builders)) if workers is None else max(1, min(workers, len(builders)))
    _JOBS[:] = builders
    try:
        if workers == 1:
            written = [_write_job(i) for i in range(len(builders))]
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                written = pool.map(_write_job, range(len(builders)), chunksize=1)
    finally:
        _JOBS.clear()
    return [w for w in written if w is not None]
