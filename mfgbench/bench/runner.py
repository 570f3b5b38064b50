"""Running a suite: each trial in its own folder, on a local process pool or a Dask cluster.

``execute_trial(spec, folder)`` runs one trial and writes its files (see
``mfgbench.bench.store``); it never raises: a trial that raises or diverges (non-finite
exploitability) is recorded as failed with its error. ``run_suite`` skips trials whose
summary already exists (``resume``), re-runs the others, and hands the rest to an
executor:

- ``workers == 1``: in this process, one after another;
- ``workers > 1``: a local process pool (spawned processes);
- ``scheduler="tcp://host:port"``: an existing Dask distributed cluster;
- ``dask_local=N``: a local Dask cluster of N worker processes started for this run.

Every trial draws its randomness from its own seed, so results do not depend on the
executor (only wall times do).
"""
from __future__ import annotations

import math
import os
import platform
import subprocess
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from mfgbench.bench import store
from mfgbench.bench.suite import Suite, TrialSpec


def _versions() -> dict:
    import numba
    import scipy

    import mfgbench
    return {"mfgbench": mfgbench.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__, "python": platform.python_version()}


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def build_game(spec: TrialSpec):
    """The game a trial plays: the registered game, or the Markov-chain version of a continuous one."""
    from mfgbench.games import make
    game = make(spec.game, **spec.game_params)
    if spec.discretize:
        from reference_solvers.pde.discretize import discretize
        game = discretize(game, **spec.discretize)   # its own id and parameters, e.g. crowd-continuous-v0@nx20-...
    return game


def shared_reference(game, cache):
    """The game's reference from the shared cache (computed and cached on first use)."""
    if getattr(game, "kind", "finite") not in ("finite", "stationary"):
        return None
    from mfgbench.reference import reference
    return reference(game, cache_path=cache)


def _prepare_references(jobs, quiet):
    """Compute each distinct game's reference once, before the trials that share it start."""
    done = set()
    for spec, _folder, cache, _rev in jobs:
        key = (spec.game, store.dumps(spec.game_params), store.dumps(spec.discretize))
        if key in done:
            continue
        done.add(key)
        try:
            game = build_game(spec)
            start = time.perf_counter()
            ref = shared_reference(game, cache)
        except Exception:  # the trial itself will fail and record the error
            continue
        if ref is not None and not quiet:
            print(f"reference {game.id}: exploitability {ref.exploitability:.2e} "
                  f"({'certified' if ref.certified else 'NOT certified'}), {time.perf_counter() - start:.1f}s",
                  flush=True)


def pde_comparison(spec: TrialSpec, game, flow) -> tuple:
    """PDE density of the continuous game on the bridged grid, and the learner's L1 gap to it.

    The finite game's flow mu_t(i) is the mass of cell i, so its density is mu_t / dv;
    the gap is ``sum_i |mu_t(i) - m_t(x_i) dv|`` averaged over t, per population.
    """
    from reference_solvers.pde import solve
    pde = solve(game.continuous, nx=spec.discretize["nx"], nt=spec.discretize["nt"])
    dv = game.dv
    gaps = [float(np.mean(np.abs(f - m * dv).sum(axis=1))) for f, m in zip(flow, pde.m)]
    return [np.asarray(m) for m in pde.m], gaps, pde.summary()


