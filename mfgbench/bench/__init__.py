"""The benchmark harness: suites of trials, executors, the atomic and resumable results store."""
from mfgbench.bench.runner import execute_trial
from mfgbench.bench.schedule import RunInterrupted, run_suite
from mfgbench.bench.suite import Suite, SuiteError, TrialSpec, builtin, load_suite_file, suite_from_dict

__all__ = ["RunInterrupted", "Suite", "SuiteError", "TrialSpec", "builtin", "execute_trial", "load_suite_file",
           "run_suite", "suite_from_dict"]
