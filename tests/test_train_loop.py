"""train.py end to end on the tiny config: loss falls, resume and kills are bit-exact,
8 devices and 2 processes agree with 1, the TSA freeze survives a resume, NaN and
SIGTERM are handled. Every run is a real `python train.py` subprocess."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import CACHE, ROOT
from entry_points import tiny_config

from edvr_jax.convert import keymap

pytestmark = pytest.mark.slow  # every test here runs python train.py

# configs/tiny.py shortened to the fewest steps that prove each claim: 12 steps,
# checkpoints at 4, 8 and 12, a log line every 2 steps.
BASE = ["train.num_steps=12", "train.checkpoint_every=4", "train.log_every=2"]
STEPS = 12


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("demo_cache")


def train(workdir, *overrides, demo_cache, devices=1, faults="", extra_args=(), wait=True):
    env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="1", JAX_COMPILATION_CACHE_DIR=str(CACHE),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5", EDVR_JAX_CACHE=str(demo_cache),
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", EDVR_JAX_FAULTS=faults,
               TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "tiny.py"),
           "--workdir", str(workdir), *[f"--config.{o}" for o in overrides], *extra_args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def state_at(workdir, step):
    from edvr_jax.train.checkpoints import restore_to_host

    return restore_to_host(workdir, step)[0]


def flat(params):
    return keymap.params_to_state_dict(params)


def assert_identical(a, b):
    fa, fb = flat(a), flat(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, demo_cache):
    wd = tmp_path_factory.mktemp("baseline")
    code, out, err = train(wd, *BASE, demo_cache=demo_cache)
    assert code == 0, err
    return wd


def test_loss_falls_on_held_out_windows(baseline, demo_cache, monkeypatch):
    """Charbonnier loss of the initial vs the trained model on the same unseen windows."""
    monkeypatch.setenv("EDVR_JAX_CACHE", str(demo_cache))
    from edvr_jax import data, load_model
    from edvr_jax.train.loop import create_clipsets, create_model, initial_params
    from edvr_jax.train.loss import charbonnier_loss
    from edvr_jax.train.step import make_mesh

    config = tiny_config()
    model = create_model(config)
    params0, _ = initial_params(config, model, make_mesh())
    _, trained = load_model(baseline)
    train_clips, _ = create_clipsets(config)
    batches = data.make_train_dataset(train_clips, num_frame=3, gt_size=64, seed=999,
                                      global_batch_size=8).take(4).as_numpy_iterator()
    loss = jax.jit(lambda p, b: charbonnier_loss(model.apply({"params": p}, b["lq"]), b["gt"]))
    before, after = zip(*[(float(loss(params0, b)), float(loss(trained["params"], b))) for b in batches], strict=True)
    assert np.mean(after) < 0.95 * np.mean(before), (before, after)


def test_metrics_checkpoints_and_export_are_written(baseline):
    logs = [json.loads(line) for line in (baseline / "metrics.jsonl").read_text().splitlines()]
    train_logs = [r for r in logs if r["split"] == "train"]
    assert [r["step"] for r in train_logs] == [2, 4, 6, 8, 10, 12]
    for key in ("lr", "grad_norm", "param_norm", "update_norm", "steps_per_s", "samples_per_s",
                "offset/dcn_pack_l1", "offset/cas_dcnpack"):
        assert key in train_logs[-1]
    assert list((baseline / "tb").glob("events.out.tfevents.*"))
    assert sorted(int(p.name) for p in (baseline / "checkpoints").iterdir() if p.name.isdigit()) == [4, 8, 12]
    from edvr_jax import load_model

    model, variables = load_model(baseline)  # the final export
    assert_identical(variables["params"], state_at(baseline, STEPS)["params"])


def test_kills_during_save_and_step_resume_bit_exact(tmp_path, baseline, demo_cache):
    """kill -9 right after an async save starts, then in the middle of a step; then finish."""
    code, _, _ = train(tmp_path, *BASE, demo_cache=demo_cache, faults="kill@save:8")
    assert code == -signal.SIGKILL
    code, _, err = train(tmp_path, *BASE, demo_cache=demo_cache, faults="kill@step:10")
    assert code == -signal.SIGKILL and "resumed from" in err
    code, _, err = train(tmp_path, *BASE, demo_cache=demo_cache)
    assert code == 0, err
    assert "resumed from" in err
    assert_identical(state_at(tmp_path, STEPS)["params"], state_at(baseline, STEPS)["params"])
    assert not list((tmp_path / "checkpoints").glob("*tmp*")), "a half-written save was left behind"


def test_eight_devices_match_one(tmp_path, baseline, demo_cache):
    code, _, err = train(tmp_path, *BASE, "train.num_steps=4", demo_cache=demo_cache, devices=8)
    assert code == 0, err
    ours, ref = flat(state_at(tmp_path, 4)["params"]), flat(state_at(baseline, 4)["params"])
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-4, atol=ADAM_ATOL, err_msg=k)
    assert_same_losses(tmp_path, baseline)


# Adam divides each coordinate's gradient by its own running RMS, so float round-off
# in a near-zero gradient (summed in another order on several devices) can move that
# coordinate's step by up to lr = 1e-3; over a few steps some coordinates (about 1 in
# 500) drift by ~1e-4. Allow a quarter of one step; the losses must agree to 1e-5.
ADAM_ATOL = 2.5e-4


def assert_same_losses(workdir, baseline):
    """The logged losses (6-step averages) agree to float round-off."""
    def losses(wd):
        rows = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if r["split"] == "train"]
    ours = losses(workdir)
    np.testing.assert_allclose(ours, losses(baseline)[:len(ours)], rtol=1e-5)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_processes(workdir, demo_cache, *overrides):
    """Two train.py processes of 4 devices each on one workdir (a simulated 2-host run)."""
    addr = f"127.0.0.1:{free_port()}"
    return [train(workdir, *BASE, *overrides, demo_cache=demo_cache, devices=4, wait=False,
                  extra_args=("--coordinator_address", addr, "--num_processes", "2", "--process_id", str(i)))
            for i in range(2)]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, demo_cache):
    """An uninterrupted two-process run of BASE: the reference for the preemption test."""
    wd = tmp_path_factory.mktemp("two_processes")
    procs = two_processes(wd, demo_cache)
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    return wd


def test_two_processes_match_one(two_process_run, baseline):
    ours, ref = flat(state_at(two_process_run, 4)["params"]), flat(state_at(baseline, 4)["params"])
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-4, atol=ADAM_ATOL, err_msg=k)
    assert_same_losses(two_process_run, baseline)


def test_tsa_only_phase_survives_a_resume(tmp_path, demo_cache):
    args = ["train.num_steps=6", "train.checkpoint_every=2", "train.log_every=2", "train.tsa_iter=5"]
    code, _, _ = train(tmp_path, *args, demo_cache=demo_cache, faults="kill@save:4")
    assert code == -signal.SIGKILL
    code, _, err = train(tmp_path, *args, demo_cache=demo_cache)
    assert code == 0 and "resumed from" in err, err
    s2, s4, s6 = (flat(state_at(tmp_path, s)["params"]) for s in (2, 4, 6))
    fusion = {k for k in s2 if k.startswith("fusion.")}
    assert fusion and len(fusion) < len(s2)
    for k in s2:
        if k in fusion:
            assert not np.array_equal(s2[k], s4[k]), k  # TSA trains throughout
        else:
            np.testing.assert_array_equal(s2[k], s4[k], err_msg=k)  # frozen for steps 1..4
            assert not np.array_equal(s4[k], s6[k]), k  # unfrozen from step 5 (tsa_iter)


def test_nan_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, demo_cache):
    args = ["train.num_steps=12", "train.checkpoint_every=4", "train.log_every=2"]
    code, _, err = train(tmp_path, *args, demo_cache=demo_cache, faults="nan@step:6")
    assert code == 1
    assert "NaN/inf at step 6" in err and "last good checkpoint is step 4" in err and "Traceback" not in err
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [4]
    assert np.isfinite(flat(state_at(tmp_path, 4)["params"])["conv_last.weight"]).all()


def test_sigterm_saves_a_checkpoint_then_resume_finishes_identically(tmp_path, baseline, demo_cache):
    proc = train(tmp_path, *BASE, demo_cache=demo_cache, wait=False)
    metrics = tmp_path / "metrics.jsonl"
    deadline = time.time() + 900  # a loaded 2-core machine compiles slowly
    while not (metrics.exists() and metrics.read_text().strip()) and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM at step" in err
    stopped = int(err.split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert (tmp_path / "checkpoints" / str(stopped)).is_dir()
    code, _, err = train(tmp_path, *BASE, demo_cache=demo_cache)
    assert code == 0, err
    assert_identical(state_at(tmp_path, STEPS)["params"], state_at(baseline, STEPS)["params"])


def test_bad_config_key_is_one_line(tmp_path, demo_cache):
    code, _, err = train(tmp_path, "train.no_such_key=3", demo_cache=demo_cache)
    lines = err.strip().splitlines()
    assert code == 1 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("train.py: error: ") and "no_such_key" in lines[0], err
    assert not (tmp_path / "checkpoints").exists(), "nothing may be written for a bad config"


def test_sigterm_to_one_of_two_processes_stops_both_then_resume_is_bit_identical(tmp_path, demo_cache,
                                                                                   two_process_run):
    """Only process 0 is signalled; both save the same step and exit 143 (no deadlock); the
    pair started again finishes with the uninterrupted two-process run's state, bit for bit."""
    procs = two_processes(tmp_path, demo_cache)
    try:
        metrics = tmp_path / "metrics.jsonl"
        deadline = time.time() + 900  # a loaded 2-core machine compiles slowly
        while not (metrics.exists() and metrics.read_text().strip()) and procs[0].poll() is None:
            assert time.time() < deadline
            time.sleep(0.2)
        procs[0].send_signal(signal.SIGTERM)
        t0 = time.time()
        errs = [p.communicate(timeout=max(1.0, 60 - (time.time() - t0)))[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    stops = []
    for p, err in zip(procs, errs, strict=True):
        assert p.returncode == 143, err
        stops.append(int(err.split("stopped by SIGTERM at step ")[1].split(";")[0]))
    assert stops[0] == stops[1] < STEPS
    print(f"both stopped {time.time() - t0:.1f} s after the signal")
    assert (tmp_path / "checkpoints" / str(stops[0])).is_dir()
    procs = two_processes(tmp_path, demo_cache)
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert f"at step {stops[0]}" in errs[0].split("resumed from ")[1].splitlines()[0], errs[0]
    ours, ref = state_at(tmp_path, STEPS), state_at(two_process_run, STEPS)  # the whole TrainState
    (la, ta), (lb, tb) = jax.tree_util.tree_flatten(ours), jax.tree_util.tree_flatten(ref)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
