"""The paper's ablation variants of EDVR (no alignment, no pyramid, no cascading DCN, with
and without TSA): shapes, BasicSR parameter names, counts derived from the full model's
modules, one training step, and that edvr-inspect reports what each one has."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from edvr_jax.convert.loader import infer_architecture
from edvr_jax.models import EDVR, basicsr_names, count_params
from edvr_jax.models.helpers import init_input

TINY = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1,
            num_reconstruct_block=1)
VARIANTS = {
    "no_alignment": dict(with_pcd=False, with_tsa=False),
    "no_pyramid": dict(pcd_levels=1, pcd_cascade=False, with_tsa=False),
    "no_cascade": dict(pcd_cascade=False, with_tsa=False),
    "pcd": dict(with_tsa=False),
    "pcd_tsa": dict(),
    "no_pyramid_tsa": dict(pcd_levels=1, with_tsa=True),
}
# BasicSR module prefixes each variant leaves out of the full model.
DROPPED = {
    "no_alignment": ("pcd_align.", "conv_l2_", "conv_l3_"),
    "no_pyramid": ("pcd_align.cas_", "conv_l2_", "conv_l3_", "pcd_align.offset_conv1.l2",
                   "pcd_align.offset_conv1.l3", "pcd_align.offset_conv2.l2", "pcd_align.offset_conv2.l3",
                   "pcd_align.offset_conv3.", "pcd_align.dcn_pack.l2", "pcd_align.dcn_pack.l3",
                   "pcd_align.feat_conv."),
    "no_cascade": ("pcd_align.cas_",),
    "pcd": (), "pcd_tsa": (),
    "no_pyramid_tsa": ("conv_l2_", "conv_l3_", "pcd_align.offset_conv1.l2", "pcd_align.offset_conv1.l3",
                       "pcd_align.offset_conv2.l2", "pcd_align.offset_conv2.l3", "pcd_align.offset_conv3.",
                       "pcd_align.dcn_pack.l2", "pcd_align.dcn_pack.l3", "pcd_align.feat_conv."),
}


def named_shapes(model) -> dict[str, tuple[int, ...]]:
    params = jax.eval_shape(model.init, jax.random.key(0), init_input(model))["params"]
    names = jax.tree_util.tree_leaves(basicsr_names(params))
    shapes = dict(zip(names, (tuple(a.shape) for a in jax.tree_util.tree_leaves(params)), strict=True))
    return shapes, count_params(params)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_names_and_counts_follow_the_full_model(variant):
    kw = VARIANTS[variant]
    full, _ = named_shapes(EDVR(**TINY, with_tsa=kw.get("with_tsa", True)))
    got, count = named_shapes(EDVR(**TINY, **kw))
    expected = {k: v for k, v in full.items() if not k.startswith(DROPPED[variant])}
    if kw.get("pcd_levels") == 1:
        # the single level's offset_conv2 sees only offset_conv1's output (as L3 does): C -> C
        c = TINY["num_feat"]
        expected["pcd_align.offset_conv2.l1.weight"] = (3, 3, c, c)
    assert got == expected  # BasicSR's names and shapes wherever the module exists
    assert count == sum(int(np.prod(s)) for s in expected.values())
    torch_shape = lambda s: (s[3], s[2], s[0], s[1]) if len(s) == 4 else s  # noqa: E731
    sd = {k: np.zeros(torch_shape(s)) for k, s in got.items()}
    arch = infer_architecture(sd)  # a state_dict of this variant loads as this variant
    for field in ("with_pcd", "pcd_levels", "pcd_cascade", "with_tsa"):
        assert arch[field] == getattr(EDVR(**TINY, **kw), field), field


def test_the_full_model_and_published_counts_are_unchanged():
    # EDVR-M without/with TSA: BasicSR's state_dict sizes
    for kw, n in ((dict(with_tsa=False), 2_996_259), (dict(), 3_300_131)):
        m = EDVR(num_feat=64, num_reconstruct_block=10, **kw)
        assert count_params(jax.eval_shape(m.init, jax.random.key(0), init_input(m))["params"]) == n


@pytest.mark.parametrize("variant", ["no_alignment", "no_cascade", "no_pyramid"])  # the new rows
@pytest.mark.slow
def test_shapes_and_one_training_step(variant):
    from edvr_jax.train.optim import make_optimizer
    from edvr_jax.train.state import TrainState
    from edvr_jax.train.step import train_step

    model = EDVR(**TINY, **VARIANTS[variant])
    rng = np.random.default_rng(0)
    lq = jnp.asarray(rng.random((1, 3, 4, 8, 3), np.float32))
    gt = jnp.asarray(rng.random((1, 16, 32, 3), np.float32))
    params = model.init(jax.random.key(1), init_input(model))["params"]
    assert jax.eval_shape(model.apply, {"params": params}, lq).shape == (1, 16, 32, 3)
    tx = make_optimizer(params, lambda s: 1e-3)
    state = TrainState.create(params, tx, use_ema=False)
    step = jax.jit(functools.partial(train_step, model=model, tx=tx, schedule=lambda s: 1e-3))
    new, metrics = step(state, {"lq": lq, "gt": gt})
    assert bool(metrics["finite"]) and float(metrics["grad_norm"]) > 0
    still = jax.tree_util.tree_map_with_path(
        lambda p, a, b: jax.tree_util.keystr(p) if bool(jnp.all(a == b)) else None, params, new.params)
    # Every parameter trains, except on the first step the offset-feature convs: they reach
    # the loss only through the zero-initialised conv_offset kernels (which do move).
    assert all("offset_conv" in k for k in jax.tree_util.tree_leaves(still)), still
    dcns = {k for k in metrics if k.startswith("offset/")}
    expected = {"no_alignment": set(), "no_pyramid": {"offset/dcn_pack_l1"},
                "no_cascade": {"offset/dcn_pack_l3", "offset/dcn_pack_l2", "offset/dcn_pack_l1"}}
    assert dcns == expected[variant]


def test_inspect_reports_what_a_variant_has():
    from edvr_jax.inspection import inspect_window, statistics

    model = EDVR(**TINY, **VARIANTS["no_pyramid"])
    params = model.init(jax.random.key(2), init_input(model))
    window = np.random.default_rng(3).random((3, 8, 12, 3), np.float32)
    stats = statistics(inspect_window(model, params, window))
    assert list(stats["dcn"]) == ["pcd_align.dcn_pack.l1"] and stats["tsa"] is None
    # zero-initialised offset convs: no motion, mask 0.5
    assert stats["dcn"]["pcd_align.dcn_pack.l1"]["offset_absmean"] == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(stats["dcn"]["pcd_align.dcn_pack.l1"]["mask_mean"], 0.5)
