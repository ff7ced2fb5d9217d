"""Pre-deblurring module used by EDVR's SRblur, deblur and deblurcomp models."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from edvr_jax.models.layers import Conv3x3, ResidualBlockNoBN, lrelu, upsample_bilinear


class PredeblurModule(nn.Module):
    """A small pyramid deblurring network, ``(N, H, W, 3) -> (N, H', W', C)``.

    With ``hr_in`` two stride-2 convs first bring the features to 1/4 size
    (H' = H/4; H must then be a multiple of 16), otherwise H' = H.
    """

    num_in_ch: int = 3
    num_feat: int = 64
    hr_in: bool = False
    dtype: jnp.dtype | None = None
    precision: lax.PrecisionLike = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        conv = functools.partial(Conv3x3, self.num_feat, dtype=self.dtype, precision=self.precision)
        rb = functools.partial(ResidualBlockNoBN, self.num_feat, dtype=self.dtype,
                               precision=self.precision)
        feat_l1 = lrelu(conv(name="conv_first")(x))
        if self.hr_in:
            feat_l1 = lrelu(conv(stride=2, name="stride_conv_hr1")(feat_l1))
            feat_l1 = lrelu(conv(stride=2, name="stride_conv_hr2")(feat_l1))
        feat_l2 = lrelu(conv(stride=2, name="stride_conv_l2")(feat_l1))
        feat_l3 = lrelu(conv(stride=2, name="stride_conv_l3")(feat_l2))

        feat_l3 = upsample_bilinear(rb(name="resblock_l3")(feat_l3), 2)
        feat_l2 = rb(name="resblock_l2_1")(feat_l2) + feat_l3
        feat_l2 = upsample_bilinear(rb(name="resblock_l2_2")(feat_l2), 2)
        for i in range(2):
            feat_l1 = rb(name=f"resblock_l1_{i}")(feat_l1)
        feat_l1 = feat_l1 + feat_l2
        for i in range(2, 5):
            feat_l1 = rb(name=f"resblock_l1_{i}")(feat_l1)
        return feat_l1
