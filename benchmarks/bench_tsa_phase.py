"""Step time of BasicSR's TSA-only warm-up phase against a full step, printing JSON.

    python benchmarks/bench_tsa_phase.py [--preset EDVR_M_x4_SR_REDS] [--repeats 5]

In the first ``tsa_iter`` steps only ``fusion`` trains (BasicSR sets requires_grad=False on
everything else). Our step differentiates only the trained parameters, so in that phase
the backward pass of PCD and its DCNs (and of the feature extraction) is not built: the
TSA-only step should cost about a forward pass plus the backward of fusion and
reconstruction. Shapes: BasicSR's training batch per GPU, (4, 5, 64, 64, 3), float32, all
cores.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="EDVR_M_x4_SR_REDS")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=64, help="LQ crop side")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp

    from edvr_jax.models import build, init_input
    from edvr_jax.train.optim import make_optimizer, train_phases
    from edvr_jax.train.schedule import cosine_restart_schedule
    from edvr_jax.train.state import TrainState
    from edvr_jax.train.step import train_step

    model = build(args.preset)
    rng = np.random.default_rng(0)
    b, t, s = args.batch, model.num_frame, args.size
    batch = {"lq": jnp.asarray(rng.uniform(size=(b, t, s, s, 3)), jnp.float32),
             "gt": jnp.asarray(rng.uniform(size=(b, 4 * s, 4 * s, 3)), jnp.float32)}
    params = jax.jit(model.init)(jax.random.key(0), init_input(model))["params"]
    schedule = cosine_restart_schedule(4e-4, [150_000], [1.0], 1e-7)
    phases = train_phases(params, tsa_iter=50_000)
    tx = make_optimizer(params, schedule, tsa_iter=50_000)
    out = {"preset": args.preset, "shape": [b, t, s, s, 3], "devices": jax.device_count(),
           "backend": jax.default_backend(), "cpu": platform.processor() or platform.machine(),
           "cores": os.cpu_count()}
    for name, trained in (("tsa_only", phases.tsa), ("full", phases.full)):
        step = jax.jit(functools.partial(train_step, model=model, tx=tx, schedule=schedule, trained=trained))
        state = TrainState.create(params, tx, use_ema=False)
        t0 = time.perf_counter()
        compiled = step.lower(state, batch).compile()
        out[f"{name}_compile_s"] = time.perf_counter() - t0
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        out[f"{name}_flops"] = float(cost.get("flops", -1)) if cost else None
        mem = compiled.memory_analysis()
        out[f"{name}_temp_bytes"] = int(mem.temp_size_in_bytes) if mem is not None else None
        jax.block_until_ready(compiled(state, batch))  # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            state, metrics = compiled(state, batch)
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - t0)
        out[f"{name}_step_s"] = float(np.median(times))
    out["tsa_only_over_full_time"] = out["tsa_only_step_s"] / out["full_step_s"]
    if out["tsa_only_flops"] and out["full_flops"]:
        out["tsa_only_over_full_flops"] = out["tsa_only_flops"] / out["full_flops"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
