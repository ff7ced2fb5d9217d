"""PSNR / SSIM / luma / quantisation against BasicSR 1.4.2 fixtures (tests/data/metrics_basicsr.npz,
made by tests/make_fixtures_metrics.py), and the batched jnp versions against the numpy ones."""

import pathlib

import jax
import numpy as np
import pytest
import skimage.data

from edvr_jax.evaluate import (
    calculate_psnr,
    calculate_ssim,
    gaussian_window_1d,
    psnr_batch,
    rgb_to_y,
    ssim_batch,
    tensor_to_uint8,
    to_uint8_batch,
)
from edvr_jax.evaluate.metrics import _luma

# The jitted float32 metrics are compared with BasicSR on the optimised XLA programs users run
# (unoptimised, the float32 SSIM sums in another order: 7e-5 dB off on one case).
pytestmark = pytest.mark.usefixtures("optimized_xla")

REF = np.load(pathlib.Path(__file__).parent / "data" / "metrics_basicsr.npz")
CROPS, YS = (0, 4), (False, True)
# Every stored pair, including the "hidden/" ones drawn from a seed never inspected.
CASES = sorted(k[: -len("/img1")] for k in REF if k.endswith("/img1"))
GROUPS = {}  # image shape -> cases, so that one compiled batch serves several pairs
for _case in CASES:
    GROUPS.setdefault(REF[f"{_case}/img1"].shape, []).append(_case)
MAIN_SHAPE = max(GROUPS, key=lambda s: len(GROUPS[s]))

PSNR_TOL_F32 = 5e-5  # dB, documented in psnr_batch
SSIM_TOL_F32 = 1e-5  # documented in ssim_batch
PHOTO_PSNR_TOL_F32, PHOTO_SSIM_TOL_F32 = 1e-5, 5e-7
EXACT = 1e-10  # numpy versions vs BasicSR, and jnp versions under x64


def pair(case):
    return REF[f"{case}/img1"], REF[f"{case}/img2"]


def assert_metric(ours, ref, tol, what):
    if np.isinf(ref):
        assert ours == ref, f"{what}: {ours} != {ref}"
    else:
        assert abs(ours - ref) <= tol, f"{what}: {ours!r} vs BasicSR {ref!r} (tol {tol})"


# ------------------------------------------------------------------------ numpy versions


@pytest.mark.parametrize("case", CASES)
def test_numpy_metrics_equal_basicsr(case):
    a, b = pair(case)
    for i, crop in enumerate(CROPS):
        for j, y in enumerate(YS):
            for name, fn in (("psnr", calculate_psnr), ("ssim", calculate_ssim)):
                ref = REF[f"{case}/{name}"][i, j]
                if np.isnan(ref):  # BasicSR returns NaN: too little image left after the crop
                    with pytest.raises(ValueError, match="need at least 11x11"):
                        fn(a, b, crop_border=crop, test_y_channel=y)
                    continue
                assert_metric(fn(a, b, crop_border=crop, test_y_channel=y), ref, EXACT,
                              f"{case} {name} crop={crop} y={y}")


def test_numpy_metrics_accept_grey_2d_and_float_and_jax_inputs():
    a, b = pair("pair/grey_32x48")
    assert_metric(calculate_psnr(a[..., 0], b[..., 0]), REF["pair/grey_32x48/psnr"][0, 0], EXACT, "2-D")
    assert_metric(calculate_ssim(a[..., 0], b[..., 0], 4), REF["pair/grey_32x48/ssim"][1, 0], EXACT, "2-D")
    a, b = pair("pair/smooth_24x40")
    ref = REF["pair/smooth_24x40/psnr"][0, 1]
    assert_metric(calculate_psnr(a.astype(np.float32), b.astype(np.float64), 0, True), ref, EXACT, "float")
    assert_metric(calculate_psnr(jax.numpy.asarray(a), b, 0, True), ref, EXACT, "jax input")


def test_identical_images():
    a, _ = pair("pair/smooth_24x40")
    assert calculate_psnr(a, a.copy()) == float("inf")
    assert abs(calculate_ssim(a, a.copy(), test_y_channel=True) - 1.0) < 1e-12


def test_rgb_to_y_is_bit_exact_basicsr_to_y_channel():
    rgb = REF["y/rgb"]
    y = rgb_to_y(rgb[None])[0]
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, REF["y/y"].astype(np.float64))
    # The float32 roundings matter: the exact formula differs in most colours.
    exact = 16.0 + rgb.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255.0
    assert np.count_nonzero(exact != y) > len(y) // 2 and np.abs(exact - y).max() < 3e-5


def test_gaussian_window_is_cv2s():
    np.testing.assert_allclose(gaussian_window_1d(), REF["gauss"], rtol=0, atol=1e-16)


