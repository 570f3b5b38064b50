"""Run dense linear algebra on one BLAS thread.

The polish factorises many small dense Jacobians (a few hundred unknowns). Multi-threaded
OpenBLAS spin-waits on such sizes, and on a loaded 2-core machine an SVD of a 180 x 180
matrix took 0.3 s on two threads against 8 ms on one. ``one_blas_thread()`` sets the
thread count of every OpenBLAS loaded in the process to 1 and restores it on exit (a no-op
where no OpenBLAS with a thread setter is loaded).
"""
from __future__ import annotations

import contextlib
import ctypes
import re


_SETTERS = None


def _openblas_setters():
    global _SETTERS
    if _SETTERS is None:
        _SETTERS = _find_setters()
    return _SETTERS


def _find_setters():
    try:
        maps = open("/proc/self/maps").read()
    except OSError:
        return []
    out = []
    for path in sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    out.append((get, put))
                    break
            else:
                continue
            break
    return out


@contextlib.contextmanager
def one_blas_thread():
    setters = _openblas_setters()
    saved = [int(get()) for get, _ in setters]
    try:
        for _, put in setters:
            put(1)
        yield
    finally:
        for (_, put), n in zip(setters, saved):
            put(n)
