"""Temporal windows over streams, tile grids, EDVR's receptive field, tiled == untiled."""

import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from edvr_jax import load_model
from edvr_jax.evaluate import PADDING_MODES, generate_frame_indices
from edvr_jax.evaluate.inference import Restorer
from edvr_jax.evaluate.tiling import max_offset, receptive_field, tile_grid
from edvr_jax.evaluate.windows import SlidingWindows, WindowError
from edvr_jax.models import build, pad_to_multiple

EDVR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "edvr")


# ----------------------------------------------------------------------------- windows


def _stream(n, num_frame, padding, known, targets=None):
    sw = SlidingWindows(num_frame, padding, n if known else None, targets)
    got = []
    for i in range(n):
        got += sw.push(("frame", i))
    got += sw.finish()
    return got, sw


@pytest.mark.parametrize("num_frame", [1, 3, 5, 7])
@pytest.mark.parametrize("padding", PADDING_MODES)
def test_windows_are_basicsr_windows_with_a_bounded_buffer(num_frame, padding):
    for n, known in itertools.product(range(1, 16), (True, False)):
        try:
            want = [generate_frame_indices(c, n, num_frame, padding) for c in range(n)]
        except ValueError:
            with pytest.raises(WindowError, match="too short"):
                _stream(n, num_frame, padding, known)
            continue
        got, sw = _stream(n, num_frame, padding, known)
        assert [c for c, _, _ in got] == list(range(n))
        assert [idx for _, idx, _ in got] == want, (n, known)
        assert all(fr == [("frame", i) for i in idx] for _, idx, fr in got)
        # At most num_frame frames held (one more while the length is unknown).
        assert sw.peak <= num_frame + (0 if known else 1), (n, known, sw.peak)
        assert sw.buffered == 0


def test_windows_are_emitted_as_soon_as_possible():
    sw = SlidingWindows(5, "reflection_circle")
    ready = [len(sw.push(i)) for i in range(10)]
    # Centres 0..2 need frame 4 (reflected windows reach 2h); then one window per frame.
    assert ready == [0, 0, 0, 0, 3, 1, 1, 1, 1, 1]
    assert [c for c, _, _ in sw.finish()] == [8, 9]


def test_target_windows_only():
    got, sw = _stream(7, 5, "reflection_circle", True, targets=[3])
    assert [(c, idx) for c, idx, _ in got] == [(3, [1, 2, 3, 4, 5])]
    got, _ = _stream(7, 3, "replicate", False, targets=[0, 6])
    assert [(c, idx) for c, idx, _ in got] == [(0, [0, 0, 1]), (6, [5, 6, 6])]


# ----------------------------------------------------------------------------- tile grid


@pytest.mark.parametrize("shape,tile,overlap,multiple", [
    ((64, 200), 16, 8, 4), ((20, 36), 16, 8, 4), ((48, 48), 16, 0, 16), ((64, 96), 12, 5, 4),
    ((8, 8), 32, 32, 4), ((160, 32), 32, 16, 16)])
