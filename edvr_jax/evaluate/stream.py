"""Restoring a whole video as a stream: frames in, restored frames out, bounded memory.

``restore_stream(frames, stages, paddings)`` pulls uint8 RGB frames ``(H, W, 3)`` from any
iterable, forms each stage's temporal windows with its border padding
(:class:`~edvr_jax.evaluate.windows.SlidingWindows`), restores them in batches
(:class:`~edvr_jax.evaluate.inference.Restorer`) and yields one restored uint8 frame per
input frame, in order. A second stage (``TwoStageEDVR.stage2``, an ``hr_in`` EDVR) takes
the stage-1 outputs, rounded to uint8 as the paper's pipeline saved them, through its own
windows and padding.

Memory: each stage holds at most ``num_frame + 1`` frames in its window buffer plus one
batch of ``batch_size`` windows, so the number of frames between the decoder and the
encoder is bounded by ``sum over stages of (num_frame + 1 + batch_size * num_frame)``
whatever the video length; :class:`StreamStats` records the maxima for tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from edvr_jax.evaluate.inference import NonFiniteOutput, Restorer
from edvr_jax.evaluate.protocols import temporal_padding
from edvr_jax.evaluate.windows import SlidingWindows

__all__ = ["StreamStats", "default_padding", "make_stages", "restore_stream"]


def default_padding(model) -> str:
    """The protocol's temporal padding for ``model``: ``protocols.temporal_padding`` (replicate
    for the blur tracks, SRblur included, else reflection_circle)."""
    return temporal_padding(model)


def make_stages(model, variables, *, batch_size: int = 1, tile: int | None = None,
                tile_overlap: int = 0, mesh="auto") -> list[Restorer]:
    """One quantising Restorer per stage of an ``EDVR`` or ``TwoStageEDVR``.

    Stage 2 tiles in its own (output-resolution) pixels: ``tile`` and ``tile_overlap``
    times the stage-1 scale.
    """
    from edvr_jax.models import TwoStageEDVR

    if not isinstance(model, TwoStageEDVR):
        return [Restorer(model, variables, batch_size=batch_size, mesh=mesh, tile=tile,
                         tile_overlap=tile_overlap, quantize=True)]
    s = model.stage1.scale
    p = variables["params"]
    return [Restorer(model.stage1, {"params": p["stage1"]}, batch_size=batch_size, mesh=mesh,
                     tile=tile, tile_overlap=tile_overlap, quantize=True),
            Restorer(model.stage2, {"params": p["stage2"]}, batch_size=batch_size, mesh=mesh,
                     tile=None if tile is None else tile * s, tile_overlap=tile_overlap * s,
                     quantize=True)]


@dataclasses.dataclass
class StreamStats:
    """Maxima seen while streaming (for tests and curiosity)."""

    window_buffer: list[int] = dataclasses.field(default_factory=list)  # per stage
    pending_windows: list[int] = dataclasses.field(default_factory=list)  # per stage


def _stage(frames: Iterable[np.ndarray], restorer: Restorer, padding: str, total: int | None,
           stats: StreamStats, k: int) -> Iterator[np.ndarray]:
    sw = SlidingWindows(restorer.model.num_frame, padding, total)
    pending: list[list[np.ndarray]] = []
    done = [0]  # output frames restored so far

    def run():
        try:
            out = restorer(np.stack([np.stack(w) for w in pending]))
        except NonFiniteOutput as e:
            raise NonFiniteOutput(done[0] + e.index, stage=k) from None
        done[0] += len(pending)
        pending.clear()
        return out

    def take(windows):
        for _, _, w in windows:
            pending.append(w)
            stats.pending_windows[k] = max(stats.pending_windows[k], len(pending))
            if len(pending) == restorer.batch_size:
                yield from run()

    for f in frames:
        yield from take(sw.push(f.astype(np.float32) / np.float32(255.0)))
        stats.window_buffer[k] = max(stats.window_buffer[k], sw.peak)
    yield from take(sw.finish())
    if pending:
        yield from run()


def restore_stream(frames: Iterable[np.ndarray], stages: Sequence[Restorer],
                   paddings: Sequence[str], total: int | None = None,
                   stats: StreamStats | None = None) -> Iterator[np.ndarray]:
    """Restored uint8 frames ``(s*H, s*W, 3)``, one per input frame, in order.

    Args:
      frames: uint8 RGB frames ``(H, W, 3)`` of one video, in order (any iterable; it is
        consumed lazily).
      stages: quantising Restorers (``make_stages``), applied one after the other.
      paddings: temporal border padding of each stage.
      total: number of frames if known (else the end is found when ``frames`` stops).
      stats: filled with buffer maxima if given.

    Raises :class:`~edvr_jax.evaluate.inference.NonFiniteOutput` with the frame's index in
    the video (and ``stage``, counted from 0) when a restored frame has NaN/inf.
    """
    stats = stats if stats is not None else StreamStats()
    stats.window_buffer[:] = [0] * len(stages)
    stats.pending_windows[:] = [0] * len(stages)
    stream: Iterable[np.ndarray] = frames
    for k, (restorer, padding) in enumerate(zip(stages, paddings, strict=True)):
        stream = _stage(stream, restorer, padding, total, stats, k)
    yield from stream
