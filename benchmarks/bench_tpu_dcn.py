"""deform_conv2d compiled for a TPU chip (no TPU needed): the TPU compiler's figures, as JSON.

    TPU_SKIP_MDS_QUERY=1 python benchmarks/bench_tpu_dcn.py            # EDVR shapes, impl=auto
    TPU_SKIP_MDS_QUERY=1 python benchmarks/bench_tpu_dcn.py --small    # the 64x64 shapes only
    ... --impl packed --impl gather --topology v5p:2x2x1

Needs libtpu (``pip install "jax[tpu]==<jax version>"``). Every program is compiled
for ONE chip of the topology (a single-device sharding), so the figures are per chip.
For each implementation and shape it prints, forward and forward+backward (the vjp
with respect to x, offset, mask and kernel, cotangent given as an input):

* ``temp_bytes``: XLA's temporaries; ``temp_vs_columns``: over the unpadded sampled
  columns tensor ``N*Ho*Wo*kh*kw*Cin`` values, the operator's irreducible intermediate;
* ``bytes_accessed`` and ``flops`` from ``cost_analysis()``; ``bytes_vs_conv``: over
  the same figure of a plain 3x3 ``lax.conv_general_dilated`` (forward, or forward +
  backward) of the same shape;
* ``compile_s``: wall seconds of ``.compile()``;
* ``while_loops``: loops in the optimised program. The compiler counts a loop's body
  ONCE in ``bytes_accessed``, so a chunked (``lax.map``) program's figure is one
  chunk's; the ``unchunked`` entry is the same program compiled with
  ``max_columns_bytes`` unbounded (when it fits and has no loop), whose bytes are the
  whole traffic.

A program that does not fit fails to compile with RESOURCE_EXHAUSTED; its row then has
``fits: false``, the message's first line, and the temporaries the compiler reported.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

SHAPES = [(4, 64, 64, 64), (4, 64, 64, 128), (4, 180, 320, 64)]
GROUPS = 8
_SIZE = re.compile(r"HLO temporaries \(([\d.]+)([KMGT]?)\)")
_UNIT = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _figures(fn, specs):
    """Compiles ``fn`` for ``specs``; the compiler's memory and cost figures."""
    t0 = time.perf_counter()
    try:
        compiled = fn.trace(*specs).lower().compile()
    except Exception as e:  # XlaRuntimeError: RESOURCE_EXHAUSTED when it does not fit
        msg = str(e)
        row = {"fits": False, "error": msg.strip().splitlines()[0][:300],
               "compile_s": round(time.perf_counter() - t0, 2)}
        m = _SIZE.search(msg)
        if m:
            row["temp_bytes"] = int(float(m.group(1)) * _UNIT[m.group(2)])
        return row
    seconds = time.perf_counter() - t0
    mem, cost = compiled.memory_analysis(), compiled.cost_analysis()
    hlo = compiled.as_text()
    loops = hlo.count(" while(")
    if isinstance(cost, list):  # older jax returns one dict per program
        cost = cost[0]
    return {"fits": True, "temp_bytes": int(mem.temp_size_in_bytes),
            "argument_bytes": int(mem.argument_size_in_bytes),
            "output_bytes": int(mem.output_size_in_bytes),
            "bytes_accessed": float(cost.get("bytes accessed", -1)),
            "flops": float(cost.get("flops", -1)), "compile_s": round(seconds, 2),
            "while_loops": loops}


def _programs(impl, precision, max_columns_bytes=None):
    """(forward, forward+backward) of deform_conv2d and of the plain conv, jitted."""
    import jax

    from edvr_jax.ops import deform_conv2d

    kwargs = {} if impl == "default" else {"impl": impl}
    if max_columns_bytes is not None:
        kwargs["max_columns_bytes"] = max_columns_bytes

    def dcn(x, off, mask, k):
        return deform_conv2d(x, off, mask, k, precision=precision, **kwargs)

    def dcn_vjp(x, off, mask, k, cot):
        return jax.vjp(dcn, x, off, mask, k)[1](cot)

    def conv(x, k):
        return jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            precision=precision)

    def conv_vjp(x, k, cot):
        return jax.vjp(conv, x, k)[1](cot)

    return jax.jit(dcn), jax.jit(dcn_vjp), jax.jit(conv), jax.jit(conv_vjp)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--topology", default="v5e:2x2")
    p.add_argument("--impl", action="append",
                   help="deform_conv2d(impl=...) to measure (repeatable); 'default' passes none")
    p.add_argument("--small", action="store_true", help="only the 64x64 shapes")
    p.add_argument("--no-backward", action="store_true", help="forward only")
    p.add_argument("--no-unchunked", action="store_true",
                   help="skip the unchunked compile of chunked programs")
    p.add_argument("--shape", action="append", help="N,H,W,C (repeatable) instead of the EDVR shapes")
    p.add_argument("--precision", default=None, help="matmul precision (default: the backend's)")
    args = p.parse_args()
    if args.shape:
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shape]
    else:
        shapes = SHAPES[:2] if args.small else SHAPES
    impls = args.impl or ["default"]

    import jax
    import jax.numpy as jnp
    from jax.experimental import topologies
    from jax.sharding import SingleDeviceSharding

    topo = topologies.get_topology_desc(platform="tpu", topology_name=args.topology)
    device = topo.devices[0]
    sharding = SingleDeviceSharding(device)
    spec = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32, sharding=sharding)

    report = {"benchmark": "deform_conv2d compiled for one TPU chip", "topology": args.topology,
              "device_kind": device.device_kind, "jax": jax.__version__, "rows": []}
    conv_cache = {}
    for impl in impls:
        dcn, dcn_vjp, conv, conv_vjp = _programs(impl, args.precision)
        whole, whole_vjp, _, _ = _programs(impl, args.precision, max_columns_bytes=2**50)
        for n, h, w, c in shapes:
            x, k, y = spec(n, h, w, c), spec(3, 3, c, c), spec(n, h, w, c)
            off, mask = spec(n, h, w, 2 * GROUPS * 9), spec(n, h, w, GROUPS * 9)
            columns = n * h * w * 9 * c * 4
            row = {"impl": impl, "shape": {"N": n, "H": h, "W": w, "C": c, "G": GROUPS},
                   "columns_bytes": columns}
            passes = [("fwd", dcn, whole, (x, off, mask, k), conv, (x, k))]
            if not args.no_backward:
                passes.append(("fwd_bwd", dcn_vjp, whole_vjp, (x, off, mask, k, y), conv_vjp, (x, k, y)))
            for name, fn, wfn, specs, cfn, cspecs in passes:
                key = (n, h, w, c, name)
                if key not in conv_cache:
                    conv_cache[key] = _figures(cfn, cspecs)
                base, fig = conv_cache[key], _figures(fn, specs)
                fig["conv_bytes_accessed"] = base.get("bytes_accessed")
                if fig.get("temp_bytes") is not None:
                    fig["temp_vs_columns"] = round(fig["temp_bytes"] / columns, 2)
                if fig["fits"] and base.get("bytes_accessed"):
                    fig["bytes_vs_conv"] = round(fig["bytes_accessed"] / base["bytes_accessed"], 2)
                if fig.get("while_loops") and not args.no_unchunked:
                    un = _figures(wfn, specs)
                    if un["fits"] and base.get("bytes_accessed"):
                        un["bytes_vs_conv"] = round(un["bytes_accessed"] / base["bytes_accessed"], 2)
                    fig["unchunked"] = un
                row[name] = fig
            report["rows"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
