"""Dataset readers on tiny trees with the exact real naming (REDS, Vimeo-90K, Vid4, folder)."""

import os

import numpy as np
import pytest
from PIL import Image

from edvr_jax.data import (
    DatasetError,
    get_clipset,
    read_clip,
    read_folder,
    read_reds,
    read_vid4,
    read_vimeo90k,
    read_window,
)
from edvr_jax.data.testing import (
    coded_frame,
    make_reds_tree,
    make_vid4_tree,
    make_vimeo_tree,
    write_coded_clip,
    write_png,
)

ALL_KINDS = ("sharp", "sharp_bicubic", "blur", "blur_comp", "blur_bicubic")


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    return make_reds_tree(str(tmp_path_factory.mktemp("official")), layout="official",
                          kinds=ALL_KINDS)


@pytest.fixture(scope="module")
def regrouped(tmp_path_factory):
    return make_reds_tree(str(tmp_path_factory.mktemp("regrouped")), layout="regrouped")


def rel(path, root):
    return os.path.relpath(path, root)


def test_reds_official_layout_partitions_and_paths(official):
    cs = read_reds(official, task="sr", split="train", partition="REDS4")
    assert cs.layout.startswith("official")
    assert cs.scale == 4 and cs.dataset == "reds"
    # REDS4 clips are held out; the val clips appear under their BasicSR names 240+k
    assert cs.names == ("001", "240", "241", "246", "257")
    c = cs.clip("246")
    assert rel(c.lq_paths[2], official) == "val_sharp_bicubic/X4/006/00000002.png"
    assert rel(c.gt_paths[2], official) == "val_sharp/006/00000002.png"
    assert rel(cs.clip("001").lq_paths[0], official) == "train_sharp_bicubic/X4/001/00000000.png"
    assert all(c.num_frames == 6 for c in cs)
    assert read_reds(official, split="val").names == ("000", "011", "015", "020")
    assert read_reds(official, split="val", partition="REDSofficial4").names == (
        "240", "241", "246", "257")
    assert read_reds(official, split="train", partition="official").names == (
        "000", "001", "011", "015", "020")
    assert read_reds(official, split="train", partition="REDSofficial4").names == (
        "000", "001", "011", "015", "020")
    assert len(read_reds(official, split="all")) == 9
    with pytest.raises(DatasetError, match="REDSofficial needs clips 242, 243"):
        read_reds(official, split="val", partition="REDSofficial")


def test_reds_regrouped_layout_matches_official(official, regrouped):
    a = read_reds(official, split="all")
    b = read_reds(regrouped, split="all")
    assert b.layout.startswith("regrouped")
    assert a.names == b.names
    assert rel(b.clip("257").lq_paths[0], regrouped) == "train_sharp_bicubic/257/00000000.png"
    assert rel(b.clip("257").gt_paths[0], regrouped) == "train_sharp/257/00000000.png"
    for name in ("011", "241"):
        la, ga = read_clip(a.clip(name), [0, 5], [3])
        lb, gb = read_clip(b.clip(name), [0, 5], [3])
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(ga, gb)


@pytest.mark.parametrize("task,lq_folder,scale", [
    ("sr", "train_sharp_bicubic/X4", 4), ("srblur", "train_blur_bicubic/X4", 4),
    ("deblur", "train_blur", 1), ("deblurcomp", "train_blur_comp", 1)])
