"""edvr-inspect: statistics against BasicSR 1.4.2 with forward hooks, flow colours against
torchvision, the report's pictures and page (fixtures: tests/make_fixtures_inspect.py)."""

from __future__ import annotations

import colorsys
import json
import pathlib
import re

import numpy as np
import pytest

from edvr_jax.inspection.pictures import flow_to_color

DATA = pathlib.Path(__file__).resolve().parent / "data"
FIX = DATA / "inspect"
CKPT = DATA / "edvr" / "sr_tsa.pth"


@pytest.fixture(scope="module")
def inspected(tmp_path_factory):
    from edvr_jax.inspection.cli import main

    out = tmp_path_factory.mktemp("inspect") / "frame1"
    status = main([str(FIX / "clip"), "--checkpoint", str(CKPT), "--frame", "1", "--out", str(out)])
    assert status == 0
    return out, json.loads((out / "inspect.json").read_text())


def test_statistics_match_basicsr_hooks(inspected):
    _, got = inspected
    ref = json.loads((FIX / "expected.json").read_text())
    assert got["frame"] == 1 and got["window"] == ref["window"] == [4, 0, 1, 2, 3]
    assert list(got["dcn"]) == ["pcd_align.dcn_pack.l3", "pcd_align.dcn_pack.l2",
                                "pcd_align.dcn_pack.l1", "pcd_align.cas_dcnpack"]
    for name, stats in ref["dcn"].items():
        for key in ("offset_absmean", "offset_max", "mask_mean"):
            # float32 against BasicSR in float64: measured <= 2.3e-7 relative.
            np.testing.assert_allclose(got["dcn"][name][key], stats[key], rtol=3e-6,
                                       err_msg=f"{name} {key}")
    np.testing.assert_allclose(got["tsa"]["temporal_attention_mean"],
                               ref["tsa"]["temporal_attention_mean"], rtol=3e-6)
    np.testing.assert_allclose(got["tsa"]["spatial_attention_mean"],
                               ref["tsa"]["spatial_attention_mean"], rtol=3e-6)
    for key in ("feature_diff_before", "feature_diff_after"):
        np.testing.assert_allclose(got["alignment"][key], ref["alignment"][key], rtol=1e-5,
                                   atol=1e-8, err_msg=key)
    # The panning clip: alignment removes most of the difference to the centre.
    before, after = got["alignment"]["feature_diff_before"], got["alignment"]["feature_diff_after"]
    assert before[2] == after[2] == 0.0
    assert all(a < 0.2 * b for i, (a, b) in enumerate(zip(after, before, strict=True)) if i != 2)
    assert got["warnings"] == []  # offsets of a few pixels, far below 50


def test_restored_frame_is_basicsrs(inspected):
    from PIL import Image

    out, _ = inspected
    got = np.asarray(Image.open(out / "restored.png"), np.int16)
    ref = np.asarray(Image.open(FIX / "restored.png"), np.int16)
    assert got.shape == ref.shape == (64, 96, 3)
    assert np.abs(got - ref).max() <= 1 and np.mean(got != ref) < 0.01


def test_report_references_only_existing_files(inspected):
    out, got = inspected
    page = (out / "report.html").read_text()
    refs = re.findall(r'src="([^"]+)"', page)
    assert len(refs) == len(got["pictures"]) > 50
    assert sorted(set(refs)) == sorted(got["pictures"])
    assert all((out / r).is_file() for r in refs)
    # every DCN level, every window frame: flow, groups, magnitude, mask
    for d in ("l3", "l2", "l1", "cas"):
        for i in range(5):
            for kind in ("flow", "flowgroups", "mag", "mask"):
                assert f"{kind}_{d}_t{i}.png" in refs
    assert "tsa_spatial.png" in refs and "tsa_temporal_t4.png" in refs
    assert f"{got['dcn']['pcd_align.cas_dcnpack']['offset_absmean'][0]:.4g}" in page


