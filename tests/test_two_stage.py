"""The two-stage path: test-time flip ensemble, stage-1 outputs of a dataset, stage-2 training.

References are computed independently of the code under test: the flipped clips are made
with numpy, restored one by one without ensemble, flipped back with numpy and averaged.
"""

import os
from functools import partial

import numpy as np
import pytest

from edvr_jax import load_model
from edvr_jax.evaluate.inference import Restorer
from edvr_jax.evaluate.metrics import to_uint8_batch

EDVR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "edvr")


@pytest.fixture(scope="module")
def sr_tsa():
    return load_model(f"{EDVR}/sr_tsa.pth")


def _clip(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


TRANSFORMS = [(t, v, h) for t in (False, True) for v in (False, True) for h in (False, True)]


def _numpy_ensemble(restore, x, transforms):
    """Mean over ``transforms`` (transpose, vflip, hflip) of restore(flip(x)) flipped back,
    in float64; ``x`` is ``(B, T, H, W, C)``."""
    outs = []
    for t, v, h in transforms:
        y = x[:, :, ::-1] if v else x
        y = y[:, :, :, ::-1] if h else y
        y = np.ascontiguousarray(np.swapaxes(y, 2, 3) if t else y)
        o = np.asarray(restore(y), np.float64)
        o = np.swapaxes(o, 1, 2) if t else o
        o = o[:, :, ::-1] if h else o
        outs.append(o[:, ::-1] if v else o)
    return np.mean(outs, axis=0)


@pytest.fixture(scope="module")
def io(data_dir):
    return np.load(data_dir / "edvr" / "io.npz")


@pytest.fixture(scope="module")
def plain(sr_tsa):
    return Restorer(*sr_tsa, batch_size=1, mesh=None)  # ensemble "none"


def test_no_ensemble_is_the_model(plain, io):
    # BasicSR's output, with tests/test_edvr_model.py's tolerance.
    y = io["sr_tsa/y"]
    assert np.abs(plain(io["sr_tsa/x"]) - y).max() / np.abs(y).max() < 3e-6
    with pytest.raises(ValueError, match="unknown ensemble 'x4'"):
        Restorer(plain.model, plain.variables, ensemble="x4")


@pytest.mark.parametrize("name,transforms", [("flip4", TRANSFORMS[:4]), ("x8", TRANSFORMS)])
def test_ensemble_is_the_mean_of_flipped_restores(sr_tsa, plain, io, name, transforms):
    x = io["sr_tsa/x"]  # (1, 5, 12, 20, 3): not square, so x8 makes two model calls
    want = _numpy_ensemble(plain, x, transforms)
    r = Restorer(*sr_tsa, batch_size=1, mesh=None, ensemble=name)
    got = r(x)
    assert got.dtype == np.float32 and got.shape == (1, 48, 80, 3)
    assert np.abs(got - want).max() < 2e-6
    assert np.abs(got - io["sr_tsa/y"]).max() > 1e-3  # the flips do change the result
    assert r.shapes == {x.shape}  # one compiled call per batch
    if name == "flip4":  # rounded once, after averaging, with BasicSR's rounding
        q = Restorer(*sr_tsa, batch_size=1, mesh=None, ensemble=name, quantize=True)
        np.testing.assert_array_equal(q(x), np.asarray(to_uint8_batch(want.astype(np.float32))))


def test_ensemble_tiled(sr_tsa):
    """Tiles that divide the frame form a mirror-symmetric grid, so the per-tile ensemble is
    the mean of tiled restores of the flipped clips, whatever the overlap."""
    model, variables = sr_tsa
    x = _clip((2, 5, 8, 32, 3), seed=2)
    tiled = partial(Restorer, model, variables, batch_size=4, mesh=None, tile=8, tile_overlap=4)
    plain = tiled()
    want = _numpy_ensemble(plain, x, TRANSFORMS[:4])
    r = tiled(ensemble="flip4")
    assert np.abs(r(x) - want).max() < 2e-6
    assert r.shapes == {(4, 5, 8, 16, 3)}  # tiles of 8 + 2 x 4 columns


def test_two_stage_ensemble_is_per_stage():
    """Both stages ensemble; stage 2 sees stage 1's rounded ensemble frames."""
    from edvr_jax.evaluate import generate_frame_indices
    from edvr_jax.evaluate.run_eval import load
    from edvr_jax.evaluate.stream import make_stages, restore_stream

    model, variables = load(f"{EDVR}/sr_tsa.pth", f"{EDVR}/stage2.pth")
    frames = [(f * 255).astype(np.uint8) for f in _clip((6, 8, 8, 3), seed=3)]  # square: x8
    stages = make_stages(model, variables, batch_size=2, mesh=None, ensemble="x8")  # in 1 call
    got = np.stack(list(restore_stream(frames, stages, ["replicate"] * 2)))

    p = variables["params"]
    r1 = Restorer(model.stage1, {"params": p["stage1"]}, batch_size=1, mesh=None)
    r2 = Restorer(model.stage2, {"params": p["stage2"]}, batch_size=1, mesh=None)
    lq = np.stack(frames).astype(np.float32) / np.float32(255)
    n = len(frames)

    def stage(restore, inputs, t):
        w = np.stack([inputs[generate_frame_indices(c, n, t, "replicate")] for c in range(n)])
        mean = _numpy_ensemble(restore, w, TRANSFORMS).astype(np.float32)
        return np.asarray(to_uint8_batch(mean))

    s1 = stage(r1, lq, model.stage1.num_frame)
    want = stage(r2, s1.astype(np.float32) / np.float32(255), model.stage2.num_frame)
    assert got.shape == want.shape == (n, 32, 32, 3)
    # uint8 rounding of float sums taken in another order: an LSB at the very most.
    assert np.abs(got.astype(int) - want).max() <= 1
    assert np.mean(got != want) < 0.01
