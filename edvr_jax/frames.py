"""Frames as arrays, and the rules frames obey: the project's one copy of each.

numpy only, so that every layer (data readers, evaluation, the tools' argument checks)
can use it without importing TensorFlow or JAX.

* ``to_float``: uint8 -> float32 in [0, 1], bit-identical to BasicSR's ``img / 255.``.
* ``tensor_to_uint8``: its inverse, BasicSR's ``tensor2img`` rounding; refuses NaN/inf.
  The jitted twin for device arrays is ``edvr_jax.evaluate.metrics.to_uint8_batch``.
* The frame rules (same size within a clip, GT = scale x LQ, LQ >= the training patch).
"""

from __future__ import annotations

import numpy as np

__all__ = ["gt_scale_problem", "patch_problem", "same_size_problem", "tensor_to_uint8", "to_float"]


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1] by `x / 255` (bit-identical to BasicSR's conversion)."""
    return img.astype(np.float32) / np.float32(255.0)


def tensor_to_uint8(img) -> np.ndarray:
    """The inverse of :func:`to_float`, the one host-side rounding of the project: a float
    image in [0, 1] to uint8 like BasicSR's ``tensor2img``.

    ``img`` is any array-like (numpy or jax, any shape, e.g. ``(H, W, 3)`` or
    ``(B, H, W, 3)``); channel order is kept (no RGB->BGR swap). Steps, all in
    float32 as in BasicSR: cast to float32, clamp to [0, 1], multiply by 255,
    round half to even, cast to uint8. Raises ``ValueError`` on NaN or inf (a clamp
    would turn them into believable black or white pixels). Its jitted twin is
    ``edvr_jax.evaluate.metrics.to_uint8_batch``.
    """
    x = np.asarray(img)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"tensor_to_uint8 expects a float image in [0, 1], got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        what = "NaN" if np.isnan(x).any() else "inf"
        raise ValueError(f"tensor_to_uint8: image of shape {x.shape} contains {what}")
    return np.round(np.clip(x, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)



# The frame rules, written once. The readers, `edvr-data check`, the training input (its first
# frames up front, and the frame that made a step fail) and evaluation all ask these; the
# tf.data graph checks the same rules in-graph (`make_train_dataset`'s `load`). Each returns
# None when the rule holds, else one line naming the files and sizes.

def same_size_problem(ref: str, hw, first_ref: str, first_hw) -> str | None:
    """All frames of one clip (one side, LQ or GT) have one size."""
    if tuple(hw[:2]) == tuple(first_hw[:2]):
        return None
    return (f"frame {ref} is {hw[0]}x{hw[1]}, but {first_ref} of the same clip is "
            f"{first_hw[0]}x{first_hw[1]}; frames of one clip must share a size")


def gt_scale_problem(gt_ref: str, gt_hw, lq_ref: str, lq_hw, scale: int) -> str | None:
    """A GT frame is `scale` times its LQ frame in both dimensions."""
    if tuple(gt_hw[:2]) == (lq_hw[0] * scale, lq_hw[1] * scale):
        return None
    return (f"GT frame {gt_ref} is {gt_hw[0]}x{gt_hw[1]} but LQ frame {lq_ref} is "
            f"{lq_hw[0]}x{lq_hw[1]}; expected GT = {scale} x LQ (scale {scale})")


def patch_problem(lq_ref: str, lq_hw, patch: int) -> str | None:
    """LQ frames are at least as large as the training crop's LQ patch (gt_size // scale)."""
    if min(lq_hw[:2]) >= patch:
        return None
    return (f"LQ frames are {lq_hw[0]}x{lq_hw[1]}, smaller than the LQ patch {patch}x{patch} "
            f"(gt_size // scale): {lq_ref}")
