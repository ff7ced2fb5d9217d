"""Modulated deformable convolution (DCNv2) in plain jnp, channels-last.

Semantics are exactly those of ``torchvision.ops.deform_conv2d`` (and of the
CUDA kernels in BasicSR and mmcv), transposed to NHWC:

* ``x`` is ``(N, H, W, Cin)``, ``kernel`` is ``(kh, kw, Cin, Cout)``.
* ``offset`` is ``(N, Ho, Wo, 2*G*kh*kw)``. For deformable group ``g`` and
  kernel tap ``k = i*kw + j`` channel ``g*2*kh*kw + 2*k`` is the row offset
  (dy) and ``g*2*kh*kw + 2*k + 1`` the column offset (dx). ``G`` is inferred
  from the channel count, as torchvision does.
* ``mask`` is ``(N, Ho, Wo, G*kh*kw)``, channel ``g*kh*kw + k``.
* Tap ``(i, j)`` of output pixel ``(ho, wo)`` samples input position
  ``y = ho*sh - ph + i*dh + dy``, ``x = wo*sw - pw + j*dw + dx`` with bilinear
  interpolation. Corners outside the image count as zero, and a sample with
  ``y <= -1``, ``y >= H``, ``x <= -1`` or ``x >= W`` is zero as a whole.

How it is computed. The input is zero-padded by one pixel and viewed as rows
of ``Cin/G`` channels, one row per (pixel, group). For every output pixel,
tap and group the four bilinear corners are fetched with four row gathers
that XLA fuses with the weighting into a single pass writing the sampled
"columns" ``(N, Ho, Wo, kh*kw*Cin)``; one matmul with the kernel then gives
the output. Clipped indices plus zeroed weights stand in for bounds checks, so
no out-of-range index ever reaches a gather (JAX would wrap negative indices
and fill others with NaN). The integer part of each position is a constant
for autodiff and the fractional part carries the gradient, so the gradient
with respect to an offset is the one-sided difference torchvision uses, also
at exactly integer positions (EDVR starts every offset at 0).

Memory. The largest intermediate is the columns tensor,
``(N, Ho, Wo, kh*kw*Cin)`` values (the backward pass holds the four corner
gathers of the same shape). When it would exceed ``max_columns_bytes`` the
output rows are processed in chunks with ``lax.map``, which bounds memory by
the chunk and not by the frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["deform_conv2d", "DEFAULT_MAX_COLUMNS_BYTES"]

# The columns tensor of one call is kept under this size (bytes); larger
# calls are chunked over output rows. 512 MiB keeps EDVR-L inference at
# 180x320 input well inside 8 GB while leaving training crops unchunked.
DEFAULT_MAX_COLUMNS_BYTES = 512 * 2**20

IntPair = int | Sequence[int]


def _pair(v: IntPair, name: str) -> tuple[int, int]:
    if isinstance(v, int):
        out = (v, v)
    else:
        out = tuple(int(a) for a in v)
        if len(out) != 2:
            raise ValueError(f"deform_conv2d: {name} must be an int or an (h, w) pair, got {v!r}")
    return out  # type: ignore[return-value]


def _check_shapes(x, offset, mask, kernel, bias, stride, padding, dilation):
    """Validates shapes and returns (G, Ho, Wo) or raises a clear ValueError."""
    layouts = {"x": "(N, H, W, Cin)", "offset": "(N, Ho, Wo, 2*G*kh*kw)", "kernel": "(kh, kw, Cin, Cout)"}
    for name, arr in (("x", x), ("offset", offset), ("kernel", kernel)):
        if arr.ndim != 4:
            raise ValueError(f"deform_conv2d: {name} must have rank 4 ({layouts[name]}), "
                             f"got shape {tuple(arr.shape)}")
    n, h, w, cin = x.shape
    kh, kw, kcin, cout = kernel.shape
    if kcin != cin:
        raise ValueError(
            f"deform_conv2d: kernel {tuple(kernel.shape)} expects Cin={kcin} but x "
            f"{tuple(x.shape)} has Cin={cin} (kernel layout is (kh, kw, Cin, Cout))"
        )
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    if min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(
            f"deform_conv2d: stride and dilation must be >= 1 and padding >= 0, "
            f"got stride={stride}, padding={padding}, dilation={dilation}"
        )
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(
            f"deform_conv2d: input {h}x{w} is too small for a {kh}x{kw} kernel with "
            f"padding={padding}, dilation={dilation} (output would be {ho}x{wo})"
        )
    taps = kh * kw
    if offset.shape[-1] % (2 * taps) != 0 or offset.shape[-1] == 0:
        raise ValueError(
            f"deform_conv2d: offset has {offset.shape[-1]} channels, which is not a positive "
            f"multiple of 2*kh*kw = {2 * taps}"
        )
    groups = offset.shape[-1] // (2 * taps)
    if cin % groups != 0:
        raise ValueError(
            f"deform_conv2d: Cin={cin} is not divisible by the {groups} deformable groups "
            f"implied by {offset.shape[-1]} offset channels"
        )
    if tuple(offset.shape[:3]) != (n, ho, wo):
        raise ValueError(
            f"deform_conv2d: offset {tuple(offset.shape)} must be (N, Ho, Wo, C) = "
            f"({n}, {ho}, {wo}, C) for input {tuple(x.shape)} with stride={stride}, "
            f"padding={padding}, dilation={dilation}"
        )
    if mask is not None:
        if mask.ndim != 4 or tuple(mask.shape) != (n, ho, wo, groups * taps):
            raise ValueError(
                f"deform_conv2d: mask {tuple(mask.shape)} must be (N, Ho, Wo, G*kh*kw) = "
                f"({n}, {ho}, {wo}, {groups * taps})"
            )
    if bias is not None and tuple(bias.shape) != (cout,):
        raise ValueError(f"deform_conv2d: bias {tuple(bias.shape)} must be (Cout,) = ({cout},)")
    return groups, ho, wo


def deform_conv2d(
    x: jax.Array,
    offset: jax.Array,
    mask: jax.Array | None,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    stride: IntPair = 1,
    padding: IntPair = 1,
    dilation: IntPair = 1,
    max_columns_bytes: int | None = None,
    precision: lax.PrecisionLike = None,
) -> jax.Array:
    """Modulated deformable 2-D convolution, torchvision semantics, NHWC.

    Args:
      x: input ``(N, H, W, Cin)``.
      offset: ``(N, Ho, Wo, 2*G*kh*kw)`` sampling offsets in pixels, torchvision's
        channel order (group-major, then tap, then dy before dx).
      mask: ``(N, Ho, Wo, G*kh*kw)`` modulation (DCNv2), or None for all ones (DCNv1).
      kernel: ``(kh, kw, Cin, Cout)``.
      bias: optional ``(Cout,)``.
      stride, padding, dilation: an int or an ``(h, w)`` pair.
      max_columns_bytes: bound on the sampled-columns intermediate
        ``(N, Ho, Wo, kh*kw*Cin)``; above it the output rows are computed in
        chunks. Defaults to ``DEFAULT_MAX_COLUMNS_BYTES``.
      precision: matmul precision for the final contraction (``None`` follows
        ``jax_default_matmul_precision``; use ``'highest'`` on TPU for float32
        equivalence with PyTorch).

    Returns:
      ``(N, Ho, Wo, Cout)`` in the dtype of ``x``. Sampling positions and
      bilinear weights are computed in the offsets' dtype, at least float32.
    """
    stride_, padding_, dilation_ = (
        _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation"))
    groups, ho, wo = _check_shapes(x, offset, mask, kernel, bias, stride_, padding_, dilation_)
    n, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    taps = kh * kw
    cg = cin // groups
    dtype = x.dtype

    # One row of Cin/G channels per (padded pixel, group); the 1-pixel zero
    # border holds the corners that fall just outside the image.
    rows = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))).reshape(-1, cg)

    # (N*Ho, Wo, G, K, 2) and (N*Ho, Wo, G, K).
    # Positions need float32 at least: bf16 would misplace samples by whole pixels.
    pos_dtype = jnp.promote_types(offset.dtype, jnp.float32)
    off = offset.astype(pos_dtype).reshape(n * ho, wo, groups, taps, 2)
    if mask is None:
        msk = jnp.ones((n * ho, wo, groups, taps), pos_dtype)
    else:
        msk = mask.astype(pos_dtype).reshape(n * ho, wo, groups, taps)
    row_ids = jnp.arange(n * ho, dtype=jnp.int32)

    sample = _make_sampler(rows, in_hw=(h, w), out_hw=(ho, wo), kernel_hw=(kh, kw),
                           groups=groups, stride=stride_, padding=padding_,
                           dilation=dilation_, dtype=dtype)
    kmat = kernel.reshape(taps * cin, cout).astype(dtype)

    def conv_chunk(args):
        o, m, r = args
        cols = sample(o, m, r)  # (R, Wo, K, G, Cg)
        cols = cols.reshape(cols.shape[0], wo, taps * cin)
        return jnp.einsum("rwc,co->rwo", cols, kmat, precision=precision)

    itemsize = jnp.dtype(dtype).itemsize
    budget = DEFAULT_MAX_COLUMNS_BYTES if max_columns_bytes is None else int(max_columns_bytes)
    bytes_per_row = wo * taps * cin * itemsize
    total_rows = n * ho
    rows_per_chunk = max(1, min(total_rows, budget // max(bytes_per_row, 1)))
    if rows_per_chunk >= total_rows:
        out = conv_chunk((off, msk, row_ids))
    else:
        n_chunks = math.ceil(total_rows / rows_per_chunk)
        pad = n_chunks * rows_per_chunk - total_rows

        def split(a):
            a = jnp.pad(a, ((0, pad),) + ((0, 0),) * (a.ndim - 1))
            return a.reshape((n_chunks, rows_per_chunk) + a.shape[1:])

        # Padding rows get ids past the end; their mask is 0 so they sample nothing.
        ids = jnp.arange(n_chunks * rows_per_chunk, dtype=jnp.int32)
        out = lax.map(conv_chunk, (split(off), split(msk), ids.reshape(n_chunks, -1)))
        out = out.reshape(-1, wo, cout)[:total_rows]
    out = out.reshape(n, ho, wo, cout)
    if bias is not None:
        out = out + bias.astype(dtype)
    return out


def _make_sampler(rows, *, in_hw, out_hw, kernel_hw, groups, stride, padding, dilation, dtype):
    """Returns sample(offset, mask, row_ids) -> columns (R, Wo, K, G, Cin/G)."""
    h, w = in_hw
    ho, wo = out_hw
    kh, kw = kernel_hw
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    hp, wp = h + 2, w + 2
    n_images = rows.shape[0] // (hp * wp * groups)
    tap_y = jnp.repeat(jnp.arange(kh), kw) * dh  # (K,)
    tap_x = jnp.tile(jnp.arange(kw), kh) * dw
    grp = jnp.arange(groups, dtype=jnp.int32)[:, None]  # (G, 1) broadcasts over K

    def sample(off, msk, row_ids):
        img = row_ids // ho  # (R,)
        out_y = (row_ids % ho) * sh - ph
        out_x = jnp.arange(wo) * sw - pw
        # Absolute sampling positions, (R, Wo, G, K), in the offsets' float dtype.
        py = (out_y[:, None, None, None] + tap_y).astype(off.dtype) + off[..., 0]
        px = (out_x[None, :, None, None] + tap_x).astype(off.dtype) + off[..., 1]
        y0 = lax.stop_gradient(jnp.floor(py))
        x0 = lax.stop_gradient(jnp.floor(px))
        ly, lx = py - y0, px - x0
        hy, hx = 1.0 - ly, 1.0 - lx
        # A bilinear cell whose top-left corner is in [-1, H-1] x [-1, W-1] has
        # at least one corner in the image; the others sit on the zero border.
        # Cells further out contribute nothing. Deciding on the cell (not on
        # y > -1) keeps torchvision's offset gradient at exactly y = -1 or x = -1.
        inside = ((y0 >= -1) & (y0 <= h - 1) & (x0 >= -1) & (x0 <= w - 1)
                  & (img < n_images)[:, None, None, None])
        m = jnp.where(inside, msk, 0.0)
        # Index of the top-left corner in the padded row table; cells outside
        # are clipped onto valid rows and carry zero weight.
        yi = jnp.clip(y0.astype(jnp.int32), -1, h - 1) + 1
        xi = jnp.clip(x0.astype(jnp.int32), -1, w - 1) + 1
        base = ((jnp.minimum(img, n_images - 1)[:, None, None, None] * hp + yi) * wp + xi) * groups + grp
        # (R, Wo, K, G) layout so the columns come out in the kernel's (kh, kw, Cin) order.
        base = base.transpose(0, 1, 3, 2)
        wts = [(a * b * m).transpose(0, 1, 3, 2).astype(dtype)[..., None]
               for a, b in ((hy, hx), (hy, lx), (ly, hx), (ly, lx))]

        def take(idx):
            return rows.at[idx].get(mode="promise_in_bounds")

        return (take(base) * wts[0] + take(base + groups) * wts[1]
                + take(base + wp * groups) * wts[2] + take(base + wp * groups + groups) * wts[3])

    return sample
