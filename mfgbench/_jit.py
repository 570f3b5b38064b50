"""The one place that sets Numba's compile flags for every kernel of the toolkit.

Kernels are compiled on first call and cached on disk (``cache=True``), so a clean
clone pays the compile once. Signatures stay few: float64 arrays, int64 indices.
"""
import numba

jit = numba.njit(cache=True, nogil=True)
"""Decorator for the toolkit's compute kernels (nopython, cached, GIL released)."""

jit_inline = numba.njit(cache=True, nogil=True, inline="always")
"""``jit`` for small helpers of kernels, inlined into their callers at Numba's IR level (a call per
state in a backward induction would otherwise cost as much as the arithmetic)."""
