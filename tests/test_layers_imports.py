"""Imports point one way: ops, data -> models -> checkpoint I/O / convert -> evaluate -> train
-> entry points. Every module under edvr_jax is parsed (function-level imports included)."""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "edvr_jax"
LOWER = ("convert", "models", "ops", "data", "errors", "process", "frames", "tasks", "architecture",
         "zoo")  # never import evaluate or train
# Command-line modules are entry points wherever they sit (edvr-data's stage1 restores a
# dataset with evaluate's Restorer); they stay thin, their work lives in the layers.
ENTRY_POINTS = ("cli.py", "__main__.py")


def imports(path: pathlib.Path) -> set[str]:
    """Every edvr_jax module named by an import anywhere in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}  # from edvr_jax import data
    return {n for n in names if n == "edvr_jax" or n.startswith("edvr_jax.")}


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_import_points_down():
    modules = sorted(PKG.rglob("*.py"))
    assert len(modules) > 40
    bad = []
    for path in modules:
        rel = path.relative_to(PKG)
        top = rel.parts[0].removesuffix(".py")
        if rel.name in ENTRY_POINTS:  # the end of the arrows: a tool may use every layer
            continue
        for name in sorted(imports(path)):
            target = part(name)
            if top in LOWER and target in ("evaluate", "train"):
                bad.append(f"{rel} imports {name}")
            if top == "evaluate" and target == "train":
                bad.append(f"{rel} imports {name}")
            # The public metrics module names the implementation in evaluate/metrics.py, nothing else.
            if top == "metrics" and target in ("evaluate", "train") and not name.startswith("edvr_jax.evaluate.metrics"):
                bad.append(f"{rel} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from edvr_jax.train.checkpoints import x\n    import edvr_jax.evaluate\n"
                 "from edvr_jax import data\n")
    assert imports(f) == {"edvr_jax.train.checkpoints", "edvr_jax.train.checkpoints.x", "edvr_jax.evaluate",
                          "edvr_jax", "edvr_jax.data"}


@pytest.mark.slow
def test_importing_the_library_changes_nothing_process_wide():
    """Environment, logger levels, sys.unraisablehook and TensorFlow's devices are the
    entry points' to set (edvr_jax.process), not an import's."""
    import subprocess
    import sys

    code = """
import logging, os, sys
import tensorflow as tf
calls = []
tf.config.set_visible_devices = lambda *a: calls.append(a)
env, hook = dict(os.environ), sys.unraisablehook
levels = {n: logging.getLogger(n).level for n in ("absl", "orbax", "asyncio", "tensorflow", "jax._src")}
import edvr_jax, edvr_jax.data, edvr_jax.convert.saved, edvr_jax.evaluate, edvr_jax.train.checkpoints
assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items())
assert sys.unraisablehook is hook
assert {n: logging.getLogger(n).level for n in levels} == levels
assert calls == [], calls
from edvr_jax.process import configure_tool_process
os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)  # TensorFlow's import sets it to 1 when unset
configure_tool_process()
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
assert logging.getLogger("orbax").level == logging.CRITICAL and sys.unraisablehook is not hook
print("ok")
"""
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("EDVR_JAX_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]
