"""edvr-aot: compile for a TPU topology before renting it (no accelerator needed).

    edvr-aot train --config configs/edvr_m_reds.py --topology v5e:2x4 [--config.x=y ...] [--json OUT]
    edvr-aot infer --preset EDVR_L_x4_SR_REDS --size 180x320 --topology v5e:2x2 [--json OUT]
    edvr-aot infer --checkpoint CKPT --size HxW [--batch B] [--tile T] --topology v5e:2x2

``train`` compiles the very step ``train.py`` runs (``edvr_jax.train.loop``: same model, optimizer,
phases, mesh over all devices of the topology, state replicated and donated, global batch
``train.batch_size`` sharded on ``data``), the phase in which every parameter trains. ``infer``
compiles the batch program of ``edvr-restore`` / ``eval.py`` (``Restorer``: windows or tiles
sharded over the devices, uint8 output). The TPU compiler (libtpu, ``pip install
'edvr_jax[tpu]'``) does the work on the CPU; its figures are per device:

* ``argument_bytes`` (for train: the replicated parameters + optimizer state + the batch
  slice), ``output_bytes``, ``alias_bytes`` (outputs written into donated arguments),
  ``temp_bytes`` (temporaries), ``peak_bytes = argument + output - alias + temp``;
* ``capacity_bytes``: the HBM the compiler lets a program use on that chip;
* ``flops`` and ``bytes_accessed`` per step (``cost_analysis``), ``compile_seconds``.

Exit status 0 when the program fits, 1 (and one line naming what to change) when it does
not, 2 for a usage error. With ``--json OUT`` the figures are written in every case; when
the compiler refuses (RESOURCE_EXHAUSTED) ``temp_bytes`` / ``capacity_bytes`` come from its
message and the argument and output sizes from the program's shapes.

This module is a leaf: nothing else in the package imports it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from typing import Any

GiB = 2**30
# HBM per device that the TPU compiler allows a program ("available HBM" in its refusals,
# measured with libtpu 0.0.42). Unknown kinds are measured by compiling a probe.
CAPACITY = {"TPU v4": 15.25 * GiB, "TPU v5 lite": 15.75 * GiB, "TPU v5": 95.74 * GiB,
            "TPU v6 lite": 31.25 * GiB}
KEYS = ("topology", "devices", "fits", "capacity_bytes", "argument_bytes", "output_bytes",
        "temp_bytes", "peak_bytes", "flops", "bytes_accessed", "compile_seconds")
EXIT_FITS, EXIT_DOES_NOT_FIT, EXIT_USAGE = 0, 1, 2
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


class AotError(Exception):
    """A usage mistake (bad topology, config, size); the message is one line."""


# ----------------------------------------------------------------------------- topology

def topology_devices(name: str) -> list:
    """The devices of a TPU topology such as ``v5e:2x2`` or ``v5p:2x2x1``, compile-only."""
    from jax.experimental import topologies

    try:
        return list(topologies.get_topology_desc(platform="tpu", topology_name=name).devices)
    except Exception as e:  # libtpu missing, or a name it does not know
        detail = " ".join(str(e).split())[:200]
        raise AotError(f"--topology {name}: no such TPU topology or no TPU compiler ({detail}); "
                       "install it with pip install 'edvr_jax[tpu]'; names look like v5e:2x2, "
                       "v5e:2x4, v5p:2x2x1, v4:2x2x1") from None


def capacity_bytes(device) -> int:
    """Usable HBM of one device of ``device``'s kind (table, or measured by a probe)."""
    if device.device_kind in CAPACITY:
        return int(CAPACITY[device.device_kind])
    return probe_capacity(device)


def probe_capacity(device) -> int:
    """Compiles a program far too big for any chip and reads 'available HBM' from the refusal."""
    import jax
    import jax.numpy as jnp

    spec = jax.ShapeDtypeStruct((1024, 1024), jnp.float32,
                                sharding=jax.sharding.SingleDeviceSharding(device))

    def huge(a):  # a sort keeps its 400 GB operand in memory
        b = jnp.sort(jnp.tile(a[None], (100_000, 1, 1)) * 2.0, axis=0)
        return b[::1000].sum(0) + b[7]

    try:
        jax.jit(huge).trace(spec).lower().compile()
    except Exception as e:
        found = parse_exhausted(str(e)).get("capacity_bytes")
        if found:
            return found
    raise AotError(f"cannot tell the HBM capacity of a {device.device_kind}")


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGTP]?)(?:i?B)?\s*", text)
    if not m:
        raise ValueError(text)
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def parse_exhausted(message: str) -> dict[str, int]:
    """Figures of a RESOURCE_EXHAUSTED refusal: ``temp_bytes`` ('HLO temporaries (70.67G)')
    and ``capacity_bytes`` ('available HBM (15.75G)'), those present."""
    out = {}
    for key, pattern in (("temp_bytes", r"HLO temporaries \(([\d.]+[KMGTP]?)\)"),
                         ("capacity_bytes", r"available HBM \(([\d.]+[KMGTP]?)\)")):
        m = re.search(pattern, message)
        if m:
            out[key] = parse_size(m.group(1))
    return out


