"""Test-time self-ensemble: restore flipped (and transposed) copies of a window, flip the
outputs back and average them.

Layout: windows ``(B, T, h, w, C)``, outputs ``(B, s*h, s*w, C)``. A transform is a triple
``(transpose, vflip, hflip)`` applied to every frame of the window alike (the temporal
order is kept); it is undone on the output in the reverse order.

* ``none``: the identity alone.
* ``flip4``: identity, horizontal, vertical, both: the 2019 EDVR test script's
  ``flipx4_forward`` (its flips of the W and H axes of NCHW tensors).
* ``x8``: ``flip4`` and the transposes of the four: the common SR self-ensemble.

The outputs are averaged in float32 (before any uint8 rounding) with equal weights.
:func:`ensemble_apply` runs the copies as more batch entries of one model call; a
transpose turns ``h x w`` into ``w x h``, so when ``h != w`` the four transposed copies
cannot share a batch with the others and ``x8`` makes two model calls (both inside the
caller's one jitted program); when ``h == w`` all eight go in one call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from edvr_jax.tasks import ENSEMBLE_NAMES

__all__ = ["ENSEMBLES", "Transform", "ensemble_apply", "forward", "inverse"]

Transform = tuple[bool, bool, bool]  # (transpose, vflip, hflip)

_FLIP4: tuple[Transform, ...] = ((False, False, False), (False, False, True),
                                 (False, True, False), (False, True, True))
ENSEMBLES: dict[str, tuple[Transform, ...]] = {
    "none": _FLIP4[:1],
    "flip4": _FLIP4,
    "x8": _FLIP4 + tuple((True, v, h) for _, v, h in _FLIP4),
}
assert tuple(ENSEMBLES) == ENSEMBLE_NAMES  # the tools' --ensemble choices


def forward(x, t: Transform, xp=jnp):
    """Applies ``t`` to the two spatial axes ``(-3, -2)`` of ``(..., H, W, C)``: flips
    first, then the transpose."""
    transpose, vflip, hflip = t
    if vflip:
        x = xp.flip(x, axis=-3)
    if hflip:
        x = xp.flip(x, axis=-2)
    if transpose:
        x = xp.swapaxes(x, -3, -2)
    return x


def inverse(y, t: Transform, xp=jnp):
    """Undoes :func:`forward` on ``(..., H, W, C)``: the transpose first, then the flips."""
    transpose, vflip, hflip = t
    if transpose:
        y = xp.swapaxes(y, -3, -2)
    if hflip:
        y = xp.flip(y, axis=-2)
    if vflip:
        y = xp.flip(y, axis=-3)
    return y


def _groups(name: str, h: int, w: int) -> list[tuple[Transform, ...]]:
    """The transforms of ``name`` in groups whose inputs have one shape (one batch each)."""
    if name not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {name!r}; choose one of {', '.join(ENSEMBLES)}")
    ts = ENSEMBLES[name]
    if h == w:
        return [ts]
    return [g for g in (tuple(t for t in ts if not t[0]), tuple(t for t in ts if t[0])) if g]


def ensemble_apply(fn: Callable[[Any], tuple[Any, dict[str, Any]]], x, name: str):
    """``fn`` over the ensemble ``name`` of windows ``x`` ``(B, T, h, w, C)``, averaged.

    ``fn`` maps a batch ``(n, T, h', w', C)`` to ``(outputs (n, s*h', s*w', C), stats)``
    where ``stats`` are per-call means (offset diagnostics). Returns the mean output
    ``(B, s*h, s*w, C)`` and the stats averaged over the calls, weighted by their batch
    size. The copies of window ``b`` are adjacent in the batch (``b * k + j``), so a batch
    sharded over devices on axis 0 stays on its devices.
    """
    b = x.shape[0]
    total, stats, count = None, {}, 0
    for group in _groups(name, x.shape[-3], x.shape[-2]):
        k = len(group)
        copies = jnp.stack([forward(x, t) for t in group], axis=1)  # (B, k, T, h', w', C)
        out, st = fn(copies.reshape((b * k,) + copies.shape[2:]))
        out = out.reshape((b, k) + out.shape[1:])  # (B, k, s*h', s*w', C)
        back = sum(inverse(out[:, j], t) for j, t in enumerate(group))
        total = back if total is None else total + back
        for key, v in st.items():
            stats[key] = stats.get(key, 0.0) + v * k
        count += k
    return total / count, {key: v / count for key, v in stats.items()}
