"""How many threads the parallel kernels use: the cores that other processes leave free.

A parallel region ends at a barrier, so it lasts as long as its slowest thread. When other
processes keep the cores busy, one of our threads waits for a time slice while the others wait for
it at the barrier: on 2 cores with both busy, the 1D PDE solve took 1.26 s with 2 threads against
1.18 s with one (``benchmarks/out/threads_under_load.txt``). Idle threads asleep (``_jit``) remove the
worst of it; choosing the thread count removes the rest.

The load of *other* processes on the CPUs this process may run on is

    others = (busy time of those CPUs - this process's CPU time) / wall time

over the interval since the last look (``/proc/stat``, in clock ticks of 10 ms: the interval is at
least ``MIN_INTERVAL`` so that a tick is a small error). Before there is an interval (a solve's
start), the number of runnable threads in the system (``procs_running``) minus the caller stands
in for it, when this process may run on every CPU (otherwise runnable threads elsewhere say nothing
about ours). The kernels then run on ``round(cores - others)`` threads, at least 1 and at most
the count in force when the solve began (the user's or the worker's ``numba.set_num_threads``).

``adaptive_threads()`` holds that choice for one solve (nested solves share it);
``refresh_threads()``, called in the solvers' loops, re-reads the load at most every
``MIN_INTERVAL`` seconds (cheap otherwise). Off where ``/proc/stat`` is missing (not Linux) or
when ``MFGBENCH_ADAPTIVE_THREADS=0``. The numbers a kernel computes never depend on its thread
count (``_jit.PARALLEL_CHUNKS``), so neither does any result.
"""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import dataclass

MIN_INTERVAL = 0.2
"""Seconds between two readings of the load (``/proc/stat`` counts in ticks of 1/100 s)."""

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_local = threading.local()


@dataclass(frozen=True)
class CpuSample:
    """One reading: wall clock, busy seconds of the allowed CPUs, this process's CPU seconds, and
    the number of runnable threads in the whole system."""
    wall: float
    busy: float
    own: float
    running: int


def enabled() -> bool:
    return os.environ.get("MFGBENCH_ADAPTIVE_THREADS", "1") != "0" and os.path.exists("/proc/stat")


def allowed_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def read_sample(cpus: set[int], text: str | None = None) -> CpuSample:
    """A ``CpuSample`` of the CPUs ``cpus`` from ``/proc/stat`` (or its ``text``)."""
    wall, own = time.perf_counter(), time.process_time()
    if text is None:
        with open("/proc/stat") as f:
            text = f.read()
    busy_ticks, running = 0, 0
    for line in text.splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *fields = line.split()
            if int(name[3:]) in cpus:
                ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
                busy_ticks += sum(ticks) - ticks[3] - ticks[4]
        elif line.startswith("procs_running"):
            running = int(line.split()[1])
    return CpuSample(wall, busy_ticks / _CLOCK_TICKS, own, running)


def threads_for(free_cores: float, ceiling: int) -> int:
    """Threads for ``free_cores`` free cores: the nearest whole number, within [1, ceiling]."""
    return max(1, min(ceiling, math.floor(free_cores + 0.5)))


class ThreadGovernor:
    """Sets ``numba.set_num_threads`` from the load of other processes (see the module docstring).

    ``read`` returns a ``CpuSample`` (tests pass a fake one); ``ceiling`` is the most threads used
    (default: the count in force now).
    """

    def __init__(self, ceiling: int | None = None, read=None, cpus: set[int] | None = None):
        import numba
        self._numba = numba
        self.ceiling = numba.get_num_threads() if ceiling is None else int(ceiling)
        self.cpus = allowed_cpus() if cpus is None else set(cpus)
        self._read = read or (lambda: read_sample(self.cpus))
        self._all_cpus = len(self.cpus) >= (os.cpu_count() or 1)
        self.threads = self.ceiling
        self.history: list[tuple[float, int]] = []
        """(other processes' cores, threads chosen) at each reading."""
        self._last = None

    def start(self) -> int:
        if self.ceiling <= 1:  # nothing to choose
            return self.threads
        sample = self._read()
        others = max(0, sample.running - 1) if self._all_cpus else 0
        self._set(others)
        self._last = sample
        return self.threads

    def refresh(self) -> int:
        if self._last is None:
            return self.start()  # also where ceiling is 1: never sampled
        if time.perf_counter() - self._last.wall < MIN_INTERVAL:
            return self.threads
        sample = self._read()
        wall = sample.wall - self._last.wall
        if wall > 0:
            others = max(0.0, ((sample.busy - self._last.busy) - (sample.own - self._last.own)) / wall)
            self._set(others)
            self._last = sample
        return self.threads

    def _set(self, others: float):
        self.threads = threads_for(len(self.cpus) - others, self.ceiling)
        self.history.append((others, self.threads))
        if self._numba.get_num_threads() != self.threads:
            self._numba.set_num_threads(self.threads)


@contextlib.contextmanager
def adaptive_threads():
    """Fit the parallel kernels' thread count to the free cores for the duration of a solve (in this
    thread); restores the count in force before. Nested uses share the outer governor."""
    active = getattr(_local, "governor", None)
    if active is not None or not enabled():
        yield active
        return
    import numba
    before = numba.get_num_threads()
    governor = ThreadGovernor(ceiling=before)
    _local.governor = governor
    try:
        governor.start()
        yield governor
    finally:
        _local.governor = None
        _local.last = governor
        numba.set_num_threads(before)


def last_governor() -> ThreadGovernor | None:
    """The governor of the last solve that finished in this thread (its ``history`` says what it
    chose), or None."""
    return getattr(_local, "last", None)


def refresh_threads() -> None:
    """Re-fit the thread count of the solve running in this thread (no-op outside ``adaptive_threads``
    and between readings)."""
    governor = getattr(_local, "governor", None)
    if governor is not None:
        governor.refresh()
