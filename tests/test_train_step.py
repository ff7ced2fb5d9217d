"""The training step against BasicSR's real training semantics (make_fixtures_train.py)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from edvr_jax.convert import keymap
from edvr_jax.convert.api import load_pth_model
from edvr_jax.train.loss import charbonnier_loss
from edvr_jax.train.optim import make_optimizer, param_labels, train_phases
from edvr_jax.train.schedule import cosine_restart_schedule
from edvr_jax.train.state import TrainState
from edvr_jax.train.step import train_step


@pytest.fixture(scope="module")
def ref(data_dir):
    return np.load(data_dir / "train_basicsr.npz")


@pytest.mark.parametrize("name,args", [
    ("m_wotsa", (4e-4, [15, 15, 15, 15], [1, 1, 1, 1], 1e-7)),
    ("l_tsa", (4e-4, [5, 10, 15, 15, 15], [1, 0.5, 0.5, 0.5, 0.5], 1e-7)),
])
def test_schedule_equals_basicsr(ref, name, args):
    lrs = ref[f"schedule/{name}"]  # BasicSR's lr at iterations 1..N = our steps 0..N-1
    sched = jax.jit(cosine_restart_schedule(*args))
    ours = np.array([float(sched(s)) for s in range(len(lrs))])
    np.testing.assert_allclose(ours, lrs, rtol=1e-5, atol=1e-12)  # float32 cos near the minimum


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_charbonnier_equals_basicsr(ref, reduction):
    pred, target = ref["charbonnier/pred"], ref["charbonnier/target"]
    with jax.enable_x64(True):
        f = lambda p: charbonnier_loss(p, jnp.asarray(target), reduction=reduction)
        value, grad = jax.value_and_grad(f)(jnp.asarray(pred))
    np.testing.assert_allclose(float(value), float(ref[f"charbonnier/{reduction}/value"]), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad), ref[f"charbonnier/{reduction}/grad"], rtol=1e-5, atol=1e-7)


def test_labels_follow_basicsr_names(data_dir):
    model, variables, _ = load_pth_model(data_dir / "edvr" / "sr_tsa.pth")
    labels = keymap.flatten(param_labels(variables["params"], frozen=[r"^conv_last\."]))
    by_key = {keymap.flax_path_to_torch_key(p): v for p, v in labels.items()}
    assert by_key["pcd_align.dcn_pack.l1.conv_offset.weight"] == "dcn"
    assert by_key["pcd_align.cas_dcnpack.weight"] == "dcn"
    assert by_key["pcd_align.offset_conv1.l1.weight"] == "other"
    assert by_key["fusion.spatial_attn1.bias"] == "fusion"
    assert by_key["conv_last.weight"] == "frozen"


@pytest.mark.slow
def test_steps_equal_basicsr_adam_tsa_phase_dcn_lr_and_ema(ref, data_dir):
    """Six BasicSR iterations: TSA-only for 2, dcn_lr_mul 0.5, restarting cosine lr, EMA 0.9."""
    model, variables, _ = load_pth_model(data_dir / "edvr" / "sr_tsa.pth")
    params0 = variables["params"]
    schedule = cosine_restart_schedule(4e-4, [2, 2, 3], [1, 0.5, 0.5], 1e-7)
    tx = make_optimizer(params0, schedule, dcn_lr_mul=0.5, tsa_iter=3)
    state = TrainState.create(params0, tx, use_ema=True)
    phases = train_phases(params0, tsa_iter=3)  # the TSA-only program differentiates only 'fusion'
    steps = {id(m): jax.jit(functools.partial(train_step, model=model, tx=tx, schedule=schedule, ema_decay=0.9,
                                              trained=m)) for m in (phases.tsa, phases.full)}
    losses, lrs = [], []
    for i in range(len(ref["run/loss"])):
        step = steps[id(phases.trained(i))]
        state, metrics = step(state, {"lq": ref["run/lq"][i], "gt": ref["run/gt"][i]})
        losses.append(float(metrics["loss"]))
        lrs.append(float(metrics["lr"]))
    np.testing.assert_allclose(losses, ref["run/loss"], rtol=1e-5)
    np.testing.assert_allclose(lrs, ref["run/lr"][:, 0], rtol=1e-6)
    flat, flat_ema, flat0 = (keymap.params_to_state_dict(t) for t in (state.params, state.ema_params, params0))
    for key in flat:
        for ours, name in ((flat[key], "delta"), (flat_ema[key], "ema_delta")):
            want = ref[f"run/{name}/{key}"].astype(np.float32)
            np.testing.assert_allclose(ours - flat0[key], want, atol=3e-6, rtol=2e-3, err_msg=f"{name} {key}")
    # The frozen phase really froze: conv_first moved only in the last 4 steps, fusion in all 6.
    assert np.abs(ref["run/delta/conv_first.weight"]).max() > 1e-4


@pytest.mark.slow
def test_tsa_phase_freezes_everything_but_fusion(data_dir, ref):
    model, variables, _ = load_pth_model(data_dir / "edvr" / "sr_tsa.pth")
    params0 = variables["params"]
    schedule = cosine_restart_schedule(4e-4, [10], [1], 0.0)
    tx = make_optimizer(params0, schedule, tsa_iter=4)
    state = TrainState.create(params0, tx, use_ema=False)
    step = jax.jit(functools.partial(train_step, model=model, tx=tx, schedule=schedule))
    for i in range(3):  # BasicSR: iterations 1..tsa_iter-1 train only 'fusion'
        state, _ = step(state, {"lq": ref["run/lq"][i], "gt": ref["run/gt"][i]})
    sd, sd0 = keymap.params_to_state_dict(state.params), keymap.params_to_state_dict(params0)
    changed = {k for k in sd if not np.array_equal(sd[k], sd0[k])}
    assert changed == {k for k in sd if "fusion" in k}
    state, _ = step(state, {"lq": ref["run/lq"][3], "gt": ref["run/gt"][3]})
    sd = keymap.params_to_state_dict(state.params)
    assert all(not np.array_equal(sd[k], sd0[k]) for k in sd)


@pytest.mark.slow
def test_bfloat16_compute_trains_close_to_float32(data_dir, ref):
    """bf16 compute (the TPU/GPU option): same loss to 1%, parameters stay float32."""
    model, variables, _ = load_pth_model(data_dir / "edvr" / "sr_tsa.pth")
    params0 = variables["params"]
    schedule = cosine_restart_schedule(4e-4, [10], [1], 0.0)
    batch = {"lq": ref["run/lq"][0], "gt": ref["run/gt"][0]}
    out = {}
    for name, m in (("f32", model), ("bf16", model.clone(dtype=jnp.bfloat16))):
        tx = make_optimizer(params0, schedule)
        state = TrainState.create(params0, tx, use_ema=False)
        out[name] = jax.jit(functools.partial(train_step, model=m, tx=tx, schedule=schedule))(state, batch)
    (_, f32), (state, bf16) = out["f32"], out["bf16"]
    assert bool(bf16["finite"]) and abs(float(bf16["loss"]) - float(f32["loss"])) < 1e-2 * float(f32["loss"])
    leaves = jax.tree_util.tree_leaves(state.params)
    assert all(a.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(a))) for a in leaves)


def test_gradient_clipping_scales_what_adam_sees():
    params = {"conv_first": {"kernel": jnp.zeros((3, 3, 2, 2)), "bias": jnp.zeros(2)}}
    grads = jax.tree_util.tree_map(lambda p: jnp.full(p.shape, 3.0), params)
    norm = float(jnp.sqrt(3.0**2 * 38))
    for clip, expect in ((None, 3.0), (1.0, 3.0 / norm)):
        tx = make_optimizer(params, lambda s: 1e-3, grad_clip_norm=clip)
        _, state = tx.update(grads, tx.init(params), params)
        # Adam's second moment after one step, in the group 'conv_first' belongs to ('other').
        nu = [v for p, v in optax.tree_utils.tree_get_all_with_path(state, "nu")
              if "other" in jax.tree_util.keystr(p)][0]
        np.testing.assert_allclose(nu["conv_first"]["bias"], (1 - 0.99) * expect**2, rtol=1e-5)


def test_init_from_loads_matching_tensors_and_reports_the_rest(tmp_path, data_dir):
    """The woTSA -> TSA recipe: everything but the fusion is taken from the checkpoint."""
    from edvr_jax.train.config import base_config
    from edvr_jax.train.loop import create_model, initial_params
    from edvr_jax.train.step import make_mesh

    c = base_config()
    c.model.update(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=2,
                   num_reconstruct_block=1, with_tsa=True)
    c.train.init_from = str(data_dir / "edvr" / "sr_wotsa.pth")  # same net without TSA
    model = create_model(c)
    params, report = initial_params(c, model, make_mesh())
    assert "unexpected fusion.weight (8, 24, 1, 1)" in report["skipped"]
    assert any(s.startswith("missing fusion.temporal_attn1.weight") for s in report["skipped"])
    wotsa = keymap.params_to_state_dict(load_pth_model(data_dir / "edvr" / "sr_wotsa.pth")[1]["params"])
    ours = keymap.params_to_state_dict(params)
    for k in report["loaded"]:
        np.testing.assert_array_equal(ours[k], wotsa[k], err_msg=k)
    assert len(report["loaded"]) == len(wotsa) - 2


@pytest.mark.slow
def test_clipping_and_grad_norm_cover_only_the_trained_parameters():
    """grad_clip_norm + tsa_iter + a frozen layer against clip-by-global-norm over only the
    trained leaves, then Adam, written out in numpy (each group's Adam counts its own steps)."""
    from edvr_jax.models import EDVR
    model = EDVR(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)
    params0 = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 3, 8, 8, 3)))["params"]
    lr, clip, b1, b2, eps, tsa_end = 1e-2, 1e-2, 0.9, 0.99, 1e-8, 2
    frozen = [r"^conv_last\."]
    tx = make_optimizer(params0, lambda s: lr, tsa_iter=tsa_end + 1, grad_clip_norm=clip, frozen=frozen)
    phases = train_phases(params0, tsa_iter=tsa_end + 1, frozen=frozen)
    steps = {id(m): jax.jit(functools.partial(train_step, model=model, tx=tx, schedule=lambda s: lr, trained=m))
             for m in (phases.tsa, phases.full)}
    state = TrainState.create(params0, tx, use_ema=False)

    def loss(p, b):
        return charbonnier_loss(model.apply({"params": p}, b["lq"]), b["gt"])

    full_grad = jax.jit(jax.grad(loss))
    names = list(keymap.params_to_state_dict(params0))
    ref = {k: np.asarray(v, np.float64) for k, v in keymap.flatten(params0).items()}
    key_of = {keymap.flax_path_to_torch_key(p): p for p in ref}
    mom = {p: (np.zeros_like(v), np.zeros_like(v), 0) for p, v in ref.items()}
    rng = np.random.default_rng(0)
    for i in range(4):
        b = {"lq": rng.uniform(size=(1, 3, 8, 8, 3)).astype(np.float32),
             "gt": rng.uniform(size=(1, 32, 32, 3)).astype(np.float32)}
        trains = {key_of[n] for n in names if ("fusion" in n if i < tsa_end else not n.startswith("conv_last."))}
        g = {p: np.asarray(v, np.float64)
             for p, v in keymap.flatten(full_grad(keymap.unflatten({p: jnp.asarray(v, jnp.float32)
                                                                      for p, v in ref.items()}), b)).items()}
        norm = np.sqrt(sum(np.sum(g[p] ** 2) for p in trains))
        scale = min(1.0, clip / norm)
        assert scale < 0.1  # clipping is active
        for p in trains:
            m, v, t = mom[p]
            m, v, t = b1 * m + (1 - b1) * g[p] * scale, b2 * v + (1 - b2) * (g[p] * scale) ** 2, t + 1
            mom[p] = (m, v, t)
            ref[p] = ref[p] - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        state, metrics = steps[id(phases.trained(i))](state, b)
        np.testing.assert_allclose(float(metrics["grad_norm"]), norm, rtol=1e-4, err_msg=f"step {i}")
        ours = keymap.flatten(state.params)
        for p in ref:
            np.testing.assert_allclose(ours[p], ref[p], rtol=1e-3, atol=2e-5, err_msg=f"step {i} {p}")