# ----------------------------------------------------------------------------- compile

def per_device_bytes(tree) -> int:
    """Bytes one device holds of a pytree of ``ShapeDtypeStruct`` (shard shapes)."""
    import jax
    import numpy as np

    total = 0
    for leaf in jax.tree_util.tree_leaves(tree):
        shape = leaf.sharding.shard_shape(leaf.shape) if getattr(leaf, "sharding", None) else leaf.shape
        total += math.prod(shape) * np.dtype(leaf.dtype).itemsize
    return total


def compile_report(lowered, devices, topology: str, arguments, extra: dict) -> dict:
    """Compiles ``lowered`` and returns the report (every key of ``KEYS`` plus ``extra``)."""
    import jax

    capacity = capacity_bytes(devices[0])
    report: dict[str, Any] = {"topology": topology, "devices": len(devices),
                              "device_kind": devices[0].device_kind, "capacity_bytes": capacity, **extra}
    t0 = time.perf_counter()
    try:
        compiled = lowered.compile()
    except Exception as e:  # XlaRuntimeError; RESOURCE_EXHAUSTED is the answer "does not fit"
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        seconds = time.perf_counter() - t0
        parsed = parse_exhausted(str(e))
        arg = per_device_bytes(arguments)
        out = per_device_bytes(jax.tree_util.tree_leaves(lowered.out_info))
        temp = parsed.get("temp_bytes")
        report.update(fits=False, capacity_bytes=parsed.get("capacity_bytes", capacity),
                      argument_bytes=arg, output_bytes=out, alias_bytes=None, temp_bytes=temp,
                      peak_bytes=None if temp is None else arg + temp,
                      flops=None, bytes_accessed=None, compile_seconds=round(seconds, 2),
                      error=" ".join(str(e).split("\n")[0].split())[:400])
        return report
    seconds = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = (cost[0] if isinstance(cost, list | tuple) else cost) or {}
    arg, out = mem.argument_size_in_bytes, mem.output_size_in_bytes
    alias, temp = mem.alias_size_in_bytes, mem.temp_size_in_bytes
    peak = arg + out - alias + temp
    report.update(fits=peak <= capacity, argument_bytes=arg, output_bytes=out, alias_bytes=alias,
                  temp_bytes=temp, peak_bytes=peak, flops=cost.get("flops"),
                  bytes_accessed=cost.get("bytes accessed"), compile_seconds=round(seconds, 2))
    return report


