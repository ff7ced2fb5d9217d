"""PyTorch-equivalent building blocks (numpy references) and the BasicSR <-> Flax key rule."""

import jax.numpy as jnp
import numpy as np
import pytest

from edvr_jax.convert import keymap
from edvr_jax.convert.loader import abstract_params
from edvr_jax.models import (
    PRESETS,
    STAGE2_PRESETS,
    build,
    count_params,
    pixel_shuffle,
    upsample_bilinear,
)
from edvr_jax.models.layers import avg_pool_3x3_s2, max_pool_3x3_s2


def np_pixel_shuffle_nchw(x, r):
    """torch.nn.PixelShuffle written from its definition: out[c, h*r+i, w*r+j] = in[c*r*r + i*r + j, h, w]."""
    c, h, w = x.shape
    out = np.zeros((c // (r * r), h * r, w * r), x.dtype)
    for ch in range(c):
        oc, rem = divmod(ch, r * r)
        i, j = divmod(rem, r)
        out[oc, i::r, j::r] = x[ch]
    return out


def np_upsample_align_corners_false(x, s):
    """F.interpolate(bilinear, align_corners=False) for one (H, W) plane, from PyTorch's formula."""
    h, w = x.shape

    def coords(n_out, n_in):
        src = np.maximum((np.arange(n_out) + 0.5) / s - 0.5, 0.0)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, ly = coords(h * s, h)
    x0, x1, lx = coords(w * s, w)
    top = x[y0][:, x0] * (1 - lx) + x[y0][:, x1] * lx
    bot = x[y1][:, x0] * (1 - lx) + x[y1][:, x1] * lx
    return top * (1 - ly)[:, None] + bot * ly[:, None]


def np_pool(x, kind):
    """MaxPool2d / AvgPool2d(3, 2, 1, count_include_pad=True) on one (H, W) plane."""
    h, w = x.shape
    fill = -np.inf if kind == "max" else 0.0
    p = np.pad(x, 1, constant_values=fill)
    ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    out = np.zeros((ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = p[2 * i:2 * i + 3, 2 * j:2 * j + 3]
            out[i, j] = win.max() if kind == "max" else win.sum() / 9
    return out


def test_pixel_shuffle_uses_pytorch_channel_order():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4 * 6)).astype(np.float32)  # NHWC, C = 6 * 2 * 2
    ours = np.asarray(pixel_shuffle(jnp.asarray(x), 2))
    for n in range(2):
        ref = np_pixel_shuffle_nchw(x[n].transpose(2, 0, 1), 2).transpose(1, 2, 0)
        np.testing.assert_array_equal(ours[n], ref)
    # TensorFlow's depth_to_space order differs, which is why we do not use it.
    import tensorflow as tf

    tf_out = tf.nn.depth_to_space(x, 2).numpy()
    assert np.abs(tf_out - ours).max() > 0.1


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (6, 4)])
def test_bilinear_upsampling_matches_align_corners_false(scale, hw):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1,) + hw + (2,))
    ours = np.asarray(upsample_bilinear(jnp.asarray(x, jnp.float32), scale))
    for c in range(2):
        np.testing.assert_allclose(ours[0, ..., c], np_upsample_align_corners_false(x[0, ..., c], scale),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hw", [(4, 4), (5, 7), (8, 6)])
def test_pools_match_pytorch_padding_rules(hw):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1,) + hw + (1,)) - 3.0  # all negative: padding must never win the max
    np.testing.assert_allclose(np.asarray(max_pool_3x3_s2(jnp.asarray(x)))[0, ..., 0], np_pool(x[0, ..., 0], "max"), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(avg_pool_3x3_s2(jnp.asarray(x)))[0, ..., 0], np_pool(x[0, ..., 0], "avg"), rtol=1e-6)


def test_edvr_m_keys_and_shapes_equal_basicsr_state_dict():
    """Every one of BasicSR's 144 EDVR-M tensors, by name and PyTorch shape."""
    from conftest import DATA

    expected = {}
    for line in (DATA / "edvr_m_basicsr_keys.txt").read_text().splitlines():
        key, shape = line.split(" ", 1)
        expected[key] = tuple(int(v) for v in shape.strip("[]").split(","))
    params = abstract_params(build("EDVR_M_x4_SR_REDS"))
    ours = {keymap.flax_path_to_torch_key(p): keymap.flax_to_torch_array(p, np.zeros(v.shape, np.int8)).shape
            for p, v in keymap.flatten(params).items()}
    assert ours == expected
    assert count_params(params) == 3_300_131


