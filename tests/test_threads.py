"""Numba's OpenMP threads sleep when idle unless the user says otherwise (see mfgbench._jit)."""
import os
import subprocess
import sys

import pytest

PROBE = "import os, mfgbench; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"


@pytest.mark.parametrize("given, expected", [({}, "PASSIVE None"),
                                             ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE None"),
                                             ({"GOMP_SPINCOUNT": "300000"}, "None 300000")])
def test_idle_openmp_threads_sleep_unless_the_environment_says_otherwise(given, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(given)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == expected


# ----------------------------------------------------------------------------- the thread governor
import multiprocessing as mp  # noqa: E402
import time  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

from mfgbench import _threads  # noqa: E402
from mfgbench._threads import CpuSample, ThreadGovernor, adaptive_threads, read_sample, threads_for  # noqa: E402

PROC_STAT = """cpu  300 0 100 600 0 0 0 0 0 0
cpu0 100 50 20 300 10 1 2 3 0 0
cpu1 200 0 80 300 0 0 0 0 0 0
cpu2 7 7 7 7 7 7 7 7 0 0
intr 1 2 3
procs_running 4
procs_blocked 0
"""


def test_read_sample_counts_busy_ticks_of_the_allowed_cpus_only():
    s = read_sample({0, 1}, text=PROC_STAT)
    busy = (100 + 50 + 20 + 1 + 2 + 3) + (200 + 80)  # every field but idle and iowait
    assert s.busy == pytest.approx(busy / _threads._CLOCK_TICKS)
    assert s.running == 4
    assert read_sample({2}, text=PROC_STAT).busy == pytest.approx(6 * 7 / _threads._CLOCK_TICKS)


@pytest.mark.parametrize("free, ceiling, expected", [(2.0, 2, 2), (1.6, 2, 2), (1.4, 2, 1), (0.0, 2, 1),
                                                     (-3.0, 4, 1), (7.9, 4, 4), (2.5, 8, 3)])
def test_threads_for_rounds_the_free_cores_within_one_and_the_ceiling(free, ceiling, expected):
    assert threads_for(free, ceiling) == expected


class FakeStat:
    """CpuSamples in which other processes keep ``others`` cores busy while this process uses ``own``
    cores, ``dt`` seconds apart."""

    def __init__(self, running, others, own=1.0, dt=0.25):
        self.running, self.others, self.own, self.dt = running, list(others), own, dt
        self.wall, self.busy, self.cpu = time.perf_counter() - 10.0, 0.0, 0.0

    def __call__(self):
        sample = CpuSample(self.wall, self.busy, self.cpu, self.running)
        others = self.others.pop(0) if self.others else 0.0
        self.wall += self.dt
        self.busy += (others + self.own) * self.dt
        self.cpu += self.own * self.dt
        return sample


def test_governor_takes_the_cores_other_processes_leave_free(monkeypatch):
    monkeypatch.setattr(_threads, "MIN_INTERVAL", 0.0)
    stat = FakeStat(running=1, others=[2.0, 1.0, 0.2, 1.3])
    gov = ThreadGovernor(ceiling=2, read=stat, cpus={0, 1})
    before = numba.get_num_threads()
    try:
        assert gov.start() == 2  # only the caller runs
        assert [gov.refresh() for _ in range(4)] == [1, 1, 2, 1]
        assert [o for o, _ in gov.history[1:]] == pytest.approx([2.0, 1.0, 0.2, 1.3])
    finally:
        numba.set_num_threads(before)


def test_governor_starts_from_the_runnable_threads_only_when_it_may_use_every_cpu(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    stat = FakeStat(running=8, others=[])
    before = numba.get_num_threads()
    try:
        assert ThreadGovernor(ceiling=4, read=stat, cpus=set(range(8))).start() == 1
        # pinned to 2 of the 8 CPUs: threads runnable on the other 6 say nothing; start at the ceiling
        assert ThreadGovernor(ceiling=2, read=stat, cpus={0, 1}).start() == 2
    finally:
        numba.set_num_threads(before)


def test_governor_reads_the_load_at_most_every_min_interval():
    stat = FakeStat(running=1, others=[])
    gov = ThreadGovernor(ceiling=2, read=stat, cpus={0, 1})
    gov.start()
    gov._last = CpuSample(time.perf_counter(), 0.0, 0.0, 1)  # read just now
    gov.refresh()
    assert len(gov.history) == 1


def _spin(stop):
    while not stop.is_set():
        sum(range(10_000))


@pytest.mark.skipif(len(_threads.allowed_cpus()) < 2 or numba.config.NUMBA_NUM_THREADS < 2
                    or not _threads.enabled(), reason="needs 2 cores and /proc/stat")
def test_a_solve_on_a_machine_whose_cores_are_all_busy_runs_on_one_thread():
    from mfgbench.games import make
    from reference_solvers.pde import solve
    game = make("crowd-continuous-v0")
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in _threads.allowed_cpus()]
    for p in spinners:
        p.start()
    before = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        time.sleep(0.5)
        solve(game, nx=400, nt=400, tol=1e-8)
        history = _threads.last_governor().history
    finally:
        numba.set_num_threads(before)
        stop.set()
        for p in spinners:
            p.join()
    assert history and all(t == 1 for _, t in history), history
    assert numba.get_num_threads() == before


def test_switching_thread_counts_mid_solve_changes_no_number(monkeypatch):
    """The governor may change the count between any two kernel calls: the solution must be the
    same bit for bit as on a fixed count (reductions go through fixed chunks)."""
    from mfgbench.games import make
    from reference_solvers.pde import solve
    game = make("crowd-continuous-v0")
    before = numba.get_num_threads()
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 Numba threads")
    numba.set_num_threads(2)
    try:
        monkeypatch.setenv("MFGBENCH_ADAPTIVE_THREADS", "0")
        fixed = solve(game, nx=120, nt=120, tol=1e-10)
        monkeypatch.setenv("MFGBENCH_ADAPTIVE_THREADS", "1")
        monkeypatch.setattr(_threads, "MIN_INTERVAL", 0.0)
        monkeypatch.setattr(_threads, "enabled", lambda: True)
        alternating = FakeStat(running=1, others=[0.0, 2.0] * 10_000)
        monkeypatch.setattr(_threads, "read_sample", lambda cpus: alternating())
        switched = solve(game, nx=120, nt=120, tol=1e-10)
        history = _threads.last_governor().history
    finally:
        numba.set_num_threads(before)
    assert {t for _, t in history} == {1, 2}
    for a, b in zip(fixed.u + fixed.m, switched.u + switched.m):
        assert np.array_equal(a, b)


def test_adaptive_threads_restores_the_count_and_nests(monkeypatch):
    monkeypatch.setattr(_threads, "enabled", lambda: True)
    monkeypatch.setattr(_threads, "read_sample", lambda cpus: FakeStat(running=5, others=[])())
    before = numba.get_num_threads()
    with adaptive_threads() as outer:
        with adaptive_threads() as inner:
            assert inner is outer
    assert numba.get_num_threads() == before
