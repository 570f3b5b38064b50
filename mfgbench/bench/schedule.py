"""Running a suite: check it, resume it, run what is left, report.

``run_suite`` goes through these phases under one progress bar:

1. **check** every trial's fields and build each distinct game, learner config and
   learner once (``suite.check_buildable``), evaluating the uniform policy on each game:
   bad values fail here, before any trial runs, and the exact-evaluation kernels are
   compiled here once (a fresh checkout says so: "compiling kernels, once");
2. **resume**: a trial whose folder holds a finished result with the same key (spec, code,
   libraries: ``mfgbench.bench.resume``) is reused; the others run, failed ones included;
3. **references**: each game's reference is computed once, on the executor, before its
   trials start (trials of other games run meanwhile);
4. **trials**: first one of each (game, learner) pair, so that the cost of every kind of
   trial is known early (the ETA rests on it), then the most expensive first (no long tail);
   never more than the executor's workers at a time, so that everything submitted is running
   and a Ctrl-C has nothing queued to cancel;
5. the **report** (leaderboard and figures) of this suite's trials, which the run lists in the
   folder's ``manifest.json`` before any trial runs (``store.write_manifest``): trials an earlier
   run left in the folder (other games, budgets, configs) are not shown.

A Ctrl-C (or SIGINT) stops within seconds: the workers are terminated, finished trials are
kept, and ``RunInterrupted`` says what finished and how to resume.
"""
from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
import signal
import time
from collections import Counter
from pathlib import Path

import numba.core.event

from mfgbench.bench import runner, store
from mfgbench.bench.executors import make_executor
from mfgbench.bench.progress import CostModel, Progress, clock, eta
from mfgbench.bench.resume import describe, finished, trial_key
from mfgbench.bench.suite import Suite, SuiteError, check_buildable, check_name, game_key

