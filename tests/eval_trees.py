"""Tiny evaluation datasets in the real REDS, Vid4 and Vimeo-90K layouts, bit-identical everywhere.

Shared by the tests (project venv) and ``make_fixtures_eval.py`` (torch venv): numpy and
PIL only, and integer arithmetic only (PCG64 integers, integer interpolation and box
filters), so both environments and any CPU write the very same pixels.

A "scene" is a smooth random canvas (an 8x8-cell grid of random colours, bilinearly
interpolated in integers, plus integer noise) seen through a window that moves by a fixed
integer step per frame: GT frames are windows of the canvas, x4 LQ frames their 4x4 box
means, "blur" LQ frames (the deblur track) a 5x5 box blur of the GT.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

REDS4 = ("000", "011", "015", "020")
VID4 = {"calendar": (5, (32, 32)), "city": (5, (32, 32)), "foliage": (6, (24, 28)),
        "walk": (5, (24, 28))}  # clip: (frames, LQ (h, w))
VIMEO_KEYS = ("00001/0001", "00001/0002", "00002/0001")


def canvas(seed: int, h: int, w: int) -> np.ndarray:
    """(h, w, 3) int64 in [0, 255]: integer-bilinear random colour field plus noise."""
    rng = np.random.default_rng(seed)
    cell = 8
    gh, gw = h // cell + 2, w // cell + 2
    grid = rng.integers(16, 240, size=(gh, gw, 3), dtype=np.int64)
    y = np.arange(h)
    x = np.arange(w)
    y0, fy = y // cell, y % cell
    x0, fx = x // cell, x % cell
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    fy, fx = fy[:, None, None], fx[None, :, None]
    val = (a * (cell - fy) * (cell - fx) + b * (cell - fy) * fx + c * fy * (cell - fx)
           + d * fy * fx + cell * cell // 2) // (cell * cell)
    noise = rng.integers(-12, 13, size=(h, w, 3), dtype=np.int64)
    return np.clip(val + noise, 0, 255)


def scene(seed: int, num_frames: int, gt_hw: tuple[int, int], step=(1, 2)) -> list[np.ndarray]:
    """GT frames (uint8 (H, W, 3)) of a window moving over a canvas by ``step`` per frame."""
    h, w = gt_hw
    dy, dx = step
    big = canvas(seed, h + dy * num_frames + 1, w + dx * num_frames + 1)
    return [big[t * dy:t * dy + h, t * dx:t * dx + w].astype(np.uint8) for t in range(num_frames)]


def downsample4(gt: np.ndarray) -> np.ndarray:
    """4x4 box mean, rounded half up, uint8."""
    h, w, c = gt.shape
    s = gt.astype(np.int64).reshape(h // 4, 4, w // 4, 4, c).sum(axis=(1, 3))
    return ((s + 8) // 16).astype(np.uint8)


def blur5(gt: np.ndarray) -> np.ndarray:
    """5x5 box blur with edge replication, rounded half up, uint8 (same size)."""
    p = np.pad(gt.astype(np.int64), ((2, 2), (2, 2), (0, 0)), mode="edge")
    h, w = gt.shape[:2]
    s = sum(p[i:i + h, j:j + w] for i in range(5) for j in range(5))
    return ((s + 12) // 25).astype(np.uint8)


def _png(path: str, arr: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def make_reds(root: str, num_frames: int = 6, lq_hw=(32, 32), clips=REDS4) -> str:
    """BasicSR's REDS test layout: train_sharp/<clip>/%08d.png (GT), train_sharp_bicubic/
    (x4 LQ, no X4 level) and train_blur/ (deblur LQ, GT size)."""
    h, w = lq_hw
    for k, clip in enumerate(clips):
        for t, gt in enumerate(scene(100 + k, num_frames, (4 * h, 4 * w))):
            name = f"{t:08d}.png"
            _png(os.path.join(root, "train_sharp", clip, name), gt)
            _png(os.path.join(root, "train_sharp_bicubic", clip, name), downsample4(gt))
            _png(os.path.join(root, "train_blur", clip, name), blur5(gt))
    return root


def make_vid4(root: str, clips=None) -> str:
    """Vid4: GT/<clip>/ and BIx4/<clip>/ with the real 'Frame 001.png' names; two sizes."""
    for k, (clip, (n, (h, w))) in enumerate((clips or VID4).items()):
        for t, gt in enumerate(scene(200 + k, n, (4 * h, 4 * w), step=(2, 1))):
            name = f"Frame {t + 1:03d}.png"
            _png(os.path.join(root, "GT", clip, name), gt)
            _png(os.path.join(root, "BIx4", clip, name), downsample4(gt))
    return root


def make_vimeo(root: str, keys=VIMEO_KEYS, lq_hw=(32, 32)) -> str:
    """Vimeo-90K-T: vimeo_septuplet{,_matlabLRx4}/sequences/<key>/im1..im7.png and
    vimeo_septuplet/sep_testlist.txt."""
    h, w = lq_hw
    for k, key in enumerate(keys):
        for t, gt in enumerate(scene(300 + k, 7, (4 * h, 4 * w), step=(1, 1))):
            name = f"im{t + 1}.png"
            _png(os.path.join(root, "vimeo_septuplet", "sequences", key, name), gt)
            _png(os.path.join(root, "vimeo_septuplet_matlabLRx4", "sequences", key, name),
                 downsample4(gt))
    with open(os.path.join(root, "vimeo_septuplet", "sep_testlist.txt"), "w") as f:
        f.write("\n".join(keys) + "\n")
    with open(os.path.join(root, "vimeo_septuplet", "sep_trainlist.txt"), "w") as f:
        f.write("\n")
    return root


def make_all(root: str) -> dict[str, str]:
    """All three trees under ``root``; returns their roots."""
    return {"reds": make_reds(os.path.join(root, "REDS")),
            "vid4": make_vid4(os.path.join(root, "Vid4")),
            "vimeo": make_vimeo(os.path.join(root, "vimeo90k"))}
