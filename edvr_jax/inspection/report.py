"""The pictures of an :class:`~edvr_jax.inspection.core.Inspection` and the HTML page.

:func:`render` makes every picture as an ``(H, W, 3)`` uint8 array, keyed by its file stem
(the same pictures go to TensorBoard during training); :func:`write_report` saves them as
PNGs and writes ``report.html`` next to them.
"""

from __future__ import annotations

import html
import os
from typing import Any

import numpy as np

from edvr_jax.inspection.core import Inspection
from edvr_jax.inspection.pictures import flow_to_color, heat_map, mark, upscale, with_scale_bar
from edvr_jax.models import OFFSET_WARNING_THRESHOLD

__all__ = ["render", "short_name", "summary_pictures", "write_report"]


def short_name(dcn: str) -> str:
    """``pcd_align.dcn_pack.l3`` -> ``l3``, ``pcd_align.cas_dcnpack`` -> ``cas``."""
    return "cas" if dcn.endswith("cas_dcnpack") else dcn.rsplit(".", 1)[-1]


def _heat(a: np.ndarray, vmax: float, label: str, vmin: float = 0.0,
          over: np.ndarray | None = None) -> np.ndarray:
    rgb = heat_map(a, vmin, vmax)
    if over is not None:
        rgb = mark(rgb, over)
    scale = upscale(rgb).shape[0] // rgb.shape[0]
    big = np.repeat(np.repeat(rgb, scale, 0), scale, 1)
    return with_scale_bar(big, vmin, vmax, label)


def render(ins: Inspection, frames: list[np.ndarray] | None = None,
           threshold: float = OFFSET_WARNING_THRESHOLD) -> dict[str, np.ndarray]:
    """Every picture: ``input_t{i}`` (if ``frames``), ``restored``; per DCN ``d`` and window
    position ``i``: ``flow_{d}_t{i}`` (the offset averaged over taps and deformable groups,
    flow colours, saturation at the largest magnitude of that DCN over the window),
    ``flowgroups_{d}_t{i}`` (the same per group, side by side), ``mag_{d}_t{i}`` (mean
    |offset| heat map with a scale bar, regions above ``threshold`` outlined in green),
    ``mask_{d}_t{i}``; with TSA ``tsa_temporal_t{i}`` and ``tsa_spatial``; and
    ``diff_before_t{i}`` / ``diff_after_t{i}``, the feature difference to the centre."""
    out: dict[str, np.ndarray] = {}
    for i, f in enumerate(frames or []):
        out[f"input_t{i}"] = upscale(np.asarray(f, np.uint8))
    out["restored"] = np.asarray(ins.restored, np.uint8)
    for name, d in ins.dcn.items():
        s = short_name(name)
        flow = d["flow"][..., ::-1]  # (T, H, W, G, 2) as (dx, dy)
        mean_flow = flow.mean(axis=3)
        top = float(np.nanmax(np.hypot(flow[..., 0], flow[..., 1]))) or 1.0
        vmax = max(float(np.nanmax(np.where(np.isfinite(d["absmean"]), d["absmean"], 0))), 1e-6)
        for i in range(flow.shape[0]):
            out[f"flow_{s}_t{i}"] = upscale(flow_to_color(mean_flow[i], top))
            groups = [flow_to_color(flow[i, :, :, g], top) for g in range(flow.shape[3])]
            sep = np.full((groups[0].shape[0], 1, 3), 255, np.uint8)
            strip = np.concatenate([x for g in groups for x in (g, sep)][:-1], axis=1)
            out[f"flowgroups_{s}_t{i}"] = upscale(strip, 96)
            over = ~(d["absmean"][i] <= threshold)
            out[f"mag_{s}_t{i}"] = _heat(d["absmean"][i], vmax, "px", over=over)
            out[f"mask_{s}_t{i}"] = _heat(d["mask"][i], 1.0, "mask")
    if ins.temporal_attention is not None:
        for i, a in enumerate(ins.temporal_attention):
            out[f"tsa_temporal_t{i}"] = _heat(a, 1.0, "attn")
        out["tsa_spatial"] = _heat(ins.spatial_attention, 1.0, "attn")
    top = max(float(np.nanmax(ins.feature_diff_before)), float(np.nanmax(ins.feature_diff_after)),
              1e-6)  # one scale for before and after
    for i in range(ins.feature_diff_before.shape[0]):
        out[f"diff_before_t{i}"] = _heat(ins.feature_diff_before[i], top, "|dF|")
        out[f"diff_after_t{i}"] = _heat(ins.feature_diff_after[i], top, "|dF|")
    return out


