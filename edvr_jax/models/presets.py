"""Named architectures of every published EDVR model (BasicSR's ModelZoo names).

``PRESETS[name]`` holds the constructor arguments; ``build(name, **overrides)`` makes
the module. Parameter counts (tested) are those of BasicSR's state_dicts.

| preset                      | C   | R  | T | TSA | predeblur | hr_in | params     |
|-----------------------------|-----|----|---|-----|-----------|-------|------------|
| EDVR_M_woTSA_x4_SR_REDS     | 64  | 10 | 5 | no  | no        | no    |  2,996,259 |
| EDVR_M_x4_SR_REDS           | 64  | 10 | 5 | yes | no        | no    |  3,300,131 |
| EDVR_L_woTSA_x4_SR_REDS     | 128 | 40 | 5 | no  | no        | no    | 19,419,875 |
| EDVR_L_x4_SR_REDS           | 128 | 40 | 5 | yes | no        | no    | 20,633,827 |
| EDVR_L_x4_SR_Vimeo90K       | 128 | 40 | 7 | yes | no        | no    | 20,699,363 |
| EDVR_L_x4_SRblur_REDS       | 128 | 40 | 5 | yes | yes       | no    | 23,306,851 |
| EDVR_L_deblur_REDS          | 128 | 40 | 5 | yes | yes       | yes   | 23,602,019 |
| EDVR_L_deblurcomp_REDS      | 128 | 40 | 5 | yes | yes       | yes   | 23,602,019 |
"""

from __future__ import annotations

from typing import Any

from edvr_jax.models.edvr import EDVR

_M = dict(num_feat=64, num_reconstruct_block=10)
_L = dict(num_feat=128, num_reconstruct_block=40)

PRESETS: dict[str, dict[str, Any]] = {
    "EDVR_M_woTSA_x4_SR_REDS": dict(**_M, with_tsa=False),
    "EDVR_M_x4_SR_REDS": dict(**_M),
    "EDVR_L_woTSA_x4_SR_REDS": dict(**_L, with_tsa=False),
    "EDVR_L_x4_SR_REDS": dict(**_L),
    "EDVR_L_x4_SR_Vimeo90K": dict(**_L, num_frame=7),
    "EDVR_L_x4_SRblur_REDS": dict(**_L, with_predeblur=True),
    "EDVR_L_deblur_REDS": dict(**_L, with_predeblur=True, hr_in=True),
    "EDVR_L_deblurcomp_REDS": dict(**_L, with_predeblur=True, hr_in=True),
}

# Stage 2 of the paper's two-stage restoration: a shallower EDVR on the stage-1
# output frames at output resolution (hr_in, which needs the predeblur front end).
# The paper gives no exact depth; these halve the reconstruction trunk.
STAGE2_PRESETS: dict[str, dict[str, Any]] = {
    "EDVR_M_stage2": dict(num_feat=64, num_reconstruct_block=5, hr_in=True, with_predeblur=True),
    "EDVR_L_stage2": dict(num_feat=128, num_reconstruct_block=20, hr_in=True, with_predeblur=True),
}


def build(name: str, **overrides: Any) -> EDVR:
    """EDVR for a preset name (see the table above), with optional field overrides."""
    table = {**PRESETS, **STAGE2_PRESETS}
    if name not in table:
        raise KeyError(f"unknown EDVR preset {name!r}; known: {', '.join(sorted(table))}")
    return EDVR(**{**table[name], **overrides})
