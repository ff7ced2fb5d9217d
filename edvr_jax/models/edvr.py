"""EDVR (Wang et al., NTIRE 2019) with every option of BasicSR's ``EDVR``.

Layout: the input clip is ``(B, T, H, W, 3)`` RGB float in [0, 1]; the output is the
restored centre frame ``(B, 4H, 4W, 3)``, or ``(B, H, W, 3)`` for ``hr_in`` models
(deblurring). H and W must be multiples of 4 (16 with ``hr_in``); use
``edvr_jax.models.pad_to_multiple`` / ``restore_any_size`` for other sizes.

Parameter names follow BasicSR's state_dict, with ``nn.Sequential`` / ModuleDict
indices joined by ``_`` (``feature_extraction.0.conv1.weight`` is
``feature_extraction_0/conv1/kernel``); ``edvr_jax.convert`` holds the one rule.
"""

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
    ResidualBlockNoBN,
    lrelu,
    pixel_shuffle,
    upsample_bilinear,
)
from edvr_jax.models.pcd import PCDAlignment
from edvr_jax.models.predeblur import PredeblurModule
from edvr_jax.models.tsa import TSAFusion

REMAT_POLICIES = ("none", "blocks", "pcd", "dcn")


class EDVR(nn.Module):
    """EDVR network; field names and defaults are BasicSR's.

    ``num_out_ch`` is accepted for compatibility but, as in BasicSR, the last conv
    always has 3 outputs. ``hr_in`` requires ``with_predeblur`` (BasicSR's plain
    ``conv_first`` path cannot downsample). ``max_columns_bytes`` bounds the
    deformable convolution's intermediate (see ``edvr_jax.ops.deform_conv2d``);
    ``dtype`` is the compute dtype (parameters stay float32).

    ``remat`` (one of ``REMAT_POLICIES``): what the backward pass recomputes (``nn.remat``,
    i.e. ``jax.checkpoint``) instead of keeping it from the forward pass. ``"blocks"``: the
    insides of every residual block of feature extraction and reconstruction; ``"pcd"``: those
    and the whole PCD alignment as one block; ``"dcn"``: the blocks and each DCNv2Pack of PCD
    on its own (only one deformable convolution's sampling is live again at a time). Less
    memory for about one more forward of those parts; outputs, gradients and the parameter
    tree are those of ``"none"``. Which saves most depends on the backend's own memory
    planning: measure with ``edvr-aot``.
    """

    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_frame: int = 5
    deformable_groups: int = 8
    num_extract_block: int = 5
    num_reconstruct_block: int = 10
    center_frame_idx: int | None = None
    hr_in: bool = False
    with_predeblur: bool = False
    with_tsa: bool = True
    # The paper's ablations (not in BasicSR; configs/ablation_*.py): ``with_pcd=False``
    # fuses every frame's L1 features as they are (no alignment, no L2/L3 pyramid convs);
    # ``pcd_levels=1`` aligns with a single level (L1) instead of the L3..L1 pyramid;
    # ``pcd_cascade=False`` drops the cascading DCN. Defaults: BasicSR's EDVR.
    with_pcd: bool = True
    pcd_levels: int = 3
    pcd_cascade: bool = True
    max_columns_bytes: int | None = None
    dtype: jnp.dtype | None = None
    precision: lax.PrecisionLike = None
    remat: str = "none"

    @property
    def center(self) -> int:
        return self.num_frame // 2 if self.center_frame_idx is None else self.center_frame_idx

    @property
    def scale(self) -> int:
        """Output size / input size: 1 for hr_in (deblurring) models, else 4."""
        return 1 if self.hr_in else 4

    @property
    def size_multiple(self) -> int:
        """H and W of the input must be multiples of this."""
        return 16 if self.hr_in else 4

    def check_input(self, x) -> None:
        """Raises ValueError with a plain message if ``x`` cannot go through the network."""
        if self.remat not in REMAT_POLICIES:
            raise ValueError(f"EDVR: remat must be one of {', '.join(REMAT_POLICIES)}, got {self.remat!r}")
        if self.pcd_levels not in (1, 3):
            raise ValueError(f"EDVR: pcd_levels must be 3 (the pyramid) or 1 (L1 only), got {self.pcd_levels}")
        if self.hr_in and not self.with_predeblur:
            raise ValueError("EDVR: hr_in=True needs with_predeblur=True (as in BasicSR)")
        if self.num_frame % 2 != 1:
            raise ValueError(f"EDVR: num_frame must be odd (a centre frame plus neighbours), got {self.num_frame}")
        if not 0 <= self.center < self.num_frame:
            raise ValueError(f"EDVR: center_frame_idx={self.center} is outside 0..{self.num_frame - 1}")
        if getattr(x, "ndim", None) != 5:
            raise ValueError(f"EDVR expects a clip batch (B, T, H, W, 3), got shape {tuple(getattr(x, 'shape', ()))}")
        b, t, h, w, c = x.shape
        if t != self.num_frame:
            raise ValueError(f"EDVR: this model takes num_frame={self.num_frame} frames, got T={t} in {tuple(x.shape)}")
        if c != self.num_in_ch:
            raise ValueError(f"EDVR expects {self.num_in_ch} channels (RGB) last, got shape {tuple(x.shape)}")
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"EDVR{' (hr_in)' if self.hr_in else ''}: height and width must be multiples of {m}, "
                f"got {h}x{w}; pad with edvr_jax.models.pad_to_multiple or use restore_any_size")

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        self.check_input(x)
        b, t, h, w, _ = x.shape
        c = self.num_feat
        dt = self.dtype or x.dtype
        conv = functools.partial(Conv3x3, dtype=self.dtype, precision=self.precision)
        block_cls = ResidualBlockNoBN if self.remat == "none" else nn.remat(ResidualBlockNoBN)
        pcd_cls = nn.remat(PCDAlignment) if self.remat == "pcd" else PCDAlignment
        blocks = functools.partial(block_cls, c, dtype=self.dtype, precision=self.precision)
        frames = x.reshape(b * t, h, w, -1).astype(dt)

        # L1 features of every frame.
        if self.with_predeblur:
            feat_l1 = PredeblurModule(num_feat=c, hr_in=self.hr_in, dtype=self.dtype,
                                      precision=self.precision, name="predeblur")(frames)
            feat_l1 = Conv1x1(c, dtype=self.dtype, precision=self.precision, name="conv_1x1")(feat_l1)
        else:
            feat_l1 = lrelu(conv(c, name="conv_first")(frames))
        for i in range(self.num_extract_block):
            feat_l1 = blocks(name=f"feature_extraction_{i}")(feat_l1)
        self.sow(INSPECT, "feat_l1", feat_l1)  # (B*T, H, W, C), for edvr-inspect
        if self.with_pcd:
            aligned = self._align(feat_l1, b, t, conv, pcd_cls)
        else:  # ablation: no alignment at all
            aligned = feat_l1
        hf, wf = aligned.shape[1:3]
        aligned = aligned.reshape(b, t, hf, wf, c)
        self.sow(INSPECT, "aligned", aligned)

        if self.with_tsa:
            feat = TSAFusion(c, t, self.center, dtype=self.dtype, precision=self.precision,
                             name="fusion")(aligned)
        else:
            # PyTorch's view(b, t*c, h, w): channel index frame * C + c.
            flat = aligned.transpose(0, 2, 3, 1, 4).reshape(b, hf, wf, t * c)
            feat = Conv1x1(c, dtype=self.dtype, precision=self.precision, name="fusion")(flat)

        out = feat
        for i in range(self.num_reconstruct_block):
            out = blocks(name=f"reconstruction_{i}")(out)
        out = lrelu(pixel_shuffle(conv(4 * c, name="upconv1")(out), 2))
        out = lrelu(pixel_shuffle(conv(64 * 4, name="upconv2")(out), 2))
        out = lrelu(conv(64, name="conv_hr")(out))
        out = conv(3, name="conv_last")(out)
        # The skip connection is added in the input's dtype: a bfloat16 model keeps the
        # upsampled centre frame exact and rounds only its residual.
        centre = x[:, self.center]
        base = centre if self.hr_in else upsample_bilinear(centre, 4)
        return out.astype(x.dtype) + base

    @nn.nowrap
    def _align(self, feat_l1, b, t, conv, pcd_cls):
        """PCD: every frame (the centre included) against the centre frame, all at once."""
        c = self.num_feat
        feats = [feat_l1]
        if self.pcd_levels > 1:
            feat_l2 = lrelu(conv(c, name="conv_l2_2")(lrelu(conv(c, stride=2, name="conv_l2_1")(feat_l1))))
            feat_l3 = lrelu(conv(c, name="conv_l3_2")(lrelu(conv(c, stride=2, name="conv_l3_1")(feat_l2))))
            feats += [feat_l2, feat_l3]
        pyramid = []
        for f in feats:
            f = f.reshape((b, t) + f.shape[1:])
            ref = jnp.broadcast_to(f[:, self.center : self.center + 1], f.shape)
            pyramid.append((f.reshape((b * t,) + f.shape[2:]), ref.reshape((b * t,) + f.shape[2:])))
        return pcd_cls(c, self.deformable_groups, self.max_columns_bytes, dtype=self.dtype,
                       precision=self.precision, remat_dcn=self.remat == "dcn",
                       num_levels=self.pcd_levels, cascade=self.pcd_cascade, name="pcd_align")(
            [p[0] for p in pyramid], [p[1] for p in pyramid])

