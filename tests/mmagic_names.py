"""BasicSR EDVR key -> mmagic EDVRNet key, read off mmagic's edvr_net.py (ConvModule adds
".conv"). Written independently of edvr_jax.convert.keymap, so that tests and the fixture
script check the converter against it rather than against itself."""

from __future__ import annotations

import re

RULES = [
    (r"^conv_l([23])_([12])\.", r"feat_l\1_conv\2.conv."),
    (r"^pcd_align\.((?:offset_conv[123]|feat_conv)\.l[123]|cas_offset_conv[12])\.", r"pcd_alignment.\1.conv."),
    (r"^pcd_align\.", "pcd_alignment."),
    (r"^fusion\.(feat_fusion|spatial_attn[1-4]|spatial_attn_l[123]|spatial_attn_add1)\.", r"fusion.\1.conv."),
    (r"^upconv([12])\.", r"upsample\1.upsample_conv."),
]


def to_mmagic(key: str) -> str:
    """The mmagic name of one BasicSR key (the first rule that applies)."""
    for pattern, repl in RULES:
        new = re.sub(pattern, repl, key)
        if new != key:
            return new
    return key
