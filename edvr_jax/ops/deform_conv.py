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

How it is computed. Two forms of the same arithmetic; ``impl='auto'`` picks
one by the platform the program is lowered for (``lax.platform_dependent``).

* ``'gather'`` (CPU, GPU). The input is zero-padded by one pixel and viewed as
  rows of ``Cin/G`` channels, one row per (pixel, group). For every output
  pixel, tap and group the four bilinear corners are fetched with four row
  gathers that XLA fuses with the weighting into a single pass writing the
  sampled "columns" ``(N, Ho, Wo, kh*kw*Cin)``; one matmul with the kernel
  then gives the output.
* ``'packed'`` (TPU). TPU arrays are tiled (8, 128) over their two minor
  dimensions, so the gather form's intermediates (minor dimension ``Cin/G``,
  per-corner weights with minor dimension 1) take 16-128x their size, and a
  TPU gather costs per fetched row. Here one row of a table holds all four
  corners of a cell, so one gather per (position, tap, group) fetches them,
  and positions are the minor axis of every per-sample array.

In both, clipped indices plus zeroed weights stand in for bounds checks, so
no out-of-range index ever reaches a gather (JAX would wrap negative indices
and fill others with NaN). The integer part of each position is a constant
for autodiff and the fractional part carries the gradient, so the gradient
with respect to an offset is the one-sided difference torchvision uses, also
at exactly integer positions (EDVR starts every offset at 0).

Memory. The largest intermediate is the sampled data: the columns tensor,
``(N, Ho, Wo, kh*kw*Cin)`` values, in the gather form (the backward pass holds
the four corner gathers of the same shape); the gathered cells (four corners
per column value, positions minor), held about twice, in the packed form. When
it would exceed ``max_columns_bytes``, counted as the device lays it out, the
work is done in chunks (of output rows, or of positions, of every image at
once) with ``lax.map``, which bounds memory by the chunk and not by the frame;
the packed form recomputes each chunk in the backward pass, so training memory
is bounded by the chunk as well. Each image samples only its own table (the
gathers are batched over images), so a batch sharded over devices stays local:
the SPMD partitioner splits the work instead of replicating the tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["deform_conv2d", "DEFAULT_MAX_COLUMNS_BYTES", "DEFAULT_TPU_MAX_COLUMNS_BYTES"]

