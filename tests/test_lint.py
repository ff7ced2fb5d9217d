"""The code passes ruff with the project's configuration (pyproject.toml)."""

import pathlib
import subprocess
import sys

from conftest import ROOT


def test_ruff_is_clean():
    ruff = pathlib.Path(sys.executable).parent / "ruff"
    r = subprocess.run([str(ruff), "check", "edvr_jax", "tests", "benchmarks", "configs", "train.py", "eval.py"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
