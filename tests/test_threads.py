"""Numba's OpenMP threads sleep when idle unless the user says otherwise (see mfgbench._jit)."""
import os
import subprocess
import sys

import pytest

PROBE = "import os, mfgbench; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"


@pytest.mark.parametrize("given, expected", [({}, "PASSIVE None"),
                                             ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE None"),
                                             ({"GOMP_SPINCOUNT": "300000"}, "None 300000")])
def test_idle_openmp_threads_sleep_unless_the_environment_says_otherwise(given, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(given)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == expected