@pytest.mark.parametrize("name", ["float32", "float64", "halfway_grid"])
def test_tensor_to_uint8_equals_tensor2img(name):
    x, ref = REF[f"t2i/{name}/x"], REF[f"t2i/{name}/u8"]
    if not np.isfinite(x).all():
        # tensor2img clamps +-inf to 255/0; ours refuses them (a diverged model's output is
        # not an image), and rounds the same image with the infinities at 0 and 1 equally.
        with pytest.raises(ValueError, match="contains inf"):
            tensor_to_uint8(x)
        x_host = np.where(np.isposinf(x), 1.0, np.where(np.isneginf(x), 0.0, x)).astype(x.dtype)
    else:
        x_host = x
    out = tensor_to_uint8(x_host)
    assert out.dtype == np.uint8 and out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)
    out_jnp = to_uint8_batch(x[None])[0]
    assert out_jnp.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(out_jnp), ref)


def test_tensor_to_uint8_rounds_half_to_even_and_rejects_bad_input():
    # 0.5/255 and 1.5/255 in float32 times 255 are exactly 0.5 and 1.5 here.
    x = np.array([0.5, 1.5, 2.5, 254.5], np.float32) / np.float32(255.0)
    assert (x * np.float32(255.0)).tolist() == [0.5, 1.5, 2.5, 254.5]
    assert tensor_to_uint8(x).tolist() == [0, 2, 2, 254]
    with pytest.raises(ValueError, match="contains NaN"):
        tensor_to_uint8(np.array([0.1, np.nan], np.float32))
    with pytest.raises(ValueError, match="contains inf"):  # a clamp would make it white
        tensor_to_uint8(np.array([0.1, -np.inf], np.float64))
    with pytest.raises(TypeError, match="float image"):
        tensor_to_uint8(np.zeros((2, 2, 3), np.uint8))
    assert np.asarray(to_uint8_batch(np.array([np.nan, 2.0, -1.0]))).tolist() == [0, 255, 0]


@pytest.mark.parametrize("fn", [calculate_psnr, calculate_ssim])
def test_numpy_errors(fn):
    a = np.zeros((16, 20, 3), np.uint8)
    with pytest.raises(ValueError, match=r"shapes differ: img1 \(16, 20, 3\) vs img2 \(16, 21, 3\)"):
        fn(a, np.zeros((16, 21, 3), np.uint8))
    with pytest.raises(ValueError, match=r"HWC image.*got shape \(3, 16, 20\)"):
        fn(a.transpose(2, 0, 1), a.transpose(2, 0, 1))
    with pytest.raises(ValueError, match="HWC image"):
        fn(a[None], a[None])
    with pytest.raises(ValueError, match="HWC image"):
        fn(np.zeros((16, 20, 4)), np.zeros((16, 20, 4)))
    with pytest.raises(ValueError, match="crop_border must be an integer >= 0"):
        fn(a, a, crop_border=-1)
    with pytest.raises(ValueError, match="crop_border must be an integer >= 0"):
        fn(a, a, crop_border=1.5)
    with pytest.raises(ValueError, match=r"leave 0x4 pixels"):
        fn(a, a, crop_border=8)
    with pytest.raises(ValueError, match=r"values must lie in \[0, 255\].*tensor_to_uint8"):
        fn(np.full((16, 20, 3), 300.0), a)
    with pytest.raises(TypeError, match="real numeric dtype"):
        fn(a.astype(bool), a.astype(bool))


# ------------------------------------------------------------------------ jnp batched versions


def batch(cases):
    return np.stack([pair(c)[0] for c in cases]), np.stack([pair(c)[1] for c in cases])


def ssim_combos(shape):
    """All four settings for the largest group; one (alternating) for the others, to keep
    compilations few."""
    if shape == MAIN_SHAPE:
        return [(c, y) for c in CROPS for y in YS]
    return [[(0, True)], [(4, False)]][sorted(GROUPS).index(shape) % 2]


@pytest.mark.parametrize("shape", sorted(GROUPS), ids=lambda s: "x".join(map(str, s)))
def test_batched_float32_close_to_basicsr(shape):
    cases = GROUPS[shape]
    a, b = batch(cases)
    for i, crop in enumerate(CROPS):
        for j, y in enumerate(YS):
            out = np.asarray(psnr_batch(a, b, crop_border=crop, test_y_channel=y))
            assert out.shape == (len(cases),) and out.dtype == np.float32
            for k, case in enumerate(cases):
                assert_metric(out[k], REF[f"{case}/psnr"][i, j], PSNR_TOL_F32, f"{case} crop={crop} y={y}")
    for crop, y in ssim_combos(shape):
        i, j = CROPS.index(crop), YS.index(y)
        refs = [REF[f"{case}/ssim"][i, j] for case in cases]
        if np.isnan(refs).any():
            with pytest.raises(ValueError, match="need at least 11x11"):
                ssim_batch(a, b, crop_border=crop, test_y_channel=y)
            continue
        out = np.asarray(ssim_batch(a, b, crop_border=crop, test_y_channel=y))
        for k, case in enumerate(cases):
            assert_metric(out[k], refs[k], SSIM_TOL_F32, f"{case} ssim crop={crop} y={y}")


