"""Embedded demo clips: a virtual camera moving over photographs that ship with scikit-image.

What the clips are, honestly: each clip looks at one still photograph from `skimage.data`
(astronaut, chelsea, coffee, rocket, hubble_deep_field, the left motorcycle stereo view)
through a virtual camera that translates by sub-pixel amounts with a little shake, zooms and
rotates slightly; every clip has its own motion. GT frames are the photograph resampled with
cubic splines (scipy `map_coordinates`, order 3); LQ frames are the GT frames downscaled x4
with MATLAB's antialiased bicubic `imresize` (reimplemented in numpy; the REDS and Vimeo-90K
LQ frames were made the same way) and rounded to uint8. There is no independent object
motion, occlusion, parallax, motion blur or noise: the only change between frames is a
global similarity transform, so the clips are a smoke test of the whole pipeline, not a
benchmark.

Layout written (REDS official, so every reader and the pipeline treat it as REDS):
  root/train_sharp/<clip>/%08d.png and root/train_sharp_bicubic/X4/<clip>/%08d.png,
  clip names 000, 001, ..., plus root/README.txt and root/demo_info.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from edvr_jax.data.clips import ClipSet, DatasetError

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "motorcycle")


def _photo(name: str) -> np.ndarray:
    from skimage import data

    if name == "motorcycle":
        return data.stereo_motorcycle()[0]
    return getattr(data, name)()


# ---------------------------------------------------------------- MATLAB bicubic imresize

def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """(out_len, in_len) weights of MATLAB `imresize(..., scale, 'bicubic')` along one axis.

    Antialiased when downscaling (kernel stretched by 1/scale), symmetric boundary handling,
    rows normalised to sum 1, exactly as MATLAB's `contributions`.
    """
    kernel_scale = scale if scale < 1 else 1.0
    width = 4.0 / kernel_scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate of each output pixel
    left = np.floor(u - width / 2)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based
    w = kernel_scale * _cubic(kernel_scale * (u[:, None] - idx))
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    cols = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len))
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), cols.ravel()), w.ravel())
    return mat


def imresize_bicubic(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB-style bicubic resize of (H, W, C) or (H, W) by `scale`, float64 out, no rounding."""
    h, w = img.shape[:2]
    oh, ow = int(np.ceil(h * scale)), int(np.ceil(w * scale))
    rows, cols = resize_matrix(h, oh, scale), resize_matrix(w, ow, scale)
    return _resize_with(rows, cols, np.asarray(img, np.float64))


def _resize_with(rows: np.ndarray, cols: np.ndarray, x: np.ndarray) -> np.ndarray:
    y = np.tensordot(rows, x, axes=(1, 0))  # (oh, W, ...)
    return np.moveaxis(np.tensordot(cols, y, axes=(1, 1)), 0, 1)  # (oh, ow, ...)


# ---------------------------------------------------------------- virtual camera

def _camera_path(rng: np.random.Generator, n: int, photo_hw, gt_hw):
    """Per-frame (centre_y, centre_x, scale, angle) of the view: photo px per GT px, radians."""
    ph, pw = photo_hw
    h, w = gt_hw
    s0 = rng.uniform(0.5, 0.7) * min(ph / h, pw / w)
    zoom = rng.uniform(-0.004, 0.004)
    theta0, omega = np.deg2rad(rng.uniform(-4, 4)), np.deg2rad(rng.uniform(-0.3, 0.3))
    angle = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.3, 1.5) * s0  # 0.3..1.5 GT pixels per frame
    t = np.arange(n, dtype=np.float64)
    scale = s0 * (1 + zoom * (t - (n - 1) / 2))
    # keep the whole path inside the photo: shrink the speed if it would walk out
    half_view = 0.5 * np.hypot(h, w) * scale.max()
    room = max(min(ph, pw) / 2 - half_view, 1.0)
    speed = min(speed, room / max(n / 2, 1))
    shake = rng.uniform(0, 0.3, 2) * s0
    phase = rng.uniform(0, 2 * np.pi, 2)
    cy = ph / 2 + speed * np.sin(angle) * (t - (n - 1) / 2) + shake[0] * np.sin(0.7 * t + phase[0])
    cx = pw / 2 + speed * np.cos(angle) * (t - (n - 1) / 2) + shake[1] * np.sin(0.9 * t + phase[1])
    return cy, cx, scale, theta0 + omega * (t - (n - 1) / 2)


def _render(coeffs, cy, cx, scale, theta, gt_hw) -> np.ndarray:
    from scipy import ndimage

    h, w = gt_hw
    dy, dx = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    c, s = np.cos(theta), np.sin(theta)
    ys = cy + scale * (c * dy - s * dx)
    xs = cx + scale * (s * dy + c * dx)
    out = np.stack([ndimage.map_coordinates(k, [ys, xs], order=3, mode="mirror",
                                            prefilter=False) for k in coeffs], -1)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _save(path: str, arr: np.ndarray) -> None:
    Image.fromarray(arr).save(path, compress_level=1)


