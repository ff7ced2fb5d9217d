"""Bad inputs to every tool: one line on stderr naming the file or key, no traceback, and a
non-zero exit code (for ``load_model``: a documented exception type with a one-line message).

The table ``CASES`` maps (tool, case) to the expected exit code (or exception type) and the
substrings the message must hold. The tools run in-process through the very ``main`` /
``run`` that their console scripts call (``train.py`` through ``edvr_jax.train.cli.run``);
one subprocess per tool checks the real entry point. Inputs a tool accepts by design (a
grayscale or RGBA frame is converted, a frame size that is not a multiple of 4 is padded,
``train.init_from`` is non-strict) are in the table too, with exit code 0 and the note the
tool prints.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import types
import zipfile

import eval_trees
import numpy as np
import pytest
from conftest import CACHE, DATA, ROOT
from entry_points import load_eval_py, tiny_config
from PIL import Image

from edvr_jax.convert.loader import ConversionError
from edvr_jax.convert.pth import CheckpointError, load_pth, save_pth

GOOD = DATA / "edvr" / "sr_tsa.pth"  # num_feat 8, num_frame 5, deformable_groups 2, x4


# ----------------------------------------------------------------------------- builders
def png(path, arr, mode=None):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr)
    (im.convert(mode) if mode else im).save(path)
    return path


def corrupt(path):
    """Garbage in the middle of the compressed data: the PNG header still reads fine."""
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(range(64))
    path.write_bytes(bytes(raw))
    return path


def folder_tree(root, n=6, lq_hw=(16, 16), gt_scale=4, seed=0, edit=None):
    """root/GT/a/0000.png ... and root/LQ/a/...: one clip of ``n`` frames (x4 LQ by default).
    ``edit(kind, t, lq_or_gt_array) -> (array, mode) | None`` changes single frames."""
    root = pathlib.Path(root)
    h, w = lq_hw
    for t, gt in enumerate(eval_trees.scene(seed, n, (4 * h, 4 * w))):
        lq = eval_trees.downsample4(gt)
        if gt_scale != 4:
            gt = gt[::4 // gt_scale, ::4 // gt_scale]
        for kind, arr in (("GT", gt), ("LQ", lq)):
            got = edit(kind, t, arr) if edit else None
            arr, mode = got if got else (arr, None)
            png(root / kind / "a" / f"{t:04d}.png", arr, mode)
    return root


def frames_folder(path, n=6, hw=(16, 16), edit=None):
    """A folder of ``n`` RGB PNG frames for edvr-restore."""
    path = pathlib.Path(path)
    path.mkdir(parents=True)
    for t, img in enumerate(eval_trees.scene(7, n, hw)):
        got = edit(t, img) if edit else None
        img, mode = got if got else (img, None)
        png(path / f"{t:04d}.png", img, mode)
    return path


def one_frame(index, fn):
    """An ``edit`` for ``frames_folder`` that changes frame ``index`` only."""
    return lambda t, img: fn(img) if t == index else None


def one_lq(index, fn):
    """An ``edit`` for ``folder_tree`` that changes LQ frame ``index`` only."""
    return lambda kind, t, arr: fn(arr) if kind == "LQ" and t == index else None


def bigger(arr):
    return np.pad(arr, ((0, 4), (0, 0), (0, 0)), mode="edge"), None


def pth_variants(d: pathlib.Path) -> dict[str, pathlib.Path]:
    data = GOOD.read_bytes()
    sd = load_pth(GOOD)["params"]
    out = {"truncated": d / "truncated.pth", "not_zip": d / "notes.pth",
           "no_data_pkl": d / "no_data_pkl.pth"}
    out["truncated"].write_bytes(data[: len(data) // 2])
    out["not_zip"].write_text("these are my notes, not a checkpoint\n")
    with zipfile.ZipFile(out["no_data_pkl"], "w") as zf:
        zf.writestr("archive/model.bin", b"\0" * 64)
    variants = {
        "other_network": {"layer1.0.conv1.weight": np.zeros((4, 3, 3, 3), np.float32),
                          "fc.weight": np.zeros((10, 4), np.float32)},
        "missing_key": {k: v for k, v in sd.items() if k != "conv_hr.weight"},
        "extra_key": {**sd, "conv_extra.weight": np.zeros((8, 8, 3, 3), np.float32)},
        "misshapen_key": {**sd, "conv_last.weight": np.zeros((3, 8, 5, 5), np.float32)},
    }
    for name, tensors in variants.items():
        out[name] = d / f"{name}.pth"
        save_pth({"params": tensors}, out[name])
    return out


def interrupted_workdir(d: pathlib.Path) -> pathlib.Path:
    """A training workdir killed during its first checkpoint save: model.json, and under
    checkpoints/ only orbax's temporary folder (what a kill -9 mid-save leaves)."""
    from edvr_jax.convert.api import architecture_of, load_model

    model, _ = load_model(GOOD)
    d.mkdir()
    (d / "model.json").write_text(json.dumps(architecture_of(model)))
    tmp = d / "checkpoints" / "12.orbax-checkpoint-tmp" / "state.orbax-checkpoint-tmp" / "d"
    tmp.mkdir(parents=True)
    (tmp / "0b5a48459e62").write_bytes(b"\0" * 1000)
    (d / "checkpoints" / "12.orbax-checkpoint-tmp" / "_CHECKPOINT_METADATA").write_text("{}")
    return d


