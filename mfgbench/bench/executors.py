"""Where trials run: in this process, on a local pool of worker processes, or on a Dask cluster.

Each executor runs ``fn(*args)`` tasks, at most ``capacity`` at a time (the scheduler never
submits more, so every submitted task is running as soon as a worker is ``ready()``: spawned
workers take a few seconds to import the package), and can be aborted at once:

- ``Inline``: in this process, one task at a time;
- ``Pool``: spawned worker processes. Each worker ignores SIGINT (a Ctrl-C at the terminal
  reaches the whole process group; the parent alone decides what to do), dies with its parent
  (``PR_SET_PDEATHSIG`` on Linux, a watchdog thread elsewhere), and uses ``cores // workers``
  Numba and BLAS threads, so that workers x threads never exceeds the cores;
- ``Dask``: an existing cluster (``tcp://host:port``, reached within ``CONNECT_TIMEOUT``
  seconds) or a local one started for the run.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import signal
import sys
import threading
import time

CONNECT_TIMEOUT = 5.0
"""Seconds to reach a Dask scheduler before giving up."""

THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Thread counts a spawned worker reads when it starts (Numba, OpenMP, BLAS)."""


class ExecutorError(RuntimeError):
    """The executor cannot be started (e.g. no Dask scheduler at the given address)."""


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    return max(1, usable_cores() // max(1, workers))


class Inline:
    """Tasks run in this process, each when submitted."""

    capacity = 1
    threads = None
    description = "one at a time in this process"

    def submit(self, fn, *args) -> cf.Future:
        future = cf.Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001  (delivered through the future, as by the other executors)
            future.set_exception(exc)
        return future

    def wait_any(self, futures, timeout):
        return {f for f in futures if f.done()}

    def ready(self) -> int:
        return 1

    def abort(self, futures):
        pass

    def close(self):
        pass


def _die_with_parent(parent: int) -> None:
    """Make this worker exit when its parent does, even when the parent is killed by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
        else:
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, name="mfgbench-parent-watch", daemon=True).start()


def _worker_init(parent: int, threads: int, ready) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    import numba
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    with ready.get_lock():
        ready.value += 1


@contextlib.contextmanager
def _thread_environment(threads: int):
    """The environment spawned workers inherit: ``threads`` Numba/OpenMP/BLAS threads each (a
    smaller count already set by the user is kept)."""
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    try:
        for k, old in saved.items():
            try:
                keep = old is not None and 1 <= int(old) <= threads
            except ValueError:
                keep = False
            os.environ[k] = old if keep else str(threads)
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


class Pool:
    """``workers`` spawned processes (see the module docstring)."""

    def __init__(self, workers: int):
        import multiprocessing as mp
        self.capacity = int(workers)
        self.threads = threads_per_worker(self.capacity)
        self.description = f"on {self.capacity} worker processes x {self.threads} thread{'s' * (self.threads > 1)}"
        context = mp.get_context("spawn")
        self._ready = context.Value("i", 0)
        self._pool = cf.ProcessPoolExecutor(max_workers=self.capacity, mp_context=context, initializer=_worker_init,
                                            initargs=(os.getpid(), self.threads, self._ready))

    def submit(self, fn, *args):
        with _thread_environment(self.threads):  # workers are spawned on submit
            return self._pool.submit(fn, *args)

    def wait_any(self, futures, timeout):
        done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def ready(self) -> int:
        """Workers that have started (imported the package) and can run a task."""
        return self._ready.value

    def abort(self, futures):
        """Stop at once: terminate every worker (SIGTERM, then SIGKILL after 2 s), drop queued tasks."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        for p in processes:
            with contextlib.suppress(Exception):
                p.terminate()
        deadline = time.monotonic() + 2.0
        for p in processes:
            with contextlib.suppress(Exception):
                p.join(max(0.0, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
                    p.join(1.0)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def close(self):
        """Let the workers exit in the background (they take a second or two to tear down);
        the interpreter joins them before it exits."""
        self._pool.shutdown(wait=False)


class Dask:
    """A Dask cluster: the scheduler at ``address``, or a local cluster of ``local`` workers."""

    def __init__(self, address: str | None = None, local: int | None = None):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("the Dask executor needs dask[distributed]: pip install 'mfgbench[dist]'") from None
        self._cluster = None
        quiet = logging.getLogger("distributed")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # connection retries would print pages of warnings
        try:
            if address:
                try:
                    self._client = Client(address, timeout=CONNECT_TIMEOUT)
                except (OSError, TimeoutError, ValueError) as exc:
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise ExecutorError(f"cannot reach the Dask scheduler at {address} within "
                                        f"{CONNECT_TIMEOUT:g} s ({reason})") from None
            else:
                self._cluster = LocalCluster(n_workers=int(local), threads_per_worker=1, processes=True,
                                             dashboard_address=None)
                self._client = Client(self._cluster)
        finally:
            quiet.setLevel(level)
        self.capacity = max(1, sum(self._client.nthreads().values()))
        self.threads = threads_per_worker(self.capacity) if local else None
        self.description = f"on the Dask cluster {address or '(local)'} ({self.capacity} threads)"

    def submit(self, fn, *args):
        return self._client.submit(fn, *args, pure=False)

    def wait_any(self, futures, timeout):
        end = time.monotonic() + timeout
        while True:
            done = {f for f in futures if f.done()}
            if done or time.monotonic() >= end:
                return done
            time.sleep(0.05)

    def ready(self) -> int:
        return self.capacity

    def abort(self, futures):
        with contextlib.suppress(Exception):
            self._client.cancel(list(futures))
        self.close()

    def close(self):
        with contextlib.suppress(Exception):
            self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()


def make_executor(workers: int | None, tasks: int, scheduler: str | None = None, dask_local: int | None = None):
    """The executor for a run of ``tasks`` tasks: Dask if asked for, else a pool of ``workers``
    processes (default: the usable cores; no more than there are tasks), in-process for one."""
    if scheduler or dask_local:
        return Dask(scheduler, dask_local)
    workers = min(workers or usable_cores(), max(1, tasks))
    return Inline() if workers <= 1 else Pool(workers)
