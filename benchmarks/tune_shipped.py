"""Re-create the tuned file the package ships (``mfgbench/learners/tuned.toml``).

Runs ``python -m mfgbench tune`` once per entry below, each merging its entry into the file
(which records, per entry, the search space, budget, seeds, versions and the command). The
family entries ("finite", "stationary") serve every game of that kind without an entry of
its own; the per-game entries are the games where the family config is not enough.
Heavy: about 30-60 CPU-minutes; run it under ``nice``. Run:
``python benchmarks/tune_shipped.py [--out mfgbench/learners/tuned.toml] [--only learner] [--jobs 0,3]``.
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
              "alpha": {"low": 0.01, "high": 0.3, "log": True}}
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

# the games whose horizon or coupling the family configs do not fit (issue 18's heterogeneous games, the
# standard suite's 80-step discretized continuous games): small steps (a sample average of the targets)
# matter there, so the step floors reach far lower than the family spaces
SIR_QMI = {"alpha": {"low": 1e-4, "high": 0.1, "log": True}, "temperature": {"low": 0.1, "high": 3.0, "log": True},
           "temperature_decay": {"low": 0.0, "high": 1.0}, "exploration": {"low": 0.5, "high": 10.0, "log": True},
           "policy_output": ["average", "greedy"]}
LONG_QMI = SIR_QMI
LONG_NASH_Q = {"behaviour": ["softmax", "greedy"], "mean_field": ["average", "empirical"],
               "policy_output": ["average", "greedy"], "n_agents": [1000, 2000, 3000],
               "alpha_floor": {"low": 0.0, "high": 0.5}, "alpha_power": {"low": 0.6, "high": 1.0},
               "epsilon": {"low": 0.0, "high": 0.3}, "temperature": {"low": 0.1, "high": 3.0, "log": True},
               "temperature_decay": {"low": 0.5, "high": 1.5}}
"""Nash-Q on the long or epidemic games: the paper's greedy agents on the empirical mean field are in
the space (they beat the averaged softmax on segregation-2pop-v0), and up to 3000 agents (about 2
CPU-s a trial with one 80-step episode per iteration and two populations)."""
SEGREGATION_NASH_Q = {"behaviour": ["greedy"], "mean_field": ["empirical"], "policy_output": ["greedy"],
                      "n_agents": [2000], "alpha_floor": [0.0], "alpha_power": [1.0],
                      "epsilon": {"low": 0.05, "high": 0.6}, "count_explorers": [True, False],
                      "bootstrap": ["all", "tried"]}
"""segregation-2pop-v0 (80 steps, action gaps a fifth of a target's noise): around the paper's greedy
agents with 1/n steps on the empirical mean field, the best family there (wider spaces, searched with
20-30 trials, ended at 1.2-1.9 times below uniform), with more exploration; one 80-step episode per
iteration with 2000 agents keeps a trial near 1.5 CPU-s."""

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
    ("qmi", ["--games", "sir-types-v0", "--trials", "12", "--space", json.dumps(SIR_QMI)]),
    ("nash-q", ["--games", "sir-types-v0", "--trials", "30", "--space", json.dumps(LONG_NASH_Q)]),
    ("qmi", ["--games", "segregation-2pop-v0", "--trials", "12", "--space", json.dumps(LONG_QMI)]),
    ("nash-q", ["--games", "segregation-2pop-v0", "--trials", "16", "--space", json.dumps(SEGREGATION_NASH_Q)]),
    ("nash-q", ["--games", "crowd-continuous-v0", "--trials", "30", "--space", json.dumps(LONG_NASH_Q)]),
    ("qmi", ["--games", "crowd-2d-four-rooms-v0", "--trials", "10", "--space", json.dumps(FAMILY_QMI)]),
    ("nash-q", ["--games", "sis-v0", "--trials", "20", "--space", json.dumps(LONG_NASH_Q)]),
]
"""The tuning runs, in order. A job's entry replaces the file's entry for the same learner and
family (or games)."""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="mfgbench/learners/tuned.toml")
    ap.add_argument("--only", help="run only this learner's jobs")
    ap.add_argument("--jobs", help="run only these jobs (comma-separated indices into JOBS)")
    args = ap.parse_args(argv)
    chosen = {int(i) for i in args.jobs.split(",")} if args.jobs else set(range(len(JOBS)))
    for i, (learner, extra) in enumerate(JOBS):
        if (args.only and learner != args.only) or i not in chosen:
            continue
        print(f"job {i}: tune {learner} {' '.join(extra[:2])}", flush=True)
        start = time.perf_counter()
        rc = cli(["tune", learner, *extra, "--out", args.out, "--quiet"])
        print(f"  ({time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f})", flush=True)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
