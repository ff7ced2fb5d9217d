"""edvr-aot: compiling the training step and the restore program for a TPU topology on a CPU
machine (needs libtpu, which the test extras install), and lowering both for CUDA."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import ROOT

from edvr_jax import aot
from edvr_jax.convert.loader import abstract_params
from edvr_jax.models import count_params

# TPU memory figures are those of the optimised programs users compile.
pytestmark = pytest.mark.usefixtures("optimized_xla")

try:
    import libtpu  # noqa: F401

    HAVE_LIBTPU = True
except ImportError:
    HAVE_LIBTPU = False
# CI installs the test extras, libtpu included: there a missing TPU compiler fails the tests.
needs_tpu_compiler = pytest.mark.skipif(not HAVE_LIBTPU and not os.environ.get("CI"),
                                        reason="libtpu not installed (pip install 'edvr_jax[tpu]')")

# configs/tiny.py cut down further so a TPU compilation takes seconds: no residual blocks, no
# TSA, one 4x4 LQ clip (16x16 GT) per device of a v5e:2x2 (4 chips). PCD with its four DCNs stays.
SMALL = ["--config", str(ROOT / "configs" / "tiny.py"), "--config.model.with_tsa=False",
         "--config.model.num_extract_block=0", "--config.model.num_reconstruct_block=0",
         "--config.train.batch_size=4", "--config.data.gt_size=16"]
V5E_HBM = 15.75 * 2**30


def _tiny_model_params():
    from entry_points import tiny_config

    from edvr_jax.train.loop import create_model

    c = tiny_config(**{"model.with_tsa": False, "model.num_extract_block": 0, "model.num_reconstruct_block": 0})
    return count_params(abstract_params(create_model(c)))


@needs_tpu_compiler
def test_train_step_fits_v5e(tmp_path, capsys):
    out = tmp_path / "aot.json"
    assert aot.main(["train", *SMALL, "--topology", "v5e:2x2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert set(aot.KEYS) <= set(r)
    assert (r["topology"], r["devices"], r["device_kind"], r["fits"]) == ("v5e:2x2", 4, "TPU v5 lite", True)
    assert r["capacity_bytes"] == int(V5E_HBM)
    # Parameters + Adam's two moments in float32, replicated, plus a few step counters.
    n = _tiny_model_params()
    assert 12 * n <= r["state_bytes"] <= 12 * n + 64
    assert r["batch_bytes"] == 4 * (3 * 4 * 4 * 3 + 16 * 16 * 3)  # one lq and gt clip per chip
    # The TPU pads small arrays to (8, 128) tiles, so arguments take at least their logical size.
    assert r["argument_bytes"] >= r["state_bytes"] + r["batch_bytes"]
    assert r["alias_bytes"] >= r["state_bytes"]  # the state is donated and updated in place
    assert r["peak_bytes"] == r["argument_bytes"] + r["output_bytes"] - r["alias_bytes"] + r["temp_bytes"]
    assert 0 < r["temp_bytes"] < 2**30 and r["peak_bytes"] < r["capacity_bytes"]
    assert r["flops"] > 1e6 and r["bytes_accessed"] > 1e6 and r["compile_seconds"] >= 0
    text = capsys.readouterr().out
    assert "params + optimizer state" in text and "of 15.75 GiB HBM" in text


@needs_tpu_compiler
def test_train_step_that_does_not_fit_is_refused_in_one_line(tmp_path):
    out = tmp_path / "aot.json"
    # 2048x2048 LQ frames: hundreds of GiB of temporaries on one v5e chip.
    proc = subprocess.run([sys.executable, "-m", "edvr_jax.aot", "train", *SMALL, "--config.data.gt_size=8192",
                           "--topology", "v5e:2x2", "--json", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="0"))  # as users compile
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("edvr-aot")]
    assert len(lines) == 1 and proc.stderr.rstrip().endswith(lines[0]), proc.stderr[-2000:]
    line = lines[0]
    assert line.startswith("edvr-aot: does not fit:") and "15.75 GiB HBM" in line and "TPU v5 lite" in line
    assert "--config.model.remat=blocks|pcd|dcn" in line and "--config.train.compute_dtype=bfloat16" in line
    assert "--config.data.gt_size=4096" in line and "Traceback" not in proc.stderr
    r = json.loads(out.read_text())
    assert set(aot.KEYS) <= set(r) and r["fits"] is False
    # Measured (libtpu 0.0.42, per-image batched DCN): 227.6 GB of temporaries, 13.5x the chip.
    assert r["temp_bytes"] > 10 * r["capacity_bytes"] and r["capacity_bytes"] == int(V5E_HBM)
    assert "RESOURCE_EXHAUSTED" in r["error"]
    # Arguments from the program's shapes: the 2048x2048 LQ and 8192x8192 GT slices dominate.
    assert r["argument_bytes"] >= 4 * (3 * 2048 * 2048 * 3 + 8192 * 8192 * 3)


@needs_tpu_compiler
def test_infer_preset_fits_and_counts_the_published_parameters(tmp_path):
    out = tmp_path / "aot.json"
    assert aot.main(["infer", "--preset", "EDVR_M_woTSA_x4_SR_REDS", "--size", "8x12",
                     "--topology", "v5e:2x2", "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert set(aot.KEYS) <= set(r) and r["fits"] is True and r["devices"] == 4
    assert r["param_bytes"] == 4 * 2_996_259  # BasicSR's EDVR_M_woTSA state_dict, float32
    assert r["input_shape"] == [4, 5, 8, 12, 3]  # batch 1 rounded up to one window per chip
    assert r["argument_bytes"] >= r["param_bytes"] and 0 < r["temp_bytes"] < 2**30
    assert r["flops"] > 2 * 2_996_259  # at least one multiply-add per parameter


@needs_tpu_compiler
def test_capacity_table_is_what_the_compiler_allows():
    devices = aot.topology_devices("v5e:2x2")
    assert aot.probe_capacity(devices[0]) == int(aot.CAPACITY["TPU v5 lite"])


def test_usage_errors_are_one_line(capsys):
    assert aot.main(["train", *SMALL, "--config.train.batch_size=6", "--topology", "v5e:2x2"]) in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    if HAVE_LIBTPU:
        assert err[-1].startswith("edvr-aot: error:") and "batch_size=6" in err[-1] and "4 devices" in err[-1]
    assert aot.main(["infer", "--preset", "EDVR_X", "--size", "8x8", "--topology", "v5e:2x2"]) == 2
    assert "unknown EDVR preset" in capsys.readouterr().err
    assert aot.main(["infer", "--preset", "EDVR_M_x4_SR_REDS", "--size", "8by8", "--topology", "v5e:2x2"]) == 2
    assert "--size 8by8" in capsys.readouterr().err


def test_parse_exhausted_message():
    msg = ("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO "
           "temporaries (70.67G) exceeds available HBM (15.75G).")
    assert aot.parse_exhausted(msg) == {"temp_bytes": int(70.67 * 2**30), "capacity_bytes": int(15.75 * 2**30)}
    assert aot.parse_exhausted("no figures") == {}


@pytest.mark.slow
def test_train_step_and_inference_lower_for_cuda():
    """Both programs lower for CUDA (jax.export): no CPU-only construct in them."""
    from entry_points import tiny_config
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from edvr_jax.evaluate.inference import restore_batch_program
    from edvr_jax.train import loop
    from edvr_jax.train.step import batch_sharding, make_mesh

    c = tiny_config(**{"train.batch_size": 1, "data.gt_size": 16})
    mesh = make_mesh(np.array(jax.devices()[:1]))
    model = loop.create_model(c)
    state, tx, schedule = loop.abstract_state(c, model, mesh)
    step = loop.create_train_step(c, model, state.params, tx, schedule, mesh)
    batch = {k: jax.ShapeDtypeStruct(s, jnp.float32, sharding=batch_sharding(mesh))
             for k, s in loop.batch_shapes(c, model, model.scale).items()}
    exported = jax.export.export(step.programs["full"], platforms=["cuda"])(state, batch)
    assert exported.platforms == ("cuda",) and "stablehlo.convolution" in exported.mlir_module()

    rep = NamedSharding(mesh, P())
    variables = {"params": jax.tree_util.tree_map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=rep),
                                                  state.params)}
    x = jax.ShapeDtypeStruct((1, 3, 8, 12, 3), jnp.float32, sharding=NamedSharding(mesh, P("data")))
    exported = jax.export.export(restore_batch_program, platforms=["cuda"])(model, True, variables, x)
    assert exported.platforms == ("cuda",)
    assert [o.shape for o in exported.out_avals][0] == (1, 32, 48, 3)


def test_nothing_in_the_package_imports_the_tool():
    """edvr-aot is a leaf: no library module depends on it (or on libtpu through it)."""
    from test_layers_imports import PKG, imports

    users = [str(p.relative_to(PKG)) for p in PKG.rglob("*.py")
             if p.name != "aot.py" and any(n == "edvr_jax.aot" or n.startswith("edvr_jax.aot.") for n in imports(p))]
    assert not users
