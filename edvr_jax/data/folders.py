"""Vimeo-90K septuplets, Vid4, and a generic paired-folder dataset.

Vimeo-90K (root holds both folders):
  GT  `vimeo_septuplet/sequences/XXXXX/YYYY/im1.png .. im7.png` (448x256)
  LQ  `vimeo_septuplet_matlabLRx4/sequences/XXXXX/YYYY/im1.png .. im7.png` (112x64)
  lists `vimeo_septuplet/sep_trainlist.txt` (split 'train') and `sep_testlist.txt`
  (split 'test', alias 'val'), one `00001/0001` per line.
Every sequence is a 7-frame clip with `center=3` (im4 is the target), so a window of
num_frame 7 is im1-im7 and of 5 is im2-im6, as in BasicSR. Paths come from the list file
without listing 64k folders; `check` verifies that they exist.

Vid4: `GT/<clip>/` and `BIx4/<clip>/` (calendar, city, foliage, walk), any frame names,
paired by sorted order; scale 4.

Folder: `gt_root/<clip>/<frame>` and `lq_root/<clip>/<frame>` with the same clip and frame
names, and a given scale (defaults: `root/GT` and `root/LQ`, scale 4).
"""

from __future__ import annotations

import tensorflow as tf

from edvr_jax.data.clips import (
    Clip,
    ClipSet,
    DatasetError,
    isdir,
    join,
    list_frames,
    list_subdirs,
    parallel_map,
    problem,
)

VIMEO_GT = "vimeo_septuplet"
VIMEO_LQ = "vimeo_septuplet_matlabLRx4"
VIMEO_LISTS = {"train": "sep_trainlist.txt", "test": "sep_testlist.txt", "val": "sep_testlist.txt"}


def _need_dir(path: str, what: str) -> None:
    if not isdir(path):
        raise DatasetError(f"{what}: folder {path} not found")


def read_vimeo90k(root: str, *, split: str = "train", num_frame: int | None = None,
                  errors: list[str] | None = None) -> ClipSet:
    """Vimeo-90K septuplets listed in `sep_trainlist.txt` / `sep_testlist.txt`."""
    del errors  # paths are built from the list; nothing per clip to check here
    if split not in VIMEO_LISTS:
        raise DatasetError(f"unknown Vimeo-90K split {split!r}; expected 'train' or 'test'")
    layout = (f"{VIMEO_GT}/sequences/XXXXX/YYYY/im1..im7.png and "
              f"{VIMEO_LQ}/sequences/... with {VIMEO_GT}/{VIMEO_LISTS[split]}")
    gt_root, lq_root = join(root, VIMEO_GT, "sequences"), join(root, VIMEO_LQ, "sequences")
    for path in (gt_root, lq_root):
        _need_dir(path, f"Vimeo-90K (expected {layout})")
    list_file = join(root, VIMEO_GT, VIMEO_LISTS[split])
    if not tf.io.gfile.exists(list_file):
        raise DatasetError(f"Vimeo-90K: list file {list_file} not found (expected {layout})")
    with tf.io.gfile.GFile(list_file) as f:
        keys = [line.strip() for line in f if line.strip()]
    clips = []
    for key in keys:
        parts = key.split("/")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise DatasetError(f"Vimeo-90K: line {key!r} in {list_file} is not like "
                               f"'00001/0001'")
        names = [f"im{i}.png" for i in range(1, 8)]
        clips.append(Clip(key, tuple(join(lq_root, key, n) for n in names),
                          tuple(join(gt_root, key, n) for n in names), center=3))
    if not clips:
        raise DatasetError(f"Vimeo-90K: {list_file} lists no sequences")
    first = clips[0]
    for path in (first.lq_paths[0], first.gt_paths[3]):
        if not tf.io.gfile.exists(path):
            raise DatasetError(f"Vimeo-90K: frame {path} of the first listed sequence not found "
                               f"(expected {layout})")
    cs = ClipSet("vimeo90k", 4, tuple(clips), root=root, split=split,
                 layout=f"septuplets ({len(clips)} sequences from {VIMEO_LISTS[split]})")
    if num_frame is not None:
        if num_frame > 7 or num_frame % 2 == 0:
            raise DatasetError(f"Vimeo-90K: num_frame must be odd and at most 7, got {num_frame}")
        cs.require_frames(num_frame)
    return cs