def _strip(imgs: list[np.ndarray]) -> np.ndarray:
    """Pictures side by side (top-aligned, white 4-pixel gaps)."""
    h = max(i.shape[0] for i in imgs)
    gap = np.full((h, 4, 3), 255, np.uint8)
    padded = [np.pad(i, ((0, h - i.shape[0]), (0, 0), (0, 0)), constant_values=255) for i in imgs]
    return np.concatenate([x for i in padded for x in (i, gap)][:-1], axis=1)


def overview(pictures: dict[str, np.ndarray], neighbour: int, centre: int) -> np.ndarray:
    """One strip: the centre input, the offsets of ``neighbour`` at L1 and after the
    cascading DCN (flow colours, then the magnitude), TSA's temporal attention for it, and
    its feature difference to the centre before and after alignment (one scale)."""
    stems = [f"input_t{centre}", f"flow_l1_t{neighbour}", f"flow_cas_t{neighbour}",
             f"mag_cas_t{neighbour}", f"tsa_temporal_t{neighbour}", f"diff_before_t{neighbour}",
             f"diff_after_t{neighbour}"]
    return _strip([pictures[s] for s in stems if s in pictures])


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _img(stem: str, title: str = "") -> str:
    t = html.escape(title or stem)
    return f'<figure><img src="{stem}.png" alt="{t}"><figcaption>{t}</figcaption></figure>'


