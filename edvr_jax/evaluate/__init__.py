"""Evaluation: BasicSR-equivalent metrics, test-time temporal padding, jitted evaluation with
the published protocols, and streaming (optionally tiled) video restoration.

The evaluation and restoration entry points are imported lazily (they pull in the data
readers, hence TensorFlow): ``from edvr_jax.evaluate import evaluate_clipset`` works.
"""

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
from edvr_jax.evaluate.protocols import PUBLISHED, Protocol, get_protocol, temporal_padding
from edvr_jax.evaluate.tiling import TileGrid, max_offset, receptive_field, tile_grid
from edvr_jax.evaluate.windows import SlidingWindows, WindowError, sliding_windows

_LAZY = {
    "EvaluationError": "edvr_jax.evaluate.evaluation",
    "evaluate_clipset": "edvr_jax.evaluate.evaluation",
    "Restorer": "edvr_jax.evaluate.inference",
    "data_mesh": "edvr_jax.evaluate.inference",
    "StreamStats": "edvr_jax.evaluate.stream",
    "make_stages": "edvr_jax.evaluate.stream",
    "restore_stream": "edvr_jax.evaluate.stream",
}

__all__ = [
    "PADDING_MODES",
    "PUBLISHED",
    "Protocol",
    "SlidingWindows",
    "TileGrid",
    "WindowError",
    "calculate_psnr",
    "calculate_ssim",
    "gaussian_window_1d",
    "generate_frame_indices",
    "get_protocol",
    "max_offset",
    "psnr_batch",
    "receptive_field",
    "rgb_to_y",
    "sliding_windows",
    "ssim_batch",
    "temporal_padding",
    "tensor_to_uint8",
    "tile_grid",
    "to_uint8_batch",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edvr_jax.evaluate' has no attribute {name!r}")
