"""The results store: one folder per trial, every file written atomically.

Layout under a suite's folder ``<out>/<suite>/``::

    manifest.json       the trials of the last run into this folder (its suite), so that the
                        report shows that suite and not every trial an earlier run left here
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
one, never a torn one. A temporary's name carries its writer (``.<file>.<pid>@<host>.<random>.tmp``):
only temporaries whose writer is dead are cleaned up, so two runs sharing a folder never
delete each other's. Files get the mode ``0666`` less the user's umask, like any file the
user creates.

Concurrency: a trial folder holds a lock (``.lock``, an advisory ``flock`` released by
the kernel when its holder exits, even by ``kill -9``) while a trial is written into it;
a second run that reaches the same trial waits for the first instead of writing beside it.
A run also holds a marker ``.run.<pid>@<host>.lock`` in its suite folder, so that another run
can say that it shares the folder (``live_runs``).
"""
from __future__ import annotations

import io
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from mfgbench.files import _TEMPORARY, host, write_bytes_atomic, writer_tag

try:
    import fcntl
except ImportError:  # not on Windows: trial folders are then not locked
    fcntl = None


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


MANIFEST = "manifest.json"


def write_manifest(folder, suite: str, trials) -> dict:
    """Record in ``folder/manifest.json`` the trials of the run about to start: its suite's name,
    when it started, and per trial its folder name, key and spec (``trials``: dicts with ``name``,
    ``key`` and the spec's fields). Returns the manifest."""
    from datetime import datetime, timezone

    manifest = {"suite": suite, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "writer": writer_tag(), "trials": list(trials)}
    write_json_atomic(Path(folder) / MANIFEST, manifest)
    return manifest


def read_manifest(folder) -> dict | None:
    """The manifest of the last run into ``folder``, or None (no run wrote one: older results)."""
    try:
        manifest = read_json(Path(folder) / MANIFEST)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("trials"), list):
        return None
    return manifest


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def remove_orphan_temporaries(folder) -> list:
    """Delete the temporaries whose writer is dead (a killed run's; they never replaced a real
    file) and return their paths. Temporaries of a live process, or written from another host,
    or not named by this module, are left alone."""
    folder, removed = Path(folder), []
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            m = _TEMPORARY.match(tmp.name)
            if m and m["host"] == host() and not _alive(int(m["pid"])):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


@contextmanager
def run_marker(folder):
    """Hold this run's marker in ``folder`` for the ``with`` block (see ``live_runs``)."""
    path = Path(folder) / f".run.{writer_tag()}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def live_runs(folder) -> list:
    """``pid@host`` of the other runs holding a marker in ``folder``; markers of dead runs are removed."""
    found = []
    for path in Path(folder).glob(".run.*.lock"):
        tag = path.name[len(".run."):-len(".lock")]
        if tag == writer_tag() or fcntl is None:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found.append(tag)
        else:
            path.unlink(missing_ok=True)  # its run is gone
        finally:
            os.close(fd)
    return found


@contextmanager
def folder_lock(folder, on_wait=None):
    """Hold ``folder/.lock`` (exclusive ``flock``) for the ``with`` block, creating the folder.

    When another process holds it, ``on_wait(holder)`` is called with the holder's
    ``pid@host`` (or None) and the call blocks until it is released. The kernel releases the
    lock when the holder exits, however it exits, so a dead run never blocks a later one.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(os.pread(fd, 200, 0).decode(errors="replace").strip() or None)
                fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{writer_tag()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
