"""The harness never misleads: resume keyed on the whole spec, clean interrupts, concurrent runs
into one folder, files that follow the umask, Numba compilation kept out of the learner's time."""
import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import json
import math
import os
import re
import signal
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numba
import numpy as np
import pytest

from mfgbench.bench import Suite, TrialSpec, resume, run_suite, schedule, store
from mfgbench.bench.executors import usable_cores
from mfgbench.bench.progress import CostModel, eta
from mfgbench.bench.runner import execute_trial
from mfgbench.core import uniform_policy
from mfgbench.learners import Learner, register_learner
from mfgbench.learners.fictitious_play import FictitiousPlayConfig
from mfgbench.trial import run_trial
from test_bench import assert_every_file_parses, scores

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


def tiny_trials(seeds=(0, 1), iterations=30):
    return [TrialSpec(g, lr, s, iterations, params) for g, params in
            [("garnet-v0", {"S": 30, "A": 3, "B": 3, "T": 8}), ("crowd-1d-v0", {})]
            for lr in ("fictitious-play", "mirror-descent") for s in seeds]


def write_suite(path, name, trials):
    path.write_text(json.dumps({"name": name, "trials": [t.as_dict() for t in trials]}))
    return path


def summary(root, spec):
    return store.read_json(Path(root) / spec.name / "summary.json")


# ----------------------------------------------------------------------------- resume
def test_resume_reuses_only_trials_with_the_same_spec_code_and_intact_files(tmp_path, monkeypatch):
    fp, md = TrialSpec("crowd-1d-v0", "fictitious-play", 0, 5), TrialSpec("crowd-1d-v0", "mirror-descent", 0, 5)
    root = tmp_path / "r"

    def run(*trials):
        return run_suite(Suite("r", list(trials)), out=tmp_path, workers=1, quiet=True, report=False)

    assert run(fp, md)["ran"] == 2
    stamps = {t.name: (root / t.name / "summary.json").stat().st_mtime_ns for t in (fp, md)}
    unchanged = run(fp, md)
    assert (unchanged["ran"], unchanged["skipped"]) == (0, 2)
    assert stamps == {t.name: (root / t.name / "summary.json").stat().st_mtime_ns for t in (fp, md)}

    longer = run(replace(fp, iterations=7), replace(md, iterations=7))  # a new budget runs the new budget
    assert longer["ran"] == 2
    assert [store.read_jsonl(root / t.name / "metrics.jsonl")[-1]["iteration"] for t in (fp, md)] == [7, 7]

    tuned = run(replace(fp, iterations=7), replace(md, iterations=7, config={"learning_rate": 0.5}))
    assert (tuned["ran"], tuned["skipped"]) == (1, 1)
    assert store.read_json(root / md.name / "config.json")["config_full"]["learning_rate"] == 0.5

    policy = root / fp.name / "policy.npz"  # a truncated result file: the trial did not finish
    policy.write_bytes(policy.read_bytes()[:40])
    damaged = run(replace(fp, iterations=7), replace(md, iterations=7, config={"learning_rate": 0.5}))
    assert (damaged["ran"], damaged["skipped"]) == (1, 1)
    assert_every_file_parses(root)

    monkeypatch.setattr(resume, "code_version", lambda: "other result code")
    assert run(replace(fp, iterations=7), replace(md, iterations=7, config={"learning_rate": 0.5}))["ran"] == 2


@register_learner
class Flaky(Learner):
    """Fails on its second step while ``Flaky.broken`` is set (for the retry tests)."""

    name = "test-flaky"
    Config = FictitiousPlayConfig
    broken = True

    def step(self):
        self.iteration += 1
        if Flaky.broken and self.iteration == 2:
            raise RuntimeError("flaky step")
        return {"iteration": self.iteration, "samples": 0}

    @property
    def policy(self):
        return uniform_policy(self.game)


