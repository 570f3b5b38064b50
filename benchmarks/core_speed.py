"""Time of one exact exploitability evaluation (flow + policy value + best response).

Targets (issue 2): the small games under 2 ms each, a garnet with S = 10^4, A = 5,
B = 5, T = 50 under 0.2 s. Run: ``python benchmarks/core_speed.py``.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import mfgbench as mb  # noqa: E402
from _timing import median_seconds  # noqa: E402

CASES = [
    ("crowd-1d-v0", {}, 2e-3),
    ("predator-prey-v0", {}, 2e-3),
    ("lq-v0", {}, 2e-3),
    ("garnet-v0", {"S": 10_000, "A": 5, "B": 5, "T": 50}, 0.2),
]


def main():
    rng = np.random.default_rng(0)
    print(f"{'game':18s} {'params':32s} {'median ms':>10s} {'target ms':>10s}  ok")
    for game_id, params, target in CASES:
        game = mb.make(game_id, **params)
        pi = tuple(rng.dirichlet(np.ones(p.n_actions), size=(game.horizon, p.n_states)) for p in game.populations)
        seconds = median_seconds(lambda: mb.exploitability(game, pi), repeats=9 if target < 0.1 else 5)
        text = ",".join(f"{k}={v}" for k, v in params.items()) or "defaults"
        print(f"{game_id:18s} {text:32s} {1e3 * seconds:10.3f} {1e3 * target:10.1f}  {'yes' if seconds < target else 'NO'}")


if __name__ == "__main__":
    main()
