"""Whole-model figures, printing JSON: EDVR-M forward and training step against BasicSR,
scaling with pixels and batch, and compilation times.

    python benchmarks/bench_model.py                               # JAX only
    python benchmarks/bench_model.py --torch-python /path/to/venv/bin/python
                                                                   # + BasicSR's EDVR, same run

Shapes (float32, all cores): forward on (1, 5, 180, 320, 3) (a 720p output frame), and a
training step (forward + backward + Adam) on (4, 5, 64, 64, 3) (BasicSR's GT 256 crops).
Scaling: forward time at three frame sizes and three batch sizes; the exponent is the
slope of log(time) against log(size) (1 = linear). Compilation: the first call's time of
the jitted train step and of the evaluation forward; the step is then called again with
new data and its compiled-program cache must not grow.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

FWD_SHAPE = (1, 5, 180, 320)
STEP_SHAPE = (4, 5, 64, 64)
PIXELS = [(44, 80), (88, 160), (176, 320)]
BATCHES = [1, 2, 4]


def _median(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _slope(sizes, times):
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def bench_jax(repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    from edvr_jax.models import build
    from edvr_jax.train.optim import make_optimizer
    from edvr_jax.train.schedule import cosine_restart_schedule
    from edvr_jax.train.state import TrainState
    from edvr_jax.train.step import train_step

    rng = np.random.default_rng(0)
    model = build("EDVR_M_x4_SR_REDS")
    b, t, h, w = STEP_SHAPE
    lq = jnp.asarray(rng.uniform(size=(b, t, h, w, 3)), jnp.float32)
    gt = jnp.asarray(rng.uniform(size=(b, 4 * h, 4 * w, 3)), jnp.float32)
    params = jax.jit(model.init)(jax.random.key(0), lq[:1])["params"]
    schedule = cosine_restart_schedule(4e-4, [150_000], [1.0], 1e-7)
    tx = make_optimizer(params, schedule)
    state = TrainState.create(params, tx, use_ema=False)
    step = jax.jit(functools.partial(train_step, model=model, tx=tx, schedule=schedule),
                   donate_argnums=(0,))
    out: dict = {}
    t0 = time.perf_counter()
    state, m = step(state, {"lq": lq, "gt": gt})
    jax.block_until_ready(m)
    out["train_step_first_call_s"] = time.perf_counter() - t0
    cache0 = step._cache_size()

    def one_step():
        nonlocal state
        state, metrics = step(state, {"lq": lq * 0.5, "gt": gt})
        jax.block_until_ready(metrics)

    out["train_step_s"] = _median(one_step, repeats)
    out["train_step_recompiled"] = step._cache_size() != cache0

    fwd = jax.jit(model.apply)
    variables = {"params": jax.tree_util.tree_map(jnp.asarray, state.params)}

    def forward_time(shape, reps):
        x = jnp.asarray(rng.uniform(size=shape + (3,)), jnp.float32)
        t0 = time.perf_counter()
        jax.block_until_ready(fwd(variables, x))
        first = time.perf_counter() - t0
        return first, _median(lambda: jax.block_until_ready(fwd(variables, x)), reps)

    first, out["forward_s"] = forward_time(FWD_SHAPE, repeats)
    out["forward_first_call_s"] = first
    mem = fwd.lower(variables, jnp.zeros(FWD_SHAPE + (3,))).compile().memory_analysis()
    if mem is not None:
        out["forward_xla_temp_bytes"] = int(mem.temp_size_in_bytes)
    px = [forward_time((1, 5) + hw, max(2, repeats // 2))[1] for hw in PIXELS]
    bt = [forward_time((n, 5, 64, 64), max(2, repeats // 2))[1] for n in BATCHES]
    out["scaling"] = {
        "pixels": [h * w for h, w in PIXELS], "pixel_times_s": px,
        "pixel_exponent": _slope([h * w for h, w in PIXELS], px),
        "batches": BATCHES, "batch_times_s": bt, "batch_exponent": _slope(BATCHES, bt)}
    return out


def bench_torch(repeats: int) -> dict:
    """BasicSR 1.4.2's EDVR-M on the same shapes (loaded from its files, torch threads = cores)."""
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from make_fixtures_edvr import load_basicsr_edvr

    net = load_basicsr_edvr().EDVR(num_feat=64, num_frame=5, num_reconstruct_block=10)
    opt = torch.optim.Adam(net.parameters(), lr=4e-4, betas=(0.9, 0.99))
    b, t, h, w = STEP_SHAPE
    lq, gt = torch.rand(b, t, 3, h, w), torch.rand(b, 3, 4 * h, 4 * w)

    def step():
        opt.zero_grad()
        loss = torch.sqrt((net(lq) - gt) ** 2 + 1e-12).sum()
        loss.backward()
        opt.step()

    step()
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
           "train_step_s": _median(step, max(2, repeats // 2))}
    x = torch.rand(FWD_SHAPE[:2] + (3,) + FWD_SHAPE[2:])
    with torch.no_grad():
        net(x)
        out["forward_s"] = _median(lambda: net(x), max(2, repeats // 2))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--torch-python", help="a Python with torch, torchvision and basicsr 1.4.2")
    p.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_only:
        print(json.dumps(bench_torch(args.repeats)))
        return
    import jax

    report = {"benchmark": "EDVR-M forward and training step", "machine": {
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES"),
        "backend": jax.default_backend(), "devices": len(jax.devices()), "jax": jax.__version__},
        "shapes": {"forward": FWD_SHAPE, "train_step": STEP_SHAPE}, "repeats": args.repeats,
        "jax": bench_jax(args.repeats)}
    if args.torch_python:
        res = subprocess.run([args.torch_python, __file__, "--torch-only", "--repeats",
                              str(args.repeats)], check=True, capture_output=True, text=True)
        report["basicsr"] = json.loads(res.stdout.strip().splitlines()[-1])
        for k in ("forward_s", "train_step_s"):
            report[f"{k[:-2]}_ratio_vs_basicsr"] = report["jax"][k] / report["basicsr"][k]
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
