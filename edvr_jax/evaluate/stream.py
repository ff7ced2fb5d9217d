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
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from edvr_jax.evaluate.inference import NonFiniteOutput, Restorer
from edvr_jax.evaluate.protocols import temporal_padding
from edvr_jax.evaluate.windows import SlidingWindows
from edvr_jax.frames import to_float

__all__ = ["StreamStats", "chain_stages", "default_padding", "make_stages", "restore_stream",
           "stage_outputs", "stage_windows"]


def default_padding(model) -> str:
    """The protocol's temporal padding for ``model``: ``protocols.temporal_padding`` (replicate
    for the blur tracks, SRblur included, else reflection_circle)."""
    return temporal_padding(model)


def make_stages(model, variables, *, batch_size: int = 1, tile: int | None = None,
                tile_overlap: int = 0, mesh="auto", ensemble: str = "none") -> list[Restorer]:
    """One quantising Restorer per stage of an ``EDVR`` or ``TwoStageEDVR``.

    ``ensemble`` (``edvr_jax.evaluate.ensemble``) applies to every stage, as in the 2019
    pipeline: stage 1's frames are the ensemble's rounded average, and stage 2 ensembles
    again over them. Stage 2 tiles in its own (output-resolution) pixels: ``tile`` and ``tile_overlap``
    times the stage-1 scale.
    """
    from edvr_jax.models import TwoStageEDVR

    if not isinstance(model, TwoStageEDVR):
        return [Restorer(model, variables, batch_size=batch_size, mesh=mesh, tile=tile,
                         tile_overlap=tile_overlap, quantize=True, ensemble=ensemble)]
    s = model.stage1.scale
    p = variables["params"]
    return [Restorer(model.stage1, {"params": p["stage1"]}, batch_size=batch_size, mesh=mesh,
                     tile=tile, tile_overlap=tile_overlap, quantize=True, ensemble=ensemble),
            Restorer(model.stage2, {"params": p["stage2"]}, batch_size=batch_size, mesh=mesh,
                     tile=None if tile is None else tile * s, tile_overlap=tile_overlap * s,
                     quantize=True, ensemble=ensemble)]


@dataclasses.dataclass
class StreamStats:
    """Maxima seen while streaming (for tests and curiosity)."""

    window_buffer: list[int] = dataclasses.field(default_factory=list)  # per stage
    pending_windows: list[int] = dataclasses.field(default_factory=list)  # per stage

    def buffer_watch(self, k: int) -> Callable[[SlidingWindows], None]:
        """For ``stage_windows``: records stage ``k``'s largest window buffer."""
        return lambda sw: self.window_buffer.__setitem__(k, max(self.window_buffer[k], sw.peak))

    def pending_watch(self, k: int) -> Callable[[int], None]:
        """For ``stage_outputs``: records stage ``k``'s most windows waiting for a batch."""
        return lambda n: self.pending_windows.__setitem__(k, max(self.pending_windows[k], n))


def stage_windows(frames: Iterable[np.ndarray | None], num_frame: int, padding: str,
                  total: int | None = None, targets: Iterable[int] | None = None,
                  watch: Callable[[SlidingWindows], None] | None = None
                  ) -> Iterator[tuple[int, np.ndarray]]:
    """``(centre, window (T, H, W, 3))`` for every centre (or only ``targets``), in order.

    ``frames``: float32 frames in [0, 1], or None for a frame no window needs (evaluation
    reads only those). ``watch`` is called with the window buffer after each frame."""
    sw = SlidingWindows(num_frame, padding, total=total, targets=targets)
    for frame in frames:
        for c, _, window in sw.push(frame):
            yield c, np.stack(window)
        if watch is not None:
            watch(sw)
    for c, _, window in sw.finish():
        yield c, np.stack(window)


def stage_outputs(windows: Iterable[tuple[int, np.ndarray]], restorer: Restorer, *,
                  total: int | None = None, stage: int = 0,
                  watch: Callable[[int], None] | None = None) -> Iterator[np.ndarray | None]:
    """One slot per frame index, in order: the restored uint8 frame of the window centred
    there, or None where no window was (then up to ``total`` slots). Windows are restored
    ``restorer.batch_size`` at a time; ``watch`` sees the number of pending windows.

    Raises :class:`NonFiniteOutput` with the frame index and ``stage`` of a restored frame
    that has NaN/inf."""
    pending: list[tuple[int, np.ndarray]] = []
    nxt = 0  # the next frame slot to yield

    def run():
        nonlocal nxt
        try:
            outs = restorer(np.stack([w for _, w in pending]))
        except NonFiniteOutput as e:
            raise NonFiniteOutput(pending[e.index][0], stage=stage) from None
        for (c, _), out in zip(pending, outs, strict=True):
            yield from (None for _ in range(nxt, c))
            yield out
            nxt = c + 1
        pending.clear()

    for c, w in windows:
        pending.append((c, w))
        if watch is not None:
            watch(len(pending))
        if len(pending) == restorer.batch_size:
            yield from run()
    if pending:
        yield from run()
    if total is not None:
        yield from (None for _ in range(nxt, total))


def as_float(frames: Iterable[np.ndarray | None]) -> Iterator[np.ndarray | None]:
    """uint8 frames (a decoder's, or a quantising stage's outputs) to float32 in [0, 1]."""
    for f in frames:
        yield f if f is None or f.dtype == np.float32 else to_float(f)


def chain_stages(frames: Iterable[np.ndarray | None], stages: Sequence[Restorer],
                 paddings: Sequence[str], *, total: int | None = None,
                 targets: Sequence[Iterable[int] | None] | None = None,
                 stats: StreamStats | None = None):
    """The stages one after the other, all but the last run here: returns the last stage's
    ``(centre, window)`` pairs (``stage_windows``), its frames being the earlier stages'
    outputs. ``targets[k]``: the centres stage k must produce (None: all). The one
    chaining of Restorers, shared by ``restore_stream`` and the evaluation."""
    targets = list(targets) if targets is not None else [None] * len(stages)

    def buffer_watch(k):
        return None if stats is None else stats.buffer_watch(k)

    def pending_watch(k):
        return None if stats is None else stats.pending_watch(k)

    stream = stage_windows(as_float(frames), stages[0].model.num_frame, paddings[0], total,
                           targets[0], buffer_watch(0))
    for k in range(1, len(stages)):
        outs = stage_outputs(stream, stages[k - 1], total=total, stage=k - 1, watch=pending_watch(k - 1))
        stream = stage_windows(as_float(outs), stages[k].model.num_frame, paddings[k], total,
                               targets[k], buffer_watch(k))
    return stream


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
    k = len(stages) - 1
    yield from stage_outputs(chain_stages(frames, stages, paddings, total=total, stats=stats),
                             stages[-1], total=total, stage=k, watch=stats.pending_watch(k))
