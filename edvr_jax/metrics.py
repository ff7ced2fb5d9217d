"""Public restoration metrics, BasicSR-equal: ``from edvr_jax.metrics import calculate_psnr``.

* ``calculate_psnr(img1, img2, crop_border=0, test_y_channel=False)`` and
  ``calculate_ssim(...)``: one pair of ``(H, W, 3)`` RGB images on the 0..255 scale
  (uint8, as BasicSR's ``tensor2img`` gives), float64, the very numbers BasicSR's
  ``calculate_psnr`` / ``calculate_ssim`` return for the same picture in BGR.
* ``psnr_batch(a, b, *, crop_border=0, test_y_channel=False)`` and ``ssim_batch``: the
  jitted versions over ``(B, H, W, 3)`` batches, shape ``(B,)``.
* ``rgb_to_y`` (BasicSR's Y channel), ``tensor_to_uint8`` / ``to_uint8_batch`` (its
  quantisation of model outputs).

The implementation and its precision notes live in ``edvr_jax.evaluate.metrics``; this
module only names the public ones.
"""

from edvr_jax.evaluate.metrics import (
    calculate_psnr,
    calculate_ssim,
    psnr_batch,
    rgb_to_y,
    ssim_batch,
    tensor_to_uint8,
    to_uint8_batch,
)

__all__ = ["calculate_psnr", "calculate_ssim", "psnr_batch", "rgb_to_y", "ssim_batch", "tensor_to_uint8",
           "to_uint8_batch"]
