"""train.py's own bad inputs beyond the shared table (test_robustness_inputs.py): the real
entry point's flag errors and a corrupt PNG met by tf.data, ``train.init_from`` being
non-strict by design, and the training input path's frame conversions and mid-run failures.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from entry_points import tiny_config
from test_robustness_inputs import (
    GOOD,
    corrupt,
    entry_env,
    folder_tree,
    gray,
    pth_variants,
    rgba,
    train_on,
)

from edvr_jax.convert.pth import load_pth


@pytest.fixture(scope="module")
def b(tmp_path_factory):
    import types

    t = tmp_path_factory.mktemp("train_inputs")
    (t / "pth").mkdir()
    tree = folder_tree(t / "train_corrupt", n=3)
    corrupt(tree / "LQ" / "a" / "0001.png")
    return types.SimpleNamespace(pth={k: str(v) for k, v in pth_variants(t / "pth").items()},
                                 train={"corrupt": tree})


@pytest.mark.slow
def test_train_init_from_non_strict(b, caplog):
    """``train.init_from`` follows BasicSR's ``strict_load_g: false``: matching tensors are
    loaded, each missing / extra / misshapen one is logged and keeps its fresh value."""
    import jax

    from edvr_jax.convert import keymap
    from edvr_jax.train.loop import create_model, initial_params
    from edvr_jax.train.step import make_mesh

    sd = load_pth(GOOD)["params"]
    for name, gone in (("missing_key", "conv_hr.weight"), ("extra_key", "conv_extra.weight"),
                       ("misshapen_key", "conv_last.weight")):
        config = tiny_config(**{"train.init_from": b.pth[name]})
        model = create_model(config)
        caplog.clear()
        with caplog.at_level("WARNING", logger="edvr_jax.train"):
            params, report = initial_params(config, model, make_mesh())
        got = keymap.params_to_state_dict(jax.device_get(params))
        assert any(gone in p for p in report["skipped"]), report["skipped"]
        assert any(gone in r.getMessage() for r in caplog.records)
        # sr_tsa has 5 frames, tiny.py 3: the fusion's first convs differ in shape too
        assert any("fusion." in p for p in report["skipped"])
        np.testing.assert_array_equal(got["conv_first.weight"], sd["conv_first.weight"])
        if name != "misshapen_key":
            np.testing.assert_array_equal(got["conv_last.weight"], sd["conv_last.weight"])
        else:
            assert got["conv_last.weight"].shape == (3, 64, 3, 3)  # fresh, not the 5x5 zeros
            assert np.abs(got["conv_last.weight"]).max() > 0



@pytest.mark.slow
def test_train_py_entry_point_config_errors_and_corrupt_png(b, tmp_path):
    """The real train.py: a config key that does not exist, a missing config file, a value
    of the wrong type, then a corrupt PNG met by the tf.data pipeline in the middle of a clip
    (named, although TensorFlow's decoder does not)."""
    base = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "tiny.py"),
            "--workdir", str(tmp_path / "w")]
    r = subprocess.run([*base, "--config.train.no_such_key=3"], capture_output=True, text=True,
                       env=entry_env(), timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "train.no_such_key" in last and "does not exist" in last, last
    missing = [sys.executable, str(ROOT / "train.py"), f"--config={tmp_path / 'nope.py'}",
               "--workdir", str(tmp_path / "w")]
    for cmd, want in ((missing, "nope.py: no such file"),
                      ([*base, "--config.train.num_steps=many"], "num_steps=many: invalid literal")):
        r = subprocess.run(cmd, capture_output=True, text=True, env=entry_env(), timeout=300)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert want in r.stderr.strip().splitlines()[-1], r.stderr
    tree = b.train["corrupt"]
    r = subprocess.run([*base, "--config.data.dataset=folder", f"--config.data.root={tree}/GT",
                        f"--config.data.lq_root={tree}/LQ", "--config.train.num_steps=2"],
                       capture_output=True, text=True, env=entry_env(), timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: ") and "LQ/a/0001.png is not a readable image" in last



def test_training_input_names_a_frame_that_vanishes_mid_run(tmp_path):
    """A frame deleted (or unreadable) after the run started: the tf.data failure is traced
    back to the file through the stateless sample of the failing step."""
    from edvr_jax import data

    tree = folder_tree(tmp_path / "t", n=3)
    clips = data.get_clipset("folder", None, gt_root=str(tree / "GT"), lq_root=str(tree / "LQ"))
    batches = data.iterate_batches(clips, num_frame=3, gt_size=64, seed=0, global_batch_size=2,
                                   process_index=0, process_count=1)
    (tree / "GT" / "a" / "0001.png").unlink()  # the only centre frame of a 3-frame clip
    with pytest.raises(data.DatasetError) as err:
        next(batches)
    msg = str(err.value)
    assert msg.startswith("training step 1: cannot read frame ") and "GT/a/0001.png" in msg, msg
    assert "\n" not in msg


def test_training_input_converts_grayscale_and_rgba_and_takes_any_frame_size(tmp_path, caplog):
    """train.py's input path (create_clipsets + create_train_iterator, as in the loop):
    grayscale frames are replicated to RGB and alpha dropped, with a warning naming the
    frame; frames whose size is not a multiple of 4 train fine (crops are 16x16)."""
    from edvr_jax.train.loop import create_clipsets, create_train_iterator

    for name, fn in (("gray", gray), ("rgba", rgba)):
        edit = lambda kind, t, arr, fn=fn: fn(arr) if t == 0 else None  # noqa: E731
        tree = folder_tree(tmp_path / name, n=3, lq_hw=(18, 22), edit=edit)
        config = tiny_config(**train_on(tree, **{"data.use_hflip": False, "data.use_rot": False,
                                                 "train.batch_size": 2}))
        clips, _ = create_clipsets(config)
        caplog.clear()
        with caplog.at_level("WARNING", logger="edvr_jax.data"):
            batch = next(create_train_iterator(config, clips, 0))
        warned = " ".join(r.getMessage() for r in caplog.records)
        assert "LQ/a/0000.png is " + ("L" if name == "gray" else "RGBA") in warned, warned
        assert ("replicated to RGB" if name == "gray" else "alpha channel is dropped") in warned
        assert batch["lq"].shape == (2, 3, 16, 16, 3) and batch["gt"].shape == (2, 64, 64, 3)
        frame0 = batch["lq"][:, 0]  # LQ frame 0 of the only clip: the converted one
        if name == "gray":
            np.testing.assert_array_equal(frame0[..., 0], frame0[..., 1])
            np.testing.assert_array_equal(frame0[..., 0], frame0[..., 2])
        else:
            assert not np.array_equal(frame0[..., 0], frame0[..., 1])  # colour kept
