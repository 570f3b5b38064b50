"""Allocator settings during a large solve: fresh pages are the hidden cost of NumPy temporaries.

A 1D Newton solve on a 1000 x 1000 grid makes a few hundred temporary fields of 8-24 MB (residuals,
couplings, line-search trials). With glibc's defaults a freed block of that size goes back to the kernel
(unmapped, or trimmed off the heap), and the next temporary faults its pages in again; on a virtual
machine a fault costs about as much as writing the page. NumPy also asks for transparent huge pages on
large arrays (``madvise(MADV_HUGEPAGE)``), and where the kernel then compacts memory before the first
touch, that touch waits (seconds on this project's machines). ``large_arrays()`` keeps freed blocks in
the heap for reuse (glibc's ``mallopt``) and asks for ordinary pages while a solve runs; NumPy's setting
is restored afterwards, the allocator's stays (a solve that follows reuses the same memory). Elsewhere
than glibc on Linux only NumPy's setting changes.
"""
from __future__ import annotations

import contextlib
import ctypes
import threading

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 1 << 30
"""Freed memory below this stays in the heap; blocks below it come from the heap, not from mmap."""


def _glibc():
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None
    except OSError:
        return None


def _numpy_hugepage_switch():
    try:
        from numpy._core import multiarray
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray
    return getattr(multiarray, "_set_madvise_hugepage", None)


_LIBC = _glibc()
_SET_HUGEPAGE = _numpy_hugepage_switch()
_lock = threading.Lock()
_depth = 0
_saved_hugepage = None


@contextlib.contextmanager
def large_arrays():
    """While it is open: freed blocks stay in the heap and NumPy's large arrays use ordinary pages.
    Nests (the settings change once, at the outermost level)."""
    global _depth, _saved_hugepage
    with _lock:
        if _depth == 0:
            if _LIBC is not None:
                _LIBC.mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)
                _LIBC.mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)
            if _SET_HUGEPAGE is not None:
                _saved_hugepage = _SET_HUGEPAGE(False)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _SET_HUGEPAGE is not None:
                _SET_HUGEPAGE(bool(_saved_hugepage))
