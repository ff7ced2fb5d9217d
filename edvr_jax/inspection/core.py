"""What PCD alignment and TSA fusion did for one output frame: maps and statistics.

The model sows its inner maps into the ``inspect`` collection (``DCNv2Pack``: ``offset``
and ``mask``; ``TSAFusion``: ``temporal_attention`` and ``spatial_attention``; ``EDVR``:
``feat_l1`` and ``aligned``), so one jitted forward pass of the very network that restores
the frame gives both the restored frame and everything shown here.

:func:`inspect_window` returns :class:`Inspection` maps on the host, all at the input
frame's resolution (a coarser pyramid level's pixel covers ``s x s`` input pixels, ``s``
in :attr:`Inspection.level_scale`), for every frame of the window (the centre included: it
is aligned to itself, as in BasicSR). :func:`statistics` turns them into the numbers of
``inspect.json``; each is computed at the map's own level resolution, so on frames whose
sides are multiples of 4 they are exactly BasicSR's (tested against BasicSR 1.4.2 with
forward hooks).

Units: offsets are in pixels of the DCN's pyramid level (``dcn_pack.l3`` works at 1/4 of
the input size, ``l2`` at 1/2, ``l1`` and ``cas_dcnpack`` at full size), as BasicSR's
"Offset abs mean" warning sees them. An offset is where a tap samples the *neighbour*
relative to the reference pixel, so ``(dx, dy)`` points from the reference to the content
it fetches.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from edvr_jax.evaluate.metrics import to_uint8_batch
from edvr_jax.models import OFFSET_WARNING_THRESHOLD, pad_to_multiple
from edvr_jax.models.dcn import INSPECT

__all__ = ["DCN_NAMES", "Inspection", "inspect_window", "large_offsets", "statistics"]

# Flax module path in ``pcd_align`` -> BasicSR's module name, coarse to fine.
DCN_NAMES = {
    "dcn_pack_l3": "pcd_align.dcn_pack.l3",
    "dcn_pack_l2": "pcd_align.dcn_pack.l2",
    "dcn_pack_l1": "pcd_align.dcn_pack.l1",
    "cas_dcnpack": "pcd_align.cas_dcnpack",
}


@dataclasses.dataclass
class Inspection:
    """Host-side maps for one window ``(T, H, W, 3)`` (H, W: the frame's size).

    Attributes:
      restored: ``(s*H, s*W, 3)`` uint8, the network's output frame (BasicSR's rounding).
      dcn: per BasicSR DCN name, a dict of ``(T, H, W)`` float32 maps ``absmean`` (mean
        |offset| over the 2*G*9 offset channels), ``absmax`` (max over them), ``mask`` (mean
        sigmoid modulation) and ``flow`` ``(T, H, W, G, 2)``: the offset of each
        deformable group averaged over the 9 taps, ``(dy, dx)`` in level pixels.
      level_scale: per DCN name, input pixels per level pixel (4, 2, 1, 1).
      temporal_attention: ``(T, H, W)``, TSA's ``sigmoid(emb(frame) . emb(centre))``, or
        None for a model without TSA.
      spatial_attention: ``(H, W)``, TSA's ``sigmoid(attn)`` averaged over channels, or None.
      feature_diff_before: ``(T, H, W)``, mean over channels of ``|F_frame - F_centre|`` of
        the L1 features; ``feature_diff_after``: the same for PCD's outputs (the centre
        aligned to itself on the right).
    """

    restored: np.ndarray
    dcn: dict[str, dict[str, np.ndarray]]
    level_scale: dict[str, int]
    temporal_attention: np.ndarray | None
    spatial_attention: np.ndarray | None
    feature_diff_before: np.ndarray
    feature_diff_after: np.ndarray


def _first(x):
    """A sown value is a tuple of one array per call; EDVR calls each module once."""
    return x[0] if isinstance(x, tuple) else x


def _nearest_up(a: jax.Array, s: int) -> jax.Array:
    """``(N, h, w, ...)`` -> ``(N, s*h, s*w, ...)`` by repeating pixels (means unchanged)."""
    if s == 1:
        return a
    return jnp.repeat(jnp.repeat(a, s, axis=1), s, axis=2)


@partial(jax.jit, static_argnums=0)
def _inspect_program(model, variables, x):
    """The compiled pass: ``x`` ``(1, T, H, W, 3)`` (H, W multiples of the model's
    multiple) -> restored uint8 frame and the maps, all ``(T, H, W, ...)`` float32."""
    out, state = model.apply(variables, x, mutable=[INSPECT])
    sown = state[INSPECT]
    t, h, w = x.shape[1:4]
    c = model.center
    maps: dict[str, Any] = {"restored": to_uint8_batch(out[0])}
    dcn: dict[str, Any] = {}
    for key, name in DCN_NAMES.items():
        mod = sown.get("pcd_align", {}).get(key)
        if mod is None:  # an ablation without this DCN
            continue
        offset, mask = _first(mod["offset"]), _first(mod["mask"])  # (T, h', w', 2G9), (T, h', w', G9)
        s = h // offset.shape[1]
        g = offset.shape[-1] // 18
        absoff = jnp.abs(offset)
        flow = offset.reshape(offset.shape[:3] + (g, 9, 2)).mean(axis=4)  # (T, h', w', G, 2)
        dcn[name] = {"absmean": _nearest_up(absoff.mean(-1), s),
                     "absmax": _nearest_up(absoff.max(-1), s),
                     "mask": _nearest_up(mask.mean(-1), s),
                     "flow": _nearest_up(flow, s)}
    maps["dcn"] = dcn
    fusion = sown.get("fusion", {})
    if "temporal_attention" in fusion:
        maps["temporal_attention"] = _first(fusion["temporal_attention"])[0, ..., 0]  # (T, H, W)
        maps["spatial_attention"] = _first(fusion["spatial_attention"])[0].mean(-1)  # (H, W)
    feat = _first(sown["feat_l1"]).astype(jnp.float32)  # (T, H, W, C)
    aligned = _first(sown["aligned"])[0].astype(jnp.float32)  # (T, H, W, C)
    maps["feature_diff_before"] = jnp.abs(feat - feat[c:c + 1]).mean(-1)
    maps["feature_diff_after"] = jnp.abs(aligned - aligned[c:c + 1]).mean(-1)
    return maps


def _crop_maps(maps: dict[str, Any], h: int, w: int) -> dict[str, Any]:
    """Crops every map (``(..., H', W')`` or the flow ``(T, H', W', G, 2)``) to h x w."""
    out: dict[str, Any] = {}
    for k, v in maps.items():
        if k == "restored":
            out[k] = v
        elif k == "dcn":
            out[k] = {n: {m: (a[:, :h, :w] if a.ndim == 5 else a[..., :h, :w])
                          for m, a in d.items()} for n, d in v.items()}
        else:
            out[k] = np.asarray(v)[..., :h, :w]
    return out


def _tiled(model, variables, window: np.ndarray, tile: int, overlap: int) -> dict[str, Any]:
    """The maps of a tiled pass: each tile's maps are cut to its core and pasted, as
    ``edvr_jax.evaluate.tiling`` does with the restored frame."""
    from edvr_jax.evaluate.tiling import tile_grid

    m = model.size_multiple
    padded, (h, w) = pad_to_multiple(np.asarray(window, np.float32), m)
    grid = tile_grid(padded.shape[1:3], tile, overlap, m)
    parts = [jax.device_get(_inspect_program(model, variables, jnp.asarray(p[None])))
             for p in grid.split(padded)]

    def stitch(get):
        arrs = [get(p) for p in parts]
        # (T, th, tw), (th, tw) or the flow (T, th, tw, G, 2): stitch wants (..., th, tw, C).
        plain = arrs[0].ndim in (2, 3)
        tiles = np.stack([a[..., None] if plain else a.reshape(a.shape[:3] + (-1,)) for a in arrs])
        out = grid.stitch(tiles, 1)
        return out[..., 0] if plain else out.reshape(out.shape[:3] + arrs[0].shape[3:])

    maps: dict[str, Any] = {"restored": grid.stitch(np.stack([p["restored"] for p in parts]),
                                                    model.scale)}
    maps["dcn"] = {n: {k: stitch(lambda p, n=n, k=k: p["dcn"][n][k]) for k in d}
                   for n, d in parts[0]["dcn"].items()}
    for k in ("temporal_attention", "spatial_attention", "feature_diff_before",
              "feature_diff_after"):
        if k in parts[0]:
            maps[k] = stitch(lambda p, k=k: p[k])
    maps["restored"] = maps["restored"][: model.scale * h, : model.scale * w]
    return _crop_maps(maps, h, w)


def inspect_window(model, variables, window: np.ndarray, *, tile: int | None = None,
                   tile_overlap: int = 0) -> Inspection:
    """Restores the centre frame of ``window`` ``(T, H, W, 3)`` (float32 RGB in [0, 1], any
    H, W: padded like ``edvr-restore`` and cropped back) and returns what the network did.
    With ``tile`` the window goes through in tiles (``edvr_jax.evaluate.tiling``); the maps
    are exact where the tile overlap covers the receptive field, as the output is."""
    window = np.asarray(window, np.float32)
    if window.ndim != 4 or window.shape[0] != model.num_frame or window.shape[-1] != 3:
        raise ValueError(f"inspect_window expects a window ({model.num_frame}, H, W, 3), "
                         f"got {window.shape}")
    h, w = window.shape[1:3]
    if tile is None:
        padded, _ = pad_to_multiple(window[None], model.size_multiple)
        maps = _crop_maps(jax.device_get(_inspect_program(model, variables, jnp.asarray(padded))),
                          h, w)
        maps["restored"] = np.asarray(maps["restored"])[: model.scale * h, : model.scale * w]
    else:
        maps = _tiled(model, variables, window, tile, tile_overlap)
    scale = {n: 4 if n.endswith("l3") else 2 if n.endswith("l2") else 1 for n in maps["dcn"]}
    f32 = partial(np.asarray, dtype=np.float32)
    return Inspection(
        restored=np.asarray(maps["restored"]),
        dcn={n: {k: f32(a) for k, a in maps["dcn"][n].items()}
             for n in DCN_NAMES.values() if n in maps["dcn"]},  # coarse to fine
        level_scale=scale,
        temporal_attention=f32(maps["temporal_attention"]) if "temporal_attention" in maps else None,
        spatial_attention=f32(maps["spatial_attention"]) if "spatial_attention" in maps else None,
        feature_diff_before=f32(maps["feature_diff_before"]),
        feature_diff_after=f32(maps["feature_diff_after"]))


def _level(a: np.ndarray, s: int) -> np.ndarray:
    """A ``(T, H, W)`` map at input resolution -> its pyramid level's own pixels."""
    return a[:, ::s, ::s]


