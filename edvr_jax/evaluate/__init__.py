"""Evaluation: BasicSR-equivalent metrics and test-time temporal padding."""

from edvr_jax.evaluate.frame_index import PADDING_MODES, generate_frame_indices
from edvr_jax.evaluate.metrics import (
    calculate_psnr,
    calculate_ssim,
    gaussian_window_1d,
    psnr_batch,
    rgb_to_y,
    ssim_batch,
    tensor_to_uint8,
    to_uint8_batch,
)

__all__ = [
    "PADDING_MODES",
    "calculate_psnr",
    "calculate_ssim",
    "gaussian_window_1d",
    "generate_frame_indices",
    "psnr_batch",
    "rgb_to_y",
    "ssim_batch",
    "tensor_to_uint8",
    "to_uint8_batch",
]
