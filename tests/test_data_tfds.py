"""The REDS TFDS builder: built from a tiny official-layout tree, read back into the pipeline."""

import json
import os

import numpy as np
import pytest

from edvr_jax.data import DatasetError, get_clipset, make_train_dataset, read_clip, read_reds
from edvr_jax.data.testing import make_reds_tree


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from edvr_jax.data.tfds_reds import build_reds_tfds

    base = tmp_path_factory.mktemp("tfds")
    # 3 train clips + 2 val clips x 6 frames of 16x16 LQ (64x64 GT), official layout
    root = make_reds_tree(str(base / "REDS"), train_clips=(0, 1, 2), val_clips=(0, 1),
                          num_frames=6, lq_hw=(16, 16))
    data_dir = str(base / "tfds")
    builder = build_reds_tfds(root, data_dir, task="sr")
    return root, data_dir, builder


def test_builder_writes_array_record_frames_in_order(built):
    root, data_dir, builder = built
    assert builder.info.splits["train"].num_examples == 3 * 6 * 2
    assert builder.info.splits["val"].num_examples == 2 * 6 * 2
    files = os.listdir(builder.data_dir)
    assert any(".array_record-" in f for f in files)
    with open(os.path.join(builder.data_dir, "metadata.json")) as f:
        meta = json.load(f)
    assert meta["clips"] == {"train": [["000", 6], ["001", 6], ["002", 6]],
                             "val": [["240", 6], ["241", 6]]}
    assert meta["scale"] == 4
    src = builder.as_data_source("val")
    rec = src[6 + 2]  # clip 240: 6 LQ records, then its GT frames
    assert (rec["clip"], rec["frame"], rec["role"]) in ((b"240", 2, b"gt"), ("240", 2, "gt"))
    with open(os.path.join(root, "val_sharp", "000", "00000002.png"), "rb") as f:
        assert rec["png"] == f.read()  # the original PNG bytes, not re-encoded


def test_tfds_clipset_reads_like_the_files(built):
    root, data_dir, _ = built
    files = read_reds(root, split="train")
    tf_cs = get_clipset("tfds", data_dir, task="sr", split="train")
    assert tf_cs.names == files.names == ("001", "002", "240", "241")
    assert tf_cs.scale == 4 and tf_cs.dataset == "tfds"
    official = get_clipset("tfds", data_dir, split="train", partition="REDSofficial")
    assert official.names == ("000", "001", "002")
    with pytest.raises(DatasetError, match="REDS4 needs clips 011, 015, 020, not found"):
        get_clipset("tfds", data_dir, split="val")
    for name in ("002", "241"):
        a = read_clip(files.clip(name), [5, 0], [3])
        b = read_clip(tf_cs.clip(name), [5, 0], [3])
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_tfds_feeds_the_same_stateless_batches(built):
    root, data_dir, _ = built
    kw = dict(num_frame=3, gt_size=32, seed=4, global_batch_size=4, process_index=0,
              process_count=1, random_reverse=True, with_info=True)
    files = read_reds(root, split="train")
    tf_cs = get_clipset("tfds", data_dir, split="train")
    a = list(make_train_dataset(files, num_steps=3, **kw).as_numpy_iterator())
    b = list(make_train_dataset(tf_cs, num_steps=3, **kw).as_numpy_iterator())
    c = list(make_train_dataset(tf_cs, start_step=1, num_steps=2, **kw).as_numpy_iterator())
    for s in range(3):
        for key in a[s]:
            np.testing.assert_array_equal(a[s][key], b[s][key])
            if s:
                np.testing.assert_array_equal(b[s][key], c[s - 1][key])


def test_unbuilt_tfds_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="reds/deblur is not built under .*build-tfds"):
        get_clipset("tfds", str(tmp_path), task="deblur")