def test_tile_grid_covers_the_frame_once_with_margins(shape, tile, overlap, multiple):
    g = tile_grid(shape, tile, overlap, multiple)
    h, w = shape
    ov = -(-overlap // multiple) * multiple
    cover = np.zeros(shape, int)
    for (wy, wx), (y0, y1, x0, x1) in zip(g.windows, g.cores, strict=True):
        th, tw = g.tile_shape
        assert 0 <= wy and wy + th <= h and 0 <= wx and wx + tw <= w
        assert wy % multiple == 0 and wx % multiple == 0  # on the model's stride grid
        cover[y0:y1, x0:x1] += 1
        # Each core is surrounded by the overlap, or by the frame border.
        assert y0 - wy >= min(ov, y0) and (wy + th) - y1 >= min(ov, h - y1)
        assert x0 - wx >= min(ov, x0) and (wx + tw) - x1 >= min(ov, w - x1)
    assert (cover == 1).all()
    x = np.random.default_rng(0).random((2,) + shape + (3,), dtype=np.float32)
    tiles = g.split(x)
    assert tiles.shape == (len(g), 2) + g.tile_shape + (3,)
    # Identity "restoration" (scale 1) and nearest x2: stitching gives the frame back.
    np.testing.assert_array_equal(g.stitch(tiles, 1), x)
    up = np.repeat(np.repeat(tiles, 2, axis=-3), 2, axis=-2)
    np.testing.assert_array_equal(g.stitch(up, 2), np.repeat(np.repeat(x, 2, -3), 2, -2))


# ----------------------------------------------------------------------------- receptive field


def test_receptive_field_of_the_published_models():
    assert receptive_field(build("EDVR_L_x4_SR_REDS")) == 148
    assert receptive_field(build("EDVR_M_x4_SR_REDS")) == 88
    assert receptive_field(build("EDVR_L_x4_SR_REDS"), max_offset=2.5) > 148
    with pytest.raises(ValueError):
        receptive_field(build("EDVR_M_x4_SR_REDS"), max_offset=-1)


@pytest.fixture(scope="module")
def sr_tsa():
    return load_model(f"{EDVR}/sr_tsa.pth")


@pytest.fixture(scope="module")
def clip():
    return np.random.default_rng(7).random((1, 5, 8, 216, 3), dtype=np.float32)


@pytest.mark.slow
def test_derived_receptive_field_bounds_the_measured_one(sr_tsa, clip):
    """Support of d out[y, X] / d input along W, at two output phases, vs the derivation."""
    model, variables = sr_tsa
    zeroed = jax.tree_util.tree_map_with_path(
        lambda p, a: jnp.zeros_like(a) if "conv_offset" in jax.tree_util.keystr(p) else a,
        variables)

    @jax.jit
    def grad(v, x, col):
        return jax.grad(lambda x: jax.lax.dynamic_index_in_dim(
            model.apply(v, x)[0, 16], col, axis=0, keepdims=False).sum())(x)

    for v in (zeroed, variables):
        measured = 0.0
        for col in (432, 435):  # output column X sits at input position X / 4
            g = np.abs(np.asarray(grad(v, clip, col))).sum(axis=(0, 1, 2, 4))
            cols = np.nonzero(g)[0]
            assert 0 < cols.min() and cols.max() < clip.shape[3] - 1  # not cut by the frame
            measured = max(measured, col / 4 - cols.min(), cols.max() - col / 4)
        derived = receptive_field(model, max_offset(model, v, clip))
        assert measured <= derived, (measured, derived)
        assert measured > 0.6 * derived  # and not a vacuous bound
    assert receptive_field(model) == 62  # zero offsets


@pytest.mark.slow
def test_tiled_equals_untiled_when_the_overlap_covers_the_receptive_field(sr_tsa, clip):
    model, variables = sr_tsa
    rf = receptive_field(model, max_offset(model, variables, clip))  # 85: offsets up to ~6 px
    full = Restorer(model, variables, batch_size=2)(clip)
    tiled = Restorer(model, variables, batch_size=2, tile=16, tile_overlap=rf)
    out = tiled(clip)
    th, tw = tiled.shapes.pop()[-3:-1]
    assert (th, tw) == (8, 16 + 2 * (-(-rf // 4) * 4)) and tw < clip.shape[3]
    assert np.abs(out - full).max() < 1e-5
    # The same tile shape with a thin margin (tile 176, overlap 8): seams differ.
    thin = Restorer(model, variables, batch_size=2, tile=tw - 16, tile_overlap=8)(clip)
    assert np.abs(thin - full).max() > 1e-4  # measured 8e-4: effective fields are smaller
    # Frames of any size: padded to 4 (as pad_to_multiple does) and cropped back.
    odd = clip[:, :, :7, :213]
    padded, size = pad_to_multiple(odd, 4)  # numpy in, numpy out (on the host)
    assert isinstance(padded, np.ndarray)
    np.testing.assert_array_equal(padded, np.asarray(pad_to_multiple(jnp.asarray(odd), 4)[0]))
    assert size == (7, 213) and padded.shape == clip.shape
    a = Restorer(model, variables, batch_size=2)(padded)[:, :28, :852]
    b = Restorer(model, variables, batch_size=2, tile=16, tile_overlap=rf)(odd)
    assert b.shape == (1, 28, 852, 3) and np.abs(a - b).max() < 1e-5
