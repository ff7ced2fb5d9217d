"""Embedded demo clips: layout, sizes, determinism, MATLAB bicubic LQ, the cached ClipSet."""

import os

import numpy as np
import pytest
from PIL import Image

from edvr_jax.data import DatasetError, demo_clipset, get_clipset, imresize_bicubic, make_demo_clips
from edvr_jax.data.demo_clips import PHOTOS


def load(path):
    return np.asarray(Image.open(path))


def test_imresize_matches_basicsr_matlab_imresize(data_dir):
    fx = np.load(data_dir / "data_basicsr.npz")
    for name in ("square", "odd", "gray"):
        ours = imresize_bicubic(fx[f"resize_{name}_in"], 0.25)
        ref = fx[f"resize_{name}_out"]
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=2e-6)  # BasicSR computes in float32


def test_demo_tree_layout_sizes_and_lq(tmp_path):
    root = make_demo_clips(str(tmp_path / "d"), num_clips=3, num_frames=4, gt_size=(32, 48),
                           seed=1)
    assert sorted(os.listdir(os.path.join(root, "train_sharp"))) == ["000", "001", "002"]
    for clip in ("000", "001", "002"):
        gt_names = sorted(os.listdir(os.path.join(root, "train_sharp", clip)))
        lq_names = sorted(os.listdir(os.path.join(root, "train_sharp_bicubic", "X4", clip)))
        assert gt_names == lq_names == [f"{t:08d}.png" for t in range(4)]
    gt = load(os.path.join(root, "train_sharp", "001", "00000002.png"))
    lq = load(os.path.join(root, "train_sharp_bicubic", "X4", "001", "00000002.png"))
    assert gt.shape == (32, 48, 3) and lq.shape == (8, 12, 3)
    assert gt.dtype == np.uint8 and lq.dtype == np.uint8
    expect = np.clip(np.round(imresize_bicubic(gt.astype(np.float64), 0.25)), 0, 255)
    np.testing.assert_array_equal(lq, expect)
    assert "virtual camera" in open(os.path.join(root, "README.txt")).read()
    cs = get_clipset("reds", root, split="all")  # it is a REDS tree
    assert cs.names == ("000", "001", "002") and cs.layout.startswith("official")


def test_demo_is_deterministic_and_moves(tmp_path):
    a = make_demo_clips(str(tmp_path / "a"), num_clips=2, num_frames=5, gt_size=(40, 40), seed=3)
    b = make_demo_clips(str(tmp_path / "b"), num_clips=2, num_frames=5, gt_size=(40, 40), seed=3)
    c = make_demo_clips(str(tmp_path / "c"), num_clips=2, num_frames=5, gt_size=(40, 40), seed=4)
    for clip in ("000", "001"):
        fa = [load(os.path.join(a, "train_sharp", clip, f"{t:08d}.png")) for t in range(5)]
        fb = [load(os.path.join(b, "train_sharp", clip, f"{t:08d}.png")) for t in range(5)]
        fc = [load(os.path.join(c, "train_sharp", clip, f"{t:08d}.png")) for t in range(5)]
        for x, y in zip(fa, fb, strict=True):
            np.testing.assert_array_equal(x, y)
        assert not np.array_equal(fa[0], fc[0])
        steps = [np.abs(fa[t + 1].astype(int) - fa[t]).mean() for t in range(4)]
        assert all(0 < s < 40 for s in steps), steps  # it moves, but only a little per frame
    # different clips show different photographs
    assert not np.array_equal(load(os.path.join(a, "train_sharp", "000", "00000000.png")),
                              load(os.path.join(a, "train_sharp", "001", "00000000.png")))
    assert len(PHOTOS) >= 6


def test_demo_clipset_creates_once_and_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("EDVR_JAX_CACHE", str(tmp_path / "cache"))
    kw = dict(num_clips=4, num_frames=6, gt_size=(32, 32), seed=0, num_val=1)
    train = demo_clipset(**kw)
    assert train.dataset == "demo" and train.names == ("000", "001", "002")
    assert train.scale == 4 and all(c.num_frames == 6 for c in train)
    root = train.root
    assert root.startswith(str(tmp_path / "cache" / "demo"))
    stamp = os.path.getmtime(os.path.join(root, "demo_info.json"))
    val = demo_clipset(split="val", **kw)
    assert val.names == ("003",) and val.root == root
    assert os.path.getmtime(os.path.join(root, "demo_info.json")) == stamp  # reused
    assert get_clipset("demo", root, split="all", num_val=1).names == ("000", "001", "002", "003")
    with pytest.raises(DatasetError, match="num_val=4 must leave training clips"):
        demo_clipset(root, num_val=4)
    with pytest.raises(DatasetError, match="multiples of 4"):
        make_demo_clips(str(tmp_path / "bad"), gt_size=(30, 32))
