"""The one place that sets Numba's compile flags for every kernel of the toolkit.

Kernels are compiled on first call and cached on disk (``cache=True``), so a clean
clone pays the compile once. Signatures stay few: float64 arrays, int64 indices.

Parallel kernels run on Numba's OpenMP layer with idle threads asleep (``OMP_WAIT_POLICY=PASSIVE``)
unless the environment says otherwise (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` set): by default
GNU OpenMP's idle threads spin, and on a machine whose other core is busy the spinning thread
steals the time slices the working one needs (``benchmarks/threads_under_load.py``: the 1D PDE
solve took up to 2.8x as long with 2 spinning threads as with one; asleep, it never takes longer).
This must be set before the OpenMP runtime loads, i.e. before the first parallel kernel runs.
How many threads a solve uses is fitted to the free cores while it runs (``mfgbench._threads``).
"""
import os

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import numba  # noqa: E402

jit = numba.njit(cache=True, nogil=True)
"""Decorator for the toolkit's compute kernels (nopython, cached, GIL released)."""

jit_inline = numba.njit(cache=True, nogil=True, inline="always")
"""``jit`` for small helpers of kernels, inlined into their callers at Numba's IR level (a call per
state in a backward induction would otherwise cost as much as the arithmetic)."""

jit_parallel = numba.njit(cache=True, nogil=True, parallel=True)
"""``jit`` for kernels whose loops run on all cores (``numba.prange``): independent time steps, or
passes over vectors of 10^6 values and more, which one core cannot stream at the machine's memory
bandwidth. Reductions go through a fixed number of chunks (``PARALLEL_CHUNKS``), never through the
thread count, so the numbers are the same on any machine and with any number of threads."""

PARALLEL_CHUNKS = 8
"""Chunks of a parallel reduction: partial sums are added in chunk order (reproducible)."""
