"""Where deform_conv2d's time goes: a jax.profiler trace summed per XLA op, printing JSON.

    python benchmarks/profile_dcn.py                   # N=4, 64x64, C=64, G=8
    python benchmarks/profile_dcn.py --hw 180 320 --channels 128 --calls 2

For the forward and for forward+backward of one EDVR-shaped call it records ``--calls``
runs after a warm-up and reports, per XLA op (fusion), the thread time per call in ms
and its share, largest first, next to the same for a plain 3x3 convolution. Thread time
adds up over XLA:CPU's worker threads, so it can exceed wall time. Op names are XLA's
(``*gather*``/``add_bitcast_fusion``: the fused bilinear sampling; ``ynn_fusion`` or
``*dot*``: the matmul; ``*scatter*``: the input gradient). Also the minor page faults
per call, which are large when temporaries are not on huge pages (see the README).
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import resource
import sys
import tempfile
import time

_HOST_ONLY = ("block_until_ready", "try_to_block", "PjitFunction", "Execute", "ThunkExecutor")


def _profile(fn, args, calls):
    import jax

    jax.block_until_ready(fn(*args))  # compile and warm up outside the trace
    with tempfile.TemporaryDirectory() as tmp:
        minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        with jax.profiler.trace(tmp):
            for _ in range(calls):
                jax.block_until_ready(fn(*args))
        wall = (time.perf_counter() - t0) / calls
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - minflt) / calls
        paths = sorted(glob.glob(os.path.join(tmp, "**", "*.xplane.pb"), recursive=True))
        data = jax.profiler.ProfileData.from_file(paths[-1])
        per_op = collections.Counter()
        for plane in data.planes:
            for line in plane.lines:
                if line.name == "python":
                    continue
                for ev in line.events:
                    if not any(h in ev.name for h in _HOST_ONLY):
                        per_op[ev.name] += ev.duration_ns
    total = sum(per_op.values())
    ops = [{"op": name, "thread_ms_per_call": ns / calls / 1e6, "share": ns / total}
           for name, ns in per_op.most_common()]
    return {"wall_ms_per_call_incl_tracing": wall * 1e3, "minor_page_faults_per_call": faults,
            "thread_ms_per_call": total / calls / 1e6, "ops": ops}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--hw", type=int, nargs=2, default=(64, 64))
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--groups", type=int, default=8)
    p.add_argument("--calls", type=int, default=3)
    args = p.parse_args()

    import jax
    import jax.numpy as jnp
    from bench_dcn import _inputs  # benchmarks/ is this script's folder
    from bench_dcn import plain_conv as plain

    from edvr_jax.ops import deform_conv2d

    n, (h, w), c, g = args.batch, args.hw, args.channels, args.groups
    x, off, mask, kernel = (jnp.asarray(a) for a in _inputs(n, h, w, c, groups=g))

    def sq(f):
        return lambda *a: jnp.sum(f(*a) ** 2)

    runs = {
        "dcn_fwd": (jax.jit(deform_conv2d), (x, off, mask, kernel)),
        "dcn_fwd_bwd": (jax.jit(jax.grad(sq(deform_conv2d), argnums=(0, 1, 2, 3))), (x, off, mask, kernel)),
        "conv_fwd": (jax.jit(plain), (x, kernel)),
        "conv_fwd_bwd": (jax.jit(jax.grad(sq(plain), argnums=(0, 1))), (x, kernel)),
    }
    report = {"benchmark": "deform_conv2d profile per XLA op",
              "shape": {"N": n, "H": h, "W": w, "C": c, "G": g}, "calls": args.calls,
              "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES"), "jax": jax.__version__}
    for name, (fn, fargs) in runs.items():
        report[name] = _profile(fn, fargs, args.calls)
        print(f"{name}: {report[name]['thread_ms_per_call']:.1f} thread-ms/call", file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
