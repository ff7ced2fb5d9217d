"""deform_conv2d against a plain 3x3 convolution (and torchvision), printing JSON.

    python benchmarks/bench_dcn.py                       # JAX only
    python benchmarks/bench_dcn.py --torch-python /path/to/venv/bin/python
                                                         # + torchvision, same machine, same run

Shapes are EDVR's (N=4, C=64 and 128, 64x64 and 180x320, G=8, 3x3). Each
figure is the median of --repeats timed runs after one warm-up (compilation
excluded). Ratios are computed inside one run; absolute times on a shared
machine are noise. Peak memory: XLA's compiled temp + argument + output bytes
for the JAX functions, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

SHAPES = [(4, 64, 64, 64), (4, 64, 64, 128), (4, 180, 320, 64), (4, 180, 320, 128)]
GROUPS = 8


def _median_time(fn, repeats, faults=None):
    """Median wall time of ``fn`` after one warm-up; ``faults`` (a dict) receives the
    minor page faults per call, which on CPU is where large fresh buffers cost."""
    fn()  # warm-up (and compilation for JAX)
    times = []
    minflt = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    if faults is not None:
        faults["minor_page_faults_per_call"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - minflt) / repeats
    return float(np.median(times))


def _inputs(n, h, w, c, seed=0, groups=GROUPS):
    """x, offset (about 3 px), mask, kernel for an EDVR-shaped call, float32 numpy."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    off = (rng.standard_normal((n, h, w, 2 * groups * 9)) * 3).astype(np.float32)
    mask = rng.uniform(size=(n, h, w, groups * 9)).astype(np.float32)
    kernel = (rng.standard_normal((3, 3, c, c)) / np.sqrt(9 * c)).astype(np.float32)
    return x, off, mask, kernel


def plain_conv(x, k):
    """The plain 3x3 convolution the deformable one is measured against."""
    import jax

    return jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def bench_jax(shapes, repeats):
    import jax
    import jax.numpy as jnp

    from edvr_jax.ops import deform_conv2d

    plain = plain_conv

    def dcn(x, off, mask, k):
        return deform_conv2d(x, off, mask, k)

    fns = {
        "dcn_fwd": (jax.jit(dcn), (0, 1, 2, 3)),
        "dcn_fwd_bwd": (jax.jit(jax.grad(lambda *a: jnp.sum(dcn(*a) ** 2), argnums=(0, 1, 2, 3))), (0, 1, 2, 3)),
        "conv_fwd": (jax.jit(plain), (0, 3)),
        "conv_fwd_bwd": (jax.jit(jax.grad(lambda x, k: jnp.sum(plain(x, k) ** 2), argnums=(0, 1))), (0, 3)),
    }
    results = []
    for n, h, w, c in shapes:
        args = [jnp.asarray(a) for a in _inputs(n, h, w, c)]
        row = {"shape": {"N": n, "H": h, "W": w, "C": c, "G": GROUPS}}
        for name, (fn, which) in fns.items():
            a = [args[i] for i in which]
            compiled = fn.lower(*a).compile()
            mem = compiled.memory_analysis()
            faults = {}
            row[f"{name}_s"] = _median_time(lambda fn=fn, a=a: jax.block_until_ready(fn(*a)), repeats, faults)
            row[f"{name}_minor_page_faults"] = faults["minor_page_faults_per_call"]
            if mem is not None:
                row[f"{name}_peak_bytes"] = int(mem.temp_size_in_bytes + mem.argument_size_in_bytes
                                                + mem.output_size_in_bytes)
        row["fwd_ratio_vs_conv"] = row["dcn_fwd_s"] / row["conv_fwd_s"]
        row["fwd_bwd_ratio_vs_conv"] = row["dcn_fwd_bwd_s"] / row["conv_fwd_bwd_s"]
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return results


def bench_torch(shapes, repeats):
    import torch
    from torchvision.ops import deform_conv2d

    results = []
    for n, h, w, c in shapes:
        nchw = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))
        x_, off_, mask_, kernel_ = _inputs(n, h, w, c)
        x, off, mask = nchw(x_), nchw(off_), nchw(mask_)
        weight = torch.from_numpy(np.ascontiguousarray(np.transpose(kernel_, (3, 2, 0, 1))))

        def fwd(x=x, off=off, weight=weight, mask=mask):
            with torch.no_grad():
                deform_conv2d(x, off, weight, None, (1, 1), (1, 1), (1, 1), mask)

        def fwd_bwd(x=x, off=off, weight=weight, mask=mask):
            ts = [t.detach().requires_grad_() for t in (x, off, mask, weight)]
            y = deform_conv2d(ts[0], ts[1], ts[3], None, (1, 1), (1, 1), (1, 1), ts[2])
            (y ** 2).sum().backward()

        big = h * w > 10000
        row = {"shape": {"N": n, "H": h, "W": w, "C": c, "G": GROUPS},
               "torchvision_fwd_s": _median_time(fwd, max(1, repeats // 2) if big else repeats),
               "torchvision_fwd_bwd_s": _median_time(fwd_bwd, 1 if big else repeats)}
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    import torchvision
    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "threads": torch.get_num_threads(), "rows": results}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--small", action="store_true", help="only the 64x64 shapes")
    p.add_argument("--torch-python", help="a Python with torch+torchvision for the reference timings")
    p.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    shapes = SHAPES[:2] if args.small else SHAPES

    if args.torch_only:
        print(json.dumps(bench_torch(shapes, args.repeats)))
        return

    import jax

    report = {
        "benchmark": "deform_conv2d vs plain 3x3 conv",
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "backend": jax.default_backend(),
                    "devices": len(jax.devices()), "jax": jax.__version__,
                    "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES")},
        "repeats": args.repeats,
        "targets": {"fwd_ratio_vs_conv": 3.0, "fwd_bwd_ratio_vs_conv": 5.0, "ratio_vs_torchvision": 0.25},
        "rows": bench_jax(shapes, args.repeats),
    }
    torch_rows = None
    try:
        import torchvision  # noqa: F401
        torch_rows = bench_torch(shapes, args.repeats)
    except ImportError:
        if args.torch_python:
            cmd = [args.torch_python, __file__, "--torch-only", "--repeats", str(args.repeats)]
            if args.small:
                cmd.append("--small")
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            torch_rows = json.loads(out.stdout.strip().splitlines()[-1])
    if torch_rows is not None:
        report["torch"] = {k: v for k, v in torch_rows.items() if k != "rows"}
        for row, trow in zip(report["rows"], torch_rows["rows"], strict=True):
            row.update({k: v for k, v in trow.items() if k != "shape"})
            row["fwd_ratio_vs_torchvision"] = row["dcn_fwd_s"] / row["torchvision_fwd_s"]
            row["fwd_bwd_ratio_vs_torchvision"] = row["dcn_fwd_bwd_s"] / row["torchvision_fwd_bwd_s"]
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
