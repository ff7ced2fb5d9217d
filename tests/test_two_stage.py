"""The two-stage path: test-time flip ensemble, stage-1 outputs of a dataset, stage-2 training.

References are computed independently of the code under test: the flipped clips are made
with numpy, restored one by one without ensemble, flipped back with numpy and averaged.
"""

import os
import pathlib
from functools import partial

import numpy as np
import pytest

from edvr_jax import load_model
from edvr_jax.evaluate.inference import Restorer
from edvr_jax.evaluate.metrics import to_uint8_batch

ROOT = pathlib.Path(__file__).resolve().parent.parent
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


# ----------------------------------------------------------------------------- stage-1 outputs

CLIPS = ("000", "001", "011", "015", "020")  # REDS4 (the val split) + one training clip


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    import eval_trees

    return eval_trees.make_reds(str(tmp_path_factory.mktemp("reds")), num_frames=5,
                                lq_hw=(8, 12), clips=CLIPS)


@pytest.fixture(scope="module")
def clips(tree):
    from edvr_jax.data import get_clipset

    return get_clipset("reds", tree, split="all")


def _stage1(sr_tsa, clips, out, **kw):
    from edvr_jax.evaluate.stage1 import restore_dataset

    return restore_dataset(*sr_tsa, clips, str(out), padding="reflection_circle", batch_size=2,
                           mesh=None, progress=False, **kw)


def _files(out):
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.png"))}


