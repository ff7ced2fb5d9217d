"""Shared test setup: a persistent JAX compilation cache and small helpers."""

import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CACHE = ROOT / ".jax_cache"

# Set before JAX initialises so that subprocesses launched by tests inherit it too.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as the tools set it (edvr_jax.process)
# Tests compile many small programs and run each a few times: XLA's optimisation passes
# cost far more than they save (the training-step tests run 3-4x faster without them, the
# same results within every tolerance). Tests that measure what XLA allocates opt back
# in with the `optimized_xla` fixture; EDVR_JAX_TEST_OPTIMIZED=1 compiles everything
# optimised, as users' programs are.
if os.environ.get("EDVR_JAX_TEST_OPTIMIZED", "") in ("", "0"):
    os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# The test extras bring libtpu (tests/test_aot.py compiles for TPU topologies); without a TPU,
# JAX must not try to open one: every test runs on the CPU (edvr_jax.process imports no JAX).
from edvr_jax.process import configure_compile_only_tpu  # noqa: E402

configure_compile_only_tpu()
sys.path.insert(0, str(ROOT / "tests"))

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", str(CACHE))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(scope="module")
def optimized_xla():
    """XLA's full optimisation for the tests of a module (memory and traffic figures)."""
    old = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", False)
    yield
    jax.config.update("jax_disable_most_optimizations", old)


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return DATA