def statistics(ins: Inspection) -> dict[str, Any]:
    """The per-frame numbers of ``inspect.json`` (lists over the window's frames)."""
    def per_frame(a, fn=np.mean):
        return [float(fn(a[i].astype(np.float64))) for i in range(a.shape[0])]

    dcn = {}
    for name, d in ins.dcn.items():
        s = ins.level_scale[name]
        dcn[name] = {"offset_absmean": per_frame(_level(d["absmean"], s)),
                     "offset_max": per_frame(_level(d["absmax"], s), np.max),
                     "mask_mean": per_frame(_level(d["mask"], s))}
    out: dict[str, Any] = {"dcn": dcn}
    if ins.temporal_attention is not None:
        out["tsa"] = {"temporal_attention_mean": per_frame(ins.temporal_attention),
                      "spatial_attention_mean": float(np.mean(ins.spatial_attention, dtype=np.float64))}
    else:
        out["tsa"] = None
    out["alignment"] = {"feature_diff_before": per_frame(ins.feature_diff_before),
                        "feature_diff_after": per_frame(ins.feature_diff_after)}
    return out


def large_offsets(ins: Inspection, window: list[int],
             threshold: float = OFFSET_WARNING_THRESHOLD) -> list[dict[str, Any]]:
    """Where offsets exceed BasicSR's warning threshold: one entry per (DCN, frame) whose
    mean |offset| is above it (BasicSR's criterion) or that has pixels whose mean |offset|
    over the offset channels is; with the bounding box ``[y0, y1, x0, x1]`` of those pixels
    in input coordinates (end exclusive) and their share of the frame."""
    found = []
    for name, d in ins.dcn.items():
        s = ins.level_scale[name]
        for i, frame in enumerate(window):
            lvl = _level(d["absmean"], s)[i]
            mean = float(np.mean(lvl, dtype=np.float64))
            over = ~(d["absmean"][i] <= threshold)  # NaN counts as over
            if not (mean > threshold or not np.isfinite(mean) or over.any()):
                continue
            ys, xs = np.nonzero(over)
            bbox = ([int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1]
                    if ys.size else None)
            found.append({"dcn": name, "window_index": i, "frame": int(frame),
                          "offset_absmean": mean, "pixels_over": float(over.mean()),
                          "bbox": bbox})
    return found
