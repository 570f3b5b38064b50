"""Progress of a run: one bar from the first second to the last, and an ETA that holds still.

The bar (tqdm, on stderr) counts the run's tasks - each game's reference, then the trials -
under a phase label (checking the suite, compiling kernels, references, trials), with the
number of tasks actually running, the failures so far and the time left. tqdm's own
estimate divides the tasks left by the recent rate, which swings by orders of magnitude when
cheap and expensive trials alternate; ``CostModel`` instead predicts each task's seconds from
the finished tasks like it, and ``eta`` plays the remaining tasks onto the workers.
"""
from __future__ import annotations

import heapq
import sys
import threading
from collections import defaultdict

PRIOR_SECONDS_PER_ITERATION = {"tabular": 0.02, "neural": 0.5}
"""Guesses before any trial of a family has finished: the harness's budgets (a 100-iteration
tabular trial in ~2 s, a 60-episode neural one in ~30 s)."""
PRIOR_REFERENCE_SECONDS = 5.0
"""Guess for a reference before any has finished (a cached one takes a fraction of a second)."""


def _mean(values) -> float:
    return sum(values) / len(values)


class CostModel:
    """Expected seconds of a task, from the tasks that finished (kernel compilation left out).

    A trial's cost is its iterations times a rate (seconds per iteration) for its game and
    learner: the mean rate of finished trials of the same pair, else the product
    ``rate(game) * rate(learner) / rate(family)`` when both were seen apart (family: tabular or
    neural learners), else the learner's mean rate, else the prior of its family. Learners
    differ by orders of magnitude, so a learner not seen yet keeps the prior rather than
    borrowing the cost of others.
    """

    def __init__(self):
        self._pair = defaultdict(list)
        self._game = defaultdict(list)
        self._learner = defaultdict(list)
        self._family = defaultdict(list)
        self._references = []

    @staticmethod
    def _family_of(learner: str) -> str:
        from mfgbench.learners import learner_class
        try:
            return "neural" if "continuous" in learner_class(learner).kinds else "tabular"
        except KeyError:
            return "tabular"

    def observe_trial(self, game, learner: str, iterations: int, seconds: float) -> None:
        rate = max(seconds, 0.0) / max(1, iterations)
        family = self._family_of(learner)
        for table, key in ((self._pair, (game, learner)), (self._game, (game, family)),
                           (self._learner, learner), (self._family, family)):
            table[key].append(rate)

    def knows(self, game, learner: str) -> bool:
        """Whether a trial of this game and learner has finished."""
        return bool(self._pair.get((game, learner)))

    def observe_reference(self, seconds: float) -> None:
        self._references.append(max(seconds, 0.0))

    def trial(self, game, learner: str, iterations: int) -> float:
        family = self._family_of(learner)
        pair, by_game, by_learner = self._pair.get((game, learner)), self._game.get((game, family)), \
            self._learner.get(learner)
        if pair:
            rate = _mean(pair)
        elif by_game and by_learner:
            rate = _mean(by_game) * _mean(by_learner) / max(_mean(self._family[family]), 1e-12)
        elif by_learner:
            rate = _mean(by_learner)
        else:
            rate = PRIOR_SECONDS_PER_ITERATION[family]
        return rate * iterations

    def reference(self) -> float:
        return _mean(self._references) if self._references else PRIOR_REFERENCE_SECONDS


def eta(running, pending, capacity: int) -> float:
    """Seconds until the last task ends: ``running`` = [(expected, elapsed)], ``pending`` = expected
    costs in submission order, each started on the first of ``capacity`` workers to be free. A
    running task past its estimate is given a fifth of its estimate more."""
    slots = [max(expected - elapsed, 0.2 * expected) for expected, elapsed in running]
    slots += [0.0] * max(0, capacity - len(slots))
    heapq.heapify(slots)
    for cost in pending:
        heapq.heappush(slots, heapq.heappop(slots) + cost)
    return max(slots) if slots else 0.0


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """The bar, refreshed every second by a thread (the clock moves during a long task too).

    ``status()`` (called under ``lock``) returns the text after the elapsed time, e.g.
    ``"eta 2:10, running=2, failed=0"``. With ``enabled=False`` every method does nothing."""

    def __init__(self, label: str, phase: str, total: int, enabled: bool = True):
        self.lock = threading.RLock()
        self.enabled = enabled
        self.label = label
        self.status = lambda: ""
        if not enabled:
            return
        from tqdm import tqdm
        self.bar = tqdm(total=max(1, total), desc=f"{label}: {phase}", file=sys.stderr, dynamic_ncols=True, leave=True,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="mfgbench-progress", daemon=True)
        self._thread.start()

    def _tick(self):
        while not self._stop.wait(1.0):
            self.refresh()

    def refresh(self):
        if not self.enabled:
            return
        with self.lock:
            text = self.status()
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.refresh()

    def phase(self, text: str, total: int | None = None):
        """A new phase label (and, with ``total``, a new count of tasks, back to 0 done)."""
        if not self.enabled:
            return
        with self.lock:
            if total is not None:
                self.bar.reset(total=max(1, total))
            self.bar.set_description_str(f"{self.label}: {text}", refresh=False)
        self.refresh()

    def advance(self, n: int = 1):
        if self.enabled:
            with self.lock:
                self.bar.update(n)

    def write(self, line: str):
        """A line on stdout, above the bar."""
        if self.enabled:
            with self.lock:
                self.bar.write(line, file=sys.stdout)

    def close(self):
        if self.enabled:
            self._stop.set()
            self._thread.join()
            with self.lock:
                self.bar.close()
