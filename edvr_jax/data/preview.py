"""Seeing and measuring the training input: a PNG grid of samples and a throughput figure."""

from __future__ import annotations

import time

import numpy as np

from edvr_jax.frames import tensor_to_uint8


def preview_grid(lq: np.ndarray, gt: np.ndarray, scale: int, gap: int = 4) -> np.ndarray:
    """One row per sample: its T LQ frames (nearest-upscaled by `scale`) then its GT patch.

    lq (b, T, p, p, 3) and gt (b, P, P, 3) float in [0, 1] -> uint8 image (rows, cols, 3),
    white gaps between tiles.
    """
    b, t = lq.shape[0], lq.shape[1]
    side = gt.shape[1]
    up = np.repeat(np.repeat(lq, scale, axis=2), scale, axis=3)  # (b, T, P, P, 3)
    tiles = np.concatenate([up, gt[:, None]], axis=1)  # (b, T+1, P, P, 3)
    rows, cols = b * (side + gap) - gap, (t + 1) * (side + gap) - gap
    out = np.ones((rows, cols, 3), np.float32)
    for i in range(b):
        for j in range(t + 1):
            y, x = i * (side + gap), j * (side + gap)
            out[y:y + side, x:x + side] = tiles[i, j, :side, :side]
    return tensor_to_uint8(out)


def measure_throughput(ds, *, batches: int, warmup: int = 2) -> dict:
    """Iterate a batched dataset: samples/s and batches/s after `warmup` batches."""
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += int(next(it)["lq"].shape[0])
    dt = time.perf_counter() - t0
    return {"batches": batches, "samples": n, "seconds": round(dt, 3),
            "samples_per_s": round(n / dt, 2), "batches_per_s": round(batches / dt, 3)}
