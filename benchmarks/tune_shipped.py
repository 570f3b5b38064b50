"""Re-create the tuned file the package ships (``mfgbench/learners/tuned.toml``).

Runs ``python -m mfgbench tune`` once per entry below, each merging its entry into the file
(which records, per entry, the search space, budget, seeds, versions and the command). The
family entries ("finite", "stationary") serve every game of that kind without an entry of
its own; the per-game entries are the games where the family config is not enough.
Heavy: about 30-60 CPU-minutes; run it under ``nice``. Run:
``python benchmarks/tune_shipped.py [--out mfgbench/learners/tuned.toml] [--only learner]``.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mfgbench.cli import main as cli  # noqa: E402

RING_ROAD_QMI = {"policy_output": ["greedy", "average"], "mean_field": ["freeze", "average"],
                 "beta": {"low": 1e-4, "high": 1e-2, "log": True},
                 "temperature": {"low": 0.003, "high": 1.0, "log": True},
                 "temperature_decay": {"low": 0.0, "high": 1.0}}
FAMILY_QMI = {"temperature": {"low": 0.3, "high": 3.0, "log": True},
              "temperature_decay": {"low": 0.25, "high": 1.0},
              "exploration": {"low": 1.0, "high": 10.0, "log": True},
              "alpha": {"low": 0.05, "high": 0.3, "log": True}}
STATIONARY_QMI = {"policy_output": ["greedy", "average"], "mean_field": ["freeze", "average"],
                  "temperature": {"low": 0.01, "high": 3.0, "log": True},
                  "temperature_decay": {"low": 0.0, "high": 1.0}}

# building-evacuation-v0 (500 states, -log(max(mu, 1e-20)) rewards): the sample count is what limits
# (benchmarks/out/exact_expectations.txt), so it is part of the space
EVACUATION_QMI = {"samples_per_iteration": [100000, 200000], "temperature": {"low": 0.3, "high": 3.0, "log": True},
                  "exploration": {"low": 0.5, "high": 5.0, "log": True},
                  "temperature_decay": {"low": 0.25, "high": 1.0}}
EVACUATION_NASH_Q = {"n_agents": [1000, 2000, 4000], "epsilon": {"low": 0.03, "high": 0.3, "log": True},
                     "alpha_floor": {"low": 0.3, "high": 1.0}, "temperature": {"low": 0.3, "high": 3.0, "log": True}}

JOBS = [
    # exact learners are deterministic: one seed
    ("mirror-descent", ["--family", "finite", "--trials", "10", "--seeds", "0",
                        "--space", json.dumps({"learning_rate": {"low": 0.03, "high": 0.12, "log": True}})]),
    ("mirror-descent", ["--family", "stationary", "--trials", "10", "--seeds", "0",
                        "--space", json.dumps({"learning_rate": {"low": 0.03, "high": 0.12, "log": True}})]),
    ("fictitious-play", ["--family", "finite", "--trials", "6", "--seeds", "0"]),
    ("fictitious-play", ["--family", "stationary", "--trials", "6", "--seeds", "0"]),
    ("qmi", ["--games", "ring-road-v0", "--trials", "12", "--space", json.dumps(RING_ROAD_QMI)]),
    ("qmi", ["--family", "stationary", "--trials", "8", "--seeds", "0", "--space", json.dumps(STATIONARY_QMI)]),
    ("nash-q", ["--family", "stationary", "--trials", "8", "--seeds", "0"]),
    ("qmi", ["--games", "building-evacuation-v0", "--trials", "8", "--space", json.dumps(EVACUATION_QMI)]),
    ("qmi", ["--games", "rps-v0", "--trials", "10"]),
    ("qmi", ["--games", "sis-v0", "--trials", "10"]),
    ("fictitious-play", ["--games", "building-evacuation-v0", "--trials", "8", "--seeds", "0"]),
    ("nash-q", ["--games", "building-evacuation-v0", "--trials", "8", "--space", json.dumps(EVACUATION_NASH_Q)]),
    ("qmi", ["--family", "finite", "--trials", "10", "--seeds", "0", "--space", json.dumps(FAMILY_QMI)]),
    ("nash-q", ["--family", "finite", "--trials", "10", "--seeds", "0"]),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="mfgbench/learners/tuned.toml")
    ap.add_argument("--only", help="run only this learner's jobs")
    args = ap.parse_args(argv)
    for learner, extra in JOBS:
        if args.only and learner != args.only:
            continue
        start = time.perf_counter()
        rc = cli(["tune", learner, *extra, "--out", args.out, "--quiet"])
        print(f"  ({time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f})", flush=True)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
