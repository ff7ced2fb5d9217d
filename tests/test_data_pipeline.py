"""The stateless tf.data training pipeline: sampling, alignment, resume, sharding, errors."""

import numpy as np
import pytest
import tensorflow as tf

from edvr_jax.data import (
    DatasetError,
    apply_choice,
    crop_origin,
    make_train_dataset,
    read_folder,
    read_vimeo90k,
    sample_choice,
)
from edvr_jax.data.testing import coded_frame, make_vimeo_tree, write_coded_clip, write_png

LQ_HW = (10, 12)
LENGTHS = {"a": 14, "b": 10, "c": 9}


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    root = tmp_path_factory.mktemp("coded")
    for i, (name, n) in enumerate(LENGTHS.items()):
        write_coded_clip(str(root / "LQ" / name), str(root / "GT" / name), i, n, LQ_HW, 4)
    return read_folder(str(root), scale=4)


def make(cs, **kw):
    args = dict(num_frame=5, gt_size=16, seed=7, global_batch_size=4, process_index=0,
                process_count=1, num_steps=3, with_info=True)
    args.update(kw)
    return make_train_dataset(cs, **args)


def batches(ds):
    return list(ds.as_numpy_iterator())


def np_choice(seed, step, slot, cs, **kw):
    ch = sample_choice(seed, step, slot, [c.num_frames for c in cs],
                       [-1 if c.center is None else c.center for c in cs], **kw)
    return {k: v.numpy() for k, v in ch.items()}


def reference(cs, ch, gt_size, scale):
    """Numpy crop/flip of the coded frames the choice names (independent of the TF code)."""
    k = int(ch["clip"])
    lq_all = np.stack([coded_frame(k, t, LQ_HW, scale)[0] for t in range(cs.clips[k].num_frames)])
    gt = coded_frame(k, int(ch["center"]), LQ_HW, scale)[1]
    p = gt_size // scale
    room = np.array(LQ_HW) - p + 1
    top, left = np.minimum(np.floor(ch["crop"] * room).astype(int), room - 1)
    lq = lq_all[ch["frames"], top:top + p, left:left + p]
    gt = gt[top * scale:top * scale + gt_size, left * scale:left * scale + gt_size]
    if ch["hflip"]:
        lq, gt = lq[:, :, ::-1], gt[:, ::-1]
    if ch["vflip"]:
        lq, gt = lq[:, ::-1], gt[::-1]
    if ch["transpose"]:
        lq, gt = lq.transpose(0, 2, 1, 3), gt.transpose(1, 0, 2)
    return lq.astype(np.float32) / 255, gt.astype(np.float32) / 255, (top, left)


OPTS = dict(num_frame=5, interval_list=(1, 2), random_reverse=True, use_hflip=True, use_rot=True)


def test_batches_equal_numpy_reference_of_the_pure_choice(coded):
    out = batches(make(coded, interval_list=(1, 2), random_reverse=True))
    assert len(out) == 3
    for s, batch in enumerate(out):
        assert batch["lq"].shape == (4, 5, 4, 4, 3) and batch["lq"].dtype == np.float32
        assert batch["gt"].shape == (4, 16, 16, 3) and batch["gt"].dtype == np.float32
        np.testing.assert_array_equal(batch["step"], [s] * 4)
        for j in range(4):
            ch = np_choice(7, s, j, coded, **OPTS)
            lq, gt, origin = reference(coded, ch, 16, 4)
            np.testing.assert_array_equal(batch["lq"][j], lq)
            np.testing.assert_array_equal(batch["gt"][j], gt)
            np.testing.assert_array_equal(batch["frames"][j], ch["frames"])
            np.testing.assert_array_equal(batch["origin"][j], origin)
            assert batch["clip"][j] == ch["clip"]


