"""Numerical operators (no Flax inside)."""

from edvr_jax.ops.deform_conv import DEFAULT_MAX_COLUMNS_BYTES, DEFAULT_TPU_MAX_COLUMNS_BYTES, deform_conv2d

__all__ = ["deform_conv2d", "DEFAULT_MAX_COLUMNS_BYTES", "DEFAULT_TPU_MAX_COLUMNS_BYTES"]