def test_a_failed_trial_is_retried_by_default(tmp_path, monkeypatch):
    suite = Suite("retry", [TrialSpec("crowd-1d-v0", "test-flaky", 0, 4),
                            TrialSpec("crowd-1d-v0", "fictitious-play", 0, 4)])
    monkeypatch.setattr(Flaky, "broken", True)
    first = run_suite(suite, out=tmp_path, workers=1, quiet=True, report=False)
    assert first["failed"] == ["crowd-1d-v0__test-flaky__0"]
    kept = run_suite(suite, out=tmp_path, workers=1, quiet=True, report=False, retry_failed=False)
    assert (kept["ran"], kept["failed"]) == (0, ["crowd-1d-v0__test-flaky__0"])
    monkeypatch.setattr(Flaky, "broken", False)
    retried = run_suite(suite, out=tmp_path, workers=1, quiet=True, report=False)
    assert (retried["ran"], retried["skipped"], retried["failed"]) == (1, 1, [])
    assert summary(tmp_path / "retry", suite.trials[0])["status"] == "ok"


def test_code_fingerprint_ignores_docstrings_and_comments_but_not_code():
    a = 'def f(x):\n    """Doc."""\n    y: int = 1\n    """Attribute doc."""\n    return x + y  # why\n'
    b = 'def f(x):\n    """Another doc."""\n\n    y: int = 1\n    return x + y\n'
    c = 'def f(x):\n    """Doc."""\n    y: int = 1\n    return x + y + 1\n'
    assert resume.source_fingerprint(a) == resume.source_fingerprint(b) != resume.source_fingerprint(c)
    for path in resume.RESULT_FREE:  # the exclusions name files that exist (a rename must update them)
        assert (resume.ROOT / path).exists(), path
    assert not any("runner.py" in p or p.startswith("mfgbench/trial") for p in resume.RESULT_FREE)


# ----------------------------------------------------------------------------- timing
@register_learner
class FreshKernel(Learner):
    """Compiles a Numba kernel of its own on its first step (a new closure: never in the disk cache)."""

    name = "test-fresh-kernel"
    Config = FictitiousPlayConfig

    def __init__(self, game, config=None, rng=None):
        super().__init__(game, config, rng)
        phase = float(self.rng.random())

        @numba.njit
        def kernel(n):
            acc = 0.0
            for i in range(n):
                acc += math.sin(i * phase) * math.cos(i + phase)
            return acc
        self._kernel = kernel

    def step(self):
        self.iteration += 1
        self._kernel(100)
        return {"iteration": self.iteration, "samples": 0}

    @property
    def policy(self):
        return uniform_policy(self.game)


def test_the_learner_time_of_a_trial_leaves_kernel_compilation_out():
    result = run_trial("crowd-1d-v0", "test-fresh-kernel", iterations=3, reference=False)
    final = result.final
    assert final["compile_time"] > 0.01  # the first step compiled a kernel, and it was measured
    # three calls of a 100-step loop take microseconds: the time recorded is not the compilation
    assert final["wall_time"] < 0.005 + 0.1 * final["compile_time"]


# ----------------------------------------------------------------------------- store
@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_result_files_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        store.write_json_atomic(tmp_path / "a.json", {"x": 1})
        store.write_npz_atomic(tmp_path / "b.npz", x=np.zeros(2))
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {mode}


