"""A diverged model is refused by eval.py, validation and edvr-restore; one function decides
the temporal border padding for every tool."""

import json
import os
import types

import eval_trees
import numpy as np
import pytest
from entry_points import load_eval_py, tiny_config
from PIL import Image

from edvr_jax import load_model

EDVR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "edvr")
DIVERGED = "is not finite (NaN/inf): the model has diverged"


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory):
    """sr_tsa with NaN in the last convolution's bias, saved as an edvr-convert directory."""
    from edvr_jax.convert.api import save_model

    model, variables = load_model(f"{EDVR}/sr_tsa.pth")
    params = dict(variables["params"])
    last = dict(params["conv_last"])
    last["bias"] = np.full_like(np.asarray(last["bias"]), np.nan)
    params["conv_last"] = last
    path = tmp_path_factory.mktemp("nan") / "model"
    save_model(path, model, params)
    return str(path), model, params


@pytest.fixture(scope="module")
def reds(tmp_path_factory):
    return eval_trees.make_reds(str(tmp_path_factory.mktemp("reds")), num_frames=5)


def lq_folder(path, n=5, lq=(32, 32)):
    path.mkdir()
    for i, g in enumerate(eval_trees.scene(3, n, (4 * lq[0], 4 * lq[1]))):
        Image.fromarray(eval_trees.downsample4(g)).save(path / f"{i:02d}.png")
    return path


def one_error_line(err, tool):
    """The last stderr line is the tool's error, the only one (XLA/TF log lines aside)."""
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith(f"{tool}: error: "), lines
    assert sum(line.startswith(f"{tool}:") for line in lines) == 1, lines
    assert "Traceback" not in err
    return lines[-1]


def test_eval_py_refuses_nan_outputs(nan_model, reds, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = load_eval_py().main(["--checkpoint", nan_model[0], "--dataset", "reds4", "--data_root", reds,
                              "--out", str(out), "--batch", "2", "--no_progress"])
    line = one_error_line(capsys.readouterr().err, "eval.py")
    assert rc == 2
    assert f"model output for clip 000 frame 00000000 {DIVERGED}" in line, line
    assert not out.exists()


def test_validation_refuses_nan_outputs(nan_model, reds):
    from edvr_jax.data import get_clipset
    from edvr_jax.train.loop import TrainingError, validate

    _, model, params = nan_model
    state = types.SimpleNamespace(ema_params=None, params=params)
    clips = get_clipset("reds", reds, split="val")
    with pytest.raises(TrainingError) as e:
        validate(tiny_config(**{"eval.max_frames": 0, "eval.max_clips": 1}), model, state, clips, None, None, 7)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"validation at step 7: model output for clip 000 frame 00000000 {DIVERGED}"), msg


def test_restore_refuses_nan_outputs(nan_model, tmp_path, capsys):
    from edvr_jax.evaluate.restore import main

    src = lq_folder(tmp_path / "in")
    rc = main([str(src), str(tmp_path / "out"), "--checkpoint", nan_model[0], "--batch", "2",
               "--no-progress"])
    line = one_error_line(capsys.readouterr().err, "edvr-restore")
    assert rc == 2
    assert f"model output for clip {src} frame 00 {DIVERGED}" in line, line
    assert not list((tmp_path / "out").glob("*.png"))


def test_restorer_names_the_nan_window_also_when_tiled():
    """Only window 1 of 3 is NaN (its input is): the flag array points at it, tiled or not."""
    from edvr_jax.evaluate.inference import NonFiniteOutput, Restorer

    model, variables = load_model(f"{EDVR}/sr_tsa.pth")
    x = np.full((3, 5, 16, 16, 3), 0.5, np.float32)
    x[1, 2, 3, 4, 0] = np.nan
    for tile in (None, 8):
        r = Restorer(model, variables, batch_size=2, quantize=True, tile=tile, tile_overlap=4, mesh=None)
        with pytest.raises(NonFiniteOutput) as e:
            r(x)
        assert e.value.index == 1, tile
    assert Restorer(model, variables, batch_size=2, quantize=True, mesh=None)(x[[0, 2]]).dtype == np.uint8


# ----------------------------------------------------------------------------- padding


def test_one_function_decides_the_padding():
    from edvr_jax.evaluate.protocols import get_protocol, temporal_padding
    from edvr_jax.evaluate.stream import default_padding

    srblur, sr, deblur = (load_model(f"{EDVR}/{n}.pth")[0] for n in ("srblur", "sr_tsa", "deblur"))
    assert srblur.scale == 4 and srblur.with_predeblur and deblur.hr_in
    for model, want in ((srblur, "replicate"), (sr, "reflection_circle"), (deblur, "replicate")):
        assert temporal_padding(model) == default_padding(model) == want
        assert get_protocol("folder", model=model).padding == want
    assert get_protocol("reds4", "srblur", model=srblur).padding == "replicate"
    assert get_protocol("reds4", "srblur").padding == "replicate"
    assert get_protocol("vid4", model=sr).padding == "reflection_circle"


@pytest.mark.slow
def test_srblur_model_gets_replicate_in_eval_py_and_restore(tmp_path, capsys):
    from edvr_jax.evaluate.restore import main

    ck = f"{EDVR}/srblur.pth"
    src = lq_folder(tmp_path / "in", n=3)
    assert main([str(src), str(tmp_path / "out"), "--checkpoint", ck, "--no-progress"]) == 0
    assert "padding replicate" in capsys.readouterr().out
    root = tmp_path / "folder"
    for i, g in enumerate(eval_trees.scene(5, 3, (128, 128))):
        for sub, img in (("GT", g), ("LQ", eval_trees.downsample4(g))):
            (root / sub / "a").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / sub / "a" / f"{i:02d}.png")
    out = tmp_path / "r.json"
    assert load_eval_py().main(["--checkpoint", ck, "--dataset", "folder", "--data_root", str(root),
                                "--out", str(out), "--no_progress"]) == 0
    assert "padding replicate" in capsys.readouterr().out
    assert json.loads(out.read_text())["settings"]["padding"] == "replicate"


@pytest.mark.parametrize("name", ["tiny", "edvr_m_reds", "edvr_l_srblur_reds", "edvr_l_deblur_reds"])
def test_configs_validate_with_the_protocol_padding(name):
    """What validation uses (config.eval.padding) is what eval.py/edvr-restore would pick."""
    from entry_points import ROOT

    from edvr_jax.demo import load_config
    from edvr_jax.evaluate.protocols import temporal_padding
    from edvr_jax.train.loop import create_model

    c = load_config(ROOT / "configs" / f"{name}.py")
    assert c.eval.padding == temporal_padding(create_model(c), c.data.get("task"))