def test_crops_are_aligned_and_name_their_window(coded):
    """Read back from pixel values: GT pixel (I, J) lies over LQ pixel (I//4, J//4) in every
    frame, LQ frames carry the chosen clip/frame codes, and the crop covers the chosen window."""
    for batch in batches(make(coded, interval_list=(1, 2), random_reverse=True, seed=3)):
        lq = np.round(batch["lq"] * 255).astype(int)
        gt = np.round(batch["gt"] * 255).astype(int)
        for j in range(4):
            k, frames = int(batch["clip"][j]), batch["frames"][j]
            np.testing.assert_array_equal(lq[j, :, 0, 0, 2], 40 * k + frames)
            assert np.all(gt[j, ..., 2] == 40 * k + frames[2])  # GT is the centre frame
            under = lq[j][:, np.arange(16)[:, None] // 4, np.arange(16)[None, :] // 4, :2]
            assert np.all(under == gt[j][None, :, :, :2])
            hf, vf, tr = batch["flips"][j]
            pos = lq[j, 0, :, :, :2]
            if tr:
                pos = pos.transpose(1, 0, 2)
            if vf:
                pos = pos[::-1]
            if hf:
                pos = pos[:, ::-1]
            top, left = batch["origin"][j]
            np.testing.assert_array_equal(pos[..., 0], top + np.arange(4)[:, None] + 0 * pos[..., 1])
            np.testing.assert_array_equal(pos[..., 1], left + np.arange(4)[None, :] + 0 * pos[..., 0])


def test_choice_is_pure_and_has_basicsr_distribution(coded):
    a, b = np_choice(5, 11, 3, coded, **OPTS), np_choice(5, 11, 3, coded, **OPTS)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    lengths = tf.constant([14, 10, 9], tf.int64)
    n = 6000
    ds = tf.data.Dataset.range(n).map(lambda i: sample_choice(
        5, i // 8, i % 8, lengths, None, **OPTS)).batch(n)
    ch = next(iter(ds))
    ch = {k: v.numpy() for k, v in ch.items()}
    # clips weighted by frame count, like BasicSR's list of clip/frame keys
    freq = np.bincount(ch["clip"], minlength=3) / n
    np.testing.assert_allclose(freq, np.array([14, 10, 9]) / 33, atol=0.025)
    assert set(np.unique(ch["interval"])) == {1, 2}
    assert abs(np.mean(ch["interval"] == 2) - 0.5) < 0.03
    for key in ("reverse", "hflip", "vflip", "transpose"):
        assert abs(ch[key].mean() - 0.5) < 0.03, key
    # centre uniform over the centres whose window fits (what BasicSR's redraw loop gives)
    for k, length in enumerate([14, 10, 9]):
        for iv in (1, 2):
            sel = (ch["clip"] == k) & (ch["interval"] == iv)
            lo, hi = 2 * iv, length - 1 - 2 * iv
            counts = np.bincount(ch["center"][sel] - lo, minlength=hi - lo + 1)
            assert len(counts) == hi - lo + 1 and counts.min() > 0
            expected = sel.sum() / (hi - lo + 1)
            assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 2)
    span = ch["frames"].max(1) - ch["frames"].min(1)
    assert np.all(span == 4 * ch["interval"])
    assert np.all(ch["frames"].min(1) >= 0)
    assert np.all(ch["frames"].max(1) <= np.array([13, 9, 8])[ch["clip"]])
    rev = ch["reverse"]
    assert np.all(np.diff(ch["frames"][rev], axis=1) < 0)
    assert np.all(np.diff(ch["frames"][~rev], axis=1) > 0)
    assert np.all((ch["crop"] >= 0) & (ch["crop"] < 1))
    off = np_choice(5, 0, 0, coded, num_frame=5, use_hflip=False, use_rot=False)
    assert not (off["hflip"] or off["vflip"] or off["transpose"] or off["reverse"])


def test_crop_origin_is_uniform_over_valid_positions():
    u = tf.constant([[0.0, 0.0], [0.999999, 0.999999], [0.5, 0.25]], tf.float64)
    got = [crop_origin(x, 10, 12, 4).numpy().tolist() for x in u]
    assert got == [[0, 0], [6, 8], [3, 2]]


@pytest.mark.slow
def test_restart_at_any_step_gives_identical_batches(coded):
    full = batches(make(coded, num_steps=6, random_reverse=True))
    for start in (2, 5):
        again = batches(make(coded, start_step=start, num_steps=6 - start, random_reverse=True))
        assert len(again) == 6 - start
        for x, y in zip(full[start:], again, strict=True):
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])
    other_seed = batches(make(coded, num_steps=1, seed=8))[0]
    assert not np.array_equal(other_seed["lq"], full[0]["lq"])


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.slow
def test_processes_split_the_global_batch_exactly(coded, count):
    single = batches(make(coded, global_batch_size=6, num_steps=2))
    parts = [batches(make(coded, global_batch_size=6, num_steps=2, process_index=p,
                          process_count=count)) for p in range(count)]
    for s in range(2):
        for key in single[s]:
            joined = np.concatenate([parts[p][s][key] for p in range(count)])
            assert parts[0][s][key].shape[0] == 6 // count
            np.testing.assert_array_equal(joined, single[s][key])
    with pytest.raises(DatasetError, match="global_batch_size 6 is not divisible by "
                                           "process_count 4"):
        make(coded, global_batch_size=6, process_count=4)


def test_apply_choice_matches_basicsr_crop_and_augment(data_dir):
    fx = np.load(data_dir / "data_basicsr.npz")
    for name in ("x4", "x1", "x4_wide"):
        lq_in, gt_in = fx[f"crop_{name}_lq_in"], fx[f"crop_{name}_gt_in"]
        scale, gt_size = (int(v) for v in fx[f"crop_{name}_meta"])
        p = gt_size // scale
        room = np.array(lq_in.shape[1:3]) - p + 1
        for k, (top, left, hf, vf, tr) in enumerate(fx[f"crop_{name}_decisions"]):
            ch = {"crop": tf.constant((np.array([top, left]) + 0.5) / room, tf.float64),
                  "hflip": tf.constant(bool(hf)), "vflip": tf.constant(bool(vf)),
                  "transpose": tf.constant(bool(tr))}
            lq, gt = apply_choice(tf.constant(lq_in), tf.constant(gt_in), ch, gt_size=gt_size,
                                  scale=scale)
            np.testing.assert_array_equal(lq.numpy(), fx[f"crop_{name}_lq_out"][k])
            np.testing.assert_array_equal(gt.numpy(), fx[f"crop_{name}_gt_out"][k])


