"""The one mapping between BasicSR state_dict keys and edvr_jax parameter paths.

Rule (both directions, tested): a Flax path is the BasicSR key split on ``.``,
except that an ``nn.Sequential`` / ``nn.ModuleList`` / ``nn.ModuleDict`` entry is
joined to its container with ``_`` (``feature_extraction.0`` <->
``feature_extraction_0``, ``pcd_align.offset_conv1.l3`` <-> ``offset_conv1_l3``),
and a leaf ``weight`` is a ``kernel`` stored (kh, kw, in, out) instead of PyTorch's
(out, in, kh, kw). mmagic's names are first rewritten to BasicSR's with the table
``MMAGIC_TO_BASICSR``; the 2019 names with ``EDVR2019_TO_BASICSR``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from edvr_jax.models.names import CONTAINERS, flax_path_to_torch_key


def torch_key_to_flax_path(key: str) -> tuple[str, ...]:
    """Inverse of ``flax_path_to_torch_key``."""
    parts = key.split(".")
    out: list[str] = []
    i = 0
    while i < len(parts) - 1:
        if parts[i] in CONTAINERS and i + 1 < len(parts) - 1:
            out.append(f"{parts[i]}_{parts[i + 1]}")
            i += 2
        else:
            out.append(parts[i])
            i += 1
    leaf = {"weight": "kernel", "bias": "bias"}.get(parts[-1])
    if leaf is None:
        raise KeyError(f"{key!r}: only .weight and .bias tensors exist in EDVR")
    return tuple(out + [leaf])


def torch_to_flax_array(key: str, value: np.ndarray) -> np.ndarray:
    """(out, in, kh, kw) conv weights become (kh, kw, in, out); biases are unchanged."""
    value = np.asarray(value)
    if key.endswith(".weight"):
        if value.ndim != 4:
            raise ValueError(f"{key}: expected a 4-D conv weight, found shape {value.shape}")
        return np.ascontiguousarray(value.transpose(2, 3, 1, 0))
    return value


def flax_to_torch_array(path: tuple[str, ...], value: Any) -> np.ndarray:
    value = np.asarray(value)
    if path[-1] == "kernel":
        return np.ascontiguousarray(value.transpose(3, 2, 0, 1))
    return value


def flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = v
    return out


def unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, v in flat.items():
        node = out
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = v
    return out


def params_to_state_dict(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """edvr_jax params -> BasicSR state_dict (numpy, PyTorch layouts), in BasicSR's key names."""
    return {flax_path_to_torch_key(p): flax_to_torch_array(p, v) for p, v in flatten(params).items()}


# mmagic (EDVRNet) -> BasicSR names. Applied in order to keys without the
# "generator." prefix. ConvModule wraps its conv as ".conv".
MMAGIC_TO_BASICSR: tuple[tuple[str, str], ...] = (
    (r"^feat_l([23])_conv([12])\.conv\.", r"conv_l\1_\2."),
    (r"^pcd_alignment\.", "pcd_align."),
    (r"^pcd_align\.((?:offset_conv[123]|feat_conv)\.l[123]|cas_offset_conv[12])\.conv\.", r"pcd_align.\1."),
    (r"^fusion\.(feat_fusion|spatial_attn[1-4]|spatial_attn_l[123]|spatial_attn_add1)\.conv\.", r"fusion.\1."),
    (r"^upsample([12])\.upsample_conv\.", r"upconv\1."),
)

# The 2019 (xinntao/EDVR old_version) names -> BasicSR, following BasicSR's
# scripts/model_conversion/convert_models.py. Note the tAtt_1/tAtt_2 swap.
EDVR2019_TO_BASICSR: tuple[tuple[str, Any], ...] = (
    (r"^fea_L([23])_conv([12])\.", r"conv_l\1_\2."),
    (r"^pcd_align\.L(\d)_offset_conv(\d)\.", r"pcd_align.offset_conv\2.l\1."),
    (r"^pcd_align\.L(\d)_dcnpack\.conv_offset_mask\.", r"pcd_align.dcn_pack.l\1.conv_offset."),
    (r"^pcd_align\.L(\d)_dcnpack\.", r"pcd_align.dcn_pack.l\1."),
    (r"^pcd_align\.L(\d)_fea_conv\.", r"pcd_align.feat_conv.l\1."),
    (r"^pcd_align\.cas_dcnpack\.conv_offset_mask\.", "pcd_align.cas_dcnpack.conv_offset."),
    (r"^tsa_fusion\.tAtt_1\.", "fusion.temporal_attn2."),
    (r"^tsa_fusion\.tAtt_2\.", "fusion.temporal_attn1."),
    (r"^tsa_fusion\.fea_fusion\.", "fusion.feat_fusion."),
    (r"^tsa_fusion\.sAtt_L(\d)\.", r"fusion.spatial_attn_l\1."),
    (r"^tsa_fusion\.sAtt_add_(\d)\.", r"fusion.spatial_attn_add\1."),
    (r"^tsa_fusion\.sAtt_(\d)\.", r"fusion.spatial_attn\1."),
    (r"^tsa_fusion\.", "fusion."),  # the woTSA 1x1 fusion conv
    (r"^recon_trunk\.", "reconstruction."),
    (r"^HRconv\.", "conv_hr."),
    (r"^pre_deblur\.conv_first_1\.", "predeblur.conv_first."),
    (r"^pre_deblur\.conv_first_2\.", "predeblur.stride_conv_hr1."),
    (r"^pre_deblur\.conv_first_3\.", "predeblur.stride_conv_hr2."),
    (r"^pre_deblur\.deblur_L([23])_conv\.", r"predeblur.stride_conv_l\1."),
    (r"^pre_deblur\.RB_L3_1\.", "predeblur.resblock_l3."),
    (r"^pre_deblur\.RB_L2_([12])\.", r"predeblur.resblock_l2_\1."),
    (r"^pre_deblur\.RB_L1_(\d+)\.", lambda m: f"predeblur.resblock_l1.{int(m.group(1)) - 1}."),
    (r"^pre_deblur\.", "predeblur."),
)


def rename(key: str, table: tuple[tuple[str, Any], ...]) -> str:
    """Applies every rule of ``table`` in order (rules are written not to overlap)."""
    for pattern, repl in table:
        key = re.sub(pattern, repl, key)
    return key