def make_demo_clips(root: str, *, num_clips: int = 8, num_frames: int = 30,
                    gt_size: tuple[int, int] = (256, 256), seed: int = 0) -> str:
    """Write `num_clips` clips of `num_frames` frames (GT `gt_size`=(H, W), LQ H/4 x W/4).

    Deterministic for a seed. H and W must be multiples of 4. Returns `root`.
    """
    from scipy import ndimage

    h, w = int(gt_size[0]), int(gt_size[1])
    if h % 4 or w % 4 or h < 16 or w < 16:
        raise DatasetError(f"demo gt_size must be multiples of 4 and at least 16, got {gt_size}")
    if num_clips < 1 or num_frames < 1:
        raise DatasetError("demo needs num_clips >= 1 and num_frames >= 1")
    rows, cols = resize_matrix(h, h // 4, 0.25), resize_matrix(w, w // 4, 0.25)
    coeff_cache: dict[str, list[np.ndarray]] = {}

    def one_clip(k: int) -> None:
        coeffs = coeff_cache[PHOTOS[(k + seed) % len(PHOTOS)]]
        rng = np.random.default_rng([seed, k])
        path = _camera_path(rng, num_frames, coeffs[0].shape, (h, w))
        gt_dir = os.path.join(root, "train_sharp", f"{k:03d}")
        lq_dir = os.path.join(root, "train_sharp_bicubic", "X4", f"{k:03d}")
        os.makedirs(gt_dir, exist_ok=True)
        os.makedirs(lq_dir, exist_ok=True)
        for t in range(num_frames):
            gt = _render(coeffs, *(p[t] for p in path), (h, w))
            lq = _resize_with(rows, cols, gt.astype(np.float64))
            lq = np.clip(np.round(lq), 0, 255).astype(np.uint8)
            _save(os.path.join(gt_dir, f"{t:08d}.png"), gt)
            _save(os.path.join(lq_dir, f"{t:08d}.png"), lq)

    for name in {PHOTOS[(k + seed) % len(PHOTOS)] for k in range(num_clips)}:
        photo = _photo(name).astype(np.float64)
        coeff_cache[name] = [ndimage.spline_filter(photo[..., ch], order=3, mode="mirror")
                             for ch in range(3)]
    with ThreadPoolExecutor(max_workers=min(4, num_clips)) as pool:
        list(pool.map(one_clip, range(num_clips)))
    info = dict(num_clips=num_clips, num_frames=num_frames, gt_size=[h, w], seed=seed,
                photos=[PHOTOS[(k + seed) % len(PHOTOS)] for k in range(num_clips)])
    with open(os.path.join(root, "README.txt"), "w") as f:
        f.write((__doc__ or "").strip() + "\n")
    with open(os.path.join(root, "demo_info.json"), "w") as f:
        json.dump(info, f, indent=1)
    return root


def default_cache_dir() -> str:
    """$EDVR_JAX_CACHE, else ~/.cache/edvr_jax."""
    return os.environ.get("EDVR_JAX_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "edvr_jax"))


def demo_clipset(root: str | None = None, *, split: str = "train", num_clips: int = 8,
                 num_frames: int = 30, gt_size: tuple[int, int] = (256, 256), seed: int = 0,
                 num_val: int = 2, num_frame: int | None = None, **_) -> ClipSet:
    """Demo clips as a ClipSet, generated on first use.

    Args:
      root: folder of the demo tree; None uses `default_cache_dir()/demo/<parameters>`.
        If `root/demo_info.json` is missing the clips are generated there (atomically).
      split: 'train' (all but the last `num_val` clips), 'val' (the last `num_val`) or 'all'.
    """
    from edvr_jax.data.reds import read_reds

    if root is None:
        root = os.path.join(default_cache_dir(), "demo",
                            f"n{num_clips}_f{num_frames}_{gt_size[0]}x{gt_size[1]}_s{seed}")
    info_path = os.path.join(root, "demo_info.json")
    if not os.path.exists(info_path):
        parent = os.path.dirname(os.path.abspath(root))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".demo-tmp-", dir=parent)
        try:
            make_demo_clips(tmp, num_clips=num_clips, num_frames=num_frames, gt_size=gt_size,
                            seed=seed)
            if os.path.isdir(root) and not os.listdir(root):
                os.rmdir(root)
            try:
                os.replace(tmp, root)
            except OSError:  # another process made it first
                if not os.path.exists(info_path):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    with open(info_path) as f:
        info = json.load(f)
    n = int(info["num_clips"])
    if not 0 <= num_val < n:
        raise DatasetError(f"demo: num_val={num_val} must leave training clips out of {n}")
    allc = read_reds(root, task="sr", split="all")
    names = allc.names
    pick = {"train": names[:n - num_val], "val": names[n - num_val:], "all": names}
    if split not in pick:
        raise DatasetError(f"demo: unknown split {split!r}; expected 'train', 'val' or 'all'")
    cs = allc.subset(pick[split], split=split)
    cs = dataclasses.replace(cs, dataset="demo", task="sr", partition="",
                             layout=f"demo ({n} clips x {info['num_frames']} frames, GT "
                                    f"{info['gt_size'][0]}x{info['gt_size'][1]}, seed "
                                    f"{info['seed']})")
    if num_frame is not None:
        cs.require_frames(num_frame)
    return cs
