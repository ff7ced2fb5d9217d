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

    The paper's ablations (Sec. 4.2, not in BasicSR): ``num_levels=1`` aligns at L1 only,
    without the pyramid (L1 is then computed as BasicSR's L3 is: ``offset_conv1.l1`` on
    ``cat(nbr, ref)``, ``offset_conv2.l1`` C->C, ``dcn_pack.l1``; no ``feat_conv``);
    ``cascade=False`` drops the cascading DCN (``cas_*``) and returns ``lrelu`` of the L1
    result. The full model (3, True) is BasicSR's, names and shapes.
    """

    num_feat: int = 64
    deformable_groups: int = 8
    max_columns_bytes: int | None = None
    dtype: jnp.dtype | None = None
    precision: lax.PrecisionLike = None
    remat_dcn: bool = False  # recompute each DCNv2Pack in the backward pass (EDVR.remat="dcn")
    num_levels: int = 3  # 3: the pyramid L3..L1; 1: a single level, L1 (ablation)
    cascade: bool = True  # the cascading DCN after L1 (False: ablation)

    def setup(self):
        c = self.num_feat
        conv = functools.partial(Conv3x3, c, dtype=self.dtype, precision=self.precision)
        dcn_cls = nn.remat(DCNv2Pack) if self.remat_dcn else DCNv2Pack
        dcn = functools.partial(dcn_cls, c, self.deformable_groups, self.max_columns_bytes,
                                dtype=self.dtype, precision=self.precision)
        if self.num_levels not in (1, 3):
            raise ValueError(f"PCDAlignment: num_levels must be 3 (the pyramid) or 1 (L1 only), "
                             f"got {self.num_levels}")
        levels = LEVELS[-self.num_levels:]
        self.offset_conv1 = {lv: conv() for lv in levels}
        self.offset_conv2 = {lv: conv() for lv in levels}
        self.offset_conv3 = {lv: conv() for lv in levels[1:]}
        self.dcn_pack = {lv: dcn() for lv in levels}
        self.feat_conv = {lv: conv() for lv in levels[1:]}
        if self.cascade:
            self.cas_offset_conv1 = conv()
            self.cas_offset_conv2 = conv()
            self.cas_dcnpack = dcn()

    def __call__(self, nbr_feat_l: list[jax.Array], ref_feat_l: list[jax.Array]) -> jax.Array:
        up_offset = up_feat = None
        top = self.num_levels  # the coarsest level used
        for i in range(top, 0, -1):
            lv = f"l{i}"
            nbr, ref = nbr_feat_l[i - 1], ref_feat_l[i - 1]
            offset = lrelu(self.offset_conv1[lv](jnp.concatenate([nbr, ref], -1)))
            if i == top:
                offset = lrelu(self.offset_conv2[lv](offset))
            else:
                offset = lrelu(self.offset_conv2[lv](jnp.concatenate([offset, up_offset], -1)))
                offset = lrelu(self.offset_conv3[lv](offset))
            feat = self.dcn_pack[lv](nbr, offset)
            if i < top:
                feat = self.feat_conv[lv](jnp.concatenate([feat, up_feat], -1))
            if i > 1:  # the L1 feat_conv output is not activated (as in BasicSR)
                feat = lrelu(feat)
                # The offset *feature* is doubled with the resolution, as in BasicSR.
                up_offset = upsample_bilinear(offset, 2) * 2
                up_feat = upsample_bilinear(feat, 2)
        if not self.cascade:
            return lrelu(feat)
        offset = jnp.concatenate([feat, ref_feat_l[0]], -1)
        offset = lrelu(self.cas_offset_conv2(lrelu(self.cas_offset_conv1(offset))))
        return lrelu(self.cas_dcnpack(feat, offset))