def test_vimeo_window_is_fixed_around_im4(tmp_path):
    cs = read_vimeo90k(make_vimeo_tree(str(tmp_path)), split="train")
    for num_frame, expect in ((5, [1, 2, 3, 4, 5]), (7, list(range(7)))):
        for batch in batches(make(cs, num_frame=num_frame, gt_size=8, random_reverse=True,
                                  interval_list=(1, 2), num_steps=2)):
            for j in range(4):
                frames = batch["frames"][j].tolist()
                assert frames in (expect, expect[::-1])
                code = 40 * int(batch["clip"][j])
                assert np.all(np.round(batch["gt"][j, ..., 2] * 255) == code + 3)


def test_scale_one_gives_equal_sized_aligned_crops(tmp_path):
    for i, name in enumerate(["x", "y"]):
        write_coded_clip(str(tmp_path / "LQ" / name), str(tmp_path / "GT" / name), i, 6, (9, 11), 1)
    cs = read_folder(str(tmp_path), scale=1)
    for batch in batches(make(cs, gt_size=5, num_steps=2)):
        assert batch["lq"].shape == (4, 5, 5, 5, 3) and batch["gt"].shape == (4, 5, 5, 3)
        np.testing.assert_array_equal(batch["lq"][:, 2, ..., :2], batch["gt"][..., :2])


def test_configuration_errors(coded, tmp_path):
    with pytest.raises(DatasetError, match="gt_size 18 is not divisible by scale 4"):
        make(coded, gt_size=18)
    with pytest.raises(DatasetError, match="num_frame must be a positive odd number, got 4"):
        make(coded, num_frame=4)
    with pytest.raises(DatasetError, match="clip b: 10 frames, fewer than the 13 a window of 5 at "
                                           "interval 3 spans"):
        make(coded, interval_list=(1, 3))
    with pytest.raises(DatasetError, match="clip b: 10 frames, fewer than num_frame=11"):
        make(coded, num_frame=11)
    with pytest.raises(DatasetError, match="LQ frames are 10x12, smaller than the LQ patch 11x11"):
        make(coded, gt_size=44)
    with pytest.raises(DatasetError, match="scale=2 but the folder ClipSet has scale 4"):
        make(coded, scale=2)
    for i, name in enumerate(["p", "q"]):
        write_coded_clip(str(tmp_path / "LQ" / name), str(tmp_path / "GT" / name), i, 5, (6, 6), 3)
    wrong = read_folder(str(tmp_path), scale=4)
    with pytest.raises(DatasetError, match=r"clip p: GT frame .*GT/p/00000000.png is 18x18 but LQ "
                                           r"frame .*LQ/p/00000000.png is 6x6; expected GT = 4 x LQ"):
        make(wrong)


def test_bad_frames_at_run_time_are_named(tmp_path):
    for i, name in enumerate(["p", "q"]):
        write_coded_clip(str(tmp_path / "LQ" / name), str(tmp_path / "GT" / name), i, 5, (6, 6), 2)
    cs = read_folder(str(tmp_path), scale=2)
    write_png(cs.clip("q").lq_paths[3], np.zeros((7, 6, 3), np.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"LQ/q/00000003.png.*differs from"):
        batches(make(cs, gt_size=4, num_steps=4))
    write_png(cs.clip("q").lq_paths[3], coded_frame(1, 3, (6, 6), 2)[0][..., 0])  # grayscale: ok
    assert len(batches(make(cs, gt_size=4, num_steps=4))) == 4
    open(cs.clip("p").gt_paths[2], "wb").close()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"frame is empty or not a PNG file.*GT/p/00000002.png"):
        batches(make(cs, gt_size=4, num_steps=6))


def test_tensorflow_is_kept_off_gpus_where_it_first_runs(monkeypatch):
    """Decoding a frame or building a pipeline hides GPUs from TensorFlow first (a CPU-only
    TensorFlow sees none anyway, so the call itself is what is checked)."""
    from edvr_jax.data import clips as clips_module

    calls = []
    monkeypatch.setattr(tf.config, "set_visible_devices", lambda *a: calls.append(a))
    monkeypatch.setattr(clips_module, "_tf_off_accelerators", False)
    png = tf.io.encode_png(np.zeros((2, 2, 3), np.uint8)).numpy()
    clips_module.decode_frame(png)
    clips_module.decode_frame(png)
    assert calls == [([], "GPU")]  # once per process
