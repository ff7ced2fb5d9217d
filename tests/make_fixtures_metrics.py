"""Makes tests/data/metrics_basicsr.npz and frame_index_basicsr.npz with BasicSR 1.4.2's code.

Run once in the reference environment (torch + basicsr installed --no-deps, plus
opencv-python-headless), never in CI:

    /work/venvs/torch/bin/pip install opencv-python-headless
    /work/venvs/torch/bin/python tests/make_fixtures_metrics.py

BasicSR's package ``__init__`` fails with recent torchvision, so the few modules
needed are loaded by file path under stub parent packages.

What is stored (images as uint8 RGB; BasicSR is fed the same pictures in BGR):

* ``pair/<case>/img1``, ``img2`` and ``pair/<case>/psnr``, ``ssim``: BasicSR's
  ``calculate_psnr`` / ``calculate_ssim`` for crop_border in (0, 4) (rows) and
  test_y_channel in (False, True) (columns); NaN where BasicSR returns NaN
  because the crop leaves too little image.
* ``hidden/<case>/...``: the same for a few pairs drawn from another seed.
* ``y/rgb``, ``y/y``: random colours and BasicSR's ``to_y_channel`` (float32).
* ``t2i/<case>/x`` (HWC float, RGB) and ``t2i/<case>/u8`` (HWC uint8, RGB):
  BasicSR's ``tensor2img`` on the CHW tensor, converted back to RGB.
* ``gauss``: ``cv2.getGaussianKernel(11, 1.5)``.
* In frame_index_basicsr.npz: ``args`` ``(n, 4)`` = (crt_idx, max_frame_num,
  num_frames, mode number in ``modes``), ``out`` ``(n, 15)`` (first num_frames
  entries used, -32768 after) and ``err`` (1 where BasicSR raised) for
  ``generate_frame_indices``, every combination of clip length 1..12, window
  1..15 and centre -1..length.
"""

import importlib.util
import pathlib
import sys
import types

import cv2
import numpy as np
import torch

BSR = pathlib.Path(importlib.util.find_spec("torch").origin).parents[1] / "basicsr"
DATA = pathlib.Path(__file__).resolve().parent / "data"
MODES = ("replicate", "reflection", "reflection_circle", "circle")
CROPS = (0, 4)
YS = (False, True)


def load_basicsr():
    def load(name, rel):
        spec = importlib.util.spec_from_file_location(name, BSR / rel)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod

    for pkg in ("basicsr", "basicsr.utils", "basicsr.metrics", "basicsr.data"):
        sys.modules[pkg] = types.ModuleType(pkg)
    load("basicsr.utils.registry", "utils/registry.py")
    color = load("basicsr.utils.color_util", "utils/color_util.py")
    img_util = load("basicsr.utils.img_util", "utils/img_util.py")
    utils = sys.modules["basicsr.utils"]
    utils.bgr2ycbcr, utils.img2tensor, utils.scandir = color.bgr2ycbcr, img_util.img2tensor, None
    metric_util = load("basicsr.metrics.metric_util", "metrics/metric_util.py")
    psnr_ssim = load("basicsr.metrics.psnr_ssim", "metrics/psnr_ssim.py")
    load("basicsr.data.transforms", "data/transforms.py")
    data_util = load("basicsr.data.data_util", "data/data_util.py")
    return types.SimpleNamespace(
        psnr=psnr_ssim.calculate_psnr, ssim=psnr_ssim.calculate_ssim,
        to_y=metric_util.to_y_channel, tensor2img=img_util.tensor2img,
        frame_indices=data_util.generate_frame_indices)