def test_large_offsets_are_marked_and_listed():
    import jax

    from edvr_jax import load_model
    from edvr_jax.inspection import inspect_window, large_offsets
    from edvr_jax.inspection.report import render

    model, variables = load_model(str(CKPT))
    params = jax.tree_util.tree_map(np.asarray, variables["params"])
    bias = params["pcd_align"]["cas_dcnpack"]["conv_offset"]["bias"].copy()
    g9 = bias.shape[0] // 3
    bias[: 2 * g9] += 80.0  # every offset of the cascading DCN near 80 pixels
    params["pcd_align"]["cas_dcnpack"]["conv_offset"]["bias"] = bias
    window = np.random.default_rng(0).random((5, 16, 24, 3), np.float32)
    ins = inspect_window(model, {"params": params}, window)
    found = large_offsets(ins, [4, 0, 1, 2, 3])
    assert {w["dcn"] for w in found} == {"pcd_align.cas_dcnpack"}
    assert [w["frame"] for w in found] == [4, 0, 1, 2, 3]
    assert all(w["offset_absmean"] > 50 and w["bbox"] == [0, 16, 0, 24] for w in found)
    pics = render(ins)
    # the magnitude map of the cascading DCN carries the green outline; l1's does not
    assert (pics["mag_cas_t0"] == [0, 255, 0]).all(-1).any()
    assert not (pics["mag_l1_t0"] == [0, 255, 0]).all(-1).any()


def test_tiled_inspection_matches_whole_frame():
    from edvr_jax import load_model
    from edvr_jax.inspection import inspect_window, statistics

    model, variables = load_model(str(CKPT))
    window = np.random.default_rng(1).random((5, 18, 30, 3), np.float32)  # not multiples of 4
    whole = inspect_window(model, variables, window)
    tiled = inspect_window(model, variables, window, tile=8, tile_overlap=200)
    assert whole.restored.shape == tiled.restored.shape == (72, 120, 3)
    np.testing.assert_array_equal(np.abs(whole.restored.astype(int) - tiled.restored) <= 1, True)
    a, b = statistics(whole), statistics(tiled)
    for name in a["dcn"]:
        np.testing.assert_allclose(a["dcn"][name]["offset_absmean"],
                                   b["dcn"][name]["offset_absmean"], rtol=1e-5)
    assert whole.dcn["pcd_align.dcn_pack.l3"]["flow"].shape == (5, 18, 30, 2, 2)


# ---------------------------------------------------------------- flow colours


def _hue(rgb) -> float:
    """HSV hue in degrees."""
    return 360 * colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255))[0]


def _hue_dist(a, b) -> float:
    d = abs(_hue(a) - _hue(b)) % 360
    return min(d, 360 - d)


def test_flow_colors_equal_torchvisions_flow_to_image():
    ref = np.load(FIX / "flow_colors.npz")
    for name in ("right", "down", "rotation", "random"):
        got = flow_to_color(ref[f"{name}/flow"])
        diff = np.abs(got.astype(int) - ref[f"{name}/image"])
        assert diff.max() <= 1, name  # float64 here, float32 in torchvision


def test_flow_color_hues_of_synthetic_fields():
    h, w = 9, 9
    right = np.zeros((h, w, 2))
    right[..., 0] = 2.0
    down = np.zeros((h, w, 2))
    down[..., 1] = 2.0
    img_r, img_d = flow_to_color(right), flow_to_color(down)
    assert (img_r == img_r[0, 0]).all() and (img_d == img_d[0, 0]).all()  # uniform fields
    hue_r, hue_d = _hue(img_r[0, 0]), _hue(img_d[0, 0])
    assert hue_r > 350 or hue_r < 10  # red
    assert 30 < hue_d < 60  # orange-yellow
    left, up = flow_to_color(-right)[0, 0], flow_to_color(-down)[0, 0]
    assert 175 < _hue(left) < 215 and 250 < _hue(up) < 300  # cyan, violet
    # full saturation at max magnitude, white for no motion
    assert min(img_r[0, 0]) < 10 and (flow_to_color(np.zeros((2, 2, 2))) == 255).all()
    # rotation (counter-clockwise on screen, y down): each point has its vector's hue
    yy, xx = np.mgrid[-4:5, -4:5].astype(float)
    rot = np.stack([yy, -xx], -1)  # at (y=-4, x=0), above the centre, the vector points left
    img = flow_to_color(rot)
    # (the wheel's first and last colours, hues 0 and 350, meet at "right")
    assert _hue_dist(img[0, 4], left) < 3  # top: moving left
    assert _hue_dist(img[8, 4], img_r[0, 0]) < 12  # bottom: moving right
    assert _hue_dist(img[4, 0], img_d[0, 0]) < 3  # left: moving down
    assert _hue_dist(img[4, 8], up) < 3  # right: moving up
    assert (img[4, 4] == 255).all()  # the centre does not move