@pytest.mark.parametrize("name", sorted(PRESETS) + sorted(STAGE2_PRESETS))
def test_key_rule_round_trips_both_ways(name):
    params = abstract_params(build(name))
    for path in keymap.flatten(params):
        key = keymap.flax_path_to_torch_key(path)
        assert keymap.torch_key_to_flax_path(key) == path, (path, key)
    # and values survive params -> state_dict -> params
    flat = {p: np.random.default_rng(0).standard_normal(v.shape).astype(np.float32)
            for p, v in list(keymap.flatten(params).items())[:12]}
    sd = keymap.params_to_state_dict(keymap.unflatten(flat))
    back = {keymap.torch_key_to_flax_path(k): keymap.torch_to_flax_array(k, v) for k, v in sd.items()}
    for p in flat:
        np.testing.assert_array_equal(back[p], flat[p])


@pytest.mark.parametrize("name,count", [
    ("EDVR_M_x4_SR_REDS", 3_300_131), ("EDVR_M_woTSA_x4_SR_REDS", 2_996_259),
    ("EDVR_L_x4_SR_REDS", 20_633_827), ("EDVR_L_woTSA_x4_SR_REDS", 19_419_875),
    ("EDVR_L_x4_SR_Vimeo90K", 20_699_363), ("EDVR_L_x4_SRblur_REDS", 23_306_851),
    ("EDVR_L_deblur_REDS", 23_602_019), ("EDVR_L_deblurcomp_REDS", 23_602_019),
])
def test_published_parameter_counts(name, count):
    assert count_params(abstract_params(build(name))) == count


def test_mmagic_and_2019_names_map_onto_basicsr():
    assert keymap.rename("feat_l2_conv1.conv.weight", keymap.MMAGIC_TO_BASICSR) == "conv_l2_1.weight"
    assert keymap.rename("pcd_alignment.offset_conv2.l3.conv.bias", keymap.MMAGIC_TO_BASICSR) == "pcd_align.offset_conv2.l3.bias"
    assert keymap.rename("pcd_alignment.dcn_pack.l1.conv_offset.weight", keymap.MMAGIC_TO_BASICSR) == "pcd_align.dcn_pack.l1.conv_offset.weight"
    assert keymap.rename("fusion.spatial_attn_add1.conv.weight", keymap.MMAGIC_TO_BASICSR) == "fusion.spatial_attn_add1.weight"
    assert keymap.rename("fusion.spatial_attn5.weight", keymap.MMAGIC_TO_BASICSR) == "fusion.spatial_attn5.weight"
    assert keymap.rename("upsample2.upsample_conv.bias", keymap.MMAGIC_TO_BASICSR) == "upconv2.bias"
    assert keymap.rename("tsa_fusion.tAtt_1.weight", keymap.EDVR2019_TO_BASICSR) == "fusion.temporal_attn2.weight"
    assert keymap.rename("pre_deblur.RB_L1_3.conv1.bias", keymap.EDVR2019_TO_BASICSR) == "predeblur.resblock_l1.2.conv1.bias"
    assert keymap.rename("pre_deblur.conv_first_2.weight", keymap.EDVR2019_TO_BASICSR) == "predeblur.stride_conv_hr1.weight"
    assert keymap.rename("tsa_fusion.weight", keymap.EDVR2019_TO_BASICSR) == "fusion.weight"


def test_edvr_declares_the_architecture_fields_with_their_defaults():
    """edvr_jax.architecture is the one list; the Flax module writes the same fields out."""
    import dataclasses

    from edvr_jax.architecture import ARCHITECTURE_DEFAULTS
    from edvr_jax.models import EDVR

    declared = {f.name: f.default for f in dataclasses.fields(EDVR) if f.name in ARCHITECTURE_DEFAULTS}
    assert declared == ARCHITECTURE_DEFAULTS
    names = [f.name for f in dataclasses.fields(EDVR) if f.name not in ("parent", "name")]
    assert names[:len(ARCHITECTURE_DEFAULTS)] == list(ARCHITECTURE_DEFAULTS)  # BasicSR's order, first
