"""Makes tests/data/data_basicsr.npz with BasicSR 1.4.2's own data transforms.

Run once in the reference environment (torch + basicsr installed --no-deps, opencv):

    /work/venvs/torch/bin/python tests/make_fixtures_data.py

Two things are recorded, both with BasicSR's real code loaded by file path (its package
__init__ pulls in modules that fail with new torchvision):

1. `paired_random_crop` + `augment` (basicsr/data/transforms.py), exactly as REDSDataset
   calls them (GT first, LQ list second; then `augment(lqs + [gt], hflip, rot)`), on random
   float32 frames, with the random decisions forced: `random.randint` returns the chosen
   top/left and `random.random` returns 0.25 (True) or 0.75 (False) for hflip, vflip, rot90.
   Every flip combination is covered, for scale 4 and scale 1.
2. `imresize(img, 1/4)` (basicsr/utils/matlab_functions.py, MATLAB bicubic with
   antialiasing) on random images, against which the demo clips' LQ maker is checked.
"""

import importlib.util
import pathlib
import random

import numpy as np

BASICSR = pathlib.Path("/work/venvs/torch/lib/python3.11/site-packages/basicsr")


def load(rel):
    spec = importlib.util.spec_from_file_location(rel.replace("/", "_"), BASICSR / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


transforms = load("data/transforms.py")
matlab = load("utils/matlab_functions.py")

# name, T, lq (h, w), scale, gt_size
CROP_CASES = [("x4", 5, (7, 9), 4, 16), ("x1", 3, (10, 12), 1, 6), ("x4_wide", 3, (5, 11), 4, 12)]


def forced_crop_augment(lqs, gt, gt_size, scale, top, left, flips):
    ints = iter([top, left])
    floats = iter([0.25 if f else 0.75 for f in flips])
    saved = random.randint, random.random
    random.randint = lambda a, b: next(ints)
    random.random = lambda: next(floats)
    try:
        gt_c, lqs_c = transforms.paired_random_crop(gt, list(lqs), gt_size, scale, "fixture")
        lqs_c = list(lqs_c) if isinstance(lqs_c, list) else [lqs_c]
        out = transforms.augment(lqs_c + [gt_c], True, True)
    finally:
        random.randint, random.random = saved
    return np.stack(out[:-1]), out[-1]


def main(path="tests/data/data_basicsr.npz"):
    rng = np.random.default_rng(20240612)
    out = {}
    for name, t, (h, w), scale, gt_size in CROP_CASES:
        lq = rng.integers(0, 256, (t, h, w, 3)).astype(np.float32) / 255.0
        gt = rng.integers(0, 256, (h * scale, w * scale, 3)).astype(np.float32) / 255.0
        p = gt_size // scale
        decisions, lq_out, gt_out = [], [], []
        for k in range(8):
            flips = [bool(k & 1), bool(k & 2), bool(k & 4)]
            top, left = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            lq_c, gt_c = forced_crop_augment([f.copy() for f in lq], gt.copy(), gt_size, scale,
                                             top, left, flips)
            decisions.append([top, left, *flips])
            lq_out.append(lq_c)
            gt_out.append(gt_c)
        out[f"crop_{name}_lq_in"] = lq
        out[f"crop_{name}_gt_in"] = gt
        out[f"crop_{name}_meta"] = np.array([scale, gt_size])
        out[f"crop_{name}_decisions"] = np.array(decisions, np.int64)
        out[f"crop_{name}_lq_out"] = np.stack(lq_out)
        out[f"crop_{name}_gt_out"] = np.stack(gt_out)
    for name, shape in [("square", (32, 32, 3)), ("odd", (37, 22, 3)), ("gray", (24, 40))]:
        img = rng.integers(0, 256, shape).astype(np.float64) / 255.0
        out[f"resize_{name}_in"] = img
        out[f"resize_{name}_out"] = np.asarray(matlab.imresize(img, 0.25), np.float64)
    np.savez_compressed(path, **out)
    print(f"wrote {path}: {sorted(out)}")


if __name__ == "__main__":
    main()
