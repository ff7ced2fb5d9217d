"""Preemption and faults during training: nothing is lost.

One uninterrupted ``train.py`` run of configs/tiny.py with periodic validation is the
baseline. A second run of the same command is killed with SIGKILL at 4 points (during the
very first asynchronous checkpoint save, during validation, in the middle of a step, and
after the final checkpoint but before the export), and once runs out of disk space while
writing a checkpoint (a size-limited tmpfs on its checkpoints folder); after each fault the
same command is started again. Every restart resumes from the latest complete checkpoint,
that checkpoint equals the baseline's at the same step bit for bit, and the finished run
ends with a TrainState (parameters and optimizer state) and an export bit-identical (CPU)
to the baseline's. A read-only checkpoints folder is refused up front. SIGTERM and NaN
are covered by test_train_loop.py.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import CACHE, ROOT

# configs/tiny.py shortened to 6 steps, saving and validating (tiny.py has it off) every 2.
SHORT = ["train.num_steps=6", "train.checkpoint_every=2", "train.log_every=2",
         "eval.every=2", "eval.max_clips=1", "eval.max_frames=3"]
KILLS = [  # (fault point, step): the run saves at 2, 4, 6 and validates at the same steps
    ("save", 2),  # the very first checkpoint is being written in the background
    ("validation", 4),
    ("step", 5),  # the step has been dispatched, the device is computing
    ("export", 6),  # checkpoint 6 is complete, the export not yet written
]


def train(workdir, *overrides, faults=""):
    env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="1", JAX_COMPILATION_CACHE_DIR=str(CACHE),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5",
               EDVR_JAX_CACHE=str(CACHE / "demo_clips"), EDVR_JAX_FAULTS=faults,
               XLA_FLAGS="--xla_force_host_platform_device_count=1", TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "tiny.py"),
           "--workdir", str(workdir), *[f"--config.{o}" for o in (*SHORT, *overrides)]]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    return r.returncode, r.stderr


def complete_steps(workdir) -> list[int]:
    """Steps with a complete checkpoint (orbax renames a save into place when it is whole)."""
    d = workdir / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def state_at(workdir, step) -> dict:
    from edvr_jax.train.checkpoints import restore_to_host

    state, got = restore_to_host(workdir, step)
    assert got == step
    return state


def assert_bit_identical(a, b, what):
    import jax

    la, ta = jax.tree_util.tree_flatten_with_path(a)
    lb, tb = jax.tree_util.tree_flatten_with_path(b)
    assert ta == tb, what
    for (path, x), (_, y) in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y),
                                      err_msg=f"{what}: {jax.tree_util.keystr(path)}")


def resumed_from(stderr) -> int | None:
    m = re.search(r"resumed from \S+ at step (\d+)", stderr)
    return int(m.group(1)) if m else None


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    wd = tmp_path_factory.mktemp("baseline")
    code, err = train(wd)
    assert code == 0, err
    assert complete_steps(wd) == [2, 4, 6]
    return wd


class Tmpfs:
    """A size-limited tmpfs mounted on a folder (needs root and mount permission)."""

    def __init__(self, path, size_bytes):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs",
                            str(path)], capture_output=True, text=True)
        self.ok = r.returncode == 0
        self.reason = r.stderr.strip()

    def resize(self, size_bytes):
        subprocess.run(["mount", "-o", f"remount,size={size_bytes}", str(self.path)], check=True)

    def close(self):
        if self.ok:
            subprocess.run(["umount", str(self.path)], check=False)
            self.ok = False


def tmpfs_bytes(folder) -> int:
    """What ``folder``'s files take on a tmpfs (whole pages, one per folder)."""
    total = 0
    for root, _, files in os.walk(folder):
        total += 4096 + sum(4096 * math.ceil(os.path.getsize(os.path.join(root, f)) / 4096)
                     for f in files)
    return total


