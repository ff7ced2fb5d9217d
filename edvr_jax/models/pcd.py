"""PCD alignment: Pyramid, Cascading and Deformable convolution (EDVR paper, Fig. 3)."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from edvr_jax.models.dcn import DCNv2Pack
from edvr_jax.models.layers import Conv3x3, lrelu, upsample_bilinear

LEVELS = ("l3", "l2", "l1")  # coarse to fine, BasicSR's ModuleDict order


class PCDAlignment(nn.Module):
    """Aligns neighbour features to the reference features, level L3 (1/4) down to L1.

    Inputs are lists ``[L1, L2, L3]`` of ``(N, H/2^i, W/2^i, C)`` arrays for the
    neighbour and the reference frame (N may hold every (batch, frame) pair at
    once). Returns the aligned L1 feature ``(N, H, W, C)``.

    Parameter names follow BasicSR with ModuleDict keys joined by ``_``:
    ``offset_conv1_l3`` is BasicSR's ``offset_conv1.l3``.
    """

    num_feat: int = 64
    deformable_groups: int = 8
    max_columns_bytes: int | None = None
    dtype: jnp.dtype | None = None
    precision: lax.PrecisionLike = None
    remat_dcn: bool = False  # recompute each DCNv2Pack in the backward pass (EDVR.remat="dcn")

    def setup(self):
        c = self.num_feat
        conv = functools.partial(Conv3x3, c, dtype=self.dtype, precision=self.precision)
        dcn_cls = nn.remat(DCNv2Pack) if self.remat_dcn else DCNv2Pack
        dcn = functools.partial(dcn_cls, c, self.deformable_groups, self.max_columns_bytes,
                                dtype=self.dtype, precision=self.precision)
        self.offset_conv1 = {lv: conv() for lv in LEVELS}
        self.offset_conv2 = {lv: conv() for lv in LEVELS}
        self.offset_conv3 = {lv: conv() for lv in LEVELS[1:]}
        self.dcn_pack = {lv: dcn() for lv in LEVELS}
        self.feat_conv = {lv: conv() for lv in LEVELS[1:]}
        self.cas_offset_conv1 = conv()
        self.cas_offset_conv2 = conv()
        self.cas_dcnpack = dcn()

    def __call__(self, nbr_feat_l: list[jax.Array], ref_feat_l: list[jax.Array]) -> jax.Array:
        up_offset = up_feat = None
        for i in (3, 2, 1):
            lv = f"l{i}"
            nbr, ref = nbr_feat_l[i - 1], ref_feat_l[i - 1]
            offset = lrelu(self.offset_conv1[lv](jnp.concatenate([nbr, ref], -1)))
            if i == 3:
                offset = lrelu(self.offset_conv2[lv](offset))
            else:
                offset = lrelu(self.offset_conv2[lv](jnp.concatenate([offset, up_offset], -1)))
                offset = lrelu(self.offset_conv3[lv](offset))
            feat = self.dcn_pack[lv](nbr, offset)
            if i < 3:
                feat = self.feat_conv[lv](jnp.concatenate([feat, up_feat], -1))
            if i > 1:  # the L1 feat_conv output is not activated (as in BasicSR)
                feat = lrelu(feat)
                # The offset *feature* is doubled with the resolution, as in BasicSR.
                up_offset = upsample_bilinear(offset, 2) * 2
                up_feat = upsample_bilinear(feat, 2)
        offset = jnp.concatenate([feat, ref_feat_l[0]], -1)
        offset = lrelu(self.cas_offset_conv2(lrelu(self.cas_offset_conv1(offset))))
        return lrelu(self.cas_dcnpack(feat, offset))