@pytest.mark.parametrize("shape", [MAIN_SHAPE, (32, 48, 1)], ids=["rgb", "grey"])
def test_batched_x64_equal_basicsr(shape):
    cases = GROUPS[shape]
    a, b = batch(cases)
    with jax.enable_x64(True):
        for crop, y in [(0, False), (4, True)]:
            i, j = CROPS.index(crop), YS.index(y)
            p = np.asarray(psnr_batch(a, b, crop_border=crop, test_y_channel=y))
            s = np.asarray(ssim_batch(a, b, crop_border=crop, test_y_channel=y))
            assert p.dtype == s.dtype == np.float64
            for k, case in enumerate(cases):
                assert_metric(p[k], REF[f"{case}/psnr"][i, j], EXACT, f"{case} x64 psnr")
                assert_metric(s[k], REF[f"{case}/ssim"][i, j], EXACT, f"{case} x64 ssim")


def test_x64_luma_reproduces_basicsr_float32_roundings():
    rgb = REF["y/rgb"].astype(np.float64)
    with jax.enable_x64(True):
        y = np.asarray(jax.jit(_luma)(rgb))[:, 0]
    np.testing.assert_array_equal(y, REF["y/y"].astype(np.float64))


def _box_blur(img, r):
    pad = np.pad(img.astype(np.float64), ((r, r), (r, r), (0, 0)), mode="edge")
    h, w = img.shape[:2]
    return sum(pad[i:i + h, j:j + w] for i in range(2 * r + 1) for j in range(2 * r + 1)) / (2 * r + 1) ** 2


def test_batched_float32_on_photographs_and_flat_images():
    """Real pictures (skimage), degraded to 25-35 dB, and flat/edge patterns where an
    uncentred float32 SSIM is off by up to 2e-4."""
    rng = np.random.default_rng(0)
    h, w = MAIN_SHAPE[:2]
    photos = [getattr(skimage.data, n)()[100:100 + h, 150:150 + w, :3] for n in ("astronaut", "coffee", "chelsea")]
    restored = [np.clip(np.round(_box_blur(p, 1) + rng.normal(0, 2, p.shape)), 0, 255).astype(np.uint8)
                for p in photos]
    flat = np.full(MAIN_SHAPE, 250, np.uint8)
    checker = (np.kron(np.indices((h // 16, w // 16)).sum(0) % 2, np.ones((16, 16)))[..., None] * 255).repeat(3, -1)
    noisy = np.clip(checker + rng.integers(-1, 2, checker.shape), 0, 255).astype(np.uint8)
    groups = [(np.stack(photos), np.stack(restored), PHOTO_PSNR_TOL_F32, PHOTO_SSIM_TOL_F32),
              (np.stack([flat, checker.astype(np.uint8), flat]), np.stack([flat + 1, noisy, flat + 1]),
               PSNR_TOL_F32, SSIM_TOL_F32)]
    for a, b, ptol, stol in groups:
        for crop, y in [(c, y) for c in CROPS for y in YS]:
            p = np.asarray(psnr_batch(a, b, crop_border=crop, test_y_channel=y))
            s = np.asarray(ssim_batch(a, b, crop_border=crop, test_y_channel=y))
            for k in range(len(a)):
                assert_metric(p[k], calculate_psnr(a[k], b[k], crop, y), ptol, f"psnr {k} {crop} {y}")
                assert_metric(s[k], calculate_ssim(a[k], b[k], crop, y), stol, f"ssim {k} {crop} {y}")
    assert 25 < calculate_psnr(photos[0], restored[0]) < 40


def test_batched_errors():
    a = np.zeros((2, 16, 20, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\) RGB batch.*got shape \(16, 20, 3\)"):
        psnr_batch(a[0], a[0])
    with pytest.raises(ValueError, match="batch shapes differ"):
        ssim_batch(a, a[:1])
    with pytest.raises(ValueError, match=r"leave 6x10 pixels, need at least 11x11"):
        ssim_batch(a, a, crop_border=5)
    with pytest.raises(ValueError, match="crop_border must be an integer >= 0"):
        psnr_batch(a, a, crop_border=-2)
