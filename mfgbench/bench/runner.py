"""Running one trial, and the reference its game is scored against.

``execute_trial(spec, folder)`` runs one trial and writes its files (see
``mfgbench.bench.store``); it never raises: a trial that raises or diverges (non-finite
exploitability) is recorded as failed with its error. It holds the trial folder's lock
while it writes, so a second run into the same folder waits for it and then reuses its
result instead of writing beside it. ``prepare_reference`` computes (or loads) a game's
reference once, before the trials that share it. ``mfgbench.bench.schedule`` runs a
whole suite with these two.

Every trial draws its randomness from its own seed, so results do not depend on the
executor (only wall times do).
"""
from __future__ import annotations

import math
import platform
import subprocess
import time
import traceback
from pathlib import Path

import numpy as np

from mfgbench.bench import store
from mfgbench.bench.suite import TrialSpec
from mfgbench.trial import KERNEL_CLOCK


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


def prepare_reference(spec: TrialSpec, cache, numba_threads: int | None = None) -> dict:
    """Compute (or load from the cache) the reference of the game ``spec`` plays, and say how it
    went: ``{"game", "exploitability", "certified", "seconds", "compile_seconds"}`` or, when it
    cannot be computed, ``{"game", "error", ...}`` (each trial of the game then records the error).
    ``None`` as exploitability: the game has no discrete reference (scored against the PDE)."""
    _set_numba_threads(numba_threads)
    start, compiled = time.perf_counter(), KERNEL_CLOCK.seconds()
    out = {"game": spec.game}
    try:
        game = build_game(spec)
        out["game"] = game.id
        ref = shared_reference(game, cache)
        if ref is not None:
            out.update(exploitability=float(ref.exploitability), certified=bool(ref.certified))
    except Exception as exc:  # noqa: BLE001  (recorded by the trials that need it)
        out["error"] = f"{type(exc).__name__}: {exc}"
    out.update(seconds=time.perf_counter() - start, compile_seconds=KERNEL_CLOCK.seconds() - compiled)
    return out


def _set_numba_threads(threads):
    """Numba's thread count for the calling thread (pool workers x threads <= cores)."""
    if threads:
        import numba
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


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


def execute_trial(spec: TrialSpec, folder, reference_cache=None, revision=None, key=None,
                  numba_threads: int | None = None, reuse: bool = True) -> dict:
    """Run one trial, write its folder, and return its summary (status "ok" or "failed").

    ``key`` (``mfgbench.bench.resume.trial_key``) is recorded with the results; when another
    process holds the folder, this waits for it and, with ``reuse``, returns that run's summary
    if it finished the same trial (marked ``"by_another_run": True``) instead of running it again.
    """
    from mfgbench.bench import resume

    folder = Path(folder)
    with store.folder_lock(folder):
        if key is not None and reuse:
            done, _why = resume.finished(folder, key)
            if done is not None:  # another run finished it while we waited for the lock
                return {**done, "by_another_run": True}
        store.remove_orphan_temporaries(folder)
        (folder / "summary.json").unlink(missing_ok=True)  # the folder holds no finished trial until we are done
        _set_numba_threads(numba_threads)
        return _execute(spec, folder, reference_cache, revision, key)


def _execute(spec, folder, reference_cache, revision, key) -> dict:
    from mfgbench.learners import make_config
    from mfgbench.trial import run_trial

    start, compiled = time.perf_counter(), KERNEL_CLOCK.seconds()
    summary = {"trial": spec.name, **spec.as_dict(), "key": key}
    try:
        config = make_config(spec.learner, **spec.config)
        store.write_json_atomic(folder / "config.json", {**spec.as_dict(), "config_full": _asdict(config),
                                                         "versions": _versions(), "git_revision": revision,
                                                         "key": key, "numba_threads": _numba_threads()})
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
    summary["compile_seconds"] = KERNEL_CLOCK.seconds() - compiled
    store.write_json_atomic(folder / "summary.json", summary)
    return summary


def _numba_threads() -> int:
    import numba
    return numba.get_num_threads()


def _asdict(config):
    import dataclasses
    return dataclasses.asdict(config)