def test_only_temporaries_whose_writer_is_dead_are_cleaned(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = store.writer_tag().split("@", 1)[1]
    live = tmp_path / f".summary.json.{os.getpid()}@{host}.0a1b2c3d.tmp"
    orphan = tmp_path / f".summary.json.{dead.pid}@{host}.0a1b2c3d.tmp"
    remote = tmp_path / f".summary.json.{dead.pid}@elsewhere-{host}.0a1b2c3d.tmp"
    foreign = tmp_path / ".summary.json.tmp"
    for p in (live, orphan, remote, foreign):
        p.write_text("partial")
    assert store.remove_orphan_temporaries(tmp_path) == [orphan]
    assert live.exists() and remote.exists() and foreign.exists() and not orphan.exists()


# ----------------------------------------------------------------------------- scheduler
class RecordingExecutor:
    """Runs each task when the scheduler waits for one, oldest first, and records what it saw."""

    capacity, threads, description = 2, None, "recording"

    def __init__(self):
        self.queue, self.peak, self.log = [], 0, []

    def submit(self, fn, *args):
        future = cf.Future()
        self.queue.append((future, fn, args))
        self.peak = max(self.peak, len(self.queue))
        return future

    def wait_any(self, futures, timeout):
        future, fn, args = self.queue.pop(0)
        self.log.append((fn.__name__, args[0].game))
        future.set_result(fn(*args))
        return {future}

    def ready(self):
        return self.capacity

    def abort(self, futures):
        self.queue = [entry for entry in self.queue if entry[0] not in futures]

    def close(self):
        pass


def test_the_scheduler_runs_no_more_tasks_than_workers_and_each_reference_before_its_trials(tmp_path,
                                                                                           monkeypatch):
    fake = RecordingExecutor()
    monkeypatch.setattr(schedule, "make_executor", lambda *args, **kwargs: fake)
    out = run_suite(Suite("sched", tiny_trials(iterations=4)), out=tmp_path, quiet=True, report=False)
    assert out["ran"] == 8 and not out["failed"]
    assert fake.peak == fake.capacity
    for game in ("garnet-v0", "crowd-1d-v0"):
        kinds = [kind for kind, g in fake.log if g == game]
        assert kinds[0] == "prepare_reference" and kinds.count("prepare_reference") == 1


def test_cost_model_predicts_from_finished_tasks_like_it():
    model = CostModel()
    assert model.trial("g", "fictitious-play", 100) == pytest.approx(2.0)  # the prior: 0.02 s per iteration
    model.observe_trial("g", "fictitious-play", 100, 4.0)   # 0.04 s/it
    model.observe_trial("h", "mirror-descent", 10, 0.1)     # 0.01 s/it
    model.observe_trial("g", "mirror-descent", 50, 1.0)     # 0.02 s/it
    assert model.trial("g", "fictitious-play", 10) == pytest.approx(0.4)
    # h with fictitious play, never seen: rate(h) * rate(fp) / rate(all) = 0.01 * 0.04 / (0.07 / 3)
    assert model.trial("h", "fictitious-play", 30) == pytest.approx(30 * 0.01 * 0.04 / (0.07 / 3))
    assert model.trial("k", "mirror-descent", 10) == pytest.approx(10 * 0.015)  # a new game: the learner's mean
    assert model.trial("g", "qmi", 100) == pytest.approx(2.0)  # a learner never seen keeps the prior
    # ETA: tasks of 3, 1, 1, 1 s on two idle workers end after 3 s; a running task past its
    # estimate is given a fifth of it more
    assert eta([], [3.0, 1.0, 1.0, 1.0], 2) == pytest.approx(3.0)
    assert eta([(2.0, 5.0)], [1.0], 2) == pytest.approx(1.0)
    assert eta([(10.0, 4.0), (1.0, 0.5)], [2.0], 2) == pytest.approx(6.0)


# ----------------------------------------------------------------------------- processes
def children_of(pid: int) -> list:
    """Processes whose parent is ``pid`` (from /proc)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry.name))
    return kids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for_summaries(folder, count, proc, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if folder.exists() and len(list(folder.glob("*/summary.json"))) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} trials did not finish in time (exit status {proc.poll()})")


def wait_until_dead(pids, seconds) -> list:
    deadline = time.time() + seconds
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


@linux_only
def test_ctrl_c_stops_within_seconds_leaves_no_worker_and_resumes_to_the_same_results(tmp_path):
    trials = tiny_trials(seeds=(0, 1, 2, 3), iterations=60)
    cmd = [sys.executable, "-m", "mfgbench", "run", "--suite", str(write_suite(tmp_path / "s.json", "ctrlc", trials)),
           "--out", str(tmp_path / "out"), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    folder = tmp_path / "out" / "ctrlc"
    wait_for_summaries(folder, 2, proc)
    workers = children_of(proc.pid)
    assert len(workers) >= 2
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C at a terminal does: the whole foreground group
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - start < 10
    assert proc.returncode == 130
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert re.match(r"mfgbench: interrupted: \d+ of 16 trials finished .*run the same command again to resume", err)
    assert wait_until_dead(workers, 2) == []
    finished = len(list(folder.glob("*/summary.json")))
    assert 0 < finished < len(trials)

    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"{len(trials) - finished} trials run, {finished} already done" in again.stdout
    config = store.read_json(folder / trials[0].name / "config.json")
    assert config["numba_threads"] * 2 <= max(2, usable_cores())  # workers x threads <= cores
    run_suite(Suite("uninterrupted", trials), out=tmp_path / "out", workers=1, quiet=True, report=False)
    assert scores(folder) == scores(tmp_path / "out" / "uninterrupted")


@linux_only
def test_killing_the_parent_leaves_no_worker_alive(tmp_path):
    trials = tiny_trials(seeds=(0, 1, 2), iterations=60)
    cmd = [sys.executable, "-m", "mfgbench", "run", "--suite", str(write_suite(tmp_path / "s.json", "kill9", trials)),
           "--out", str(tmp_path / "out"), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_summaries(tmp_path / "out" / "kill9", 1, proc)
    workers = children_of(proc.pid)
    assert len(workers) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert wait_until_dead(workers, 10) == []


def test_two_runs_into_one_folder_share_the_work_and_both_finish(tmp_path):
    trials = tiny_trials(seeds=(0, 1, 2), iterations=40)
    cmd = [sys.executable, "-m", "mfgbench", "run", "--suite", str(write_suite(tmp_path / "s.json", "both", trials)),
           "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"]
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0 and "Traceback" not in err, err
    ran = [int(re.search(r"(\d+) trials run", out).group(1)) for out, _ in outputs]
    assert sum(ran) == len(trials)  # every trial ran exactly once; each run waited for the other's
    folder = tmp_path / "out" / "both"
    assert all(summary(folder, t)["status"] == "ok" for t in trials)
    assert_every_file_parses(folder)  # no temporary left, no file torn


@pytest.mark.slow
def test_a_fresh_numba_cache_is_announced_once_and_kept_out_of_the_learner_time(tmp_path):
    """With an empty Numba cache the run says it compiles (once), and the learner time recorded for
    the first trial excludes that compilation; the next run, with the cache filled, says nothing."""
    suite = tmp_path / "cold.toml"
    suite.write_text('name = "cold"\ngames = ["garnet-v0"]\nlearners = ["fictitious-play"]\nseeds = [0]\n'
                     'iterations = 5\n')
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    cmd = [sys.executable, "-m", "mfgbench", "run", "--suite", str(suite), "--out", str(tmp_path / "out"),
           "--workers", "1", "--no-resume"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("compiling kernels, once") == 1
    last = store.read_jsonl(tmp_path / "out" / "cold" / "garnet-v0__fictitious-play__0" / "metrics.jsonl")[-1]
    assert last["compile_time"] > 0.1 and last["wall_time"] < 0.1 * last["compile_time"]
    second = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert second.returncode == 0 and "compiling kernels" not in second.stdout
    assert "1 trials run, 0 already done" in second.stdout


def test_a_live_run_sharing_the_folder_is_seen_and_a_dead_ones_marker_removed(tmp_path):
    import fcntl
    live, dead = tmp_path / ".run.4242@otherhost.lock", tmp_path / ".run.4343@otherhost.lock"
    fd = os.open(live, os.O_RDWR | os.O_CREAT)
    dead.write_text("")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with store.run_marker(tmp_path):  # our own marker is not another run
            assert store.live_runs(tmp_path) == ["4242@otherhost"]
        assert not dead.exists() and live.exists()
    finally:
        os.close(fd)
    assert store.live_runs(tmp_path) == [] and not list(tmp_path.glob(".run.*"))


class BreakingExecutor(RecordingExecutor):
    """Its first trial's worker dies (as a pool reports it: BrokenProcessPool)."""

    broke = False

    def wait_any(self, futures, timeout):
        future, fn, args = self.queue[0]
        if fn is execute_trial and not self.broke:
            self.broke = True
            self.queue.pop(0)
            future.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            return {future}
        return super().wait_any(futures, timeout)


def test_a_dead_worker_fails_its_trial_and_the_others_finish_on_a_new_pool(tmp_path, monkeypatch):
    fake = BreakingExecutor()
    started = []
    monkeypatch.setattr(schedule, "make_executor", lambda *args, **kwargs: started.append(1) or fake)
    out = run_suite(Suite("broken", tiny_trials(seeds=(0,), iterations=3)), out=tmp_path, quiet=True, report=False)
    assert len(started) == 2  # the first pool, and a new one after the worker died
    assert len(out["failed"]) == 1 and out["ran"] == 4
    dead = summary(tmp_path / "broken", next(t for t in tiny_trials(seeds=(0,)) if t.name == out["failed"][0]))
    assert dead["status"] == "failed" and "a worker process died while it ran" in dead["error"]
