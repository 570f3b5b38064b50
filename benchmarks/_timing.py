"""Timing helper shared by the benchmark scripts: median wall time over repeats."""
import statistics
import time


def median_seconds(fn, repeats=7, warmup=1):
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
