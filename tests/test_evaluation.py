"""eval.py and evaluate_clipset against BasicSR's own test pipeline and a slow reference loop.

The BasicSR numbers (tests/data/eval/) come from make_fixtures_eval.py, which ran BasicSR
1.4.2's VideoTestDataset / VideoTestVimeo90KDataset, EDVR, tensor2img and
calculate_psnr/ssim on the trees of eval_trees.py with the weights of tests/data/edvr.
"""

import json
import os
import subprocess
import sys

import eval_trees
import jax
import numpy as np
import pytest
from entry_points import load_eval_py
from PIL import Image

from edvr_jax import load_model
from edvr_jax.data import get_clipset
from edvr_jax.evaluate import (
    calculate_psnr,
    calculate_ssim,
    generate_frame_indices,
    tensor_to_uint8,
)
from edvr_jax.evaluate.evaluation import evaluate_clipset
from edvr_jax.evaluate.protocols import EVAL_DATASETS, get_protocol

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDVR = os.path.join(ROOT, "tests", "data", "edvr")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    return eval_trees.make_all(str(tmp_path_factory.mktemp("eval_trees")))


@pytest.fixture(scope="module")
def basicsr(data_dir):
    with open(data_dir / "eval" / "basicsr_eval.json") as f:
        ref = json.load(f)
    return ref, np.load(data_dir / "eval" / "basicsr_outputs.npz")


CASES = {  # case: eval.py arguments (besides --data_root)
    "reds4_sr": ("reds", ["--checkpoint", f"{EDVR}/sr_tsa.pth", "--dataset", "reds4"]),
    "reds4_deblur": ("reds", ["--checkpoint", f"{EDVR}/deblur.pth", "--dataset", "reds4",
                              "--task", "deblur"]),
    "vid4": ("vid4", ["--checkpoint", f"{EDVR}/sr_tsa.pth", "--dataset", "vid4"]),
    "vimeo90k_t": ("vimeo", ["--checkpoint", f"{EDVR}/sr_tsa.pth", "--dataset", "vimeo90k_t"]),
}


@pytest.fixture(scope="module")
def eval_runs(trees, tmp_path_factory):
    """eval.py run once per case with --out and --save_images: (json, image dir).

    Two cases at a time: compiling dominates and XLA compiles on one core.
    """
    from concurrent.futures import ThreadPoolExecutor

    ev, out = load_eval_py(), tmp_path_factory.mktemp("eval_out")

    def one(case):
        tree, args = CASES[case]
        js, img = str(out / f"{case}.json"), str(out / case)
        assert ev.main(args + ["--data_root", trees[tree], "--out", js, "--save_images", img,
                               "--batch", "3", "--no_progress"]) == 0
        with open(js) as f:
            return json.load(f), img

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(CASES, pool.map(one, CASES), strict=True))


