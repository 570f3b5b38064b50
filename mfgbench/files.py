"""Files written atomically, readable by other processes at any moment.

A file is written to a temporary beside it and renamed over the target (``os.replace``), so a
killed writer leaves either the old file or the new one, never a torn one. A temporary's name
carries its writer (``.<file>.<pid>@<host>.<random>.tmp``), so that a cleanup removes only the
temporaries of dead writers, and files get the mode ``0666`` less the user's umask, like any
file the user creates (``tempfile.mkstemp`` would force 0600). Used by the results store and by
the reference cache.
"""
from __future__ import annotations

import os
import re
import secrets
import socket
from pathlib import Path


def host() -> str:
    """This machine's name, reduced to letters, digits and dashes (in temporary and lock files)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def writer_tag() -> str:
    """Who writes: ``<pid>@<host>`` (in temporary and lock files)."""
    return f"{os.getpid()}@{host()}"


_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[0-9a-f]+\.tmp$")


def _new_temporary(path: Path) -> tuple[int, Path]:
    """A new temporary beside ``path``, created with mode 0666 (the umask then applies, as for
    any file the user creates; ``tempfile.mkstemp`` would force 0600)."""
    while True:
        tmp = path.parent / f".{path.name}.{writer_tag()}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def write_bytes_atomic(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temporary(path)
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
