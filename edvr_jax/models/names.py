"""BasicSR's state_dict name of every EDVR parameter, from its Flax path.

A Flax path is the BasicSR key split on ``.``, except that an ``nn.Sequential`` /
``nn.ModuleList`` / ``nn.ModuleDict`` entry is joined to its container with ``_``
(``feature_extraction.0`` <-> ``feature_extraction_0``), and a leaf ``weight`` is a
``kernel``. The modules are named so; ``convert.keymap`` builds the checkpoint mapping
on this rule and the optimizer's parameter groups read these names.
"""

from __future__ import annotations

import re
from typing import Any

import jax

# BasicSR containers whose children are indexed (Sequential/ModuleList) or keyed (ModuleDict).
CONTAINERS = ("feature_extraction", "reconstruction", "resblock_l1", "offset_conv1",
              "offset_conv2", "offset_conv3", "dcn_pack", "feat_conv")
JOINED = re.compile(rf"^({'|'.join(CONTAINERS)})_(\w+)$")
STAGES = ("stage1", "stage2")  # TwoStageEDVR's submodules, kept as a name prefix


def flax_path_to_torch_key(path: tuple[str, ...]) -> str:
    """``('pcd_align', 'dcn_pack_l1', 'conv_offset', 'kernel')`` -> ``pcd_align.dcn_pack.l1.conv_offset.weight``."""
    parts = []
    for seg in path[:-1]:
        m = JOINED.match(seg)
        parts.extend(m.groups() if m else (seg,))
    leaf = {"kernel": "weight", "bias": "bias"}[path[-1]]
    return ".".join(parts + [leaf])


def basicsr_names(params: Any) -> Any:
    """A pytree like ``params`` holding each leaf's BasicSR state_dict name
    (``stage1.``/``stage2.`` prefixed for a two-stage model)."""
    def name(path, _):
        keys = tuple(str(getattr(k, "key", k)) for k in path)
        stage = [k for k in keys if k in STAGES]
        rest = tuple(k for k in keys if k not in STAGES)
        return ".".join(stage + [flax_path_to_torch_key(rest)])

    return jax.tree_util.tree_map_with_path(name, params)