def block_sums(img):
    h, w, c = img.shape
    return img.astype(np.int64).reshape(h // 8, 8, w // 8, 8, c).sum(axis=(1, 3))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.slow
def test_eval_py_reproduces_basicsr(eval_runs, basicsr, case):
    ref, blocks = basicsr
    ref = ref[case]
    got, img_dir = eval_runs[case]
    metrics = list(ref["mean"])
    assert got["settings"]["metrics"] == metrics
    assert got["settings"]["padding"] == ref["padding"]
    assert set(got["clips"]) == set(ref["frames"])
    for clip, frames in ref["frames"].items():
        mine = got["clips"][clip]["frames"]
        assert [f["index"] for f in mine] == [f["index"] for f in frames]  # every frame scored
        for f, g in zip(frames, mine, strict=True):
            for m in metrics:  # measured: <= 4e-5 dB and <= 3e-6
                assert abs(f[m] - g[m]) < (1e-4 if m.startswith("psnr") else 1e-5), (clip, f, g)
            # The restored frame itself (its 8x8 block sums): at most a pixel rounded the other way.
            name = os.path.splitext(os.path.basename(_lq_name(case, clip, f["index"])))[0]
            out = np.asarray(Image.open(os.path.join(img_dir, *clip.split("/"), name + ".png")))
            assert np.abs(block_sums(out) - blocks[f"{case}/{clip}/{f['index']}"]).max() <= 2
    for m in metrics:  # BasicSR's float32 per-folder means vs ours
        assert abs(got["mean"][m] - ref["mean"][m]) < (5e-5 if m.startswith("psnr") else 5e-6)
        if case != "vimeo90k_t":  # BasicSR puts all septuplets in one folder
            for clip, v in ref["folders"].items():
                assert abs(got["clips"][clip][m] - v[m]) < (5e-5 if m.startswith("psnr") else 5e-6)


def _lq_name(case, clip, index):
    if case == "vid4":
        return f"Frame {index + 1:03d}.png"
    return f"im{index + 1}.png" if case == "vimeo90k_t" else f"{index:08d}.png"


def test_the_comparison_sees_the_temporal_padding(trees, basicsr, tmp_path):
    """With the wrong border padding the border frames move far beyond the tolerances above."""
    _, blocks = basicsr
    ev = load_eval_py()
    img = str(tmp_path / "img")
    assert ev.main(["--checkpoint", f"{EDVR}/sr_tsa.pth", "--dataset", "reds4", "--data_root",
                    trees["reds"], "--padding", "replicate", "--save_images", img, "--batch", "3",
                    "--no_progress"]) == 0
    diff = {i: np.abs(block_sums(np.asarray(Image.open(f"{img}/000/{i:08d}.png")))
                      - blocks[f"reds4_sr/000/{i}"]).max() for i in range(6)}
    assert min(diff[0], diff[1], diff[4], diff[5]) > 20 and max(diff[2], diff[3]) <= 2


def test_json_schema_and_averaging(eval_runs):
    for case, (got, _) in eval_runs.items():
        assert {"settings", "clips", "mean", "timing", "offsets", "warnings"} <= set(got)
        names = got["settings"]["metrics"]
        assert names == (["psnr", "ssim", "psnr_y", "ssim_y"] if case in ("vid4", "vimeo90k_t")
                         else ["psnr", "ssim"])
        for clip in got["clips"].values():
            assert clip["num_frames"] == len(clip["frames"])
            for m in names:  # clip value = mean of its frames; mean = mean of the clip values
                assert clip[m] == pytest.approx(np.mean([f[m] for f in clip["frames"]]), abs=1e-12)
        for m in names:
            assert got["mean"][m] == pytest.approx(
                np.mean([c[m] for c in got["clips"].values()]), abs=1e-12)
        assert got["timing"]["frames"] == sum(c["num_frames"] for c in got["clips"].values())
        assert got["timing"]["frames_per_second"] > 0
        assert set(got["offsets"]) == {"dcn_pack_l3", "dcn_pack_l2", "dcn_pack_l1", "cas_dcnpack"}
    reds, _ = eval_runs["reds4_sr"]
    assert list(reds["clips"]) == ["000", "011", "015", "020"]
    assert reds["settings"]["dataset"] == "reds4" and reds["settings"]["task"] == "sr"
    assert reds["timing"]["compilations"] == 1  # one frame size, batch tails padded
    assert eval_runs["vid4"][0]["timing"]["compilations"] == 2  # Vid4 trees have two sizes


def test_vimeo90k_t_scores_im4_only(eval_runs):
    got, img_dir = eval_runs["vimeo90k_t"]
    assert list(got["clips"]) == list(eval_trees.VIMEO_KEYS)
    assert all([f["index"] for f in c["frames"]] == [3] for c in got["clips"].values())
    assert got["settings"]["center_only"] and got["timing"]["frames"] == 3
    for key in eval_trees.VIMEO_KEYS:
        assert os.listdir(os.path.join(img_dir, *key.split("/"))) == ["im4.png"]


def test_protocol_defaults():
    want = {("reds4", "sr"): ("reflection_circle", False),
            ("reds4", "srblur"): ("replicate", False), ("reds4", "deblur"): ("replicate", False),
            ("reds4", "deblurcomp"): ("replicate", False),
            ("redsofficial4", "sr"): ("reflection_circle", False),
            ("redsofficial4", "deblur"): ("replicate", False),
            ("vid4", "sr"): ("reflection_circle", True),
            ("vimeo90k_t", "sr"): ("reflection_circle", True),
            ("folder", "sr"): ("reflection_circle", False),
            ("folder", "deblur"): ("replicate", False)}
    for (dataset, task), (padding, y) in want.items():
        p = get_protocol(dataset, task)
        assert (p.padding, p.test_y_channel, p.crop_border) == (padding, y, 0), (dataset, task)
    assert get_protocol("reds4").partition == "REDS4" and get_protocol("reds4").split == "val"
    assert get_protocol("redsofficial4").partition == "REDSofficial4"
    assert get_protocol("folder", hr_in=True).padding == "replicate"
    assert set(EVAL_DATASETS) == {"reds4", "redsofficial4", "vid4", "vimeo90k_t", "folder"}
    with pytest.raises(ValueError, match="only the x4 'sr' task"):
        get_protocol("vid4", "deblur")


def test_table_and_strict_json(eval_runs):
    from edvr_jax.evaluate.run_eval import format_table, to_json

    got, _ = eval_runs["vid4"]
    lines = format_table(got).splitlines()
    assert lines[0].split() == ["clip", "frames", "PSNR", "SSIM", "PSNR-Y", "SSIM-Y"]
    assert [ln.split()[0] for ln in lines[2:6]] == ["calendar", "city", "foliage", "walk"]
    assert lines[-1].split()[:3] == ["mean", "21", f"{got['mean']['psnr']:.4f}"]
    # Identical frames have PSNR inf; JSON has no inf, so it is written as null.
    assert json.loads(to_json({"psnr": float("inf"), "frames": [{"psnr": 30.0}]})) == {
        "psnr": None, "frames": [{"psnr": 30.0}]}


def test_center_frame_idx_override():
    from edvr_jax.evaluate.run_eval import load

    model, _ = load(f"{EDVR}/sr_tsa_t7.pth")
    assert (model.num_frame, model.center) == (7, 3)
    model, _ = load(f"{EDVR}/sr_tsa_t7.pth", center_frame_idx=2)
    assert model.center == 2


# ----------------------------------------------------------------------------- reference loop


def _write_folder(root, clips, lq_hw, scale=4):
    for k, (clip, n) in enumerate(clips.items()):
        h, w = lq_hw
        for t, gt in enumerate(eval_trees.scene(400 + k, n, (scale * h, scale * w))):
            lq = eval_trees.downsample4(gt) if scale == 4 else gt
            for sub, img in (("GT", gt), ("LQ", lq)):
                os.makedirs(os.path.join(root, sub, clip), exist_ok=True)
                Image.fromarray(img).save(os.path.join(root, sub, clip, f"{t:04d}.png"))
    return root


def reference_loop(model, variables, clipset, padding, y):
    """Frame by frame, numpy metrics: the protocol written as plainly as possible. The
    forward pass (tested against BasicSR elsewhere) is the evaluator's compiled program,
    fed one window at a time."""
    from edvr_jax.data import read_frames
    from edvr_jax.evaluate.inference import Restorer

    restore = Restorer(model, variables, batch_size=3, quantize=True)
    out = {}
    for clip in clipset:
        lq = read_frames(clip.lq_paths)
        rows = []
        for c in range(clip.num_frames):
            idx = generate_frame_indices(c, clip.num_frames, model.num_frame, padding)
            sr = restore(lq[idx][None])[0]
            gt = tensor_to_uint8(read_frames([clip.gt_paths[c]])[0])
            rows.append({"psnr": calculate_psnr(sr, gt), "ssim": calculate_ssim(sr, gt),
                         "psnr_y": calculate_psnr(sr, gt, test_y_channel=y),
                         "ssim_y": calculate_ssim(sr, gt, test_y_channel=y)})
        out[clip.name] = rows
    return out


@pytest.mark.slow
def test_batched_jitted_evaluator_equals_reference_loop(odd_folder):
    """Odd frame size (padded to 4 and cropped), a padded last batch, Y and RGB, crop 0."""
    root = odd_folder
    model, variables = load_model(f"{EDVR}/sr_tsa.pth")
    clipset = get_clipset("folder", root, scale=4)
    got = evaluate_clipset(model, variables, clipset, padding="reflection_circle",
                           test_y_channel=True, batch_size=3, progress=False)
    ref = reference_loop(model, variables, clipset, "reflection_circle", True)
    for clip, rows in ref.items():
        frames = got["clips"][clip]["frames"]
        assert [f["index"] for f in frames] == list(range(len(rows)))
        for r, f in zip(rows, frames, strict=True):
            for m in ("psnr", "psnr_y"):
                assert f[m] == pytest.approx(r[m], abs=2e-5)
            for m in ("ssim", "ssim_y"):
                assert f[m] == pytest.approx(r[m], abs=2e-6)
    clip_means = [np.mean([r["psnr"] for r in rows]) for rows in ref.values()]
    assert got["mean"]["psnr"] == pytest.approx(np.mean(clip_means), abs=2e-5)
    # Not the frame-weighted mean (clips have 5 and 6 frames).
    assert abs(np.mean(clip_means) - np.mean([r["psnr"] for rows in ref.values() for r in rows])) > 1e-6
    assert got["timing"]["compilations"] == 1


ODD = {"a": 5, "b": 6}, (18, 22)  # clips and LQ size shared by the tests below (one compile)


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    return _write_folder(str(tmp_path_factory.mktemp("odd")), *ODD)


def test_large_offsets_are_warned(odd_folder):
    root = odd_folder
    model, variables = load_model(f"{EDVR}/sr_tsa.pth")
    boosted = jax.tree_util.tree_map_with_path(
        lambda p, a: a + 80.0 if "conv_offset" in jax.tree_util.keystr(p) and a.ndim == 1 else a,
        variables)
    got = evaluate_clipset(model, boosted, get_clipset("folder", root, scale=4),
                           padding="reflection_circle", batch_size=3, progress=False)
    assert got["offsets"]["dcn_pack_l1"] > 50
    assert any("clip a" in w and "larger than 50" in w for w in got["warnings"])


_SHARDED = r"""
import json, sys
sys.path.insert(0, {tests!r})
import jax
from edvr_jax import load_model
from edvr_jax.data import get_clipset
from edvr_jax.evaluate.evaluation import evaluate_clipset
assert jax.device_count() == 8
model, variables = load_model({ckpt!r})
r = evaluate_clipset(model, variables, get_clipset("folder", {root!r}, scale=4),
                     padding="reflection_circle", batch_size=3, progress=False)
print(json.dumps({{"devices": r["settings"]["devices"], "batch": r["settings"]["batch_size"],
                  "clips": r["clips"]}}))
"""


@pytest.fixture(scope="module", autouse=True)
def sharded_run(odd_folder):
    """The 8-device run, started in a subprocess before the other tests of this module so
    that it compiles on the second core while they run."""
    code = _SHARDED.format(tests=os.path.join(ROOT, "tests"), ckpt=f"{EDVR}/sr_tsa.pth",
                           root=odd_folder)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def test_sharded_over_8_devices_equals_1_device(odd_folder, sharded_run):
    model, variables = load_model(f"{EDVR}/sr_tsa.pth")
    one = evaluate_clipset(model, variables, get_clipset("folder", odd_folder, scale=4),
                           padding="reflection_circle", batch_size=3, progress=False)
    stdout, stderr = sharded_run.communicate(timeout=300)
    assert sharded_run.returncode == 0, stderr[-3000:]
    eight = json.loads(stdout.strip().splitlines()[-1])
    assert eight["devices"] == 8 and eight["batch"] == 8
    for clip, c in one["clips"].items():
        for f, g in zip(c["frames"], eight["clips"][clip]["frames"], strict=True):
            assert f["index"] == g["index"]
            assert f["psnr"] == pytest.approx(g["psnr"], abs=1e-5)
            assert f["ssim"] == pytest.approx(g["ssim"], abs=1e-6)


@pytest.mark.slow
def test_two_stage_equals_stage_by_stage_loop(trees):
    """--stage2: stage 1 over all frames (uint8-rounded), then stage 2, each with its padding."""
    from edvr_jax.evaluate.run_eval import load

    model, variables = load(f"{EDVR}/sr_tsa.pth", f"{EDVR}/stage2.pth")
    clipset = get_clipset("reds", trees["reds"], split="val").subset(["011"])
    got = evaluate_clipset(model, variables, clipset, padding="replicate", batch_size=3,
                           progress=False)
    from edvr_jax.data import read_frames
    from edvr_jax.evaluate.inference import Restorer

    # The forward passes (tested against BasicSR elsewhere) through the same compiled
    # programs, one window at a time; windows, rounding between stages and scoring by hand.
    clip = clipset.clips[0]
    r1, r2 = (Restorer(m, {"params": variables["params"][k]}, batch_size=3, quantize=True)
              for m, k in ((model.stage1, "stage1"), (model.stage2, "stage2")))
    lq, n = read_frames(clip.lq_paths), clip.num_frames
    s1 = np.concatenate([r1(lq[generate_frame_indices(c, n, 5, "replicate")][None])
                         for c in range(n)]).astype(np.float32) / np.float32(255)
    for c, frame in enumerate(got["clips"]["011"]["frames"]):
        sr = r2(s1[generate_frame_indices(c, n, 3, "replicate")][None])[0]
        gt = tensor_to_uint8(read_frames([clip.gt_paths[c]])[0])
        assert frame["index"] == c
        assert frame["psnr"] == pytest.approx(calculate_psnr(sr, gt), abs=2e-5)
        assert frame["ssim"] == pytest.approx(calculate_ssim(sr, gt), abs=2e-6)
    assert set(got["offsets"]) >= {"stage1/dcn_pack_l1", "stage2/dcn_pack_l1"}


# ----------------------------------------------------------------------------- user errors


@pytest.mark.slow
def test_clear_errors_without_traceback(trees, odd_folder, tmp_path, capsys):
    ev = load_eval_py()
    ck = f"{EDVR}/sr_tsa.pth"
    cases = [
        (["--checkpoint", str(tmp_path / "nope.pth"), "--dataset", "reds4", "--data_root",
          trees["reds"]], "checkpoint .*nope.pth does not exist"),
        (["--checkpoint", ck, "--dataset", "reds4", "--data_root", str(tmp_path / "missing")],
         "data root .*missing does not exist"),
        (["--checkpoint", ck, "--dataset", "vid4", "--data_root", trees["reds"]],
         "Vid4 GT: folder .*GT not found"),
        (["--checkpoint", f"{EDVR}/deblur.pth", "--dataset", "reds4", "--data_root",
          trees["reds"]], "restores x1 but REDS --task sr data is x4; this model fits --task "
                          "deblur or deblurcomp"),
        (["--checkpoint", ck, "--dataset", "reds4", "--task", "deblur", "--data_root",
          trees["reds"]], "restores x4 but REDS --task deblur data is x1; .* --task sr or srblur"),
        (["--checkpoint", f"{EDVR}/deblur.pth", "--dataset", "folder", "--data_root",
          trees["reds"]], "folder GT: folder .*REDS/GT not found"),
        (["--checkpoint", ck, "--dataset", "vid4", "--task", "deblur", "--data_root",
          trees["vid4"]], "only the x4 'sr' task"),
        (["--checkpoint", f"{EDVR}/sr_tsa.pth", "--stage2", f"{EDVR}/sr_tsa.pth", "--dataset",
          "reds4", "--data_root", trees["reds"]], "not an hr_in model"),
    ]
    cases.append((["--checkpoint", f"{EDVR}/deblur.pth", "--dataset", "folder", "--data_root",
                   odd_folder], "GT frame .*0000.png is 72x88, but the x1 model restores its "
                                "18x22 LQ frames to 18x22"))
    existing = tmp_path / "exists.json"
    existing.write_text("{}")
    cases.append((["--checkpoint", ck, "--dataset", "reds4", "--data_root", trees["reds"],
                   "--out", str(existing)], "exists.json exists; pass --overwrite"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    cases.append((["--checkpoint", str(bad), "--dataset", "reds4", "--data_root", trees["reds"]],
                  "bad.pth"))
    import re

    for argv, pattern in cases:
        assert ev.main(argv + ["--no_progress"]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[-1].startswith("eval.py: error: "), err
        assert re.search(pattern, err[-1]), (pattern, err[-1])
        assert "Traceback" not in "\n".join(err)
    assert existing.read_text() == "{}"
    from edvr_jax.evaluate import EvaluationError

    with pytest.raises(EvaluationError, match="restores x1 .* but reds sr data is x4"):
        evaluate_clipset(*load_model(f"{EDVR}/deblur.pth"), get_clipset("reds", trees["reds"],
                                                                        split="val"),
                         padding="replicate", progress=False)
