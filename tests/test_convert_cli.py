"""edvr-convert: .pth -> edvr_jax -> .pth round trips, and its error messages."""

import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from edvr_jax import load_model
from edvr_jax.convert.cli import main
from edvr_jax.convert.pth import load_pth, save_pth


@pytest.fixture(scope="module")
def io(data_dir):
    return np.load(data_dir / "edvr" / "io.npz")


def test_convert_then_load_reproduces_basicsr(tmp_path, data_dir, io, capsys):
    dst = tmp_path / "edvr"
    assert main([str(data_dir / "edvr" / "sr_tsa.pth"), str(dst)]) == 0
    printed = capsys.readouterr().out
    assert "num_feat=8, num_frame=5, deformable_groups=2" in printed and "total" in printed
    meta = json.loads((dst / "edvr_jax.json").read_text())
    assert meta["architecture"]["kwargs"]["num_feat"] == 8 and meta["layout"] == "basicsr"
    model, variables = load_model(dst)
    out = jax.jit(model.apply)(variables, io["sr_tsa/x"])
    assert np.abs(out - io["sr_tsa/y"]).max() / np.abs(io["sr_tsa/y"]).max() < 3e-6  # measured 2.3e-7


@pytest.mark.parametrize("src", ["sr_tsa.pth", "sr_tsa_mmagic.pth", "sr_tsa_2019.pth", "deblur.pth"])
def test_round_trip_to_torch_is_bit_exact(tmp_path, data_dir, src):
    """BasicSR, mmagic and 2019 files all come back as BasicSR's exact state_dict."""
    basicsr = "deblur.pth" if src == "deblur.pth" else "sr_tsa.pth"
    original = load_pth(data_dir / "edvr" / basicsr)["params"]
    assert main([str(data_dir / "edvr" / src), str(tmp_path / "m")]) == 0
    assert main([str(tmp_path / "m"), str(tmp_path / "back.pth"), "--to-torch"]) == 0
    back = load_pth(tmp_path / "back.pth")["params"]
    assert sorted(back) == sorted(original)  # every key once (order: sorted, as orbax keeps it)
    for k, v in original.items():
        assert back[k].dtype == np.float32 and back[k].shape == v.shape, k
        np.testing.assert_array_equal(back[k], v, err_msg=k)


def test_params_ema_is_preferred_and_selectable(tmp_path, data_dir, io):
    sd = load_pth(data_dir / "edvr" / "sr_tsa.pth")["params"]
    noisy = {k: v + np.float32(0.5) for k, v in sd.items()}
    save_pth({"params": noisy, "params_ema": sd}, tmp_path / "train.pth")
    x, y = io["sr_tsa/x"], io["sr_tsa/y"]
    err = lambda m, v: float(np.abs(jax.jit(m.apply)(v, x) - y).max() / np.abs(y).max())
    assert err(*load_model(tmp_path / "train.pth")) < 3e-6  # params_ema by default (measured 2.3e-7)
    assert err(*load_model(tmp_path / "train.pth", param_key="params")) > 1e-2


@pytest.mark.parametrize("case,match", [
    ("missing", "does not exist"),
    ("exists", "exists; pass --overwrite"),
    ("not_pth", "not a PyTorch checkpoint"),
    ("other_net", "not an EDVR state_dict"),
    ("bad_key", "no 'weights' entry"),
])
def test_errors_are_one_line_with_exit_code_2(tmp_path, data_dir, capsys, case, match):
    src, dst, extra = data_dir / "edvr" / "sr_tsa.pth", tmp_path / "out", []
    if case == "missing":
        src = tmp_path / "nope.pth"
    elif case == "exists":
        dst.mkdir()
    elif case == "not_pth":
        src = tmp_path / "notes.pth"
        src.write_text("hello")
    elif case == "other_net":
        src = tmp_path / "resnet.pth"
        save_pth({"params": {"layer1.0.conv1.weight": np.zeros((4, 3, 3, 3), np.float32)}}, src)
    elif case == "bad_key":
        extra = ["--param-key", "weights"]
    assert main([str(src), str(dst), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edvr-convert: error:") and match in err and "\n" not in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_console_script_is_installed(tmp_path, data_dir):
    exe = pathlib.Path(sys.executable).parent / "edvr-convert"
    assert exe.exists(), "pip install -e . registers the edvr-convert console script"
    r = subprocess.run([str(exe), str(data_dir / "edvr" / "sr_wotsa.pth"), str(tmp_path / "w")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "with_tsa=False" in r.stdout
