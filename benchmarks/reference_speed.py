"""Time to a certified reference equilibrium for every registered finite and stationary game.

For each game (default parameters, plus the scaling case garnet-v0 with S = 10^4, A = 5,
B = 5, T = 50) this solves ``mfgbench.reference(game, tol)`` without the cache ``repeats``
times and prints the median wall time and the median CPU time of this process
(``time.process_time()``; on a shared machine wall time is noisy, CPU time less so),
whether the result is certified, its exact exploitability and the method. An
uncertified solve runs to ``--max-seconds`` (CPU seconds of the solver) and is not repeated. Targets: under 1 s for the small games, under 30 s for
crowd-2d-v0 and the big garnet.

    python benchmarks/reference_speed.py [--repeats 3] [--tol 1e-8] [--max-seconds 120] [--games ID ...]
"""
from __future__ import annotations

import argparse
import statistics
import time

import mfgbench as mb
from mfgbench.games import spec
from mfgbench.reference import reference

EXTRA = [("garnet-v0", {"S": 10_000, "A": 5, "B": 5, "T": 50})]


def cases(games=None):
    ids = games or [g for g in mb.list_games() if spec(g).kind != "continuous"]
    out = [(g, {}) for g in ids]
    if not games:
        out += EXTRA
    return out


def time_case(game_id, params, repeats, tol, max_seconds):
    times, cpu, ref = [], [], None
    for _ in range(repeats):
        game = mb.make(game_id, **params)
        start, start_cpu = time.perf_counter(), time.process_time()
        ref = reference(game, tol=tol, cache=False, max_seconds=max_seconds)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if not ref.certified:
            break  # an uncertified solve runs to its time budget: once is enough
    return statistics.median(times), statistics.median(cpu), ref


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--games", nargs="*")
    args = ap.parse_args(argv)
    print("| game | params | median wall s | median CPU s | certified | exploitability | method |")
    print("|---|---|---:|---:|---|---:|---|")
    for game_id, params in cases(args.games):
        seconds, cpu, ref = time_case(game_id, params, args.repeats, args.tol, args.max_seconds)
        p = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
        print(f"| {game_id} | {p} | {seconds:.3f} | {cpu:.3f} | {ref.certified} | {ref.exploitability:.2e} | "
              f"{ref.method} |", flush=True)


if __name__ == "__main__":
    main()