def test_reds_tasks_pick_their_folders(official, task, lq_folder, scale):
    cs = read_reds(official, task=task, split="train")
    assert cs.scale == scale and cs.task == task
    assert rel(cs.clip("001").lq_paths[1], official) == f"{lq_folder}/001/00000001.png"
    assert rel(cs.clip("001").gt_paths[1], official) == "train_sharp/001/00000001.png"
    val = cs.clip("240").lq_paths[0]
    assert rel(val, official) == f"{lq_folder.replace('train', 'val')}/000/00000000.png"
    lq, gt = read_clip(cs.clip("001"), [1], [1])
    assert gt.shape == (1, 16, 24, 3) and lq.shape == (1, 16 // scale, 24 // scale, 3)


def test_reds_errors(tmp_path, regrouped):
    with pytest.raises(DatasetError, match=r"train_blur not found \(official layout"):
        read_reds(regrouped, task="deblur")
    with pytest.raises(DatasetError, match="unknown REDS task 'x4'"):
        read_reds(regrouped, task="x4")
    with pytest.raises(DatasetError, match="unknown REDS partition 'REDS5'"):
        read_reds(regrouped, partition="REDS5")
    with pytest.raises(DatasetError, match="unknown REDS split 'test'"):
        read_reds(regrouped, split="test")
    with pytest.raises(DatasetError, match="6 frames, fewer than num_frame=7"):
        read_reds(regrouped, num_frame=7)
    root = make_reds_tree(str(tmp_path / "r"), train_clips=(1, 2), val_clips=())
    os.remove(os.path.join(root, "train_sharp_bicubic/X4/002/00000004.png"))
    with pytest.raises(DatasetError, match="REDS clip 002: LQ folder .* has 5 frames, GT folder "
                                           ".* has 6; first differing frame: 00000004.png"):
        read_reds(root)
    errors = []
    cs = read_reds(root, errors=errors)
    assert cs.names == ("001",) and len(errors) == 1 and "clip 002" in errors[0]


def test_vimeo90k(tmp_path):
    root = make_vimeo_tree(str(tmp_path))
    cs = read_vimeo90k(root, split="train", num_frame=7)
    assert cs.names == ("00001/0001", "00001/0002", "00002/0001")
    c = cs.clip("00001/0002")
    assert c.center == 3 and c.num_frames == 7
    assert rel(c.lq_paths[0], root) == "vimeo_septuplet_matlabLRx4/sequences/00001/0002/im1.png"
    assert rel(c.gt_paths[3], root) == "vimeo_septuplet/sequences/00001/0002/im4.png"
    assert get_clipset("vimeo90k", root, split="test").names == ("00003/0001",)
    lq, gt = read_window(c, [1, 2, 3, 4, 5], 3)  # num_frame 5: im2..im6, GT im4
    assert list(lq[:, 0, 0, 2] * 255) == [1 * 40 + t for t in (1, 2, 3, 4, 5)]
    assert gt.shape == (16, 24, 3) and gt[0, 0, 2] * 255 == 40 + 3
    with pytest.raises(DatasetError, match="odd and at most 7"):
        read_vimeo90k(root, num_frame=9)
    os.remove(os.path.join(root, "vimeo_septuplet", "sep_testlist.txt"))
    with pytest.raises(DatasetError, match="sep_testlist.txt not found"):
        read_vimeo90k(root, split="test")


def test_vid4_any_frame_names_sorted(tmp_path):
    root = make_vid4_tree(str(tmp_path))
    cs = read_vid4(root)
    assert cs.names == ("calendar", "city", "foliage", "walk") and cs.scale == 4
    assert [c.num_frames for c in cs] == [4, 3, 5, 4]
    assert os.path.basename(cs.clip("city").gt_paths[2]) == "Frame 003.png"
    lq, gt = read_clip(cs.clip("foliage"))
    assert lq.shape == (5, 4, 6, 3) and gt.shape == (5, 16, 24, 3)
    assert list(np.round(gt[:, 0, 0, 2] * 255)) == [2 * 40 + t for t in range(5)]
    with pytest.raises(DatasetError, match="Vid4 GT: folder .* not found"):
        read_vid4(str(tmp_path / "nowhere"))


def test_folder_dataset_and_scale(tmp_path):
    for i, name in enumerate(["a", "b"]):
        write_coded_clip(str(tmp_path / "LQ" / name), str(tmp_path / "GT" / name), i, 3, (5, 4), 2)
    cs = read_folder(str(tmp_path), scale=2)
    assert cs.names == ("a", "b") and cs.scale == 2
    cs2 = get_clipset("folder", gt_root=str(tmp_path / "GT"), lq_root=str(tmp_path / "LQ"),
                      scale=2)
    assert cs2.clips == cs.clips
    lq, gt = read_clip(cs.clip("b"), [2, 0, 2], [1])
    expect_lq = [coded_frame(1, t, (5, 4), 2)[0] for t in (2, 0, 2)]
    np.testing.assert_array_equal(lq, np.stack(expect_lq).astype(np.float32) / 255)
    np.testing.assert_array_equal(gt[0], coded_frame(1, 1, (5, 4), 2)[1] / np.float32(255))
    os.rename(str(tmp_path / "LQ" / "b" / "00000002.png"), str(tmp_path / "LQ" / "b" / "x.png"))
    with pytest.raises(DatasetError, match="folder clip b: .* first differing name: 00000002.png"):
        read_folder(str(tmp_path), scale=2)


def test_read_clip_errors_and_conversions(tmp_path):
    write_coded_clip(str(tmp_path / "LQ" / "c"), str(tmp_path / "GT" / "c"), 0, 4, (4, 4), 1)
    cs = read_folder(str(tmp_path), scale=1)
    clip = cs.clip("c")
    with pytest.raises(DatasetError, match=r"clip c: LQ frame indices \[4\] outside 0..3"):
        read_clip(clip, [1, 4])
    # grayscale and RGBA frames are converted to RGB (gray replicated, alpha dropped)
    Image.fromarray(np.full((4, 4), 77, np.uint8)).save(clip.lq_paths[1])
    rgba = np.concatenate([coded_frame(0, 2, (4, 4), 1)[0], np.full((4, 4, 1), 9, np.uint8)], -1)
    Image.fromarray(rgba).save(clip.lq_paths[2])
    lq, _ = read_clip(clip, [1, 2], [0])
    np.testing.assert_array_equal(lq[0], np.full((4, 4, 3), 77 / np.float32(255)))
    np.testing.assert_array_equal(lq[1] * 255, coded_frame(0, 2, (4, 4), 1)[0])
    with open(clip.lq_paths[3], "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(DatasetError, match=r"frame .*LQ/c/00000003.png is not a readable image"):
        read_clip(clip, [3], [0])
    write_png(clip.gt_paths[3], np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match=r"GT/c/00000003.png is 5x4, but .*GT/c/00000000.png "
                                           r"of the same clip is 4x4"):
        read_clip(clip, [0], [0, 3])
    os.remove(clip.gt_paths[2])
    with pytest.raises(DatasetError, match=r"cannot read frame .*GT/c/00000002.png"):
        read_clip(clip, [0], [2])


def test_get_clipset_dispatch_errors(tmp_path, official):
    assert get_clipset("REDS", official, split="val").names == ("000", "011", "015", "020")
    with pytest.raises(DatasetError, match="unknown dataset 'kitti'"):
        get_clipset("kitti", official)
    with pytest.raises(DatasetError, match="vid4 has only the x4 'sr' task"):
        get_clipset("vid4", official, task="deblur")
    with pytest.raises(DatasetError, match="dataset reds needs a root folder"):
        get_clipset("reds")
