"""Training-input throughput at REDS sizes; prints one JSON object.

Writes a small REDS-layout tree of real-looking frames (the demo clips' virtual camera over
scikit-image photographs) at REDS resolution, LQ 180x320 and GT 720x1280 PNGs, into a temp
dir, then times `make_train_dataset` with the EDVR recipe: gt_size 256, num_frame 5, batch
4. Every sample decodes 5 LQ PNGs and one full 720p GT PNG (as BasicSR does) before cropping.

    python benchmarks/bench_input.py [--clips 2] [--frames 10] [--batches 30]

Compare `samples_per_s` with the training step rate times the per-process batch: input is
not the bottleneck while samples_per_s is above it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--gt-size", type=int, default=256)
    ap.add_argument("--num-frame", type=int, default=5)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--dir", default=None, help="reuse/keep the generated tree here")
    args = ap.parse_args()

    from edvr_jax.data import get_clipset, make_demo_clips, make_train_dataset
    from edvr_jax.data.preview import measure_throughput

    root = args.dir or tempfile.mkdtemp(prefix="edvr_bench_input_")
    t0 = time.perf_counter()
    if not os.path.exists(os.path.join(root, "demo_info.json")):
        make_demo_clips(root, num_clips=args.clips, num_frames=args.frames,
                        gt_size=(720, 1280), seed=0)
    gen_s = time.perf_counter() - t0
    clips = get_clipset("reds", root, split="all")
    ds = make_train_dataset(clips, num_frame=args.num_frame, gt_size=args.gt_size, seed=0,
                            global_batch_size=args.batch, process_index=0, process_count=1)
    stats = measure_throughput(ds, batches=args.batches, warmup=3)
    print(json.dumps({
        "benchmark": "training input (make_train_dataset)",
        "frames": "LQ 180x320, GT 720x1280 PNG", "gt_size": args.gt_size,
        "num_frame": args.num_frame, "batch": args.batch, **stats,
        "tree_generation_s": round(gen_s, 1), "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine()}))


if __name__ == "__main__":
    main()