@pytest.fixture(scope="module")
def stage1_out(sr_tsa, clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage1")
    return out, _stage1(sr_tsa, clips, out)


def test_stage1_writes_every_frame_once(sr_tsa, clips, stage1_out):
    from PIL import Image

    from edvr_jax.data import read_frames
    from edvr_jax.evaluate import generate_frame_indices

    out, r = stage1_out
    names = [f"{c}/{i:08d}.png" for c in CLIPS for i in range(5)]
    assert [os.path.relpath(p, out) for p in r["written"]] == names
    assert r["skipped"] == 0 and r["frames"] == 25 and sorted(_files(out)) == names
    # Each frame is the model's uint8 output for its reflection_circle window.
    restore = Restorer(*sr_tsa, batch_size=2, mesh=None, quantize=True)
    clip = clips.clip("011")
    lq = read_frames(clip.lq_paths)
    for i in range(5):
        want = restore(lq[generate_frame_indices(i, 5, 5, "reflection_circle")][None])[0]
        np.testing.assert_array_equal(np.asarray(Image.open(out / "011" / f"{i:08d}.png")), want)
    again = _stage1(sr_tsa, clips, out)  # a finished run: nothing left to do
    assert again["written"] == [] and again["skipped"] == 25


def test_stage1_resumes_after_a_kill(sr_tsa, clips, stage1_out, tmp_path):
    full, _ = stage1_out
    done = [f"000/{i:08d}.png" for i in range(5)] + ["001/00000000.png", "001/00000001.png"]
    for name in done:  # what a killed run had renamed into place ...
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((full / name).read_bytes())
    (tmp_path / "001" / ".00000002.partial-999.png").write_bytes(b"cut short")  # ... and not
    r = _stage1(sr_tsa, clips, tmp_path)
    rest = [f"{c}/{i:08d}.png" for c in CLIPS for i in range(5) if f"{c}/{i:08d}.png" not in done]
    assert [os.path.relpath(p, tmp_path) for p in r["written"]] == rest
    assert r["skipped"] == len(done)
    assert _files(tmp_path) == _files(full)  # identical bytes


def test_two_processes_split_the_frames(sr_tsa, clips, stage1_out, tmp_path):
    from edvr_jax.evaluate.stage1 import process_share

    for count in (1, 2, 3, 7):
        shares = [process_share(clips, i, count) for i in range(count)]
        flat = [j for s in shares for j in s]
        assert flat == [(k, i) for k in range(5) for i in range(5)]  # in order, once each
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    a = _stage1(sr_tsa, clips, tmp_path, process_index=0, process_count=2)["written"]
    b = _stage1(sr_tsa, clips, tmp_path, process_index=1, process_count=2)["written"]
    assert len(a) == 12 and len(b) == 13 and not set(a) & set(b)
    assert _files(tmp_path) == _files(stage1_out[0])


def test_restored_lq_errors(clips, stage1_out, tmp_path):
    import shutil

    from edvr_jax.data import DatasetError
    from edvr_jax.data.restored import with_restored_lq

    got = with_restored_lq(clips, str(stage1_out[0]))
    assert got.scale == 1 and got.names == clips.names
    assert got.clip("011").lq_paths[2] == str(stage1_out[0] / "011" / "00000002.png")
    assert got.clip("011").gt_paths == clips.clip("011").gt_paths
    with pytest.raises(DatasetError, match=r"stage-1 output folder .*nope not found; make it "
                                           r"with: edvr-data stage1"):
        with_restored_lq(clips, str(tmp_path / "nope"))
    shutil.copytree(stage1_out[0], tmp_path / "s1")
    (tmp_path / "s1" / "015" / "00000003.png").unlink()
    with pytest.raises(DatasetError, match="clip 015 lacks 1 of its 5 restored frames"):
        with_restored_lq(clips, str(tmp_path / "s1"))


def test_stage1_command(tree, stage1_out, tmp_path, capsys):
    from edvr_jax.data.cli import main

    argv = ["stage1", "--checkpoint", f"{EDVR}/sr_tsa.pth", "--dataset", "reds", "--root", tree,
            "--split", "val", "--out", str(tmp_path), "--batch", "2", "--no-progress"]
    assert main(argv + ["--process-index", "1", "--process-count", "2"]) == 0
    out = capsys.readouterr().out
    assert "process 1 of 2: 10 frames written, 0 already there, of its 10" in out
    assert "frames/s" in out
    assert main(argv) == 0
    assert "10 frames written, 10 already there, of its 20" in capsys.readouterr().out
    want = {k: v for k, v in _files(stage1_out[0]).items() if not k.startswith("001/")}
    assert _files(tmp_path) == want
    assert main(["stage1", "--checkpoint", str(tmp_path / "no.pth"), "--root", tree,
                 "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().endswith("no.pth does not exist")


# ----------------------------------------------------------------------------- the chain


@pytest.fixture(scope="module")
def stage2_run(sr_tsa, tmp_path_factory):
    """The demo's two-stage part on 3 tiny demo clips (1 for training, 2 held out): sr_tsa's
    outputs of every frame, a tiny stage 2 (hr_in + predeblur) trained 2 steps on them
    (validating at the end), then bicubic / stage 1 / two stages and the picture."""
    import contextlib
    import io

    from entry_points import tiny_config

    from edvr_jax.demo import bicubic_scores, load_config, two_stage
    from edvr_jax.train.loop import create_clipsets

    root = tmp_path_factory.mktemp("demo")
    demo = {"data.root": str(root / "clips"), "data.demo_clips": 3, "data.demo_frames": 6,
            "data.demo_size": 32, "eval.padding": "reflection_circle", "eval.batch_size": 2}
    config = tiny_config(**demo)
    c2 = load_config(ROOT / "configs" / "demo_stage2.py")
    overrides = {**demo, "data.gt_size": 32, "model.num_feat": 8, "model.deformable_groups": 2,
                 "model.num_extract_block": 1, "model.num_reconstruct_block": 1,
                 "train.num_steps": 2, "train.batch_size": 2, "train.periods": [2],
                 "train.checkpoint_every": 2, "train.log_every": 2, "train.progress": False,
                 "eval.every": 2, "eval.max_frames": 3}
    for key, value in overrides.items():
        group, field = key.split(".")
        setattr(c2[group], field, value)
    _, val = create_clipsets(config)
    workdir = root / "stage2"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = two_stage(config, c2, *sr_tsa, val, bicubic_scores(val), workdir=str(workdir),
                           ensemble="none")
    return workdir, status, printed.getvalue(), val


def _psnr_of_files(paths, gt_paths):
    from edvr_jax.data import read_frames
    from edvr_jax.evaluate import calculate_psnr
    from edvr_jax.frames import tensor_to_uint8

    pairs = zip(read_frames(paths), read_frames(gt_paths), strict=True)
    return np.mean([calculate_psnr(tensor_to_uint8(a), tensor_to_uint8(b)) for a, b in pairs])


def test_demo_two_stage_chain(stage2_run):
    import json

    from PIL import Image

    workdir, status, printed, val = stage2_run
    assert status in (0, 1)  # 1: stage 2 did not beat stage 1 in 2 steps (said, not hidden)
    assert "18 frames written (0 already there)" in printed  # 3 clips x 6 frames
    assert sorted(p.name for p in (workdir / "stage1_frames").iterdir()) == ["000", "001", "002"]
    assert "bicubic" in printed and "two stages" in printed
    mean = [ln for ln in printed.splitlines() if ln.strip().startswith("mean")][-1]
    assert len(mean.split()) == 12  # mean, 3 x "PSNR / SSIM", the gain, dB
    # Periodic validation of stage 2 reports stage 1 beside it (the held-out clips' frames).
    logged = [json.loads(ln) for ln in (workdir / "metrics.jsonl").read_text().splitlines()]
    val_rows = [r for r in logged if r["split"] == "val"]
    assert val_rows and {"psnr", "stage1_psnr", "ssim", "stage1_ssim"} <= set(val_rows[-1])
    picture = np.asarray(Image.open(workdir / "comparison.png"))
    assert picture.shape == (2 * 32 + 8, 4 * 32 + 3 * 4, 3)  # 2 clips x (4 panels)


def test_stage2_reads_restored_reds_frames(tree, stage1_out):
    from entry_points import tiny_config

    from edvr_jax.train.loop import create_clipsets

    out = str(stage1_out[0])
    train, val = create_clipsets(tiny_config(**{"data.dataset": "reds", "data.root": tree,
                                                "data.lq_root": out}))
    assert train.names == ("001",) and val.names == ("000", "011", "015", "020")
    assert train.scale == val.scale == 1
    assert val.clip("015").lq_paths[0] == f"{out}/015/00000000.png"
    assert val.clip("015").gt_paths[0].endswith("train_sharp/015/00000000.png")


def test_two_stage_evaluation_reports_both_stages(tree, stage1_out, stage2_run, tmp_path):
    """eval.py --stage2 with the demo's stage 2 after sr_tsa on the REDS tree."""
    from edvr_jax.evaluate.run_eval import run

    lines = []
    result = run(checkpoint=f"{EDVR}/sr_tsa.pth", stage2=str(stage2_run[0]), dataset="reds4",
                 data_root=tree, batch=2, progress=False, echo=lines.append,
                 out=str(tmp_path / "two_stage.json"))
    assert result["settings"]["ensemble"] == "none" and result["settings"]["num_frame"] == [5, 3]
    assert {"psnr", "stage1_psnr", "ssim", "stage1_ssim"} <= set(result["mean"])
    table = "\n".join(lines)
    assert "1:PSNR" in table and "2:PSNR" in table and "stage 1 alone" in table
    # Stage 1 of the two-stage evaluation: the frames edvr-data stage1 wrote, scored.
    out = stage1_out[0]
    want = _psnr_of_files([f"{out}/011/{i:08d}.png" for i in range(5)],
                          [f"{tree}/train_sharp/011/{i:08d}.png" for i in range(5)])
    assert result["clips"]["011"]["stage1_psnr"] == pytest.approx(want, abs=1e-4)