def converted_dirs(d: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """(interrupted, damaged): edvr-convert output killed before its rename (the temporary
    ``.tmp-edvr`` folder without edvr_jax.json), and a complete one with a params file lost."""
    from edvr_jax.convert.cli import main

    assert main([str(GOOD), str(d / "damaged")]) == 0
    shutil.copytree(d / "damaged", d / "model.tmp-edvr")
    (d / "model.tmp-edvr" / "edvr_jax.json").unlink()
    biggest = max((p for p in (d / "damaged" / "params").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size)
    biggest.unlink()
    return d / "model.tmp-edvr", d / "damaged"


def gray(arr):
    return arr, "L"


def rgba(arr):
    return arr, "RGBA"


@pytest.fixture(scope="module")
def b(tmp_path_factory):
    """Every bad input, built once."""
    t = tmp_path_factory.mktemp("bad_inputs")
    n = types.SimpleNamespace(tmp=t, good=str(GOOD))
    (t / "pth").mkdir()
    n.pth = {k: str(v) for k, v in pth_variants(t / "pth").items()}
    n.missing = str(t / "does_not_exist.pth")
    n.missing_dir = str(t / "no_such_folder")
    (t / "empty").mkdir()
    n.empty = str(t / "empty")
    n.workdir_interrupted = str(interrupted_workdir(t / "interrupted_workdir"))
    interrupted, damaged = converted_dirs(t / "converted")
    n.convert_interrupted, n.model_damaged = str(interrupted), str(damaged)
    # eval.py --dataset folder trees for sr_tsa (5 frames, x4)
    n.eval = {
        "ok": folder_tree(t / "eval_ok"),
        "sizes": folder_tree(t / "eval_sizes", edit=one_lq(3, bigger)),
        "ratio": folder_tree(t / "eval_ratio", gt_scale=2),
        "short": folder_tree(t / "eval_short", n=2),
        "corrupt": folder_tree(t / "eval_corrupt", edit=one_lq(2, lambda a: None)),
        "gray": folder_tree(t / "eval_gray", edit=one_lq(2, gray)),
        "rgba": folder_tree(t / "eval_rgba", edit=one_lq(2, rgba)),
        "odd": folder_tree(t / "eval_odd", lq_hw=(18, 22)),
    }
    corrupt(n.eval["corrupt"] / "LQ" / "a" / "0002.png")
    # edvr-restore frame folders (sr_tsa: 5-frame windows)
    n.frames = {
        "ok": frames_folder(t / "frames_ok"),
        "sizes": frames_folder(t / "frames_sizes", edit=one_frame(3, bigger)),
        "short": frames_folder(t / "frames_short", n=3),
        "corrupt": frames_folder(t / "frames_corrupt"),
        "gray": frames_folder(t / "frames_gray", edit=one_frame(0, gray)),
        "rgba": frames_folder(t / "frames_rgba", edit=one_frame(0, rgba)),
        "odd": frames_folder(t / "frames_odd", hw=(18, 22)),
    }
    corrupt(n.frames["corrupt"] / "0002.png")
    n.video = t / "broken.mp4"
    n.video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13\x37 not really a video" * 64)
    n.exists_json = t / "exists.json"
    n.exists_json.write_text("{}")
    n.exists_dir = t / "exists_dir"
    (n.exists_dir / "keep").mkdir(parents=True)
    n.exists_mp4 = t / "exists.mp4"
    n.exists_mp4.write_bytes(b"keep me")
    n.not_a_folder = t / "a_file"
    n.not_a_folder.write_text("x")
    # train.py trees for configs/tiny.py (3 frames, GT crops 64 / LQ 16, x4)
    n.train = {
        "sizes": folder_tree(t / "train_sizes", n=3, edit=one_lq(2, bigger)),
        "ratio": folder_tree(t / "train_ratio", n=3, gt_scale=2),
        "short": folder_tree(t / "train_short", n=2),
        "corrupt": folder_tree(t / "train_corrupt", n=3),
        "small": folder_tree(t / "train_small", n=3, lq_hw=(12, 12)),
    }
    corrupt(n.train["corrupt"] / "LQ" / "a" / "0001.png")
    return n


# ------------------------------------------------------------------------------- runners
def train_on(tree, **overrides):
    """tiny.py on a folder tree (GT/ and LQ/), plus overrides."""
    return {"data.dataset": "folder", "data.root": str(tree / "GT"),
            "data.lq_root": str(tree / "LQ"), "train.num_steps": 2, **overrides}


def invoke(tool, args, tmp_path):
    """(exit code or exception type, message text) of one tool run in-process."""
    if tool == "load_model":
        from edvr_jax import load_model

        path, kwargs = (args[0], args[1]) if isinstance(args, tuple) else (args, {})
        try:
            load_model(path, **kwargs)
        except Exception as e:  # noqa: BLE001 - the test asserts the type
            return type(e), str(e)
        return 0, ""
    if tool == "train.py":
        from edvr_jax.train.cli import run

        return run(tiny_config(**args), str(tmp_path / "workdir")), None
    if tool == "edvr-convert":
        from edvr_jax.convert.cli import main
    elif tool == "edvr-restore":
        from edvr_jax.evaluate.restore import main

        args = [*args, "--no-progress"]
    else:
        main = load_eval_py().main
        args = [*args, "--no_progress"]
    try:
        return main([str(a) for a in args]), None
    except SystemExit as e:  # argparse
        return e.code, None


def ev(checkpoint, root, *extra):
    return ["--checkpoint", checkpoint, "--dataset", "folder", "--data_root", root, *extra]


def rs(src, checkpoint, tmp, *extra):
    return [src, str(tmp / "out"), "--checkpoint", checkpoint, *extra]


# --------------------------------------------------------------------------------- table
# (tool, case) -> (args builder b, tmp -> args; expected exit code or exception; substrings)
E = 2  # exit code of edvr-convert / eval.py / edvr-restore for user mistakes
T = 1  # train.py
PTH_CASES = {  # case -> (message parts for every tool reading a .pth)
    "truncated_pth": ("truncated", ["truncated.pth", "truncated"]),
    "not_zip_pth": ("not_zip", ["notes.pth", "not a PyTorch checkpoint"]),
    "zip_without_data_pkl": ("no_data_pkl", ["no_data_pkl.pth", "0 '<archive>/data.pkl' entries"]),
    "other_network": ("other_network", ["other_network.pth", "not an EDVR state_dict",
                                        "'conv_first.weight'"]),
    "missing_key": ("missing_key", ["missing_key.pth", "does not match EDVR",
                                    "missing conv_hr.weight (expected (64, 64, 3, 3))"]),
    "extra_key": ("extra_key", ["extra_key.pth", "unexpected conv_extra.weight (8, 8, 3, 3)"]),
    "misshapen_key": ("misshapen_key", ["misshapen_key.pth", "shape of conv_last.weight: "
                                        "expected (3, 64, 3, 3), found (3, 8, 5, 5)"]),
}
CASES: dict[tuple[str, str], tuple] = {}


def case(tool, name, args, expect, *parts):
    CASES[(tool, name)] = (args, expect, list(parts))


for name, (key, parts) in PTH_CASES.items():
    kind = CheckpointError if "pth" in name or "zip" in name else ConversionError
    case("edvr-convert", name, lambda b, t, k=key: [b.pth[k], t / "out"], E, *parts)
    case("eval.py", name, lambda b, t, k=key: ev(b.pth[k], b.eval["ok"]), E, *parts)
    case("edvr-restore", name, lambda b, t, k=key: rs(b.frames["ok"], b.pth[k], t), E, *parts)
    case("load_model", name, lambda b, t, k=key: b.pth[k], kind, *parts)
    if name in ("missing_key", "extra_key", "misshapen_key"):
        continue  # train.init_from is non-strict by design: see test_train_init_from_non_strict
    case("train.py", name, lambda b, t, k=key: train_on(b.train["sizes"], **{
        "train.init_from": b.pth[k]}), T, "train.init_from", *parts)

# missing file or folder
case("edvr-convert", "missing_file", lambda b, t: [b.missing, t / "out"], E,
     "does_not_exist.pth does not exist")
case("eval.py", "missing_file", lambda b, t: ev(b.missing, b.eval["ok"]), E,
     "checkpoint", "does_not_exist.pth does not exist")
case("edvr-restore", "missing_file", lambda b, t: rs(b.frames["ok"], b.missing, t), E,
     "checkpoint", "does_not_exist.pth does not exist")
case("load_model", "missing_file", lambda b, t: b.missing, FileNotFoundError,
     "does_not_exist.pth does not exist")
case("train.py", "missing_file", lambda b, t: train_on(b.train["sizes"], **{
    "train.init_from": b.missing}), T, "train.init_from", "does_not_exist.pth does not exist")
case("edvr-convert", "missing_folder", lambda b, t: [b.missing_dir, t / "o.pth", "--to-torch"],
     E, "no_such_folder does not exist")
case("eval.py", "missing_folder", lambda b, t: ev(b.good, b.missing_dir), E,
     "data root", "no_such_folder does not exist")
case("edvr-restore", "missing_folder", lambda b, t: rs(b.missing_dir, b.good, t), E,
     "input", "no_such_folder does not exist")
case("load_model", "missing_folder", lambda b, t: b.missing_dir, FileNotFoundError,
     "no_such_folder does not exist")
case("train.py", "missing_folder", lambda b, t: {"data.dataset": "folder",
     "data.root": b.missing_dir, "data.lq_root": b.missing_dir}, T,
     "folder GT: folder", "no_such_folder not found")

# empty folder
case("edvr-convert", "empty_folder", lambda b, t: [b.empty, t / "out"], E,
     "empty", "is a folder", "expected a .pth file")
case("edvr-convert", "empty_folder_to_torch", lambda b, t: [b.empty, t / "o.pth", "--to-torch"],
     E, "empty", "neither an edvr_jax model directory")
case("eval.py", "empty_folder", lambda b, t: ev(b.good, b.empty), E, "folder GT: folder",
     "empty/GT not found")
case("eval.py", "empty_checkpoint_folder", lambda b, t: ev(b.empty, b.eval["ok"]), E,
     "empty", "neither an edvr_jax model directory")
case("edvr-restore", "empty_folder", lambda b, t: rs(b.empty, b.good, t), E,
     "input folder", "empty holds no image frames")
case("load_model", "empty_folder", lambda b, t: b.empty, ConversionError,
     "empty", "neither an edvr_jax model directory")
case("train.py", "empty_folder", lambda b, t: {"data.dataset": "folder", "data.root": b.empty,
     "data.lq_root": b.empty}, T, "folder: no clip folders in", "empty")

# a checkpoint directory from an interrupted save (training workdir / conversion)
for name, attr, messages in [
    ("interrupted_save", "workdir_interrupted", ("interrupted_workdir", "no complete checkpoint",
                                                 "only 12.orbax-checkpoint-tmp, left by an interrupted save")),
    ("interrupted_convert", "convert_interrupted", ("model.tmp-edvr", "interrupted save")),
]:
    for tool, args in {
        "edvr-convert": lambda b, t, a=attr: [getattr(b, a), t / "o.pth", "--to-torch"],
        "eval.py": lambda b, t, a=attr: ev(getattr(b, a), b.eval["ok"]),
        "edvr-restore": lambda b, t, a=attr: rs(b.frames["ok"], getattr(b, a), t),
        "load_model": lambda b, t, a=attr: getattr(b, a),
        "train.py": lambda b, t, a=attr: train_on(b.train["sizes"], **{"train.init_from": getattr(b, a)}),
    }.items():
        case(tool, name, args, {"load_model": ConversionError, "train.py": T}.get(tool, E), *messages)
for tool, args in {
    "edvr-convert": lambda b, t: [b.model_damaged, t / "o.pth", "--to-torch"],
    "eval.py": lambda b, t: ev(b.model_damaged, b.eval["ok"]),
    "edvr-restore": lambda b, t: rs(b.frames["ok"], b.model_damaged, t),
    "load_model": lambda b, t: b.model_damaged,
}.items():
    code = ConversionError if tool == "load_model" else E
    case(tool, "damaged_model_dir", args, code, "damaged", "cannot read the parameters")

# frames
case("eval.py", "frame_sizes_differ", lambda b, t: ev(b.good, b.eval["sizes"]), E,
     "clip a: frame", "0003.png is 20x16, but", "of the same clip is 16x16")
case("edvr-restore", "frame_sizes_differ", lambda b, t: rs(b.frames["sizes"], b.good, t), E,
     "frame", "0003.png is 20x16", "first frame is 16x16 (HxW)")
case("train.py", "frame_sizes_differ", lambda b, t: train_on(b.train["sizes"]), T,
     "0002.png is 20x16", "0000.png", "16x16")
case("eval.py", "lq_gt_ratio", lambda b, t: ev(b.good, b.eval["ratio"]), E,
     "GT frame", "0000.png is 32x32", "x4 model restores its 16x16 LQ frames to 64x64")
case("train.py", "lq_gt_ratio", lambda b, t: train_on(b.train["ratio"]), T,
     "GT frame", "0000.png is 32x32", "LQ frame", "is 16x16", "expected GT = 4 x LQ")
case("eval.py", "fewer_frames_than_num_frame", lambda b, t: ev(b.good, b.eval["short"]), E,
     "clip a", "5-frame window", "2-frame clip")
case("edvr-restore", "fewer_frames_than_num_frame",
     lambda b, t: rs(b.frames["short"], b.good, t), E,
     "3 frames is too short for 5-frame windows with 'reflection_circle'")
case("train.py", "fewer_frames_than_num_frame", lambda b, t: train_on(b.train["short"]), T,
     "folder clip a: 2 frames, fewer than num_frame=3")
case("eval.py", "corrupt_png", lambda b, t: ev(b.good, b.eval["corrupt"]), E,
     "LQ/a/0002.png is not a readable image")
case("edvr-restore", "corrupt_png", lambda b, t: rs(b.frames["corrupt"], b.good, t), E,
     "frames_corrupt/0002.png is not a readable image")
case("train.py", "corrupt_png", lambda b, t: train_on(b.train["corrupt"]), T,
     "LQ/a/0001.png is not a readable image")
case("train.py", "lq_smaller_than_crop", lambda b, t: train_on(b.train["small"]), T,
     "LQ frames are 12x12, smaller than the LQ patch 16x16")
case("edvr-restore", "unreadable_video", lambda b, t: [b.video, t / "o.mp4", "--checkpoint",
     b.good], E, "cannot read video", "broken.mp4")

# accepted by design: converted (grayscale, RGBA) or padded (not a multiple of 4)
case("eval.py", "grayscale_frame", lambda b, t: ev(b.good, b.eval["gray"]), 0,
     "note: grayscale frames are converted to RGB")
case("eval.py", "rgba_frame", lambda b, t: ev(b.good, b.eval["rgba"]), 0,
     "note: RGBA frames: the alpha channel is dropped")
def png_sizes(folder, hw):
    """A check that every PNG written under ``folder`` is ``hw`` (the input x4, cropped back)."""
    def check(b, t):
        sizes = {Image.open(p).size[::-1] for p in (t / folder).rglob("*.png")}
        assert sizes == {hw}, sizes
    return check


case("eval.py", "size_not_multiple_of_4", lambda b, t: ev(b.good, b.eval["odd"], "--save_images",
     t / "imgs"), 0, "1 clip, 6 frames", "mean", png_sizes("imgs", (72, 88)))
case("edvr-restore", "grayscale_frame", lambda b, t: rs(b.frames["gray"], b.good, t), 0,
     "note: grayscale frames are converted to RGB")
case("edvr-restore", "rgba_frame", lambda b, t: rs(b.frames["rgba"], b.good, t), 0,
     "note: RGBA frames: the alpha channel is dropped")
case("edvr-restore", "size_not_multiple_of_4", lambda b, t: rs(b.frames["odd"], b.good, t), 0,
     "wrote 6 frames", png_sizes("out", (72, 88)))

# existing outputs
case("edvr-convert", "output_exists", lambda b, t: [b.good, b.exists_dir], E,
     "exists_dir exists; pass --overwrite")
case("eval.py", "output_exists", lambda b, t: ev(b.good, b.eval["ok"], "--out", b.exists_json),
     E, "exists.json exists; pass --overwrite")
case("eval.py", "image_folder_exists", lambda b, t: ev(b.good, b.eval["ok"], "--save_images",
     b.exists_dir), E, "exists_dir is not empty; pass --overwrite")
case("edvr-restore", "output_exists", lambda b, t: [b.frames["ok"], b.exists_mp4,
     "--checkpoint", b.good], E, "exists.mp4 exists; pass --overwrite")
case("train.py", "workdir_not_a_folder", lambda b, t: {"data.dataset": "folder",
     "data.root": str(b.train["sizes"] / "GT"), "data.lq_root": str(b.train["sizes"] / "LQ"),
     "workdir": str(b.not_a_folder / "run")}, T, "workdir", "a_file/run", "Not a directory")

# keys and options that do not exist
case("edvr-convert", "param_key_not_in_file", lambda b, t: [b.good, t / "o", "--param-key",
     "weights"], E, "sr_tsa.pth", "no 'weights' entry", "['params']")
case("eval.py", "param_key_not_in_file", lambda b, t: ev(b.pth["other_network"],
     b.eval["ok"]), E, "not an EDVR state_dict")
case("load_model", "param_key_not_in_file", lambda b, t: (b.good, {"param_key": "weights"}),
     ConversionError, "no 'weights' entry", "['params']")
case("load_model", "unknown_option", lambda b, t: (b.good, {"num_frames": 5}), TypeError,
     "num_frames")
case("train.py", "bad_gt_size", lambda b, t: train_on(b.train["sizes"], **{
    "data.gt_size": 72}), T, "data.gt_size=72", "18x18", "multiple of 4")
case("train.py", "bad_config_value", lambda b, t: train_on(b.train["sizes"], **{
    "train.compute_dtype": "float16"}), T, "train.compute_dtype", "'float16'")
case("edvr-convert", "unknown_option", lambda b, t: [b.good, t / "o", "--no-such-option"], 2,
     "unrecognized arguments: --no-such-option")
case("eval.py", "unknown_option", lambda b, t: ev(b.good, b.eval["ok"], "--no-such-option"), 2,
     "unrecognized arguments: --no-such-option")
case("edvr-restore", "unknown_option", lambda b, t: rs(b.frames["ok"], b.good, t,
     "--no-such-option"), 2, "unrecognized arguments: --no-such-option")


def _ids():
    return [f"{tool}-{name}" for tool, name in CASES]


@pytest.mark.parametrize("tool,name", list(CASES), ids=_ids())
def test_bad_input(b, tmp_path, capsys, tool, name):
    make, expect, parts = CASES[(tool, name)]
    args = make(b, tmp_path)
    if tool == "train.py" and "workdir" in args:
        args = dict(args)
        workdir = args.pop("workdir")
        from edvr_jax.train.cli import run

        got, text = run(tiny_config(**args), workdir), None
    else:
        got, text = invoke(tool, args, tmp_path)
    captured = capsys.readouterr()
    if text is None:
        text = captured.err if got else captured.out + captured.err
    assert "Traceback" not in captured.err + captured.out
    if tool == "load_model":
        assert got == expect, (got, text)
        assert "\n" not in text.strip()
    else:
        assert got == expect, text
        if expect:
            lines = [ln for ln in text.strip().splitlines()
                     if "error" in ln or ln.startswith("usage")]
            last = text.strip().splitlines()[-1]
            prefix = {"train.py": "train.py: error: ", "edvr-convert": "edvr-convert: error: ",
                      "edvr-restore": "edvr-restore: error: ", "eval.py": "eval.py: error: "}[tool]
            assert last.startswith(prefix) or "unrecognized" in last, text
            text = last
            assert lines
    for part in parts:
        if callable(part):
            part(b, tmp_path)
        else:
            assert part in text, (part, text)



# ------------------------------------------------------------------- real entry points
def entry_env(demo_cache=None):
    return dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="1", JAX_COMPILATION_CACHE_DIR=str(CACHE),
                TF_CPP_MIN_LOG_LEVEL="2", EDVR_JAX_CACHE=str(demo_cache or CACHE / "demo"))


@pytest.mark.parametrize("tool", ["edvr-convert", "edvr-restore", "eval.py"])
@pytest.mark.slow
def test_console_entry_points(b, tmp_path, tool):
    exe = pathlib.Path(sys.executable).parent
    cmd = {"edvr-convert": [exe / "edvr-convert", b.pth["truncated"], tmp_path / "o"],
           "edvr-restore": [exe / "edvr-restore", b.frames["corrupt"], tmp_path / "o",
                            "--checkpoint", b.good, "--no-progress"],
           "eval.py": [sys.executable, ROOT / "eval.py", *ev(b.good, b.eval["corrupt"]),
                       "--no_progress"]}[tool]
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=entry_env(),
                       timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{tool}: error: ")
    assert {"edvr-convert": "truncated.pth", "edvr-restore": "0002.png is not a readable",
            "eval.py": "0002.png is not a readable"}[tool] in last, last
