"""Pictures of offset fields and attention maps, in numpy (PIL only to draw labels).

Flow colouring is the colour wheel of Baker et al., "A Database and Evaluation Methodology
for Optical Flow" (IJCV 2011), the Middlebury convention every optical-flow paper and
torchvision's ``flow_to_image`` use: hue is the direction (right red, down orange-yellow,
left cyan, up violet), saturation the magnitude relative to ``max_magnitude``
(white is no motion). The one PyPI package for it (``flow_vis``) had a single release in
2020; torchvision needs torch; so the 55-colour wheel is built here (a few lines) and
tested against torchvision's output.
"""

from __future__ import annotations

import numpy as np

__all__ = ["color_wheel", "flow_to_color", "heat_map", "mark", "with_scale_bar"]

# Segment lengths of the wheel: red-yellow, yellow-green, green-cyan, cyan-blue,
# blue-magenta, magenta-red (Baker et al.), 55 colours in all.
_SEGMENTS = (15, 6, 4, 11, 13, 6)


def color_wheel() -> np.ndarray:
    """``(55, 3)`` float RGB in [0, 255]: the Middlebury wheel, starting at red."""
    # Each segment ramps one channel up or down between two primaries/secondaries.
    corners = np.array([[255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 255, 255],
                        [0, 0, 255], [255, 0, 255], [255, 0, 0]], np.float64)
    rows = []
    for k, n in enumerate(_SEGMENTS):
        ramp = np.floor(255 * np.arange(n)[:, None] / n)
        rows.append(corners[k] + np.sign(corners[k + 1] - corners[k]) * ramp)
    return np.concatenate(rows)


def flow_to_color(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """``(H, W, 2)`` flow ``(dx, dy)`` (image axes: x right, y down) -> ``(H, W, 3)`` uint8.

    ``max_magnitude`` is the length drawn at full saturation (default: the field's largest,
    as torchvision's ``flow_to_image``); longer vectors are clipped to it. Directions: right
    is red, down orange-yellow, left cyan, up violet.
    """
    flow = np.asarray(flow, np.float64)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow_to_color expects (H, W, 2) (dx, dy), got {flow.shape}")
    flow = np.where(np.isfinite(flow), flow, 0.0)
    u, v = flow[..., 0], flow[..., 1]
    rad = np.hypot(u, v)
    top = float(rad.max()) if max_magnitude is None else float(max_magnitude)
    eps = np.finfo(np.float32).eps
    rad = np.minimum(rad / (top + eps), 1.0)
    u, v = u / (top + eps), v / (top + eps)
    wheel = color_wheel() / 255.0
    n = wheel.shape[0]
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]; 1 and -1 both mean "left"
    pos = (angle + 1) / 2 * (n - 1)
    k0 = np.floor(pos).astype(int)
    k1 = np.where(k0 + 1 == n, 0, k0 + 1)
    frac = (pos - k0)[..., None]
    col = (1 - frac) * wheel[k0] + frac * wheel[k1]
    col = 1 - rad[..., None] * (1 - col)  # towards white as the magnitude vanishes
    return np.floor(255 * col).astype(np.uint8)


# A perceptually ordered dark-to-bright map (anchors of matplotlib's "inferno").
_HEAT = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                  [245, 125, 21], [250, 193, 39], [252, 255, 164]], np.float64)


def heat_map(a: np.ndarray, vmin: float = 0.0, vmax: float | None = None) -> np.ndarray:
    """``(H, W)`` values -> ``(H, W, 3)`` uint8 on the inferno scale from vmin to vmax
    (default: the map's max); NaN/inf are drawn white."""
    a = np.asarray(a, np.float64)
    finite = np.isfinite(a)
    if vmax is None:
        vmax = float(a[finite].max()) if finite.any() else 1.0
    t = np.clip((np.where(finite, a, vmin) - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    pos = t * (len(_HEAT) - 1)
    k0 = np.minimum(np.floor(pos).astype(int), len(_HEAT) - 2)
    frac = (pos - k0)[..., None]
    rgb = (1 - frac) * _HEAT[k0] + frac * _HEAT[k0 + 1]
    rgb[~finite] = 255
    return np.round(rgb).astype(np.uint8)


def mark(rgb: np.ndarray, where: np.ndarray, color=(0, 255, 0)) -> np.ndarray:
    """``rgb`` with the outline of the region ``where`` ``(H, W)`` bool drawn in ``color``."""
    where = np.asarray(where, bool)
    if not where.any():
        return rgb
    pad = np.pad(where, 1)
    inner = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    out = rgb.copy()
    out[where & ~inner] = color
    return out


def upscale(rgb: np.ndarray, min_side: int = 192) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor so that small maps stay legible."""
    f = max(1, -(-min_side // max(1, min(rgb.shape[:2]))))
    return np.repeat(np.repeat(rgb, f, axis=0), f, axis=1) if f > 1 else rgb


def with_scale_bar(rgb: np.ndarray, vmin: float, vmax: float, label: str) -> np.ndarray:
    """``rgb`` (a :func:`heat_map`) with a colour bar from vmin to vmax and its labels below."""
    from PIL import Image, ImageDraw

    h, w = rgb.shape[:2]
    bar_h, text_h = 10, 14
    bar = heat_map(np.tile(np.linspace(vmin, vmax, w)[None], (bar_h, 1)), vmin, vmax)
    canvas = Image.new("RGB", (w, h + bar_h + text_h + 4), "white")
    canvas.paste(Image.fromarray(rgb), (0, 0))
    canvas.paste(Image.fromarray(bar), (0, h + 2))
    draw = ImageDraw.Draw(canvas)
    y = h + bar_h + 3
    draw.text((1, y), f"{vmin:.3g}", fill="black")
    right = f"{vmax:.3g} {label}"
    draw.text((max(w - 6 * len(right) - 1, w // 2), y), right, fill="black")
    return np.asarray(canvas)