def execute_trial(spec: TrialSpec, folder, reference_cache=None, revision=None) -> dict:
    """Run one trial, write its folder, and return its summary (status "ok" or "failed")."""
    from mfgbench.learners import make_config
    from mfgbench.trial import run_trial

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    summary = {"trial": spec.name, **spec.as_dict()}
    try:
        config = make_config(spec.learner, **spec.config)
        store.write_json_atomic(folder / "config.json", {**spec.as_dict(), "config_full": _asdict(config),
                                                         "versions": _versions(), "git_revision": revision})
        game = build_game(spec)
        ref = shared_reference(game, reference_cache)
        result = run_trial(game, spec.learner, iterations=spec.iterations, seed=spec.seed, config=config,
                           reference=ref if ref is not None else False)
        store.write_jsonl_atomic(folder / "metrics.jsonl", result.history)
        final = result.final
        store.write_npz_atomic(folder / "policy.npz", **{f"policy_{k}": p for k, p in enumerate(result.policy)})
        ref_flow = getattr(result, "reference_flow", None) or ()
        pde_arrays = {}
        if spec.discretize:
            densities, gaps, pde_summary = pde_comparison(spec, game, result.flow)
            final.update({"pde_l1": float(np.mean(gaps)), "pde_l1_per_population": gaps})
            summary["pde"] = {k: pde_summary[k] for k in ("method", "residual", "converged", "mass_error")}
            pde_arrays = {f"pde_{k}": m for k, m in enumerate(densities)}
            pde_arrays["cell_volume"] = np.array(game.dv)
            pde_arrays["grid_shape"] = np.array(game.grid.shape)
        store.write_npz_atomic(folder / "flow.npz", **{f"flow_{k}": f for k, f in enumerate(result.flow)},
                               **{f"reference_{k}": f for k, f in enumerate(ref_flow)}, **pde_arrays)
        exploit = final.get("exploitability", float("nan"))
        status, error = "ok", None
        if not math.isfinite(exploit):
            status, error = "failed", f"diverged: exploitability {exploit}"
        summary.update({"status": status, "error": error, "final": final, "reference": result.reference,
                        "n_populations": game.n_populations, "kind": getattr(game, "kind", "finite")})
    except Exception as exc:  # a failing trial is recorded, the suite goes on
        summary.update({"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc(limit=8)})
    summary["seconds"] = time.perf_counter() - start
    store.write_json_atomic(folder / "summary.json", summary)
    return summary


def _asdict(config):
    import dataclasses
    return dataclasses.asdict(config)


def _run_local(jobs, workers, progress):
    if workers <= 1:
        for spec, folder, cache, rev in jobs:
            progress(execute_trial(spec, folder, cache, rev))
        return
    import multiprocessing as mp
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(execute_trial, *job) for job in jobs]
        for fut in as_completed(futures):
            progress(fut.result())


def _run_dask(jobs, scheduler, dask_local, progress):
    try:
        from dask.distributed import Client, LocalCluster, as_completed as dask_completed
    except ImportError:
        raise RuntimeError("the Dask executor needs dask[distributed]: pip install 'mfgbench[dist]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=int(dask_local), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        futures = [client.submit(execute_trial, *job, pure=False) for job in jobs]
        for fut in dask_completed(futures):
            progress(fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_suite(suite: Suite, out="results", workers: int | None = None, resume: bool = True,
              scheduler: str | None = None, dask_local: int | None = None, quiet: bool = False,
              report: bool = True) -> dict:
    """Run every trial of ``suite`` under ``out/<suite.name>/`` and write the report.

    Returns ``{"folder", "ran", "skipped", "failed", "summaries"}``.
    """
    root = Path(out) / suite.name
    root.mkdir(parents=True, exist_ok=True)
    cache = Path(out) / "references"
    revision = git_revision()
    names = [t.name for t in suite.trials]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"suite {suite.name}: trial {dup} appears twice; give the variants different tags")
    summaries, jobs = {}, []
    for spec in suite.trials:
        done = store.finished_summary(root / spec.name) if resume else None
        if done is not None:
            summaries[spec.name] = done
        else:
            store.remove_orphan_temporaries(root / spec.name)
            jobs.append((spec, root / spec.name, cache, revision))
    skipped = len(summaries)
    _prepare_references(jobs, quiet)
    bar = None
    if not quiet:
        from tqdm import tqdm
        bar = tqdm(total=len(suite.trials), initial=skipped, desc=f"suite {suite.name}", unit="trial")

    def progress(summary):
        summaries[summary["trial"]] = summary
        if bar is not None:
            bar.update(1)
            failed = sum(s.get("status") != "ok" for s in summaries.values())
            bar.set_postfix(running=len(suite.trials) - len(summaries), failed=failed)

    try:
        if scheduler or dask_local:
            _run_dask(jobs, scheduler, dask_local, progress)
        else:
            _run_local(jobs, workers if workers is not None else (os.cpu_count() or 1), progress)
    finally:
        if bar is not None:
            bar.close()
    if report:
        from mfgbench.report import write_report
        write_report(root, quiet=quiet)
    failed = [n for n, s in summaries.items() if s.get("status") != "ok"]
    return {"folder": str(root), "ran": len(jobs), "skipped": skipped, "failed": failed, "summaries": summaries}
