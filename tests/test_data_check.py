"""`python -m edvr_jax.data check|preview|demo|build-tfds`: every bad frame is reported."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from edvr_jax.data.cli import main
from edvr_jax.data.testing import make_reds_tree, write_png


@pytest.fixture()
def broken(tmp_path):
    root = make_reds_tree(str(tmp_path / "REDS"), layout="regrouped", train_clips=(1, 11, 15, 20),
                          val_clips=(0,), num_frames=6, lq_hw=(4, 6))
    j = os.path.join
    # 1. garbage where a PNG should be; 2. a PNG cut short after its header
    with open(j(root, "train_sharp/001/00000002.png"), "wb") as f:
        f.write(b"not an image at all")
    with open(j(root, "train_sharp/011/00000003.png"), "rb") as f:
        data = f.read()
    with open(j(root, "train_sharp/011/00000003.png"), "wb") as f:
        f.write(data[:40])
    # 2b. a PNG with an intact header and damaged pixel data (only decoding finds it)
    with open(j(root, "train_sharp/020/00000005.png"), "rb") as f:
        data = f.read()
    with open(j(root, "train_sharp/020/00000005.png"), "wb") as f:
        f.write(data[:45] + bytes(len(data) - 61) + data[-16:])
    # 3. one LQ frame of another size inside a clip
    write_png(j(root, "train_sharp_bicubic/011/00000004.png"), np.zeros((5, 6, 3), np.uint8))
    # 4. a GT clip at 3x instead of 4x
    for t in range(6):
        write_png(j(root, f"train_sharp/015/{t:08d}.png"), np.zeros((12, 18, 3), np.uint8))
    # 5. LQ and GT frame lists that differ
    os.remove(j(root, "train_sharp_bicubic/240/00000005.png"))
    # 6. a grayscale and an RGBA frame: converted, reported as notes
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(j(root, "train_sharp_bicubic/020/00000001.png"))
    Image.fromarray(np.zeros((4, 6, 4), np.uint8)).save(j(root, "train_sharp_bicubic/020/00000002.png"))
    return root


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_check_reports_every_bad_frame(broken, capsys):
    code, out = run(capsys, "check", "--dataset", "reds", "--root", broken, "--task", "sr")
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("ERROR")]
    notes = [line for line in out.splitlines() if line.startswith("NOTE")]
    assert any("train_sharp/001/00000002.png is not a readable image" in e for e in errors)
    assert any("train_sharp_bicubic/011/00000004.png is 5x6, but" in e and "is 4x6" in e
               for e in errors)
    ratio = [e for e in errors if "train_sharp/015/" in e and "expected GT = 4 x LQ" in e]
    assert len(ratio) == 6  # every frame of the clip
    assert any("REDS clip 240: LQ folder" in e and "has 5 frames" in e for e in errors)
    assert any("011/00000003.png is not a readable image" in e for e in errors)
    assert not any("020/00000005.png" in e for e in errors)  # its header is intact
    # the odd-sized LQ frame also breaks the 4x ratio with its GT frame: reported too
    assert any("GT frame " in e and "train_sharp/011/00000004.png is 16x24 but LQ frame" in e for e in errors)
    assert len(errors) == 1 + 1 + 2 + 6 + 1
    assert any("020/00000001.png is grayscale (mode L); it is converted to RGB" in n for n in notes)
    assert any("020/00000002.png is RGBA" in n for n in notes)
    assert "checked 4 clips" in out
    # decoding finds the truncated frame as well
    code, out = run(capsys, "check", "--dataset", "reds", "--root", broken, "--decode")
    assert code == 1
    assert any("020/00000005.png is not a readable image: its " in line and "do not decode" in line
               for line in out.splitlines() if line.startswith("ERROR"))


def test_check_passes_a_clean_tree_and_fails_short_clips(tmp_path, capsys):
    root = make_reds_tree(str(tmp_path / "R"), num_frames=3)
    code, out = run(capsys, "check", "--root", root, "--decode")
    assert code == 0 and "OK, 0 notes" in out
    code, out = run(capsys, "check", "--root", root, "--num-frame", "5")
    assert code == 1 and "clip 001: 3 frames, fewer than num_frame=5" in out
    code, out = run(capsys, "check", "--root", str(tmp_path / "missing"))
    assert code == 1 and "train_sharp not found" in out


def test_demo_and_preview_commands(tmp_path, capsys):
    root = str(tmp_path / "demo")
    code, out = run(capsys, "demo", "--root", root, "--num-clips", "2", "--num-frames", "5",
                    "--height", "32", "--width", "32")
    assert code == 0 and os.path.isdir(os.path.join(root, "train_sharp_bicubic", "X4", "001"))
    png = str(tmp_path / "grid.png")
    code, out = run(capsys, "preview", "--dataset", "reds", "--root", root, "--split", "all",
                    "--out", png, "--gt-size", "16", "--batch", "3", "--batches", "3")
    assert code == 0
    grid = np.asarray(Image.open(png))
    assert grid.shape == (3 * 16 + 2 * 4, 6 * 16 + 5 * 4, 3)  # 3 samples x (5 LQ + GT), 4px gaps
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["samples"] == 9 and stats["samples_per_s"] > 0
    assert "sample 2: clip 00" in out


def test_check_vimeo_finds_missing_listed_frames(tmp_path, capsys):
    from edvr_jax.data.testing import make_vimeo_tree

    root = make_vimeo_tree(str(tmp_path))
    os.remove(os.path.join(root, "vimeo_septuplet_matlabLRx4/sequences/00001/0002/im7.png"))
    code, out = run(capsys, "check", "--dataset", "vimeo90k", "--root", root, "--split", "train")
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "cannot read frame" in errors[0]
    assert "00001/0002/im7.png" in errors[0]
    assert "checked 3 clips, 24 frame files" in out  # 7 LQ + the im4 GT per septuplet
