"""EDVR in Flax Linen, one module per box of the paper, with BasicSR's names."""

from edvr_jax.models.dcn import OFFSET_WARNING_THRESHOLD, DCNv2Pack
from edvr_jax.models.edvr import EDVR
from edvr_jax.models.helpers import (
    count_params,
    crop_output,
    init_input,
    offset_stats,
    pad_to_multiple,
    restore_any_size,
    summary,
    warn_large_offsets,
)
from edvr_jax.models.layers import ResidualBlockNoBN, pixel_shuffle, upsample_bilinear
from edvr_jax.models.names import basicsr_names
from edvr_jax.models.pcd import PCDAlignment
from edvr_jax.models.predeblur import PredeblurModule
from edvr_jax.models.presets import PRESETS, STAGE2_PRESETS, build
from edvr_jax.models.tsa import TSAFusion
from edvr_jax.models.two_stage import TwoStageEDVR

__all__ = [
    "EDVR", "TwoStageEDVR", "PCDAlignment", "TSAFusion", "PredeblurModule", "DCNv2Pack",
    "ResidualBlockNoBN", "pixel_shuffle", "upsample_bilinear", "PRESETS", "STAGE2_PRESETS",
    "build", "count_params", "summary", "pad_to_multiple", "crop_output", "restore_any_size",
    "offset_stats", "warn_large_offsets", "init_input", "OFFSET_WARNING_THRESHOLD", "basicsr_names",
]