def _paired_clips(dataset: str, lq_root: str, gt_root: str, *, same_names: bool,
                  errors: list[str] | None) -> list[Clip]:
    _need_dir(gt_root, f"{dataset} GT")
    _need_dir(lq_root, f"{dataset} LQ")
    names = list_subdirs(gt_root)
    lq_names = set(list_subdirs(lq_root))
    if not names:
        raise DatasetError(f"{dataset}: no clip folders in {gt_root}")

    def frames(name):
        if name not in lq_names:
            return f"{dataset} clip {name}: folder {join(lq_root, name)} not found"
        return list_frames(join(lq_root, name)), list_frames(join(gt_root, name))

    clips = []
    for name, got in zip(names, parallel_map(frames, names), strict=True):
        if isinstance(got, str):
            problem(errors, got)
            continue
        lq, gt = got
        if len(lq) != len(gt) or (same_names and lq != gt):
            diff = sorted(set(lq) ^ set(gt))
            problem(errors, f"{dataset} clip {name}: {len(lq)} LQ frames in "
                            f"{join(lq_root, name)} but {len(gt)} GT frames in "
                            f"{join(gt_root, name)}"
                            + (f"; first differing name: {diff[0]}" if diff else ""))
            continue
        if not gt:
            problem(errors, f"{dataset} clip {name}: no frames in {join(gt_root, name)}")
            continue
        clips.append(Clip(name, tuple(join(lq_root, name, f) for f in lq),
                          tuple(join(gt_root, name, f) for f in gt)))
    return clips


def read_vid4(root: str, *, split: str = "test", num_frame: int | None = None,
              errors: list[str] | None = None) -> ClipSet:
    """Vid4 (`GT/<clip>/`, `BIx4/<clip>/`) for evaluation; scale 4; split is informative."""
    for sub, what in (("GT", "GT"), ("BIx4", "LQ")):
        if not isdir(join(root, sub)):
            raise DatasetError(f"Vid4 {what}: folder {join(root, sub)} not found; expected layout: "
                               f"{join(root, 'GT')}/<clip>/<frame>.png and "
                               f"{join(root, 'BIx4')}/<clip>/<frame>.png (x4 smaller)")
    clips = _paired_clips("Vid4", join(root, "BIx4"), join(root, "GT"), same_names=False,
                          errors=errors)
    cs = ClipSet("vid4", 4, tuple(clips), root=root, split=split, layout="GT/<clip>, BIx4/<clip>")
    if num_frame is not None:
        cs.require_frames(num_frame)
    return cs


def read_folder(root: str | None = None, *, gt_root: str | None = None,
                lq_root: str | None = None, scale: int = 4, split: str = "all",
                num_frame: int | None = None, errors: list[str] | None = None) -> ClipSet:
    """Your own paired clips: `gt_root/<clip>/<frame>` and `lq_root/<clip>/<frame>`.

    `gt_root`/`lq_root` default to `root/GT` and `root/LQ`. Clip and frame names must be the
    same in both; frames are taken in sorted name order.
    """
    if gt_root is None or lq_root is None:
        if root is None:
            raise DatasetError("folder dataset: give root (with GT/ and LQ/) or gt_root and "
                               "lq_root")
        gt_root = gt_root or join(root, "GT")
        lq_root = lq_root or join(root, "LQ")
    if int(scale) < 1:
        raise DatasetError(f"folder dataset: scale must be a positive integer, got {scale}")
    for what, path in (("GT", gt_root), ("LQ", lq_root)):
        if not isdir(path):
            raise DatasetError(
                f"folder {what}: folder {path} not found; expected layout: "
                f"{gt_root}/<clip>/<frame>.png and {lq_root}/<clip>/<frame>.png, the same clip "
                f"and frame names in both, LQ frames 1/{int(scale)} of the GT size")
    clips = _paired_clips("folder", lq_root, gt_root, same_names=True, errors=errors)
    cs = ClipSet("folder", int(scale), tuple(clips), root=root or gt_root, split=split,
                 layout=f"GT {gt_root}, LQ {lq_root}")
    if num_frame is not None:
        cs.require_frames(num_frame)
    return cs
