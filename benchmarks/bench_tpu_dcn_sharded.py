"""deform_conv2d forward+backward on one TPU chip vs batch-sharded over a mesh, as JSON.

    python benchmarks/bench_tpu_dcn_sharded.py [--impl packed] [--per-chip 20] [--size 64]
        [--channels 64] [--topology v5e:2x2] [--devices 1 --devices 4]

Compiles ``vjp(deform_conv2d)`` (cotangent an input) for the TPU topology (libtpu, no TPU
needed), once on a single chip with ``--per-chip`` images and once over a ``data`` mesh of
``--devices`` chips with ``devices * per_chip`` images sharded on the batch axis: the
training step's situation (EDVR's PCD runs the DCNs on batch*frames images, 4 clips x 5
frames = 20 per chip). A batch-local operator needs the same temporaries per chip in both;
more in the mesh means the SPMD partitioner could not keep the work local to each chip's
images (it replicates the table the samples are gathered from and computes every chip's
samples everywhere).
"""

from __future__ import annotations

import argparse
import json
import time

from edvr_jax.process import configure_compile_only_tpu

GROUPS = 8


def figures(impl: str, devices, per_chip: int, size: int, channels: int, topology: str) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

    from edvr_jax.ops import deform_conv2d

    if len(devices) == 1:
        batch = replicated = SingleDeviceSharding(devices[0])
    else:
        mesh = Mesh(np.array(devices), ("data",))
        batch, replicated = NamedSharding(mesh, PartitionSpec("data")), NamedSharding(mesh, PartitionSpec())
    n, hw, c = per_chip * len(devices), size, channels

    def spec(shape, sharding=batch):
        return jax.ShapeDtypeStruct(shape, jnp.float32, sharding=sharding)

    def fwd_bwd(x, off, mask, k, cot):
        return jax.vjp(lambda *a: deform_conv2d(*a, impl=impl), x, off, mask, k)[1](cot)

    row = {"impl": impl, "topology": topology, "devices": len(devices), "images_per_chip": per_chip,
           "H": hw, "W": hw, "C": c, "G": GROUPS}
    t0 = time.perf_counter()
    try:
        compiled = jax.jit(fwd_bwd).trace(
            spec((n, hw, hw, c)), spec((n, hw, hw, 2 * GROUPS * 9)), spec((n, hw, hw, GROUPS * 9)),
            spec((3, 3, c, c), replicated), spec((n, hw, hw, c))).lower().compile()
    except Exception as e:  # RESOURCE_EXHAUSTED when it does not fit
        row.update(fits=False, error=str(e).strip().splitlines()[0][:300])
    else:
        mem = compiled.memory_analysis()
        row.update(fits=True, temp_gib=round(mem.temp_size_in_bytes / 2**30, 3),
                   argument_gib=round(mem.argument_size_in_bytes / 2**30, 3))
    row["compile_s"] = round(time.perf_counter() - t0, 1)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--impl", action="append", help="packed | gather | auto (repeatable; default packed)")
    p.add_argument("--per-chip", type=int, default=20)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--topology", default="v5e:2x2")
    p.add_argument("--devices", type=int, action="append", help="chips in the mesh (default 1 and 4)")
    args = p.parse_args()
    configure_compile_only_tpu()
    from jax.experimental import topologies

    all_devices = list(topologies.get_topology_desc(platform="tpu", topology_name=args.topology).devices)
    for impl in args.impl or ["packed"]:
        for d in args.devices or [1, len(all_devices)]:
            print(json.dumps(figures(impl, all_devices[:d], args.per_chip, args.size, args.channels,
                                     args.topology)), flush=True)


if __name__ == "__main__":
    main()
