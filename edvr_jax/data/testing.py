"""Tiny dataset trees in the exact real layouts, for tests (here and elsewhere in the project).

Frames are "coded" so that tests can verify what a pipeline did numerically: in clip `c`,
LQ frame `t` has pixel (y, x) = (y, x, code) and GT frame `t` has pixel (Y, X) =
(Y // scale, X // scale, code) with `code = frame_code(c, t) = 40 * c + t`; so every GT pixel
names the LQ pixel it lies over, and every frame names its clip and index. That limits LQ
sizes to 256 and clips x frames to 6 x 40.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def frame_code(clip: int, frame: int) -> int:
    return 40 * clip + frame


def coded_frame(clip: int, frame: int, lq_hw: tuple[int, int], scale: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(lq uint8 (h, w, 3), gt uint8 (scale*h, scale*w, 3)) for one coded frame."""
    h, w = lq_hw
    if h > 256 or w > 256 or frame_code(clip, frame) > 255:
        raise ValueError("coded frames need LQ sides <= 256, clip <= 5 and frame < 40")
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    lq = np.stack([yy, xx, np.full_like(yy, frame_code(clip, frame))], -1).astype(np.uint8)
    gt = np.repeat(np.repeat(lq, scale, 0), scale, 1)
    return lq, gt


def write_png(path: str, arr: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path, compress_level=1)


def write_coded_clip(lq_dir: str, gt_dir: str, clip: int, num_frames: int,
                     lq_hw: tuple[int, int], scale: int, names=None) -> None:
    """Write `num_frames` coded frames named `names[t]` (default %08d.png) into both folders."""
    for t in range(num_frames):
        name = names[t] if names is not None else f"{t:08d}.png"
        lq, gt = coded_frame(clip % 6, t, lq_hw, scale)
        if lq_dir is not None:
            write_png(os.path.join(lq_dir, name), lq)
        if gt_dir is not None:
            write_png(os.path.join(gt_dir, name), gt)


# REDS folder kind -> scale of the LQ relative to the GT
_KINDS = {"sharp": 1, "sharp_bicubic": 4, "blur_bicubic": 4, "blur": 1, "blur_comp": 1}


def make_reds_tree(root: str, *, layout: str = "official", train_clips=(0, 1, 11, 15, 20),
                   val_clips=(0, 1, 6, 17), num_frames: int = 6, lq_hw=(4, 6),
                   kinds=("sharp", "sharp_bicubic")) -> str:
    """A REDS tree with real naming: clip folders '%03d', frames '%08d.png'.

    layout 'official': train_<kind>/ (and train_<kind>/X4/ for bicubic kinds) holding
    `train_clips`, val_<kind>/ holding `val_clips` (named 000-029). 'regrouped': val clips
    copied into train_<kind>/ as 240+k and bicubic folders without X4. `lq_hw` is the bicubic
    (x4) frame size; sharp/blur frames are 4x that. Clip k is coded with clip id k % 6.
    """
    if layout not in ("official", "regrouped"):
        raise ValueError(layout)
    h, w = lq_hw
    groups = [("train", c, c) for c in train_clips]
    groups += [("val", k, 240 + k) if layout == "official" else ("train", 240 + k, 240 + k)
               for k in val_clips]
    for kind in kinds:
        x4 = kind.endswith("bicubic") and layout == "official"
        for prefix, folder, clip in groups:
            path = os.path.join(root, f"{prefix}_{kind}", *(["X4"] if x4 else []), f"{folder:03d}")
            for t in range(num_frames):
                lq, gt = coded_frame(clip % 6, t, (h, w), 4)
                write_png(os.path.join(path, f"{t:08d}.png"), lq if _KINDS[kind] == 4 else gt)
    return root


def make_vimeo_tree(root: str, keys=("00001/0001", "00001/0002", "00002/0001"),
                    test_keys=("00003/0001",), lq_hw=(4, 6)) -> str:
    """Vimeo-90K septuplets: GT/LQ im1..im7 per key, and sep_trainlist/sep_testlist files."""
    for i, key in enumerate(list(keys) + list(test_keys)):
        write_coded_clip(os.path.join(root, "vimeo_septuplet_matlabLRx4", "sequences", key),
                         os.path.join(root, "vimeo_septuplet", "sequences", key), i % 6, 7,
                         lq_hw, 4, names=[f"im{t}.png" for t in range(1, 8)])
    base = os.path.join(root, "vimeo_septuplet")
    with open(os.path.join(base, "sep_trainlist.txt"), "w") as f:
        f.write("\n".join(keys) + "\n\n")  # the real files end with a blank line
    with open(os.path.join(base, "sep_testlist.txt"), "w") as f:
        f.write("\n".join(test_keys) + "\n")
    return root


def make_vid4_tree(root: str, frames=None, lq_hw=(4, 6)) -> str:
    """Vid4: GT/<clip>/ and BIx4/<clip>/, frame names like the real 'Frame 001.png'."""
    frames = frames or {"calendar": 4, "city": 3, "foliage": 5, "walk": 4}
    for i, (clip, n) in enumerate(frames.items()):
        names = [f"Frame {t + 1:03d}.png" for t in range(n)]
        write_coded_clip(os.path.join(root, "BIx4", clip), os.path.join(root, "GT", clip), i,
                         n, lq_hw, 4, names=names)
    return root
