"""Peak memory of inference, printing JSON: EDVR-L full frame at 180x320 input (720p
output) against the 8 GB target, and tiled inference whose peak is set by the tile.

    python benchmarks/bench_memory.py

Each measurement runs in a fresh subprocess and reports the process's peak resident
memory (ru_maxrss: everything, weights, buffers, XLA temporaries, the Python runtime) and
XLA's own figure for the compiled forward (temporaries + arguments + outputs).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys

TARGET_BYTES = 8 * 2**30


def measure(kind: str, h: int, w: int, tile: int) -> dict:
    """Runs in the child: restores one 5-frame window of random pixels with EDVR-L."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from edvr_jax.convert.loader import abstract_params
    from edvr_jax.evaluate.inference import Restorer
    from edvr_jax.models import build

    model = build("EDVR_L_x4_SR_REDS")
    shapes = abstract_params(model)
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_map(
        lambda s: jnp.asarray(rng.standard_normal(s.shape, np.float32) * 0.01), shapes)
    variables = {"params": params}
    x = rng.uniform(size=(1, 5, h, w, 3)).astype(np.float32)
    restorer = Restorer(model, variables, batch_size=1, tile=tile or None,
                        tile_overlap=16 if tile else 0)
    out = restorer(x)
    side = tile + 2 * 16 if tile else None
    shape = (1, 5, side, side, 3) if tile else (1, 5, h, w, 3)
    mem = jax.jit(model.apply).lower(variables, jnp.zeros(shape)).compile().memory_analysis()
    return {"kind": kind, "input": [h, w], "tile": tile or None, "output": list(out.shape[1:3]),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "xla_forward_bytes": None if mem is None else int(
                mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes)}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, h, w, tile = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(measure(kind, h, w, tile)))
        return
    runs = [("full", 180, 320, 0), ("tiled", 180, 320, 64), ("tiled", 360, 640, 64)]
    rows = []
    for kind, h, w, tile in runs:
        res = subprocess.run([sys.executable, __file__, "--child", kind, str(h), str(w), str(tile)],
                             check=True, capture_output=True, text=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    full = rows[0]
    report = {"benchmark": "EDVR-L inference peak memory", "machine": {
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES")},
        "target_bytes": TARGET_BYTES, "rows": rows,
        "full_frame_within_target": full["peak_rss_bytes"] <= TARGET_BYTES,
        "tiled_peak_ratio_4x_pixels": rows[2]["peak_rss_bytes"] / rows[1]["peak_rss_bytes"]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
