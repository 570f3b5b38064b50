"""Tuned learner configs: the TOML files ``python -m mfgbench tune`` writes, and the one the
package ships (``mfgbench/learners/tuned.toml``), which the standard suite uses.

A file holds ``[[tuned]]`` entries. Each entry is the best config one tuning run found for
one learner on one game or on a family of games (``learner``, ``games``, ``family``), with
what produced it: the search space, the budget (``iterations``), the ``seeds``, the number
of trials, the objective and its best value, the package versions and the command line.
``config`` holds the overrides of the learner's default config.

``tuned_config(learner, game_id, kind)`` looks an entry up: the entry for that very game
first, then the entry of the family ``kind`` ("finite" or "stationary"), else None. A
continuous game's entry (tuned on its discretization, recorded as ``discretize``) serves the
tabular trials that play it discretized, of kind "finite".
"""
from __future__ import annotations

import tomllib
from pathlib import Path

SHIPPED = Path(__file__).with_name("tuned.toml")
"""The tuned file installed with the package (package data)."""


class TunedFileError(ValueError):
    """A tuned file that cannot be read or lacks a field."""


def load_tuned(path=None) -> list[dict]:
    """The entries of a tuned file (default: the shipped one)."""
    path = Path(path) if path is not None else SHIPPED
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise TunedFileError(f"cannot read tuned file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TunedFileError(f"tuned file {path} is not valid TOML: {exc}") from None
    entries = data.get("tuned", [])
    if not isinstance(entries, list):
        raise TunedFileError(f"tuned file {path}: 'tuned' must be an array of tables ([[tuned]])")
    for i, e in enumerate(entries):
        for key in ("learner", "games", "config"):
            if key not in e:
                raise TunedFileError(f"tuned file {path}, entry {i}: missing field {key!r}")
    return entries


def tuned_config(learner: str, game_id: str, kind: str, path=None) -> dict | None:
    """Overrides of ``learner``'s default config tuned for ``game_id`` (an entry whose games are
    exactly that game), else for the family ``kind``, else None."""
    entries = [e for e in load_tuned(path) if e["learner"] == learner]
    for e in entries:
        if list(e["games"]) == [game_id]:
            return dict(e["config"])
    for e in entries:
        if e.get("family") == kind:
            return dict(e["config"])
    return None
