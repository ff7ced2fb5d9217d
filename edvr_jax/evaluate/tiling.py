"""Spatial tiling for frames too large for device memory, and EDVR's receptive field.

A window ``(T, H, W, 3)`` is cut into tiles of one fixed shape, ``tile + 2*overlap`` on
each side (or the whole side when the frame is smaller): each tile restores the *core*
``tile x tile`` region it is centred on, plus a margin of ``overlap`` input pixels on
every side that is not the frame border. Tiles are shifted inwards at the borders (their
margin there is the frame border itself, exactly as in the full frame), so every tile has
the same shape and one compilation serves them all. The restored cores are pasted into
the output (margins are cropped, not blended).

Exactness. All of EDVR is local (convolutions, deformable convolutions, pooling,
bilinear resizing, per-pixel attention; no global pooling), and tile origins are kept on
multiples of the model's ``size_multiple`` (4, or 16 for ``hr_in``) so the stride-2
pyramids of every tile line up with those of the full frame. An output pixel depends
only on input pixels within :func:`receptive_field` of it; when ``overlap`` is at least
that radius, the tiled output equals the untiled one up to float32 reassociation
(tested to 1e-5). With a smaller overlap the result is an approximation whose error
concentrates along the tile seams.

The radius grows with the largest deformable offset (which depends on the video): a DCN
tap can reach ``1 + max|offset|`` pixels of its pyramid level. For EDVR-L with zero
offsets it is 148 LQ pixels (EDVR-M 88), so exact tiling of big models needs big tiles;
the default overlap of the CLI (32 LQ pixels) trades exactness for memory, as tiling in
other restoration tools does.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

__all__ = ["TileGrid", "max_offset", "receptive_field", "round_up", "tile_grid"]


def round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


# --------------------------------------------------------------------------- receptive field


def receptive_field(model, max_offset: float = 0.0) -> int:
    """Radius, in input pixels, of the region an output pixel of an EDVR depends on.

    Args:
      model: an ``edvr_jax.models.EDVR`` (any options). For a two-stage model, call it on
        ``model.stage1`` (LQ pixels) and ``model.stage2`` (its own input = output pixels).
      max_offset: bound on ``|offset|`` of every deformable convolution, in pixels of the
        pyramid level it works at (0 for a model whose offset convs are zero).

    Derivation (a conservative bound, checked against measured gradients in the tests):
    a 3x3 convolution at a level with pixel pitch ``p`` (in input pixels) adds ``p``, a
    stride-2 convolution or pooling from pitch ``p`` adds ``p``, a x2 bilinear
    upsampling from pitch ``P`` adds ``P``, a deformable 3x3 convolution adds
    ``p * (1 + ceil(max_offset))`` on its input and ``p`` on its offset features, the
    pixel-shuffle head adds ``2.75 p`` (``p + p/2 + p/2 + 3 p/4``); paths are combined
    by their maximum. The result is rounded up to whole pixels.
    """
    if not hasattr(model, "num_extract_block"):
        raise TypeError(f"receptive_field needs an EDVR, got {type(model).__name__}")
    if max_offset < 0 or not math.isfinite(max_offset):
        raise ValueError(f"max_offset must be a finite value >= 0, got {max_offset}")
    reach = 1 + math.ceil(max_offset)  # DCN taps in units of the level's pitch
    p = 1.0
    if model.with_predeblur:
        r = 1.0  # predeblur.conv_first
        if model.hr_in:
            r, p = r + 1, 2.0  # stride_conv_hr1
            r, p = r + 2, 4.0  # stride_conv_hr2
        l1 = r
        l2 = l1 + p  # stride_conv_l2 -> pitch 2p
        l3 = l2 + 2 * p  # stride_conv_l3 -> pitch 4p
        l3 = l3 + 2 * 4 * p + 4 * p  # resblock_l3, upsample to 2p
        l2 = max(l2 + 2 * 2 * p, l3)  # resblock_l2_1 + upsampled l3
        l2 = l2 + 2 * 2 * p + 2 * p  # resblock_l2_2, upsample to p
        r1 = max(l1 + 4 * p, l2) + 6 * p  # resblock_l1_0..1, + l2, resblock_l1_2..4
    else:
        r1 = 1.0  # conv_first
    r1 += 2 * model.num_extract_block * p
    r2 = r1 + p + 2 * p  # conv_l2_1 (stride 2), conv_l2_2 at 2p
    r3 = r2 + 2 * p + 4 * p  # conv_l3_1 (stride 2), conv_l3_2 at 4p

    # PCD alignment, coarse to fine: offset features `o`, aligned features `f`.
    q = 4 * p
    o = r3 + 2 * q  # offset_conv1, offset_conv2
    f = max(o + q, r3 + q * reach)  # dcn_pack.l3 (conv_offset on o; taps on nbr)
    up_o, up_f = o + q, f + q  # x2 upsampling from pitch q
    for q, r in ((2 * p, r2), (p, r1)):
        o = max(r + q, up_o) + 2 * q  # offset_conv1 | cat up_offset, offset_conv2, _conv3
        f = max(o + q, r + q * reach, up_f) + q  # dcn_pack, cat up_feat, feat_conv
        up_o, up_f = o + q, f + q
    o = max(f, r1) + 2 * p  # cas_offset_conv1, cas_offset_conv2
    a = max(o + p, f + p * reach)  # cas_dcnpack

    fused = a + 19 * p if model.with_tsa else a  # TSA: see tsa.py; 1x1 fusion otherwise
    out = fused + 2 * model.num_reconstruct_block * p + 2.75 * p
    base = 0.0 if model.hr_in else 1.375  # bilinear x4 of the centre frame
    return int(math.ceil(max(out, base)))


def max_offset(model, variables, x) -> float:
    """The largest ``|offset|`` any deformable convolution of ``model`` uses on clips ``x``
    ``(B, T, H, W, 3)``, in pixels of its pyramid level: what :func:`receptive_field`
    needs to bound the region an output pixel depends on for this input."""
    import jax
    import jax.numpy as jnp

    def offsets(v, x):
        _, state = model.apply(v, x, capture_intermediates=lambda m, _: m.name == "conv_offset",
                               mutable=["intermediates"])
        leaves = jax.tree_util.tree_leaves(state["intermediates"])
        return jnp.max(jnp.stack([jnp.max(jnp.abs(a[..., : a.shape[-1] * 2 // 3]))
                                  for a in leaves]))

    return float(jax.jit(offsets)(variables, x))


# --------------------------------------------------------------------------- tile grid


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Where the tiles of an ``(H, W)`` frame are and what each contributes.

    ``windows[k] = (y0, x0)`` is the top-left corner of tile ``k`` (shape ``tile_shape``)
    in the input; ``cores[k] = (y0, y1, x0, x1)`` the input region whose output it
    supplies. Output coordinates are input ones times the model's scale.
    """

    frame_shape: tuple[int, int]
    tile_shape: tuple[int, int]
    windows: tuple[tuple[int, int], ...]
    cores: tuple[tuple[int, int, int, int], ...]

    def __len__(self) -> int:
        return len(self.windows)

    def split(self, x: np.ndarray) -> np.ndarray:
        """``(..., H, W, C)`` -> ``(n_tiles, ..., th, tw, C)`` (copies)."""
        th, tw = self.tile_shape
        return np.stack([x[..., y:y + th, xx:xx + tw, :] for y, xx in self.windows])

    def stitch(self, tiles: np.ndarray, scale: int) -> np.ndarray:
        """``(n_tiles, ..., s*th, s*tw, C)`` restored tiles -> ``(..., s*H, s*W, C)``."""
        h, w = self.frame_shape
        out = np.empty(tiles.shape[1:-3] + (scale * h, scale * w, tiles.shape[-1]), tiles.dtype)
        for t, (wy, wx), (y0, y1, x0, x1) in zip(tiles, self.windows, self.cores, strict=True):
            out[..., scale * y0:scale * y1, scale * x0:scale * x1, :] = t[
                ..., scale * (y0 - wy):scale * (y1 - wy), scale * (x0 - wx):scale * (x1 - wx), :]
        return out