def train_program(config, topology: str) -> dict:
    """Compiles ``train.py``'s step of ``config`` for ``topology``; returns the report."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from edvr_jax.errors import UserError
    from edvr_jax.train import loop
    from edvr_jax.train.step import batch_sharding, make_mesh

    devices = topology_devices(topology)
    mesh = make_mesh(np.array(devices))
    try:
        model = loop.create_model(config)
        loop.check_run(config, model, mesh, model.scale)
    except UserError as e:
        raise AotError(str(e)) from None
    state, tx, schedule = loop.abstract_state(config, model, mesh)
    step = loop.create_train_step(config, model, state.params, tx, schedule, mesh)
    data = batch_sharding(mesh)
    batch = {k: jax.ShapeDtypeStruct(s, jnp.float32, sharding=data)
             for k, s in loop.batch_shapes(config, model, model.scale).items()}
    lowered = step.programs["full"].trace(state, batch).lower()
    extra = {"program": "train", "per_device_batch": config.train.batch_size // len(devices),
             "crop": config.data.gt_size, "compute_dtype": config.train.compute_dtype,
             "remat": model.remat, "state_bytes": per_device_bytes(state),
             "batch_bytes": per_device_bytes(batch)}
    return compile_report(lowered, devices, topology, (state, batch), extra)


def train_advice(config, report: dict) -> list[str]:
    """What to change, most effective first (measured on EDVR-M, v5e), leaving out what is
    already set."""
    advice = []
    b = report["per_device_batch"]
    if b > 1:
        advice.append(f"per-device batch {b // 2} (--config.train.batch_size="
                      f"{b // 2 * report['devices']})")
    if report["compute_dtype"] != "bfloat16":
        advice.append("--config.train.compute_dtype=bfloat16")
    crop, unit = config.data.gt_size, (16 if config.model.hr_in else 16 * 4)
    if crop // 2 >= unit:
        advice.append(f"a smaller crop (--config.data.gt_size={crop // 2 // unit * unit})")
    if report["remat"] == "none":
        advice.append("--config.model.remat=blocks|pcd|dcn")
    return advice


def infer_program(model, params, size: tuple[int, int], batch: int, tile: int | None,
                  overlap: int, topology: str) -> dict:
    """Compiles ``Restorer``'s batch program for frames of ``size`` (LQ pixels) on ``topology``."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec, SingleDeviceSharding

    from edvr_jax.evaluate.inference import data_mesh, lower_restore_batch
    from edvr_jax.evaluate.tiling import round_up, tile_grid

    devices = topology_devices(topology)
    mesh = data_mesh(devices)
    n = -(-batch // len(devices)) * len(devices)  # Restorer rounds up to the device count
    h, w = size
    if tile is not None:
        m = model.size_multiple
        h, w = tile_grid((round_up(h, m), round_up(w, m)), tile, overlap, m).tile_shape
    if mesh is None:
        rep = data = SingleDeviceSharding(devices[0])
    else:
        rep, data = NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("data"))
    variables = {"params": jax.tree_util.tree_map(
        lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=rep), params)}
    x = jax.ShapeDtypeStruct((n, model.num_frame, h, w, model.num_in_ch), jnp.float32, sharding=data)
    lowered = lower_restore_batch(model, variables, x, quantize=True)
    extra = {"program": "infer", "size": list(size), "input_shape": list(x.shape),
             "per_device_batch": n // len(devices), "tile": tile, "tile_overlap": overlap if tile else None,
             "compute_dtype": "bfloat16" if model.dtype is not None else "float32",
             "param_bytes": per_device_bytes(variables)}
    return compile_report(lowered, devices, topology, (variables, x), extra)


def infer_advice(report: dict) -> list[str]:
    advice = []
    if report["per_device_batch"] > 1:
        advice.append(f"--batch {report['per_device_batch'] // 2 * report['devices']}")
    tile = report["tile"]
    h, w = report["size"]
    if tile is None or tile > 32:
        advice.append(f"--tile {min(max(h, w) // 2, 128) if tile is None else tile // 2}")
    if report["compute_dtype"] != "bfloat16":
        advice.append("--dtype bfloat16")
    return advice


# ----------------------------------------------------------------------------- output

def _gib(n) -> str:
    if n is None:
        return "?"
    return f"{n / GiB:.2f} GiB" if n >= GiB / 10 else f"{n / 2**20:.1f} MiB"


def _num(x) -> str:
    return "?" if x is None else f"{x:.4g}"


def describe(report: dict) -> str:
    """The figures, one per line, for people."""
    r = report
    lines = [f"edvr-aot {r['program']}: {r['devices']} x {r['device_kind']} ({r['topology']}), "
             f"{r['per_device_batch']} per device"]
    if r["program"] == "train":
        lines.append(f"  params + optimizer state  {_gib(r['state_bytes'])}   (batch slice {_gib(r['batch_bytes'])})")
    else:
        lines.append(f"  params                    {_gib(r['param_bytes'])}   (input {tuple(r['input_shape'])})")
    unaliased = None if r["alias_bytes"] is None else r["output_bytes"] - r["alias_bytes"]
    lines += [f"  arguments                 {_gib(r['argument_bytes'])}",
              f"  outputs (not aliased)     {_gib(unaliased)}",
              f"  temporaries               {_gib(r['temp_bytes'])}",
              f"  total                     {_gib(r['peak_bytes'])} of {_gib(r['capacity_bytes'])} HBM"
              + ("" if r["peak_bytes"] is None else f" ({100 * r['peak_bytes'] / r['capacity_bytes']:.0f}%)"),
              f"  FLOPs per step            {_num(r['flops'])}",
              f"  bytes accessed            {_num(r['bytes_accessed'])}",
              f"  compile time              {r['compile_seconds']:.1f} s"]
    return "\n".join(lines)


def refusal(report: dict, advice: list[str]) -> str:
    """The one line printed when the program does not fit."""
    peak = report["peak_bytes"]
    need = _gib(peak) if peak is not None else f"temporaries {_gib(report['temp_bytes'])}"
    try_ = "; try " + ", ".join(advice) if advice else ""
    return (f"edvr-aot: does not fit: {need} per device > {_gib(report['capacity_bytes'])} HBM of a "
            f"{report['device_kind']} ({report['topology']}){try_}")