# The columns tensor of one call is kept under this size (bytes); larger
# calls are chunked over output rows. 512 MiB keeps EDVR-L inference at
# 180x320 input well inside 8 GB while leaving training crops unchunked.
DEFAULT_MAX_COLUMNS_BYTES = 512 * 2**20
# The TPU form counts its gathered cells as the device holds them (about twice,
# positions minor) and runs in chunks of at most this many bytes, recomputed in
# the backward pass: EDVR's training batches (20 images of 64x64 per chip, 80
# on a 4-chip mesh) run in chunks of 256-1408 positions, lane-dense.
DEFAULT_TPU_MAX_COLUMNS_BYTES = 512 * 2**20
LANES = 128

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
    impl: str = "auto",
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
      max_columns_bytes: bound, in bytes as the device allocates them, on the
        sampled intermediate (see Memory in the module docstring); above it the
        work is done in chunks. Defaults to ``DEFAULT_MAX_COLUMNS_BYTES`` for the
        gather form and ``DEFAULT_TPU_MAX_COLUMNS_BYTES`` for the packed form.
      precision: matmul precision for the final contraction (``None`` follows
        ``jax_default_matmul_precision``; use ``'highest'`` on TPU for float32
        equivalence with PyTorch).
      impl: ``'auto'`` (default) lowers ``'packed'`` for TPU and ``'gather'``
        elsewhere, decided by the platform the program is lowered for (so an
        ahead-of-time compile for a TPU topology on a CPU host gets the TPU
        form). Both compute the same function with the same gradients; forcing
        one is for tests and benchmarks.

    Returns:
      ``(N, Ho, Wo, Cout)`` in the dtype of ``x``. Sampling positions and
      bilinear weights are computed in the offsets' dtype, at least float32.
    """
    stride_, padding_, dilation_ = (
        _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation"))
    groups, ho, wo = _check_shapes(x, offset, mask, kernel, bias, stride_, padding_, dilation_)
    if impl not in _IMPLS:
        raise ValueError(f"deform_conv2d: impl must be one of {sorted(_IMPLS)}, got {impl!r}")
    conf = dict(groups=groups, out_hw=(ho, wo), stride=stride_, padding=padding_, dilation=dilation_,
                max_columns_bytes=max_columns_bytes, precision=precision)
    if impl == "auto":
        # Decided when lowering, not by jax.default_backend(): an AOT compile for
        # a TPU topology from a CPU host must get the TPU form.
        out = lax.platform_dependent(
            x, offset, mask, kernel,
            tpu=lambda *a: _deform_packed(*a, **conf),
            default=lambda *a: _deform_gather(*a, **conf))
    else:
        out = _IMPLS[impl](x, offset, mask, kernel, **conf)
    if bias is not None:
        out = out + bias.astype(x.dtype)
    return out


def _deform_gather(x, offset, mask, kernel, *, groups, out_hw, stride, padding, dilation,
                   max_columns_bytes, precision):
    """Four row gathers per sample, channels last: the fast form on CPU."""
    ho, wo = out_hw
    n, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    taps = kh * kw
    cg = cin // groups
    dtype = x.dtype

    # Per image, one row of Cin/G channels per (padded pixel, group); the 1-pixel
    # zero border holds the corners that fall just outside the image.
    rows = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))).reshape(n, -1, cg)

    # (N, Ho, Wo, G, K, 2) and (N, Ho, Wo, G, K).
    # Positions need float32 at least: bf16 would misplace samples by whole pixels.
    pos_dtype = jnp.promote_types(offset.dtype, jnp.float32)
    off = offset.astype(pos_dtype).reshape(n, ho, wo, groups, taps, 2)
    if mask is None:
        msk = jnp.ones((n, ho, wo, groups, taps), pos_dtype)
    else:
        msk = mask.astype(pos_dtype).reshape(n, ho, wo, groups, taps)

    sample = _make_sampler(in_hw=(h, w), out_hw=(ho, wo), kernel_hw=(kh, kw), groups=groups,
                           stride=stride, padding=padding, dilation=dilation, dtype=dtype)
    kmat = kernel.reshape(taps * cin, cout).astype(dtype)

    def conv_image(table, o, m, r):
        cols = sample(table, o, m, r)  # (R, Wo, K, G, Cg)
        cols = cols.reshape(cols.shape[0], wo, taps * cin)
        return jnp.einsum("rwc,co->rwo", cols, kmat, precision=precision)

    def conv_chunk(args):
        o, m, r = args  # (N, R, ...) for R output rows of every image
        return jax.vmap(conv_image, in_axes=(0, 0, 0, None))(rows, o, m, r)

    # On CPU the arrays are dense: the columns are what is allocated.
    bytes_per_row = n * wo * taps * cin * jnp.dtype(dtype).itemsize
    budget = DEFAULT_MAX_COLUMNS_BYTES if max_columns_bytes is None else int(max_columns_bytes)
    return _chunked(conv_chunk, (off, msk), ho, max(1, budget // max(bytes_per_row, 1)), remat=False)


def _chunked(fn, arrays, total, per_chunk, *, remat):
    """fn((*arrays, ids)) over axis 1 of ``arrays`` (length ``total``), ``per_chunk`` at a time.

    Axis 0 is the batch and is never split (so a batch sharded over devices stays
    local to each). Chunks run one after another under ``lax.map``; padding entries
    get ids past the end, which the samplers give zero weight. With ``remat`` the
    backward pass recomputes each chunk instead of keeping every chunk's
    intermediates, so training memory is bounded by one chunk too."""
    if per_chunk >= total:
        return fn((*arrays, jnp.arange(total, dtype=jnp.int32)))
    n_chunks = math.ceil(total / per_chunk)
    pad = n_chunks * per_chunk - total

    def split(a):
        a = jnp.pad(a, ((0, 0), (0, pad)) + ((0, 0),) * (a.ndim - 2))
        return jnp.moveaxis(a.reshape((a.shape[0], n_chunks, per_chunk) + a.shape[2:]), 1, 0)

    ids = jnp.arange(n_chunks * per_chunk, dtype=jnp.int32).reshape(n_chunks, per_chunk)
    out = lax.map(jax.checkpoint(fn) if remat else fn, (*(split(a) for a in arrays), ids))
    out = jnp.moveaxis(out, 0, 1)  # (N, chunks, per_chunk, ...)
    return out.reshape((out.shape[0], -1) + out.shape[3:])[:, :total]


def _make_sampler(*, in_hw, out_hw, kernel_hw, groups, stride, padding, dilation, dtype):
    """Returns sample(rows, offset, mask, row_ids) -> columns (R, Wo, K, G, Cin/G) of one image."""
    h, w = in_hw
    ho, wo = out_hw
    kh, kw = kernel_hw
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    wp = w + 2
    tap_y = jnp.repeat(jnp.arange(kh), kw) * dh  # (K,)
    tap_x = jnp.tile(jnp.arange(kw), kh) * dw
    grp = jnp.arange(groups, dtype=jnp.int32)[:, None]  # (G, 1) broadcasts over K

    def sample(rows, off, msk, row_ids):
        out_y = row_ids * sh - ph  # (R,)
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
                  & (row_ids < ho)[:, None, None, None])
        m = jnp.where(inside, msk, 0.0)
        # Index of the top-left corner in the padded row table; cells outside
        # are clipped onto valid rows and carry zero weight.
        yi = jnp.clip(y0.astype(jnp.int32), -1, h - 1) + 1
        xi = jnp.clip(x0.astype(jnp.int32), -1, w - 1) + 1
        base = (yi * wp + xi) * groups + grp
        # (R, Wo, K, G) layout so the columns come out in the kernel's (kh, kw, Cin) order.
        base = base.transpose(0, 1, 3, 2)
        wts = [(a * b * m).transpose(0, 1, 3, 2).astype(dtype)[..., None]
               for a, b in ((hy, hx), (hy, lx), (ly, hx), (ly, lx))]

        def take(idx):
            return rows.at[idx].get(mode="promise_in_bounds")

        return (take(base) * wts[0] + take(base + groups) * wts[1]
                + take(base + wp * groups) * wts[2] + take(base + wp * groups + groups) * wts[3])

    return sample


def _deform_packed(x, offset, mask, kernel, *, groups, out_hw, stride, padding, dilation,
                   max_columns_bytes, precision):
    """One gather per sample from a corner-packed, lane-dense table; positions minor.

    The TPU form. Row ``(y, x, g)`` of an image's table holds the four bilinear
    corners ``(y, x), (y, x+1), (y+1, x), (y+1, x+1)`` of group ``g`` (``4*Cin/G``
    values), so one gather fetches a whole cell (TPUs gather whole rows; four
    8-value corner rows cost four times one 32-value cell). Positions are the
    minor axis of every per-sample array (offsets, weights, indices, gathered
    cells, columns), which keeps them lane-dense; the final contraction is one
    matmul over ``kh*kw*Cin``. The arithmetic is the gather form's, value for value.

    Rows are deliberately not packed several to a 128-lane line: a gather of a
    sub-row slice at a dynamic lane offset is lowered by the TPU compiler to a
    serial loop of dynamic slices (one per sample).
    """
    n, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    ho, wo = out_hw
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    taps, cg, dtype = kh * kw, cin // groups, x.dtype
    width = 4 * cg

    # Built channels-major, (N, G, Cg, H+2, W+2), so that the four shifted copies
    # are slices along lane-dense axes; one transposition then makes the rows
    # (stacking them channels-last moves ~2x more bytes on TPU).
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))).reshape(n, h + 2, w + 2, groups, cg)
    xp = xp.transpose(0, 3, 4, 1, 2)
    cells = jnp.stack([xp[..., a:a + h + 1, b:b + w + 1] for a in (0, 1) for b in (0, 1)], axis=2)
    cells = cells.reshape(n, groups, width, h + 1, w + 1).transpose(0, 3, 4, 1, 2).reshape(n, -1, width)

    pos_dtype = jnp.promote_types(offset.dtype, jnp.float32)
    total = ho * wo
    off = offset.astype(pos_dtype).reshape(n, total, groups * taps * 2)
    msk = (jnp.ones((n, total, groups * taps), pos_dtype) if mask is None
           else mask.astype(pos_dtype).reshape(n, total, groups * taps))
    tap_y = (jnp.repeat(jnp.arange(kh), kw) * dh)[:, None]  # (K, 1)
    tap_x = (jnp.tile(jnp.arange(kw), kh) * dw)[:, None]
    kmat = kernel.reshape(taps * cin, cout).astype(dtype)
    dnums = lax.GatherDimensionNumbers(offset_dims=(2,), collapsed_slice_dims=(0,), start_index_map=(0,))
    grp = jnp.arange(groups, dtype=jnp.int32)[:, None, None]

    def conv_image(table, o, m, q):
        # (Q, G*K*2), (Q, G*K) for the Q positions q of one image.
        nq = q.shape[0]
        o = o.T.reshape(groups, taps, 2, nq)
        m = m.T.reshape(groups, taps, nq)
        py = ((q // wo) * sh - ph + tap_y).astype(pos_dtype) + o[:, :, 0]  # (G, K, Q)
        px = ((q % wo) * sw - pw + tap_x).astype(pos_dtype) + o[:, :, 1]
        y0 = lax.stop_gradient(jnp.floor(py))
        x0 = lax.stop_gradient(jnp.floor(px))
        ly, lx = py - y0, px - x0
        hy, hx = 1.0 - ly, 1.0 - lx
        # Same cell rule as the gather form: top-left corner in [-1, H-1] x [-1, W-1].
        inside = (y0 >= -1) & (y0 <= h - 1) & (x0 >= -1) & (x0 <= w - 1) & (q < total)
        m = jnp.where(inside, m, 0.0)
        yi = jnp.clip(y0.astype(jnp.int32), -1, h - 1) + 1
        xi = jnp.clip(x0.astype(jnp.int32), -1, w - 1) + 1
        row = (yi * (w + 1) + xi) * groups + grp
        row = row.transpose(1, 0, 2)  # (K, G, Q): the kernel's (kh, kw, Cin) order
        wts = jnp.stack([a * b * m for a, b in ((hy, hx), (hy, lx), (ly, hx), (ly, lx))], axis=2)
        wts = wts.transpose(1, 0, 2, 3).astype(dtype)  # (K, G, 4, Q)
        got = lax.gather(table, row[..., None], dnums, slice_sizes=(1, width), mode="promise_in_bounds")
        got = got.reshape(taps, groups, 4, cg, nq)  # (K, G, corner, Cg, Q)
        cols = jnp.sum(got * wts[:, :, :, None, :], axis=2).reshape(taps * cin, nq)
        return jnp.einsum("cq,co->qo", cols, kmat, precision=precision)

    def conv_chunk(args):
        o, m, q = args  # (N, Q, ...) for Q positions of every image
        return jax.vmap(conv_image, in_axes=(0, 0, 0, None))(cells, o, m, q)

    # What the device allocates per position and image (measured on v5e): the
    # gathered cells, positions minor (dense), about twice (the gather's output and
    # the weighted products). Chunks are whole 128-lane lines of positions.
    bytes_per_pos = n * 2 * taps * groups * width * jnp.dtype(dtype).itemsize
    budget = DEFAULT_TPU_MAX_COLUMNS_BYTES if max_columns_bytes is None else int(max_columns_bytes)
    per_chunk = max(1, budget // bytes_per_pos)
    if per_chunk >= LANES:
        per_chunk = per_chunk // LANES * LANES
    out = _chunked(conv_chunk, (off, msk), total, per_chunk, remat=True)
    return out.reshape(n, ho, wo, cout)


_IMPLS = {"auto": None, "gather": _deform_gather, "packed": _deform_packed}
