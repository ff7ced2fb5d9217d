"""Which frames feed the network for each centre frame at test time (temporal padding).

BasicSR's ``generate_frame_indices(crt_idx, max_frame_num, num_frames, padding)``
with the same argument order and results. For the window
``center - num_frame//2 ... center + num_frame//2`` of a clip with frames
``0 ... num_frames_total - 1``, an index ``i`` outside the clip is replaced by:

=====================  ============================  ==========================================
mode                   ``i < 0``                     ``i > last`` (``last = total - 1``)
=====================  ============================  ==========================================
``replicate``          ``0``                         ``last``
``reflection``         ``-i``                        ``2*last - i``
``reflection_circle``  ``center + num_frame//2 - i`` ``center - num_frame//2 - (i - last)``
``circle``             ``num_frame + i``             ``i - num_frame``
=====================  ============================  ==========================================

For centre 0 and 5 frames: replicate ``[0, 0, 0, 1, 2]``, reflection
``[2, 1, 0, 1, 2]``, reflection_circle ``[4, 3, 0, 1, 2]``, circle ``[3, 4, 0, 1, 2]``.
EDVR's SR configs (REDS4, Vid4) use ``reflection_circle``, the deblur ones ``replicate``.

BasicSR does not check its arguments. With a window longer than the clip some
modes produce indices outside the clip (negative ones would silently wrap when
used to index a list); where BasicSR would do that, or for a centre outside the
clip, this function raises ``ValueError`` instead. Every result it returns is
exactly BasicSR's.
"""

from __future__ import annotations

import numbers

PADDING_MODES = ("replicate", "reflection", "reflection_circle", "circle")

__all__ = ["PADDING_MODES", "generate_frame_indices"]


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"generate_frame_indices: {name} must be an integer >= {minimum}, "
                         f"got {value!r}")
    return int(value)


def generate_frame_indices(center: int, num_frames_total: int, num_frame: int,
                           padding: str = "reflection") -> list[int]:
    """Frame indices of the ``num_frame``-frame window centred on frame ``center``.

    Args:
      center: index of the centre frame, in ``[0, num_frames_total)``.
      num_frames_total: number of frames in the clip (BasicSR's ``max_frame_num``).
      num_frame: window length, odd (the network's ``num_frame``).
      padding: one of :data:`PADDING_MODES`.

    Returns ``num_frame`` indices in ``[0, num_frames_total)``, the centre frame in the
    middle. Raises ``ValueError`` for bad arguments and for windows BasicSR would fill
    with indices outside the clip (possible only when ``num_frame > num_frames_total``).
    """
    if padding not in PADDING_MODES:
        raise ValueError(f"generate_frame_indices: unknown padding mode {padding!r}; "
                         f"valid modes are {', '.join(PADDING_MODES)}")
    total = _check_int("num_frames_total", num_frames_total, 1)
    num_frame = _check_int("num_frame", num_frame, 1)
    center = _check_int("center", center, 0)
    if num_frame % 2 != 1:
        raise ValueError(f"generate_frame_indices: num_frame must be odd, got {num_frame}")
    if center >= total:
        raise ValueError(f"generate_frame_indices: center {center} is outside the clip of "
                         f"{total} frames (valid 0..{total - 1})")
    last, half = total - 1, num_frame // 2
    indices = []
    for i in range(center - half, center + half + 1):
        if i < 0:
            j = {"replicate": 0, "reflection": -i, "reflection_circle": center + half - i,
                 "circle": num_frame + i}[padding]
        elif i > last:
            j = {"replicate": last, "reflection": 2 * last - i,
                 "reflection_circle": center - half - (i - last), "circle": i - num_frame}[padding]
        else:
            j = i
        indices.append(j)
    if any(not 0 <= j <= last for j in indices):
        raise ValueError(
            f"generate_frame_indices: a {num_frame}-frame window with {padding!r} padding around "
            f"frame {center} of a {total}-frame clip would need frames outside the clip "
            f"({indices}); use a shorter window or 'replicate' padding")
    return indices
