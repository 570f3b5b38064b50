"""The results store: one folder per trial, every file written atomically.

Layout under a suite's folder ``<out>/<suite>/``::

    {game}__{learner}__{seed}/
        config.json     what ran: game id and params, learner and config, seed, budget,
                        package versions, git revision
        metrics.jsonl   one JSON object per checkpoint
        summary.json    final scores and status ("ok" or "failed" with the error); written
                        last, so its presence marks a finished trial
        policy.npz      final policy profile (policy_0, policy_1, ...)
        flow.npz        final flow (flow_0, ...) and the reference flow (reference_0, ...)

Atomic: each file is written to a temporary name in the same folder and renamed over
the target (``os.replace``), so a killed run leaves either the old file or the new
one, never a torn one. Leftover temporaries are ignored and cleaned on the next write.
"""
from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def _clean(obj):
    """Non-finite floats become strings ("nan", "inf") so every file is valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


def dumps(obj) -> str:
    return json.dumps(_clean(obj), default=_json_default, allow_nan=False)


def write_bytes_atomic(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path, obj) -> None:
    write_bytes_atomic(path, (json.dumps(_clean(obj), default=_json_default, indent=2, allow_nan=False)
                              + "\n").encode())


def write_jsonl_atomic(path, records) -> None:
    write_bytes_atomic(path, "".join(dumps(r) + "\n" for r in records).encode())


def write_npz_atomic(path, **arrays) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def read_json(path):
    with open(path) as fh:
        return json.load(fh)


def read_jsonl(path) -> list:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def trial_dir_name(game: str, learner: str, seed: int, tag: str = "") -> str:
    return f"{game}__{learner}__{seed}" + (f"__{tag}" if tag else "")


def finished_summary(folder) -> dict | None:
    """The trial's summary if it finished (summary.json exists and parses), else None."""
    path = Path(folder) / "summary.json"
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def remove_orphan_temporaries(folder) -> None:
    """Delete temporaries a killed writer left behind (they never replaced a real file)."""
    folder = Path(folder)
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
