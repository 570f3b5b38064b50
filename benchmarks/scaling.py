"""Scaling study: how the exact core, fictitious play and the PDE reference grow with size.

1. crowd-2d-v0 (5 actions, 5 noise successors) from 10 x 10 to 300 x 300 cells, T = 50: time of one
   exact exploitability evaluation (flow, rewards, policy value and best response), of one
   fictitious-play iteration, and of one backward sweep (the ``policy_value`` kernel; and the fused
   policy-value + best-response sweep) against the memory-bandwidth bound of that sweep: the bytes
   it must touch (rewards, policy, successor lists and probabilities once per time step, values)
   divided by the copy bandwidth (numpy copy of 256 MB) measured right before that case's sweeps,
   so that both see the same load on a shared machine.
2. crowd-2d-v0 50 x 50 with T from 10 to 200: the same times against the horizon.
3. PDE reference (Newton, to residual 1e-10): 1D crowd-continuous-v0 with Nt = Nx against
   Nx * Nt, and 2D exit-room-2d-v0 with Nt fixed against Nx * Ny.

Prints the tables and fitted log-log slopes, checks the targets (largest crowd-2d sweep within
3x of the bandwidth bound; 1D PDE time growing no faster than Nx * Nt, i.e. slope <= 1), and
writes a log-log figure. Run: ``python benchmarks/scaling.py [figure.png] [--quick]`` (default
figure ``benchmarks/out/scaling.png``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
import mfgbench as mb  # noqa: E402
from _timing import median_seconds  # noqa: E402
from mfgbench.core import kernels  # noqa: E402
from mfgbench.core.evaluate import induced_model  # noqa: E402
from mfgbench.learners.fictitious_play import FictitiousPlay  # noqa: E402

SIZES = [10, 30, 100, 200, 300]
HORIZONS = [10, 25, 50, 100, 200]
PDE_1D = [125, 250, 500, 1000, 2000]
PDE_2D = [16, 24, 32, 48]
PDE_2D_NT = 32
BOUND_TARGET = 3.0


def copy_bandwidth(n_bytes=256 * 2**20):
    """Bytes moved per second (read + write) by a numpy copy of an ``n_bytes`` array."""
    src = np.ones(n_bytes // 8)
    dst = np.empty_like(src)
    seconds = median_seconds(lambda: np.copyto(dst, src), repeats=5)
    return 2 * src.nbytes / seconds


def sweep_bytes(T, S, A, B, fused=False):
    """Bytes one backward sweep over T steps must touch at least once per step: rewards and policy
    (S A), successor indices and probabilities (S A B, int64 + float64, re-read every step since
    they do not fit in cache), and the values written at t and gathered at t + 1 (S each).
    The fused sweep also reads/writes the best-response values and writes Q and the greedy policy."""
    per_step = 8 * (2 * S * A + 2 * S * A * B + 2 * S)
    if fused:
        per_step += 8 * (2 * S + 2 * S * A)
    return T * per_step


def random_policy(game, rng):
    out = []
    for p in game.populations:
        x = rng.random((game.horizon, p.n_states, p.n_actions)) + 0.05
        out.append(x / x.sum(axis=-1, keepdims=True))
    return tuple(out)


def crowd_case(size, T, repeats):
    game = mb.make("crowd-2d-v0", size=size, horizon=T + 1)   # horizon counts reward times
    pi = random_policy(game, np.random.default_rng(0))
    t_eval = median_seconds(lambda: mb.exploitability(game, pi), repeats=repeats)
    fp = FictitiousPlay(game)
    t_fp = median_seconds(fp.step, repeats=repeats)
    model = induced_model(game, pi)
    bandwidth = copy_bandwidth()
    R, succ, prob, g = model.rewards[0], model.succ[0], model.prob[0], model.terminal[0]
    t_sweep = median_seconds(lambda: kernels.policy_value(R, succ, prob, g, pi[0]), repeats=repeats)
    t_fused = median_seconds(lambda: kernels.evaluation_sweep(R, succ, prob, g, pi[0]), repeats=repeats)
    S, A = R.shape[1:]
    B = succ.shape[3]
    return dict(size=size, S=S, T=game.horizon, eval=t_eval, fp=t_fp, sweep=t_sweep, fused=t_fused,
                bandwidth=bandwidth, bound=sweep_bytes(game.horizon, S, A, B) / bandwidth,
                bound_fused=sweep_bytes(game.horizon, S, A, B, fused=True) / bandwidth)


def pde_case(game_id, nx, nt):
    """Wall and CPU seconds of one Newton solve to residual 1e-10, and its summary."""
    from reference_solvers.pde import solve
    game = mb.make(game_id)
    start, cpu = time.perf_counter(), time.process_time()
    res = solve(game, nx=nx, nt=nt, method="newton", tol=1e-10)
    return time.perf_counter() - start, time.process_time() - cpu, res.summary()


def slope(x, y):
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("figure", nargs="?", default=os.path.join(HERE, "out", "scaling.png"))
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = ap.parse_args(argv)
    sizes = SIZES[:3] if args.quick else SIZES
    horizons = HORIZONS[:3] if args.quick else HORIZONS
    pde_1d = PDE_1D[:3] if args.quick else PDE_1D
    pde_2d = PDE_2D[:3] if args.quick else PDE_2D

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    crowd_case(10, 5, 1)   # compile every kernel outside the timings

    print("\n1. crowd-2d-v0, T = 50: time against the number of states S (5 actions, 5 successors)")
    head = (f"{'cells':>9s} {'S':>7s} {'evaluate s':>11s} {'FP iter s':>10s} {'sweep s':>9s} {'copy GB/s':>9s} "
            f"{'bound s':>9s} {'x bound':>7s} {'fused s':>9s} {'x bound':>7s}")
    print(head)
    by_size = []
    for size in sizes:
        r = crowd_case(size, 50, repeats=3 if size >= 200 else 5)
        by_size.append(r)
        print(f"{size:4d}x{size:<4d} {r['S']:7d} {r['eval']:11.4f} {r['fp']:10.4f} {r['sweep']:9.4f} "
              f"{r['bandwidth'] / 1e9:9.1f} {r['bound']:9.4f} {r['sweep'] / r['bound']:7.2f} {r['fused']:9.4f} "
              f"{r['fused'] / r['bound_fused']:7.2f}", flush=True)
    big = [r for r in by_size if r["S"] >= 10_000] or by_size
    print("slopes (S >= 10^4): " + ", ".join(
        f"{key} {slope([r['S'] for r in big], [r[key] for r in big]):.2f}" for key in ("eval", "fp", "sweep")))
    last = by_size[-1]
    ratio = last["sweep"] / last["bound"]
    print(f"target: one sweep at {last['size']}x{last['size']} within {BOUND_TARGET:.0f}x of the bandwidth "
          f"bound: {ratio:.2f}x -> {'met' if ratio <= BOUND_TARGET else 'NOT MET'}")

    print("\n2. crowd-2d-v0 50 x 50: time against the horizon T")
    print(f"{'T':>5s} {'evaluate s':>11s} {'FP iter s':>10s} {'sweep s':>9s}")
    by_T = []
    for T in horizons:
        r = crowd_case(50, T, repeats=5)
        by_T.append(r)
        print(f"{r['T']:5d} {r['eval']:11.4f} {r['fp']:10.4f} {r['sweep']:9.4f}", flush=True)
    Ts = np.array([r["T"] for r in by_T], dtype=float)
    print("slopes: " + ", ".join(f"{key} {slope(Ts, [r[key] for r in by_T]):.2f}" for key in ("eval", "fp", "sweep")))

    print("\n3. PDE reference (Newton to residual 1e-10)")
    pde_case("crowd-continuous-v0", 64, 16)
    pde_case("exit-room-2d-v0", 12, 8)
    print(f"{'1D Nx = Nt':>11s} {'Nx*Nt':>9s} {'iters':>5s} {'time s':>8s} {'cpu s':>8s}")
    rows_1d, cpu_1d = [], []
    for n in pde_1d:
        wall, cpu, s = pde_case("crowd-continuous-v0", n, n)
        rows_1d.append((n * n, wall))
        cpu_1d.append(cpu)
        print(f"{n:11d} {n * n:9d} {s['iterations']:5d} {wall:8.3f} {cpu:8.3f}", flush=True)
    s1 = slope(*zip(*rows_1d))
    print(f"slope of time against Nx*Nt: {s1:.2f} (CPU time: {slope([r[0] for r in rows_1d], cpu_1d):.2f}) -> target "
          f"(no faster than Nx*Nt: slope <= 1, with 0.05 allowed for timing noise): {'met' if s1 <= 1.05 else 'NOT MET'}")
    print(f"{'2D Nx = Ny':>11s} {'Nx*Ny':>9s} {'Nt':>5s} {'iters':>5s} {'time s':>8s} {'cpu s':>8s}")
    rows_2d, cpu_2d = [], []
    for n in pde_2d:
        wall, cpu, s = pde_case("exit-room-2d-v0", n, PDE_2D_NT)
        rows_2d.append((n * n, wall))
        cpu_2d.append(cpu)
        print(f"{n:11d} {n * n:9d} {PDE_2D_NT:5d} {s['iterations']:5d} {wall:8.3f} {cpu:8.3f}", flush=True)
    s2 = slope(*zip(*rows_2d))
    print(f"slope of time against Nx*Ny (Nt = {PDE_2D_NT}): {s2:.2f} (CPU time: "
          f"{slope([r[0] for r in rows_2d], cpu_2d):.2f})")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")

    figure(args.figure, by_size, by_T, rows_1d, rows_2d)
    print(f"figure: {args.figure}")
    return 0


def figure(path, by_size, by_T, rows_1d, rows_2d):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))

    def plot(ax, x, y, label, **kw):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ax.loglog(x, y, marker="o", label=f"{label} (slope {slope(x, y):.2f})", **kw)

    ax = axes[0, 0]
    S = [r["S"] for r in by_size]
    plot(ax, S, [r["eval"] for r in by_size], "exploitability evaluation")
    plot(ax, S, [r["fp"] for r in by_size], "fictitious-play iteration")
    plot(ax, S, [r["sweep"] for r in by_size], "one policy-value sweep")
    plot(ax, S, [r["bound"] for r in by_size], "bandwidth bound of that sweep", linestyle="--")
    ax.set(xlabel="states S (crowd-2d, T = 50)", ylabel="seconds", title="against the number of states")
    ax = axes[0, 1]
    Ts = [r["T"] for r in by_T]
    plot(ax, Ts, [r["eval"] for r in by_T], "exploitability evaluation")
    plot(ax, Ts, [r["fp"] for r in by_T], "fictitious-play iteration")
    plot(ax, Ts, [r["sweep"] for r in by_T], "one policy-value sweep")
    ax.set(xlabel="horizon T (crowd-2d 50 x 50)", ylabel="seconds", title="against the horizon")
    ax = axes[1, 0]
    plot(ax, *zip(*rows_1d), "Newton solve, crowd-continuous-v0")
    x = np.array([r[0] for r in rows_1d], float)
    ax.loglog(x, rows_1d[0][1] * x / x[0], ":", color="gray", label="proportional to Nx*Nt")
    ax.set(xlabel="Nx * Nt (Nt = Nx)", ylabel="seconds", title="PDE 1D")
    ax = axes[1, 1]
    plot(ax, *zip(*rows_2d), f"Newton solve, exit-room-2d-v0 (Nt = {PDE_2D_NT})")
    x = np.array([r[0] for r in rows_2d], float)
    ax.loglog(x, rows_2d[0][1] * x / x[0], ":", color="gray", label="proportional to Nx*Ny")
    ax.set(xlabel="Nx * Ny", ylabel="seconds", title="PDE 2D")
    for ax in axes.flat:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