POLL_SECONDS = 0.5
"""How often the scheduler looks at its running tasks (the progress bar refreshes on its own)."""


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by Ctrl-C; ``str()`` says what finished and how to resume."""


class _CompileNotice(numba.core.event.Listener):
    """Says once, when Numba starts compiling a kernel in this process, that it happens once."""

    def __init__(self, progress: Progress):
        self.progress, self.said = progress, False

    def on_start(self, event):
        if not self.said:
            self.said = True
            self.progress.write("compiling kernels, once (they are cached on disk for the next runs) ...")
            self.progress.phase("compiling kernels, once")

    def on_end(self, event):
        pass


def _results_folder(out, name) -> Path:
    check_name(name, f"suite {name!r}")
    out = Path(out)
    root = out / name
    if out.resolve() not in root.resolve().parents:
        raise SuiteError(f"suite {name!r}: its folder {root} is not inside {out}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test.{store.writer_tag()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise SuiteError(f"cannot write results to {root}: {exc.strerror or exc}") from None
    return root


def run_suite(suite: Suite, out="results", workers: int | None = None, resume: bool = True,
              scheduler: str | None = None, dask_local: int | None = None, quiet: bool = False,
              report: bool = True, retry_failed: bool = True) -> dict:
    """Run every trial of ``suite`` under ``out/<suite.name>/`` and write the report.

    ``resume`` (default True) reuses finished trials with the same key; ``retry_failed``
    (default True) runs failed ones again. Raises SuiteError (a ValueError) for a bad suite
    before anything runs, ExecutorError when the executor cannot start, RunInterrupted on
    Ctrl-C. Returns ``{"folder", "ran", "skipped", "by_another_run", "failed", "summaries"}``.
    """
    names = [t.name for t in suite.trials]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SuiteError(f"suite {suite.name}: trial {dup} appears twice; give the variants different tags")
    root = _results_folder(out, suite.name)
    cache = Path(out) / "references"
    with store.run_marker(root):
        return _run(suite, root, cache, workers, resume, scheduler, dask_local, quiet, report, retry_failed)


def _run(suite, root, cache, workers, resume, scheduler, dask_local, quiet, report, retry_failed):
    progress = Progress(f"suite {suite.name}", "checking the suite", len(suite.trials), enabled=not quiet)
    try:
        notice = _CompileNotice(progress)
        numba.core.event.register("numba:compile", notice)
        try:
            games = check_buildable(suite.trials, f"suite {suite.name}")
        finally:
            numba.core.event.unregister("numba:compile", notice)
        plan = _plan(suite, root, resume, retry_failed)
        manifest = store.write_manifest(root, suite.name, [{"name": t.name, "key": plan["keys"][t.name],
                                                            **t.as_dict()} for t in suite.trials])
        jobs = plan["jobs"]
        refs = {}
        for spec in jobs:
            if getattr(games[game_key(spec)], "kind", "finite") in ("finite", "stationary"):
                refs.setdefault(game_key(spec), spec)
        executor = make_executor(workers, len(jobs) + len(refs), scheduler, dask_local) if jobs else None
        if not quiet:
            progress.write(_plan_line(suite, plan, executor))
            others = store.live_runs(root)
            if others and jobs:
                progress.write(f"another run ({', '.join(others)}) is writing into {root}: a trial it is running "
                               f"is waited for and reused, not run twice")
        if not jobs:
            progress.phase("every trial finished earlier", total=len(suite.trials))
            progress.advance(len(suite.trials))
        summaries = plan["done"]
        run = _Run(executor, progress, root, cache, runner.git_revision(), plan["keys"], summaries, resume) \
            if jobs else None
        if run is not None:
            try:
                run.go(list(refs.values()), jobs)
            finally:
                run.executor.close()
    finally:
        progress.close()
    if report:
        from mfgbench.report import write_report
        write_report(root, quiet=quiet, manifest=manifest)
    failed = [t.name for t in suite.trials if summaries[t.name].get("status") != "ok"]
    return {"folder": str(root), "ran": run.ran if run else 0, "skipped": len(plan["done_before"]),
            "by_another_run": run.by_another_run if run else 0, "failed": failed,
            "summaries": {t.name: summaries[t.name] for t in suite.trials}}


def _plan(suite, root, resume, retry_failed) -> dict:
    """Which trials are finished (same key, intact files) and which must run, and why."""
    keys, done, jobs, why = {}, {}, [], Counter()
    for spec in suite.trials:
        keys[spec.name] = trial_key(spec)
        summary, reason = finished(root / spec.name, keys[spec.name], retry_failed) if resume \
            else (None, "forced")
        if summary is not None:
            done[spec.name] = summary
        else:
            jobs.append(spec)
            why[reason] += 1
    return {"keys": keys, "done": done, "done_before": dict(done), "jobs": jobs, "why": why, "root": root}


def _plan_line(suite, plan, executor) -> str:
    n, reused, todo = len(suite.trials), len(plan["done_before"]), len(plan["jobs"])
    line = f"suite {suite.name}: {n} trials"
    if reused:
        line += f", {reused} finished earlier with the same spec and code (reused)"
    if todo:
        line += f", {todo} to run"
        again = describe(plan["why"])
        if again:
            line += f" ({again})"
        line += f" {executor.description}"
    return line + f" -> {plan['root']}"


class _Task:
    def __init__(self, kind, spec, expected):
        self.kind, self.spec, self.expected, self.started = kind, spec, expected, None


class _Run:
    """One pass of the scheduler over the references and trials left to run."""

    def __init__(self, executor, progress, root, cache, revision, keys, summaries, reuse):
        self.executor, self.progress, self.root, self.cache, self.revision = executor, progress, root, cache, revision
        self.keys, self.summaries, self.reuse = keys, summaries, reuse
        self.model = CostModel()
        self.running = {}  # future -> _Task
        self.pending_refs, self.ready, self.waiting = [], [], {}
        self.ran = self.by_another_run = self.failed = 0
        self.done_any = False
        self.trials_left = 0
        progress.status = self._status

    # ------------------------------------------------------------------ bookkeeping
    def _cost(self, spec) -> float:
        return self.model.trial(game_key(spec), spec.learner, spec.iterations)

    def _status(self) -> str:
        now = time.monotonic()
        running = [(t.expected, now - t.started) for t in self.running.values()]
        pending = [self.model.reference() for _ in self.pending_refs]
        pending += sorted((self._cost(s) for s in self.ready), reverse=True)
        pending += [self._cost(s) for specs in self.waiting.values() for s in specs]
        left = eta(running, pending, self.executor.capacity)
        return f"eta {clock(left)}, running={min(len(self.running), self.executor.ready())}, failed={self.failed}"

    def _phase(self):
        ready = self.executor.ready()
        if ready < self.executor.capacity and not self.done_any:
            self.progress.phase(f"starting workers ({ready} of {self.executor.capacity} ready)")
        elif self.pending_refs or any(t.kind == "reference" for t in self.running.values()):
            done = self.refs_total - len(self.pending_refs) - sum(t.kind == "reference" for t in self.running.values())
            self.progress.phase(f"references {done}/{self.refs_total}, then trials")
        else:
            self.progress.phase("trials")

    # ------------------------------------------------------------------ the loop
    def go(self, refs, jobs):
        with self.progress.lock:
            self.pending_refs = list(refs)
            ref_keys = {game_key(s) for s in refs}
            for spec in jobs:
                (self.waiting.setdefault(game_key(spec), []) if game_key(spec) in ref_keys else self.ready).append(spec)
            self.refs_total = len(refs)
            self.trials_total = len(jobs)
        self.progress.phase("starting", total=len(refs) + len(jobs))
        self._phase()
        previous = signal.getsignal(signal.SIGINT)
        try:
            self._loop()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the clean-up
            self.executor.abort(list(self.running))
            raise RunInterrupted(self._interrupted()) from None
        finally:
            if signal.getsignal(signal.SIGINT) is signal.SIG_IGN and previous is not signal.SIG_IGN:
                signal.signal(signal.SIGINT, previous)

    def _loop(self):
        while self.pending_refs or self.ready or self.waiting or self.running:
            self._submit()
            if not self.running:  # trials wait for a reference that is neither running nor pending
                raise RuntimeError("scheduler: trials wait for a reference that never started")
            for future in self.executor.wait_any(list(self.running), POLL_SECONDS):
                self._finished(future)
            self._phase()

    def _submit(self):
        while len(self.running) < self.executor.capacity and (self.pending_refs or self.ready):
            with self.progress.lock:
                if self.pending_refs:
                    spec = self.pending_refs.pop(0)
                    task = _Task("reference", spec, self.model.reference())
                    args = (runner.prepare_reference, spec, self.cache, self.executor.threads)
                else:
                    spec = self._next_trial()
                    self.ready.remove(spec)
                    task = _Task("trial", spec, self._cost(spec))
                    args = (runner.execute_trial, spec, self.folder(spec), self.cache, self.revision,
                            self.keys[spec.name], self.executor.threads, self.reuse)
                task.started = time.monotonic()
            future = self.executor.submit(*args)
            with self.progress.lock:
                self.running[future] = task
            self._phase()

    def _next_trial(self):
        """A trial of a (game, learner) pair not seen yet, else the most expensive one."""
        seen = {(game_key(t.spec), t.spec.learner) for t in self.running.values() if t.kind == "trial"}
        fresh = [s for s in self.ready if (game_key(s), s.learner) not in seen
                 and not self.model.knows(game_key(s), s.learner)]
        return max(fresh or self.ready, key=self._cost)

    def folder(self, spec) -> Path:
        return self.root / spec.name

    def _finished(self, future):
        with self.progress.lock:
            task = self.running.pop(future)
            self.done_any = True
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001  (the worker died: killed, out of memory, ...)
            result = self._worker_died(task, exc)
        if task.kind == "reference":
            self._reference_done(task, result)
        else:
            self._trial_done(task, result)
        self._phase()

    def _worker_died(self, task, exc) -> dict:
        if isinstance(exc, BrokenProcessPool):
            self._restart_executor()
            error = ("a worker process died while it ran (killed, or out of memory?); it may have been this task "
                     "or one running beside it")
        else:
            error = f"its worker failed ({type(exc).__name__}: {exc})"
        if task.kind == "reference":
            return {"game": task.spec.game, "error": error, "seconds": 0.0, "compile_seconds": 0.0}
        summary = {"trial": task.spec.name, **task.spec.as_dict(), "key": self.keys[task.spec.name],
                   "status": "failed", "error": error, "seconds": 0.0, "compile_seconds": 0.0}
        store.write_json_atomic(self.folder(task.spec) / "summary.json", summary)
        return summary

    def _restart_executor(self):
        """A dead worker breaks a process pool: every task on it failed; start a new pool for the rest."""
        with self.progress.lock:
            lost = list(self.running.items())
            self.running.clear()
        self.executor.abort([f for f, _ in lost])
        self.executor = make_executor(self.executor.capacity, self.executor.capacity)
        for _future, task in lost:
            (self.pending_refs if task.kind == "reference" else self.ready).append(task.spec)

    def _reference_done(self, task, info):
        with self.progress.lock:
            key = game_key(task.spec)
            self.ready.extend(self.waiting.pop(key, []))
            self.model.observe_reference(info.get("seconds", 0.0) - info.get("compile_seconds", 0.0))
        self.progress.advance()
        if "error" in info:
            self.progress.write(f"reference {info['game']}: cannot be computed ({info['error']}); "
                                f"its trials will record the error")
        elif info.get("exploitability") is not None:
            self.progress.write(f"reference {info['game']}: exploitability {info['exploitability']:.2e} "
                                f"({'certified' if info['certified'] else 'NOT certified'}), "
                                f"{info['seconds']:.1f} s")

    def _trial_done(self, task, summary):
        spec = task.spec
        with self.progress.lock:
            self.summaries[spec.name] = summary
            if summary.get("by_another_run"):
                self.by_another_run += 1
            else:
                self.ran += 1
                seconds = float(summary.get("seconds", 0.0)) - float(summary.get("compile_seconds", 0.0))
                if summary.get("status") == "ok":
                    self.model.observe_trial(game_key(spec), spec.learner, spec.iterations, seconds)
            self.failed += summary.get("status") != "ok"
        self.progress.advance()

    def _interrupted(self) -> str:
        total = len(self.keys)
        finished = sum(1 for s in self.summaries.values() if s.get("status") == "ok")
        return (f"interrupted: {finished} of {total} trials finished ({self.ran} in this run), kept in "
                f"{self.root}; run the same command again to resume")
