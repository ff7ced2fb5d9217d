"""edvr_jax.metrics, the public metrics module, against the BasicSR 1.4.2 fixtures of
tests/test_metrics.py (tests/data/metrics_basicsr.npz)."""

import pathlib

import numpy as np

import edvr_jax.metrics as metrics

REF = np.load(pathlib.Path(__file__).parent / "data" / "metrics_basicsr.npz")
CROPS, YS = (0, 4), (False, True)
CASES = sorted(k[: -len("/img1")] for k in REF if k.endswith("/img1"))


def _check(ours, ref, tol, what):
    if np.isinf(ref):
        assert ours == ref, what
    else:
        assert abs(ours - ref) <= tol, f"{what}: {ours!r} vs BasicSR {ref!r}"


def test_public_names():
    assert set(metrics.__all__) >= {"calculate_psnr", "calculate_ssim", "psnr_batch", "ssim_batch"}
    for name in metrics.__all__:
        assert callable(getattr(metrics, name)), name


def test_calculate_psnr_ssim_equal_basicsr():
    checked = 0
    for case in CASES:
        a, b = REF[f"{case}/img1"], REF[f"{case}/img2"]
        for i, crop in enumerate(CROPS):
            for j, y in enumerate(YS):
                for name, fn in (("psnr", metrics.calculate_psnr), ("ssim", metrics.calculate_ssim)):
                    ref = REF[f"{case}/{name}"][i, j]
                    if np.isnan(ref):  # too small after the crop; test_metrics checks the refusal
                        continue
                    _check(fn(a, b, crop_border=crop, test_y_channel=y), ref, 1e-10, f"{case} {name} {crop} {y}")
                    checked += 1
    assert checked > 50


def test_batched_versions_equal_basicsr():
    shapes = {}
    for case in CASES:
        shapes.setdefault(REF[f"{case}/img1"].shape, []).append(case)
    shape = max(shapes, key=lambda s: len(shapes[s]))  # one compiled batch for several pairs
    cases = shapes[shape]
    a = np.stack([REF[f"{c}/img1"] for c in cases])
    b = np.stack([REF[f"{c}/img2"] for c in cases])
    for i, crop in enumerate(CROPS):
        for j, y in enumerate(YS):
            p = np.asarray(metrics.psnr_batch(a, b, crop_border=crop, test_y_channel=y))
            s = np.asarray(metrics.ssim_batch(a, b, crop_border=crop, test_y_channel=y))
            for k, c in enumerate(cases):
                _check(float(p[k]), REF[f"{c}/psnr"][i, j], 5e-5, f"{c} psnr_batch {crop} {y}")
                _check(float(s[k]), REF[f"{c}/ssim"][i, j], 1e-5, f"{c} ssim_batch {crop} {y}")