def _page(result: dict[str, Any], names: set[str]) -> str:
    window = result["window"]
    centre = len(window) // 2 if "center" not in result else result["center"]
    cols = "".join(f"<th>t{i} (frame {f}{', centre' if i == centre else ''})</th>"
                   for i, f in enumerate(window))
    rows = []

    def row(label, values):
        rows.append(f"<tr><td>{html.escape(label)}</td>"
                    + "".join(f"<td>{_fmt(v)}</td>" for v in values) + "</tr>")

    for dcn, st in result["dcn"].items():
        row(f"{dcn} mean |offset|", st["offset_absmean"])
        row(f"{dcn} max |offset|", st["offset_max"])
        row(f"{dcn} mean mask", st["mask_mean"])
    if result.get("tsa"):
        row("TSA temporal attention mean", result["tsa"]["temporal_attention_mean"])
    row("feature diff before alignment", result["alignment"]["feature_diff_before"])
    row("feature diff after alignment", result["alignment"]["feature_diff_after"])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>edvr-inspect: frame {result['frame']}</title><style>",
        "body{font-family:sans-serif;margin:1em} table{border-collapse:collapse}",
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}",
        "figure{display:inline-block;margin:4px;vertical-align:top}",
        "figcaption{font-size:small;text-align:center} img{image-rendering:pixelated}",
        ".warn{color:#b00}</style></head><body>",
        f"<h1>Frame {result['frame']}</h1>",
        f"<p>checkpoint {html.escape(str(result.get('checkpoint', '')))}, window "
        f"{window} ({html.escape(str(result.get('padding', '')))} padding). Offsets are in "
        f"pixels of each DCN's pyramid level (l3: 1/4, l2: 1/2, l1 and cas: full size); "
        f"flow colours: hue is the direction (right red, down orange, left cyan, up violet), "
        f"saturation the magnitude (white: none).</p>",
        _img("overview", f"t{0 if centre else 1}: centre input | offset at l1 | after the "
                         f"cascade | its magnitude | TSA temporal attention | feature "
                         f"difference to the centre before | after alignment"),
        "<h2>Numbers</h2><table><tr><th></th>" + cols + "</tr>", *rows, "</table>",
    ]
    warns = result.get("warnings", [])
    thr = result.get("threshold", OFFSET_WARNING_THRESHOLD)
    parts.append(f"<h2>Offsets above {thr:g} (BasicSR's warning)</h2>")
    if warns:
        parts.append("<ul class='warn'>" + "".join(
            f"<li>{html.escape(w['dcn'])}, t{w['window_index']} (frame {w['frame']}): mean "
            f"{w['offset_absmean']:.2f}, {100 * w['pixels_over']:.1f}% of pixels over, box "
            f"y,x {w['bbox']} (outlined green in its magnitude map)</li>" for w in warns)
            + "</ul>")
    else:
        parts.append("<p>none</p>")
    parts.append("<h2>Input window and restored frame</h2>")
    parts += [_img(f"input_t{i}", f"t{i}: frame {f}") for i, f in enumerate(window)
              if f"input_t{i}" in names]
    parts.append(_img("restored", "restored"))
    for dcn in result["dcn"]:
        s = short_name(dcn)
        parts.append(f"<h2>{html.escape(dcn)}</h2>")
        for i, f in enumerate(window):
            parts.append(f"<h3>t{i} (frame {f})</h3>")
            parts += [_img(f"{kind}_{s}_t{i}", f"{label}") for kind, label in
                      (("flow", "offset, mean of taps and groups"), ("mag", "mean |offset|"),
                       ("mask", "mask"), ("flowgroups", "offset per deformable group"))]
    if "tsa_spatial" in names:
        parts.append("<h2>TSA attention</h2>")
        parts += [_img(f"tsa_temporal_t{i}", f"temporal t{i}") for i in range(len(window))]
        parts.append(_img("tsa_spatial", "spatial (mean over channels)"))
    parts.append("<h2>Feature difference to the centre, before and after PCD</h2>")
    for i in range(len(window)):
        parts += [_img(f"diff_before_t{i}", f"before t{i}"), _img(f"diff_after_t{i}", f"after t{i}")]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(folder: str, ins: Inspection, result: dict[str, Any],
                 frames: list[np.ndarray] | None = None) -> list[str]:
    """Saves every picture of :func:`render` as ``folder/<stem>.png`` and writes
    ``folder/report.html``; returns the picture file names."""
    from PIL import Image

    pictures = render(ins, frames, result.get("threshold", OFFSET_WARNING_THRESHOLD))
    centre = result.get("center", len(result["window"]) // 2)
    pictures["overview"] = overview(pictures, 0 if centre else 1, centre)
    for stem, rgb in pictures.items():
        Image.fromarray(rgb).save(os.path.join(folder, f"{stem}.png"))
    page = _page(result, set(pictures))
    with open(os.path.join(folder, "report.html"), "w") as f:
        f.write(page)
    return sorted(f"{stem}.png" for stem in pictures)


def summary_pictures(ins: Inspection, threshold: float = OFFSET_WARNING_THRESHOLD) -> dict[str, np.ndarray]:
    """The pictures of :func:`render` as a few strips for TensorBoard, keyed by tag: per DCN
    ``offsets/<d>_flow``, ``offsets/<d>_magnitude``, ``offsets/<d>_mask`` (window frames left
    to right), and with TSA ``tsa/temporal`` (window frames) and ``tsa/spatial``."""
    pictures = render(ins, None, threshold)
    t = ins.feature_diff_before.shape[0]

    def strip(stems):
        return _strip([pictures[s] for s in stems])

    out = {}
    for name in ins.dcn:
        s = short_name(name)
        for kind, tag in (("flow", "flow"), ("mag", "magnitude"), ("mask", "mask")):
            out[f"offsets/{s}_{tag}"] = strip([f"{kind}_{s}_t{i}" for i in range(t)])
    if "tsa_spatial" in pictures:
        out["tsa/temporal"] = strip([f"tsa_temporal_t{i}" for i in range(t)])
        out["tsa/spatial"] = pictures["tsa_spatial"]
    return out
