"""TSA fusion: temporal and spatial attention (EDVR paper, Fig. 4)."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from edvr_jax.models.dcn import INSPECT
from edvr_jax.models.layers import (
    Conv1x1,
    Conv3x3,
    avg_pool_3x3_s2,
    lrelu,
    max_pool_3x3_s2,
    upsample_bilinear,
)


class TSAFusion(nn.Module):
    """Fuses aligned features ``(B, T, H, W, C)`` into ``(B, H, W, C)``.

    Temporal attention is a per-pixel *sigmoid* (not softmax) of the dot product
    between each frame's embedding and the centre frame's. Spatial attention is a
    three-level pyramid with max/avg pooling; output ``feat * sigmoid(a) * 2 + add``.
    H and W must be multiples of 4 (two stride-2 poolings, then two x2 upsamplings).
    The temporal map ``sigmoid(corr)`` ``(B, T, H, W, 1)`` and the spatial map
    ``sigmoid(attn)`` ``(B, H, W, C)`` are sown into the ``inspect`` collection as
    ``temporal_attention`` and ``spatial_attention``.
    """

    num_feat: int = 64
    num_frame: int = 5
    center_frame_idx: int = 2
    dtype: jnp.dtype | None = None
    precision: lax.PrecisionLike = None

    @nn.compact
    def __call__(self, aligned: jax.Array) -> jax.Array:
        b, t, h, w, c = aligned.shape
        conv3 = functools.partial(Conv3x3, self.num_feat, dtype=self.dtype, precision=self.precision)
        conv1 = functools.partial(Conv1x1, self.num_feat, dtype=self.dtype, precision=self.precision)

        emb_ref = conv3(name="temporal_attn1")(aligned[:, self.center_frame_idx])  # (b, h, w, c)
        emb = conv3(name="temporal_attn2")(aligned.reshape(b * t, h, w, c)).reshape(b, t, h, w, -1)
        corr = jnp.sum(emb * emb_ref[:, None], axis=-1, keepdims=True)  # (b, t, h, w, 1)
        temporal = jax.nn.sigmoid(corr)
        self.sow(INSPECT, "temporal_attention", temporal)
        weighted = aligned * temporal
        # PyTorch's (b, t*c, h, w) view: channel index is frame * C + c.
        weighted = weighted.transpose(0, 2, 3, 1, 4).reshape(b, h, w, t * c)

        feat = lrelu(conv1(name="feat_fusion")(weighted))

        attn = lrelu(conv1(name="spatial_attn1")(weighted))
        pooled = jnp.concatenate([max_pool_3x3_s2(attn), avg_pool_3x3_s2(attn)], -1)
        attn = lrelu(conv1(name="spatial_attn2")(pooled))  # H/2
        level = lrelu(conv1(name="spatial_attn_l1")(attn))
        pooled = jnp.concatenate([max_pool_3x3_s2(level), avg_pool_3x3_s2(level)], -1)
        level = lrelu(conv3(name="spatial_attn_l2")(pooled))  # H/4
        level = upsample_bilinear(lrelu(conv3(name="spatial_attn_l3")(level)), 2)
        attn = lrelu(conv3(name="spatial_attn3")(attn)) + level
        attn = upsample_bilinear(lrelu(conv1(name="spatial_attn4")(attn)), 2)  # H
        attn = conv3(name="spatial_attn5")(attn)
        attn_add = conv1(name="spatial_attn_add2")(lrelu(conv1(name="spatial_attn_add1")(attn)))
        # x2 keeps attn*2 close to 1 at initialisation (BasicSR's comment).
        spatial = jax.nn.sigmoid(attn)
        self.sow(INSPECT, "spatial_attention", spatial)
        return feat * spatial * 2 + attn_add
