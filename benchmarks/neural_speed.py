"""Neural learners: time to the tests' targets, final exploitability and W1, default against paper configs.

1. Environment steps per second of ``ParticleEnv`` with N = 10^4 agents per population (zero actions;
   one step moves every agent of every population, histograms them on the PDE grid and evaluates the
   rewards), on lq-continuous-v0 and segregation-2pop-v0.
2. Per (game, learner, config) over seeds 0, 1, 2: learner wall and CPU time (scoring excluded) to the
   target, scored every ``--every`` episodes, and the final exploitability and W1 to the PDE density:
   - DDPG on lq-continuous-v0: exploitability / 5 from the initial policy and W1 < 0.1;
   - MADDPG on lq-2pop-continuous-v0: total exploitability / 5 and W1 < 0.1 per population;
   - MADDPG on segregation-2pop-v0, the hard case: exploitability / 3 (not expected; the numbers are
     recorded: the zero control scores 0.04 against a grid floor of 0.004);
   - deep-nash-q on crowd-1d-v0 and predator-prey-v0: exact exploitability / 3 from the uniform policy's.
   DDPG and MADDPG run their default config and the design notes' ``preset="paper"`` for the same
   episodes, interleaved per seed (default, paper, default, paper, ...); deep-nash-q has no paper numbers.
   The load average is printed at the start, after each block and at the end.
3. Figures (``neural_<learner>_<game>.png``): each continuous run's particle densities of seed 0 (default
   config) against the PDE equilibrium density at t = 0, T/2, T (on a finite game: the exact flow of the
   read-out policy against the certified reference flow), and every run's exploitability curves (median
   over seeds, band min-max) against the zero-control or uniform baseline and the grid's floor.

Run: ``python benchmarks/neural_speed.py [OUT_DIR]`` (default ``benchmarks/out``); about 25 CPU-minutes
(one core; ``--quick`` runs one seed and a third of the episodes). Numba compilation is excluded (a
warm-up solve and evaluation run first).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import mfgbench as mb  # noqa: E402
from _timing import median_seconds  # noqa: E402
from mfgbench.games import spec  # noqa: E402
from mfgbench.learners.neural.env import ParticleEnv  # noqa: E402

RUNS = [  # (learner, game, episodes, target factor, W1 bound per population, configs)
    ("ddpg", "lq-continuous-v0", 60, 5.0, 0.1, ("default", "paper")),
    ("maddpg", "lq-2pop-continuous-v0", 80, 5.0, 0.1, ("default", "paper")),
    ("maddpg", "segregation-2pop-v0", 100, 3.0, None, ("default", "paper")),
    ("deep-nash-q", "crowd-1d-v0", 150, 3.0, None, ("default",)),
    ("deep-nash-q", "predator-prey-v0", 150, 3.0, None, ("default",)),
]


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + " (2 cores)"


def env_speed(game_id, n_agents=10_000, n_steps=100):
    game = mb.make(game_id)
    env = ParticleEnv(game, n_agents=n_agents, n_steps=n_steps)
    zeros = tuple(np.zeros((n_agents, game.dim)) for _ in range(game.n_populations))

    def episode():
        env.reset(seed=0)
        for _ in range(n_steps):
            env.step(zeros)

    seconds = median_seconds(episode, repeats=3)
    cpu = []
    for _ in range(3):
        start = time.process_time()
        episode()
        cpu.append(time.process_time() - start)
    return n_steps / seconds, n_steps * n_agents * game.n_populations / seconds, n_steps / float(np.median(cpu))


def scorer(game):
    """score(learner) -> (exploitability, W1 per population or None), and the baseline E0 for finite games."""
    if getattr(game, "kind", "finite") == "continuous":
        from mfgbench.learners.neural import pde_reference, score_continuous
        ref = pde_reference(game)

        def score(learner):
            s = score_continuous(game, learner, ref)
            return s["exploitability"], s["w1_per_population"], s
        return score, None
    uniform = mb.exploitability(game, mb.uniform_policy(game))
    return (lambda learner: (mb.exploitability(game, learner.policy), None, None)), uniform


def one_run(learner_name, game_id, config, seed, episodes, every, factor, w1_max):
    from mfgbench.learners import make_config, make_learner

    game = mb.make(game_id)
    score, uniform = scorer(game)
    cfg = make_config(learner_name, preset=None if config == "default" else config)
    learner = make_learner(learner_name, game, cfg, np.random.default_rng(seed))
    e0, w0, _ = score(learner)
    start_e = uniform if uniform is not None else e0
    curve, wall, cpu, reached, last = [(0, e0)], 0.0, 0.0, None, None
    for ep in range(1, episodes + 1):
        t, c = time.perf_counter(), time.process_time()
        learner.step()
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
        if ep % every == 0 or ep == episodes:
            e, w1, last = score(learner)
            curve.append((ep, e))
            ok = e <= start_e / factor and (w1_max is None or max(w1) < w1_max)
            if ok and reached is None:
                reached = (ep, wall, cpu)
            final_w1 = w1
    return {"start": start_e, "final": curve[-1][1], "w1": final_w1, "w1_start": w0, "reached": reached,
            "wall": wall, "cpu": cpu, "curve": curve, "score": last, "game": game, "learner": learner}


def fmt_range(values, f="{:.4f}"):
    v = np.asarray(values, dtype=float)
    return f"{f.format(np.median(v))} [{f.format(v.min())}-{f.format(v.max())}]"


def figure(path, learner_name, game_id, results, baseline, floor):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = results["default"][0]
    game, score = first["game"], first["score"]
    K = game.n_populations if score is not None else 0
    fig, axes = plt.subplots(max(K, 1), 4, figsize=(16, 3.2 * max(K, 1)), squeeze=False, constrained_layout=True)
    if score is not None:
        from mfgbench.learners.neural import pde_reference
        ref = pde_reference(game)
        x, times = ref.grid.points[0], score["times"]
        mass = np.max([m.max(axis=0) for m in ref.m], axis=0)
        shown = x[mass > 1e-3 * mass.max()]  # where the equilibrium has mass (box domains are wide)
        for k in range(K):
            for col, frac in enumerate((0.0, 0.5, 1.0)):
                j = int(round(frac * (len(times) - 1)))
                n = int(np.argmin(np.abs(ref.times - times[j])))
                ax = axes[k][col]
                ax.plot(x, ref.m[k][n], "k-", lw=2, label="PDE equilibrium")
                ax.step(x, score["flow"][k][j], where="mid", color="C1", lw=1, label="particles (seed 0, default)")
                ax.plot(x, score["pde_flow"][k][n], "C0--", lw=1, label="PDE flow of the learned feedback")
                ax.set_title(f"{game.populations[k].name}, t = {times[j]:.2f}")
                ax.set_xlabel("x")
                ax.set_ylabel("density")
                ax.set_xlim(shown.min(), shown.max())
        axes[0][0].legend(fontsize=7)
    else:  # a finite game: the read-out policy's exact flow against the certified reference flow
        K = game.n_populations
        plt.close(fig)
        fig, axes = plt.subplots(K, 4, figsize=(16, 2.6 * K), squeeze=False, constrained_layout=True)
        flow, ref_flow = mb.distribution(game, first["learner"].policy), mb.reference(game).flow
        for k in range(K):
            for col, frac in enumerate((0.0, 0.5, 1.0)):
                n = int(round(frac * game.horizon))
                ax = axes[k][col]
                ax.plot(ref_flow[k][n], "k-", lw=2, label="certified reference")
                ax.plot(flow[k][n], "C1o-", ms=3, lw=1, label="learner's policy (seed 0), exact flow")
                ax.set_title(f"{game.populations[k].name}, t = {n}")
                ax.set_xlabel("state")
                ax.set_ylabel("mass")
        axes[0][0].legend(fontsize=7)
    ax = axes[0][3]
    for i, (config, runs) in enumerate(results.items()):
        eps = np.array([e for e, _ in runs[0]["curve"]])
        vals = np.array([[v for _, v in r["curve"]] for r in runs])
        ax.plot(eps, np.median(vals, axis=0), "o-", ms=3, color=f"C{i}", label=f"{config} config (median)")
        ax.fill_between(eps, vals.min(axis=0), vals.max(axis=0), color=f"C{i}", alpha=0.2)
    ax.axhline(baseline, color="grey", ls="--", lw=1, label="zero control" if score is not None else "uniform policy")
    if floor is not None:
        ax.axhline(floor, color="k", ls=":", lw=1, label="PDE equilibrium on the grid")
    ax.set_yscale("log")
    ax.set_xlabel("episode" if learner_name != "deep-nash-q" else "iteration")
    ax.set_ylabel("exploitability")
    ax.legend(fontsize=7)
    for k in range(1, max(K, 1)):
        axes[k][3].axis("off")
    fig.suptitle(f"{learner_name} on {game_id}")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=os.path.join(os.path.dirname(__file__), "out"))
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="one seed, a third of the episodes")
    parser.add_argument("--only", default=None, help="env, or a learner name (ddpg, maddpg, deep-nash-q)")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    seeds = [0] if args.quick else [0, 1, 2]
    print(f"# benchmarks/neural_speed.py at {time.strftime('%H:%M UTC %Y-%m-%d', time.gmtime())}; {load()}", flush=True)
    if args.only in (None, "env"):
        for game_id in ("lq-continuous-v0", "segregation-2pop-v0"):
            steps, agent_steps, cpu_steps = env_speed(game_id)
            print(f"env steps/s, {game_id}, N = 10^4 per population: {steps:,.0f} wall, {cpu_steps:,.0f} per CPU-s "
                  f"({agent_steps:.2e} agent-steps/s wall); {load()}", flush=True)
    # warm-up: Numba kernels of the PDE solver and policy evaluation, outside the timings
    from mfgbench.learners.neural import pde_reference
    for _, game_id, *_ in RUNS:
        if spec(game_id).kind == "continuous":
            pde_reference(mb.make(game_id))
    table = ["| game | learner | config | episodes | target | reached (seeds) | wall s to target | CPU s to target "
             "| exploitability start -> final | W1 final (per population) | CPU s, all episodes |",
             "|---|---|---|---:|---|---|---:|---:|---|---|---:|"]
    for learner_name, game_id, episodes, factor, w1_max, configs in RUNS:
        if args.only not in (None, learner_name):
            continue
        episodes = max(args.every, episodes // 3) if args.quick else episodes
        results = {c: [] for c in configs}
        for seed in seeds:
            for config in configs:  # interleaved: default, paper, default, paper, ...
                r = one_run(learner_name, game_id, config, seed, episodes, args.every, factor, w1_max)
                results[config].append(r)
                w1 = "" if r["w1"] is None else f" W1 {np.round(r['w1'], 4).tolist()}"
                print(f"  {learner_name} {game_id} {config} seed {seed}: E {r['start']:.4f} -> {r['final']:.4f}{w1}, "
                      f"reached {r['reached']}, {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU; curve "
                      f"{[(e, round(v, 4)) for e, v in r['curve']]}", flush=True)
        target = f"E / {factor:g}" + (f", W1 < {w1_max}" if w1_max else "")
        if spec(game_id).kind != "continuous":
            target += " (from uniform)"
        for config, runs in results.items():
            hit = [r["reached"] for r in runs if r["reached"] is not None]
            wall = f"{np.median([h[1] for h in hit]):.1f}" if hit else "not reached"
            cpu = f"{np.median([h[2] for h in hit]):.1f}" if hit else "not reached"
            w1 = "" if runs[0]["w1"] is None else \
                " / ".join(fmt_range([r["w1"][k] for r in runs], "{:.3f}") for k in range(len(runs[0]["w1"])))
            table.append(f"| {game_id} | {learner_name} | {config} | {episodes} | {target} | {len(hit)}/{len(runs)} "
                         f"(episodes {[h[0] for h in hit]}) | {wall} | {cpu} | {fmt_range([r['start'] for r in runs])} -> "
                         f"{fmt_range([r['final'] for r in runs])} | {w1} | "
                         f"{fmt_range([r['cpu'] for r in runs], '{:.1f}')} |")
            print(table[-1], flush=True)
        first = results["default"][0]
        if first["score"] is not None:
            baseline = _zero_control(first["game"])
            floor = first["score"]["reference_exploitability"]
        else:
            baseline, floor = first["start"], None
        path = os.path.join(args.out, f"neural_{learner_name}_{game_id}.png")
        figure(path, learner_name, game_id, results, baseline, floor)
        print(f"wrote {path}; {load()}", flush=True)
    print(f"\n{load()}\n")
    print("\n".join(table))


def _zero_control(game):
    from mfgbench.learners.neural import pde_reference
    from mfgbench.trial import zero_control_baseline
    return zero_control_baseline(game, pde_reference(game))["baseline_exploitability"]


if __name__ == "__main__":
    main()
