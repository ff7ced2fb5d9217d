"""The Flax EDVR against BasicSR 1.4.2's real EDVR (fixtures made by make_fixtures_edvr.py)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from edvr_jax.convert.api import load_model, load_pth_model
from edvr_jax.convert.loader import ConversionError
from edvr_jax.models import EDVR, TwoStageEDVR, count_params, offset_stats, restore_any_size

VARIANTS = ["sr_tsa", "sr_wotsa", "sr_tsa_t7", "srblur", "deblur"]


@pytest.fixture(scope="module")
def io(data_dir):
    return np.load(data_dir / "edvr" / "io.npz")


# Measured max |ours - BasicSR| / max |BasicSR|: 2.3e-7 to 5.6e-7 per variant, 1.1e-6 two-stage.
TOL = 3e-6


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.fixture(scope="module")
def loaded(data_dir):
    # The weights cannot tell the centre frame: sr_tsa_t7 was made with centre 2 of 7.
    centre = {"sr_tsa_t7": 2}
    return {v: load_pth_model(data_dir / "edvr" / f"{v}.pth", center_frame_idx=centre.get(v))
            for v in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
def test_output_equals_basicsr(loaded, io, variant):
    model, variables, info = loaded[variant]
    assert info["layout"] == "basicsr" and info["param_key"] == "params"
    assert count_params(variables) == int(io[f"{variant}/num_params"])
    out, mutated = jax.jit(lambda v, x: model.apply(v, x, mutable=["diagnostics"]))(variables, io[f"{variant}/x"])
    assert out.shape == io[f"{variant}/y"].shape
    assert rel_err(out, io[f"{variant}/y"]) < TOL
    # The offset diagnostic equals BasicSR's mean |offset| per DCNv2Pack (averaged over frames).
    stats = offset_stats(mutated["diagnostics"])
    for name in ("dcn_pack_l3", "dcn_pack_l2", "dcn_pack_l1", "cas_dcnpack"):
        ref = float(io[f"{variant}/offset_absmean/pcd_align.{name.replace('_l', '.l')}"])
        assert ref > 1.0  # the fixture really moves samples by pixels
        np.testing.assert_allclose(float(stats[name]), ref, rtol=3e-6)  # measured <= 6.6e-7


def test_alignment_matters_in_the_fixtures(loaded, io):
    """With the offset convs zeroed the output moves far beyond the tolerance."""
    model, variables, _ = loaded["sr_tsa"]
    zeroed = jax.tree_util.tree_map_with_path(
        lambda p, a: jnp.zeros_like(a) if "conv_offset" in jax.tree_util.keystr(p) else a, variables)
    out = jax.jit(model.apply)(zeroed, io["sr_tsa/x"])
    assert rel_err(out, io["sr_tsa/y"]) > 1e-2


@pytest.mark.slow
def test_mmagic_checkpoint_gives_the_same_model(data_dir, io):
    model, variables, info = load_pth_model(data_dir / "edvr" / "sr_tsa_mmagic.pth")
    assert info["layout"] == "mmagic" and info["param_key"] == "state_dict"
    assert rel_err(jax.jit(model.apply)(variables, io["sr_tsa/x"]), io["sr_tsa/y"]) < TOL


@pytest.mark.slow
def test_2019_legacy_checkpoint_gives_the_same_model(data_dir, io):
    model, variables, info = load_pth_model(data_dir / "edvr" / "sr_tsa_2019.pth")
    assert info["layout"] == "edvr2019"
    assert rel_err(jax.jit(model.apply)(variables, io["sr_tsa/x"]), io["sr_tsa/y"]) < TOL


@pytest.mark.slow
def test_two_stage_equals_stage2_on_stage1_windows(loaded, data_dir, io):
    m1, v1, _ = loaded["sr_tsa"]
    m2, v2, _ = load_pth_model(data_dir / "edvr" / "stage2.pth")
    model = TwoStageEDVR(stage1=m1, stage2=m2)
    variables = {"params": {"stage1": v1["params"], "stage2": v2["params"]}}
    out = jax.jit(model.apply)(variables, io["two_stage/x"])
    assert rel_err(out, io["two_stage/y"]) < 5e-6


@pytest.mark.slow
def test_center_frame_idx_override(data_dir, io):
    # sr_tsa_t7 uses centre 2 of 7, which the weights cannot tell: the default (3) differs.
    model, variables, _ = load_pth_model(data_dir / "edvr" / "sr_tsa_t7.pth")
    assert model.center == 3
    assert rel_err(jax.jit(model.apply)(variables, io["sr_tsa_t7/x"]), io["sr_tsa_t7/y"]) > 1e-3
    model, variables = load_model(data_dir / "edvr" / "sr_tsa_t7.pth", center_frame_idx=2)
    assert rel_err(jax.jit(model.apply)(variables, io["sr_tsa_t7/x"]), io["sr_tsa_t7/y"]) < TOL


@pytest.mark.slow
def test_fresh_model_initialises_like_basicsr():
    """At init every DCN is a plain conv scaled by the 0.5 mask: offsets exactly 0."""
    model = EDVR(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)
    x = jax.random.uniform(jax.random.key(0), (1, 3, 8, 12, 3))
    variables = jax.jit(model.init)(jax.random.key(1), x)
    out, mutated = jax.jit(lambda v, x: model.apply(v, x, mutable=["diagnostics"]))(variables, x)
    chex.assert_shape(out, (1, 32, 48, 3))
    chex.assert_tree_all_finite(out)
    assert all(float(v) == 0.0 for v in offset_stats(mutated["diagnostics"]).values())
    rb = variables["params"]["reconstruction_0"]["conv1"]["kernel"]
    assert abs(float(jnp.std(rb)) - 0.1 * (2 / (9 * 8)) ** 0.5) < 0.01  # Kaiming x 0.1


@pytest.mark.slow
def test_bfloat16_compute_is_close(loaded, io):
    model, variables, _ = loaded["sr_tsa"]
    out = jax.jit(model.clone(dtype=jnp.bfloat16).apply)(variables, io["sr_tsa/x"])
    assert out.dtype == jnp.float32
    assert rel_err(out, io["sr_tsa/y"]) < 5e-2


@pytest.mark.parametrize("kwargs,shape,match", [
    (dict(num_frame=4), (1, 4, 8, 8, 3), "num_frame must be odd"),
    (dict(), (1, 5, 10, 8, 3), "multiples of 4, got 10x8"),
    (dict(with_predeblur=True, hr_in=True), (1, 5, 24, 32, 3), r"\(hr_in\): height and width must be multiples of 16"),
    (dict(), (1, 3, 8, 8, 3), "takes num_frame=5 frames, got T=3"),
    (dict(), (1, 5, 8, 8, 1), "expects 3 channels"),
    (dict(), (5, 8, 8, 3), r"expects a clip batch \(B, T, H, W, 3\)"),
    (dict(hr_in=True), (1, 5, 16, 16, 3), "hr_in=True needs with_predeblur=True"),
])
def test_shape_errors_are_plain(kwargs, shape, match):
    model = EDVR(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1, **kwargs)
    with pytest.raises(ValueError, match=match):
        model.init(jax.random.key(0), jnp.zeros(shape))


def test_any_frame_size_is_padded_and_cropped(loaded, io):
    model, variables, _ = loaded["sr_tsa"]
    x = io["sr_tsa/x"][:, :, :10, :17]  # 10x17: not multiples of 4
    out = jax.jit(lambda v, x: restore_any_size(model, v, x))(variables, x)
    assert out.shape == (1, 40, 68, 3)
    padded = np.pad(x, ((0, 0), (0, 0), (0, 2), (0, 3), (0, 0)), mode="reflect")
    np.testing.assert_allclose(out, jax.jit(model.apply)(variables, padded)[:, :40, :68], rtol=1e-6, atol=1e-6)


def test_mismatched_state_dict_names_every_offending_key(data_dir):
    from edvr_jax.convert.loader import state_dict_to_params
    from edvr_jax.convert.pth import load_pth

    sd = dict(load_pth(data_dir / "edvr" / "sr_tsa.pth")["params"])
    del sd["conv_last.bias"]
    sd["extra.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    sd["conv_hr.weight"] = np.zeros((64, 64, 1, 1), np.float32)
    model = EDVR(num_feat=8, num_frame=5, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)
    with pytest.raises(ConversionError) as err:
        state_dict_to_params(sd, model, source="sr_tsa.pth")
    msg = str(err.value)
    assert "missing conv_last.bias (expected (3,))" in msg
    assert "unexpected extra.weight (1, 1, 1, 1)" in msg
    assert "shape of conv_hr.weight: expected (64, 64, 3, 3), found (64, 64, 1, 1)" in msg
    # Non-strict: the woTSA -> TSA recipe loads what matches and reports the rest.
    wotsa = dict(load_pth(data_dir / "edvr" / "sr_wotsa.pth")["params"])
    tsa = EDVR(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=2, num_reconstruct_block=1)
    params, loaded_keys, problems = state_dict_to_params(wotsa, tsa, strict=False)
    assert "unexpected fusion.weight (8, 24, 1, 1)" in problems
    assert any(p.startswith("missing fusion.temporal_attn1.weight") for p in problems)
    assert "pcd_align.cas_dcnpack.conv_offset.weight" in loaded_keys
    assert params["fusion"]["temporal_attn1"]["kernel"] is None


@pytest.mark.parametrize("variant", ["sr_wotsa", "sr_tsa_t7"])
def test_mmagic_layout_of_every_mmagic_variant(tmp_path, data_dir, io, variant):
    """mmagic supports the SR models with and without TSA: rewrite each in its layout."""
    from mmagic_names import to_mmagic

    from edvr_jax.convert.pth import load_pth, save_pth

    sd = load_pth(data_dir / "edvr" / f"{variant}.pth")["params"]
    path = tmp_path / "mmagic.pth"
    save_pth({"meta": {"mmedit_version": "0.16"}, "state_dict": {"generator." + to_mmagic(k): v for k, v in sd.items()}}, path)
    model, variables, info = load_pth_model(path, center_frame_idx=2 if variant == "sr_tsa_t7" else None)
    assert info["layout"] == "mmagic"
    assert rel_err(jax.jit(model.apply)(variables, io[f"{variant}/x"]), io[f"{variant}/y"]) < TOL