@pytest.mark.slow
def test_kill_at_4_points_and_a_full_disk_then_resume_loses_nothing(tmp_path, baseline):
    wd = tmp_path / "run"
    one_checkpoint = tmpfs_bytes(baseline / "checkpoints" / "2")
    disk = Tmpfs(wd / "checkpoints", int(1.5 * one_checkpoint) // 4096 * 4096)
    try:
        latest_before: list = []
        code, err = train(wd, faults="kill@save:2")  # the very first save
        assert code == -signal.SIGKILL, err
        latest_before.append(complete_steps(wd))
        if disk.ok:  # room for one checkpoint only: checkpoint 4 cannot be written
            code, err = train(wd)
            assert code == 1, err
            assert "Traceback" not in err, err
            last = err.strip().splitlines()[-1]
            assert last.startswith("train.py: error: could not write checkpoint 4 in "), last
            assert "No space left on device" in last and "checkpoint 2 is intact" in last, last
            assert complete_steps(wd) == [2], "the previous checkpoint must stay complete"
            assert_bit_identical(state_at(wd, 2), state_at(baseline, 2), "after disk full")
            disk.resize(64 * 2**20)
        for point, step in KILLS[1:]:
            latest = complete_steps(wd)
            code, err = train(wd, faults=f"kill@{point}:{step}")
            assert code == -signal.SIGKILL, (point, step, err)
            assert resumed_from(err) == (latest[-1] if latest else None), (point, err[-2000:])
            latest_before.append(complete_steps(wd))
            steps = complete_steps(wd)
            assert steps, point
            assert_bit_identical(state_at(wd, steps[-1]), state_at(baseline, steps[-1]),
                                 f"latest checkpoint after kill@{point}:{step}")
        # The kill in the middle of step 5 may come before the asynchronous save of 4 is
        # complete: then 2 is still the latest, and the restart resumes from it (checked above).
        assert latest_before[1] == [2] and latest_before[2] in ([2], [2, 4]), latest_before
        assert latest_before[3] == [2, 4, 6], latest_before
        assert not (wd / "export").exists(), "killed before the export"
        code, err = train(wd)
        assert code == 0, err
        assert resumed_from(err) == 6
        assert complete_steps(wd) == [2, 4, 6]
        assert not list((wd / "checkpoints").glob("*tmp*")), "a half-written save was left"
        assert_bit_identical(state_at(wd, 6), state_at(baseline, 6), "final TrainState")
        from edvr_jax import load_model

        ours, ref = load_model(wd)[1]["params"], load_model(baseline)[1]["params"]
        assert_bit_identical(ours, ref, "export")
        assert json.loads((wd / "export" / "edvr_jax.json").read_text())["step"] == 6
        if not disk.ok:
            pytest.skip(f"kill points passed; the full-disk case needs mount ({disk.reason})")
    finally:
        disk.close()


def test_read_only_checkpoints_folder_is_refused_up_front(tmp_path):
    """A workdir whose checkpoints folder cannot be written fails before the first step (as
    root, chmod does not stop writes: a read-only tmpfs does)."""
    import contextlib
    import io

    import eval_trees
    from entry_points import tiny_config
    from PIL import Image

    from edvr_jax.train.cli import run

    wd = tmp_path / "run"
    (wd / "checkpoints").mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs",
                        str(wd / "checkpoints")], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"needs mount: {r.stderr.strip()}")
    try:
        for k, gt in enumerate(eval_trees.scene(0, 3, (64, 64))):
            for kind, arr in (("GT", gt), ("LQ", eval_trees.downsample4(gt))):
                (tmp_path / kind / "a").mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(tmp_path / kind / "a" / f"{k}.png")
        config = tiny_config()
        config.data.dataset, config.data.root = "folder", str(tmp_path / "GT")
        config.data.lq_root = str(tmp_path / "LQ")
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert run(config, str(wd)) == 1
        last = err.getvalue().strip().splitlines()[-1]
        assert last.startswith(f"train.py: error: workdir {wd}: cannot write checkpoints to "
                               f"{wd / 'checkpoints'}: Read-only file system"), last
        assert "Traceback" not in err.getvalue()
    finally:
        subprocess.run(["umount", str(wd / "checkpoints")], check=False)


def test_every_kill_point_of_the_training_loop_is_exercised():
    """The chain above kills the run at each fault point the loop offers, none left out."""
    sources = (ROOT / "edvr_jax" / "train" / "loop.py").read_text()
    points = set(re.findall(r"faults\.maybe_kill\(\"(\w+)\"", sources))
    assert points, "no fault points found in train/loop.py"
    assert points == {point for point, _ in KILLS}, points