def write_json(path: str, report: dict) -> None:
    tmp = f"{path}.tmp-edvr-aot"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edvr-aot", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="compile train.py's step (--config FILE [--config.x=y ...])")
    i = sub.add_parser("infer", help="compile the restore / evaluation program")
    for q in (t, i):
        q.add_argument("--topology", required=True, help="e.g. v5e:2x2, v5e:2x4, v5p:2x2x1")
        q.add_argument("--json", default=None, metavar="OUT", help="also write the figures as JSON")
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a .pth, an edvr-convert directory or a workdir")
    src.add_argument("--preset", help="a model name (edvr_jax.models.PRESETS), random weights")
    i.add_argument("--size", required=True, help="input frame size HxW in LQ pixels, e.g. 180x320")
    i.add_argument("--batch", type=int, default=1, help="windows (or tiles) per call, all devices")
    i.add_argument("--tile", type=int, default=None, help="tile side in input pixels")
    i.add_argument("--tile-overlap", "--tile_overlap", type=int, default=32, help="tile margin")
    i.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="compute dtype")
    return p


def _train_config(rest: list[str]):
    from absl import flags
    from ml_collections import config_flags

    from edvr_jax.train.cli import parse_flags

    joined, it = [], iter(rest)
    for a in it:
        joined.append(f"--config={next(it, '')}" if a == "--config" else a)
    rest = joined
    if not any(a.startswith("--config=") for a in rest):
        raise AotError("train needs --config configs/<recipe>.py")
    unknown = [a for a in rest if not a.startswith("--config")]
    if unknown:
        raise AotError(f"unexpected arguments {unknown}")
    argv = ["edvr-aot", *rest]
    fv = flags.FlagValues()
    # sys_argv: the overrides are found in these arguments, not in the process's sys.argv.
    config_flags.DEFINE_config_file("config", None, "a configs/*.py file", flag_values=fv,
                                    lock_config=True, sys_argv=argv)
    try:
        parse_flags(fv, argv, tool="edvr-aot")
    except SystemExit as e:  # its one-line message, as a usage error of this tool
        raise AotError(str(e.code).removeprefix("edvr-aot: error: ")) from None
    return fv.config


def _infer_model(args):
    from edvr_jax.models import EDVR, build

    m = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if not m or min(int(m.group(1)), int(m.group(2))) < 1:
        raise AotError(f"--size {args.size}: expected HxW in LQ pixels, e.g. 180x320")
    if args.batch < 1 or (args.tile is not None and args.tile < 1) or args.tile_overlap < 0:
        raise AotError("--batch and --tile must be >= 1 and --tile-overlap >= 0")
    dtype = None if args.dtype == "float32" else "bfloat16"
    if args.preset:
        from edvr_jax.convert.loader import abstract_params

        try:
            model = build(args.preset)
        except KeyError as e:
            raise AotError(str(e.args[0])) from None
        params = abstract_params(model)
    else:
        from edvr_jax import load_model
        from edvr_jax.errors import UserError

        try:
            model, variables = load_model(args.checkpoint)
        except (FileNotFoundError, UserError, ValueError) as e:
            raise AotError(str(e)) from None
        if not isinstance(model, EDVR):
            raise AotError(f"{args.checkpoint} is a two-stage model: compile each stage's checkpoint")
        params = variables["params"]
    import jax.numpy as jnp

    model = model.clone(dtype=None if dtype is None else jnp.bfloat16)
    return model, params, (int(m.group(1)), int(m.group(2)))


def run(argv: list[str]) -> int:
    args, rest = build_parser().parse_known_args(argv)
    if args.command == "infer" and rest:
        raise AotError(f"unexpected arguments {rest}")
    if args.command == "train":
        config = _train_config(rest)
        report = train_program(config, args.topology)
        advice = train_advice(config, report)
    else:
        model, params, size = _infer_model(args)
        report = infer_program(model, params, size, args.batch, args.tile, args.tile_overlap, args.topology)
        advice = infer_advice(report)
    if args.json:
        write_json(args.json, report)
    print(describe(report))
    if not report["fits"]:
        print(refusal(report, advice), file=sys.stderr)
        return EXIT_DOES_NOT_FIT
    return EXIT_FITS


def main(argv: list[str] | None = None) -> int:
    # Process-wide settings belong to the entry point: compile-only, no accelerator opened.
    from edvr_jax.process import configure_compile_only_tpu

    configure_compile_only_tpu()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except AotError as e:
        print(f"edvr-aot: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