def smooth_pair(rng, h, w, noise, blur=1.0):
    """A smooth, edged 'photo' and a blurred noisy copy (PSNR roughly 25-40 dB)."""
    base = rng.uniform(20, 235, (max(h // 16, 2), max(w // 16, 2), 3)).astype(np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(3):  # a few flat rectangles give sharp edges and saturated areas
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        img[y0:y0 + h // 3, x0:x0 + w // 3] = rng.choice([0.0, 255.0, rng.uniform(0, 255)])
    img = img + rng.normal(0, 3, img.shape)  # fine texture
    gt = np.clip(np.round(img), 0, 255).astype(np.uint8)
    out = cv2.GaussianBlur(gt.astype(np.float32), (5, 5), blur) + rng.normal(0, noise, img.shape)
    return gt, np.clip(np.round(out), 0, 255).astype(np.uint8)


def metric_cases(rng):
    g1, g2 = smooth_pair(rng, 96, 128, 3.0)
    s1, s2 = smooth_pair(rng, 24, 40, 6.0)
    t1, t2 = smooth_pair(rng, 16, 16, 2.0, 0.6)
    n1 = rng.integers(0, 256, (40, 33, 3), dtype=np.uint8)
    n2 = rng.integers(0, 256, (40, 33, 3), dtype=np.uint8)
    close = g1.astype(np.int16) + rng.integers(-1, 2, g1.shape) * (rng.random(g1.shape) < 0.05)
    grey1, grey2 = smooth_pair(rng, 32, 48, 4.0)
    return {
        "smooth_96x128": (g1, g2),
        "smooth_24x40": (s1, s2),
        "small_16x16": (t1, t2),
        "uniform_noise_40x33": (n1, n2),
        "identical_96x128": (g1, g1.copy()),
        "one_level_96x128": (g1, np.clip(close, 0, 255).astype(np.uint8)),
        "grey_32x48": (grey1[..., :1], grey2[..., :1]),
    }


def hidden_cases(rng):
    a1, a2 = smooth_pair(rng, 48, 64, 5.0)
    b1, b2 = smooth_pair(rng, 30, 52, 2.5, 1.4)
    c1 = rng.integers(0, 256, (20, 27, 3), dtype=np.uint8)
    return {"h_smooth_48x64": (a1, a2), "h_smooth_30x52": (b1, b2), "h_noise_20x27": (c1, c1[::-1].copy())}


def run_metrics(bsr, cases, prefix, out):
    for name, (a, b) in cases.items():
        bgr = [x[..., ::-1].copy() for x in (a, b)]
        psnr, ssim = np.full((2, 2), np.nan), np.full((2, 2), np.nan)
        for i, crop in enumerate(CROPS):
            for j, y in enumerate(YS):
                with np.errstate(all="ignore"):
                    psnr[i, j] = bsr.psnr(*bgr, crop_border=crop, test_y_channel=y)
                    try:
                        ssim[i, j] = bsr.ssim(*bgr, crop_border=crop, test_y_channel=y)
                    except cv2.error:
                        pass  # too small after cropping: left NaN, our code must refuse
        out.update({f"{prefix}/{name}/img1": a, f"{prefix}/{name}/img2": b,
                    f"{prefix}/{name}/psnr": psnr, f"{prefix}/{name}/ssim": ssim})


def tensor2img_cases(rng):
    h, w = 12, 20
    halves = []  # float32 x whose float32 product x*255 is exactly k + 0.5
    for k in range(0, 255, 7):
        for cand in np.float32((k + 0.5) / 255) + np.arange(-4, 5) * np.float32(1e-9):
            if np.float32(cand) * np.float32(255.0) == k + 0.5:
                halves.append(np.float32(cand))
    x = rng.uniform(-0.2, 1.2, (h, w, 3)).astype(np.float32)
    x.ravel()[: len(halves)] = halves
    x.ravel()[-4:] = [0.0, 1.0, -np.inf, np.inf]
    return {
        "float32": x,
        "float64": rng.uniform(-0.1, 1.1, (h, w, 3)),
        "halfway_grid": ((np.arange(256 * 3, dtype=np.float32) + 0.5) / 255).reshape(16, 16, 3),
    }


def frame_index_cases(bsr):
    args, res, err = [], [], []
    for total in range(1, 13):
        for num in range(1, 16):
            for crt in range(-1, total + 1):
                for m, mode in enumerate(MODES):
                    row = np.full(15, -32768, np.int16)
                    try:
                        idx = bsr.frame_indices(crt, total, num, mode)
                        row[: len(idx)] = idx
                        bad = 0
                    except AssertionError:
                        bad = 1
                    args.append((crt, total, num, m))
                    res.append(row)
                    err.append(bad)
    return np.array(args, np.int16), np.array(res, np.int16), np.array(err, np.int8)


def main():
    bsr = load_basicsr()
    out = {}
    run_metrics(bsr, metric_cases(np.random.default_rng(20250101)), "pair", out)
    run_metrics(bsr, hidden_cases(np.random.default_rng(777_000_111)), "hidden", out)

    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (8192, 3), dtype=np.uint8)
    rgb[:8] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255],
               [1, 2, 3], [128, 128, 128], [254, 1, 127]]
    out["y/rgb"] = rgb
    out["y/y"] = bsr.to_y(rgb[None, :, ::-1].copy())[0, :, 0]

    for name, x in tensor2img_cases(rng).items():
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
        out[f"t2i/{name}/x"] = x
        out[f"t2i/{name}/u8"] = bsr.tensor2img(t)[..., ::-1].copy()  # BGR back to RGB

    out["gauss"] = cv2.getGaussianKernel(11, 1.5).ravel()
    versions = np.array(f"torch {torch.__version__}, opencv {cv2.__version__}, "
                        f"numpy {np.__version__}, basicsr 1.4.2")
    args, res, err = frame_index_cases(bsr)
    for name, arrays in (("metrics_basicsr.npz", {**out, "versions": versions}),
                         ("frame_index_basicsr.npz", dict(args=args, out=res, err=err,
                                                          modes=np.array(MODES), versions=versions))):
        np.savez_compressed(DATA / name, **arrays)
        print(f"wrote {DATA / name} ({(DATA / name).stat().st_size / 1024:.0f} KiB)")
    for key in sorted(k for k in out if k.startswith("pair/") and k.endswith(("/psnr", "/ssim"))):
        print(key, np.array2string(out[key].ravel(), precision=4))


if __name__ == "__main__":
    main()
