"""When a finished trial may be reused: the same spec, the same code, intact files.

A trial's **key** hashes everything its numbers depend on:

- the spec: game id and parameters (with the game's defaults filled in), the grid of a
  discretized continuous game, learner name and full config (defaults filled in, presets
  expanded), seed and budget;
- the code that computes results: the sources of ``mfgbench`` and ``reference_solvers``,
  except the modules that only run, store or report trials (``RESULT_FREE``). Sources are
  compared by their syntax tree without docstrings and comments, so editing a docstring,
  a comment or the README re-runs nothing, while any change to what executes re-runs
  every trial;
- the versions of the numerical libraries (numpy, scipy, numba, and torch for learners
  that use it) and of Python.

A finished trial is reused when its ``summary.json`` carries the same key and says ``ok``
(a failed trial is retried unless asked otherwise) and every result file parses. Anything
else — a changed budget or config, new code, a torn or truncated file — runs the trial again.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import platform
from pathlib import Path

import numpy as np

from mfgbench.bench import store

ROOT = Path(__file__).resolve().parent.parent.parent
"""The folder holding the ``mfgbench`` and ``reference_solvers`` packages."""

RESULT_CODE = ("mfgbench", "reference_solvers")
RESULT_FREE = ("mfgbench/__main__.py", "mfgbench/cli.py", "mfgbench/report/", "mfgbench/bench/__init__.py",
               "mfgbench/bench/executors.py", "mfgbench/bench/progress.py", "mfgbench/bench/resume.py",
               "mfgbench/bench/schedule.py", "mfgbench/bench/store.py", "mfgbench/bench/suite.py")
"""Modules that never change a trial's numbers: the command line, the report, and the harness
that validates, schedules, stores and resumes trials (``mfgbench/bench/runner.py``, which runs
one trial, is result code)."""

RESULT_FILES = ("config.json", "metrics.jsonl", "policy.npz", "flow.npz")


def _without_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` with every bare string statement (docstrings, attribute docstrings) removed."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                            and isinstance(s.value.value, str))]
            node.body = kept or [ast.Pass()]
    return tree


def source_fingerprint(text: str) -> str:
    """Hash of what a Python source executes: its syntax tree without comments and docstrings."""
    tree = _without_docstrings(ast.parse(text))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the result code (see the module docstring), the same on every machine."""
    h = hashlib.sha256()
    for package in RESULT_CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(RESULT_FREE):
                continue
            h.update(rel.encode())
            try:
                h.update(source_fingerprint(path.read_text()).encode())
            except SyntaxError:  # hash the bytes: any edit still counts
                h.update(hashlib.sha256(path.read_bytes()).hexdigest().encode())
    return h.hexdigest()[:20]


@functools.lru_cache(maxsize=None)
def library_versions(torch: bool = False) -> dict:
    import numba
    import scipy
    out = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
           "numba": numba.__version__}
    if torch:
        try:
            import torch as _torch
            out["torch"] = _torch.__version__
        except ImportError:
            out["torch"] = None
    return out


def trial_key(spec) -> str:
    """The key of a trial (see the module docstring); ``spec`` must be valid (checked before)."""
    from mfgbench.games import spec as game_spec
    from mfgbench.learners import config_dict, learner_class, make_config
    full_config = config_dict(make_config(spec.learner, **spec.config))
    uses_torch = "continuous" in learner_class(spec.learner).kinds
    blob = {"trial": spec.as_dict(), "game_params": {**game_spec(spec.game).defaults, **spec.game_params},
            "config": full_config, "code": code_version(), "libraries": library_versions(uses_torch)}
    return hashlib.sha256(store.dumps(_sorted(blob)).encode()).hexdigest()[:24]


def _sorted(obj):
    if isinstance(obj, dict):
        return {str(k): _sorted(obj[k]) for k in sorted(obj, key=str)}
    if isinstance(obj, (list, tuple)):
        return [_sorted(v) for v in obj]
    return obj


def files_intact(folder) -> bool:
    """Whether every result file of a finished trial is there and parses to its end."""
    folder = Path(folder)
    try:
        store.read_json(folder / "config.json")
        if not store.read_jsonl(folder / "metrics.jsonl"):
            return False
        for name in ("policy.npz", "flow.npz"):
            with np.load(folder / name, allow_pickle=False) as data:
                for key in data.files:
                    data[key]
    except Exception:  # noqa: BLE001  (any damage - missing, torn, truncated - means "run again")
        return False
    return True


def finished(folder, key: str, retry_failed: bool = True) -> tuple[dict | None, str]:
    """``(summary, why)``: the trial's summary if it can be reused, else None and why not
    ("new", "changed" spec or code, "failed", "damaged" files)."""
    summary = store.finished_summary(folder)
    if summary is None:
        return None, "new"
    if summary.get("key") != key:
        return None, "changed"
    if summary.get("status") != "ok":
        return (summary, "failed") if not retry_failed else (None, "failed")
    if not files_intact(folder):
        return None, "damaged"
    return summary, "reused"


def describe(counts: dict) -> str:
    """One phrase for why trials run again, e.g. "3 changed (spec or code), 1 failed retried"."""
    words = {"changed": "changed (spec or code)", "failed": "failed before, retried",
             "damaged": "with damaged files"}
    parts = [f"{counts[k]} {words[k]}" for k in words if counts.get(k)]
    return ", ".join(parts)