def test_user_mistakes_are_one_line(tmp_path, capsys):
    from edvr_jax.inspection.cli import main

    args = [str(FIX / "clip"), "--checkpoint", str(CKPT), "--out", str(tmp_path / "o")]
    assert main(args + ["--frame", "7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"edvr-inspect: error: --frame 7 is outside {FIX / 'clip'}, which has 7 "
                   f"frames (valid 0..6)"]
    assert not (tmp_path / "o").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert main(args[:-1] + [str(tmp_path / "full"), "--frame", "0"]) == 2
    assert "exists and is not empty; pass --overwrite" in capsys.readouterr().err


def test_validation_pictures_go_to_tensorboard(tmp_path):
    """train.loop.inspection_pictures on a clip, then Reporter.validation writes them as
    TensorBoard images next to the preview grid."""
    import tensorflow as tf
    from entry_points import tiny_config

    from edvr_jax import load_model
    from edvr_jax.data.clips import Clip
    from edvr_jax.train.loop import inspection_pictures
    from edvr_jax.train.reporting import Reporter

    model, variables = load_model(str(CKPT))
    frames = tuple(str(p) for p in sorted((FIX / "clip").glob("*.png")))
    clip = Clip("fixture", frames, (str(FIX / "restored.png"),) * len(frames))
    pictures = inspection_pictures(model, variables["params"], clip, "reflection_circle", index=1)
    assert set(pictures) == {f"offsets/{d}_{k}" for d in ("l3", "l2", "l1", "cas")
                             for k in ("flow", "magnitude", "mask")} | {"tsa/temporal", "tsa/spatial"}
    # five window frames side by side, 4-pixel gaps
    flow = pictures["offsets/l1_flow"]
    one = 192 // 16 * 16  # flow pictures are enlarged to >= 192 pixels on the short side
    assert flow.shape == (one, 5 * one * 24 // 16 + 4 * 4, 3)

    config = tiny_config()
    reporter = Reporter(config, tmp_path, start=0, total=1)
    reporter.validation(7, {"mean": {"psnr": 20.0}, "preview": np.zeros((8, 8, 3), np.uint8),
                            "inspection": pictures}, 0.1)
    reporter.close()
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(str(next((tmp_path / "tb").glob("events*")))):
        tags |= {v.tag for v in event.summary.value if event.step == 7}
    assert {f"inspect/{t}" for t in pictures} | {"val/lq_bicubic_output_gt", "val/psnr"} <= tags


def test_reporter_counts_finite_steps(tmp_path):
    """metrics.jsonl's "finite" is 1.0 when every step since the last log was finite (a sum
    of bool arrays is their OR, which made it 1/log_every)."""
    import jax.numpy as jnp
    from entry_points import tiny_config

    from edvr_jax.train.reporting import Reporter

    reporter = Reporter(tiny_config(), tmp_path, start=0, total=10)
    for s, ok in enumerate((True, True, True)):
        reporter.step(s, {"loss": jnp.float32(1.0), "lr": jnp.float32(1e-3), "grad_norm": jnp.float32(1),
                          "finite": jnp.asarray(ok)})
    assert reporter.log(3)["finite"] == 1.0
    for s, ok in enumerate((True, False)):
        reporter.step(4 + s, {"loss": jnp.float32(1.0), "lr": jnp.float32(1e-3),
                              "grad_norm": jnp.float32(1), "finite": jnp.asarray(ok)})
    assert reporter.log(5)["finite"] == 0.0
    reporter.close()