def _axis(n: int, tile: int, overlap: int) -> tuple[int, list[tuple[int, int, int]]]:
    """Tile length and (window start, core start, core end) along one axis of length n."""
    length = tile + 2 * overlap
    if n <= length:
        return n, [(0, 0, n)]
    spans = []
    for a in range(0, n, tile):
        b = min(a + tile, n)
        spans.append((min(max(a - overlap, 0), n - length), a, b))
    return length, spans


def tile_grid(frame_shape: tuple[int, int], tile: int, overlap: int, multiple: int = 1) -> TileGrid:
    """Tiles covering an ``(H, W)`` frame (H, W multiples of ``multiple``).

    ``tile`` and ``overlap`` (input pixels) are rounded up to multiples of ``multiple`` so
    that every tile starts on the model's stride grid.
    """
    h, w = frame_shape
    if h % multiple or w % multiple:
        raise ValueError(f"tile_grid: frame {h}x{w} is not a multiple of {multiple}; pad it first")
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile size must be >= 1 and overlap >= 0, got {tile} and {overlap}")
    tile, overlap = round_up(tile, multiple), round_up(overlap, multiple)
    th, ys = _axis(h, tile, overlap)
    tw, xs = _axis(w, tile, overlap)
    windows = tuple((wy, wx) for wy, _, _ in ys for wx, _, _ in xs)
    cores = tuple((a, b, c, d) for _, a, b in ys for _, c, d in xs)
    return TileGrid((h, w), (th, tw), windows, cores)
