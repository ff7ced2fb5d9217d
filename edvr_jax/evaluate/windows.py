"""Temporal windows over a stream of frames, with test-time border padding and a bounded buffer.

EDVR restores frame ``c`` from the ``num_frame`` frames ``c - T//2 ... c + T//2``; at the
clip borders the missing frames are replaced as BasicSR's ``generate_frame_indices`` says
(``edvr_jax.evaluate.frame_index``). :class:`SlidingWindows` produces exactly those windows
while frames arrive one at a time (decoded from a video, or produced by a first stage),
keeping only the frames some later window still needs.

Buffer bound. With ``h = num_frame // 2``, the window of centre ``c`` is emitted as soon as
frame ``c + h`` has arrived (frame ``2h`` for the first ``h`` centres, whose reflected
windows reach that far), or the stream has ended. Frames older than every later window
needs are dropped at once. Later windows need nothing before ``c + 1 - h`` except near the
end of the clip, where ``reflection_circle`` and ``circle`` reach back to ``last - 2h``;
while the length is unknown ``last >= c + h`` gives ``c - h``. So at most
``num_frame + 1`` frames are held at any time (``num_frame`` when the length is known or
the stream has ended); :attr:`SlidingWindows.peak` records the maximum for tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from edvr_jax.errors import UserError
from edvr_jax.evaluate.frame_index import PADDING_MODES, generate_frame_indices

__all__ = ["SlidingWindows", "WindowError", "sliding_windows"]


class WindowError(UserError, ValueError):
    """A clip too short for the window with the chosen padding (the message says which)."""


def _indices(c: int, n: int, num_frame: int, padding: str) -> list[int]:
    try:
        return generate_frame_indices(c, n, num_frame, padding)
    except ValueError:
        raise WindowError(f"a clip of {n} frames is too short for {num_frame}-frame windows "
                          f"with {padding!r} padding (frames outside the clip would be "
                          f"needed); use 'replicate' padding (--padding replicate)") from None


class SlidingWindows:
    """Push frames in order; get ``(centre, indices, frames)`` windows out, in centre order.

    Args:
      num_frame: window length (odd).
      padding: temporal border padding, one of ``PADDING_MODES``.
      total: number of frames if known in advance (a clip on disk), else ``None`` (a video
        whose end is only known when decoding stops; call :meth:`finish` then).
      targets: if given, only windows centred on these frame indices are produced (e.g.
        ``{3}`` for Vimeo-90K's im4); frames no target window needs are not kept.

    ``frames`` in a window is a list of ``num_frame`` frame objects (whatever was pushed,
    e.g. ``(H, W, 3)`` arrays), shared, not copied.
    """

    def __init__(self, num_frame: int, padding: str, total: int | None = None,
                 targets: Iterable[int] | None = None):
        if padding not in PADDING_MODES:
            raise ValueError(f"unknown temporal padding {padding!r}; expected one of "
                             f"{', '.join(PADDING_MODES)}")
        if num_frame < 1 or num_frame % 2 != 1:
            raise ValueError(f"num_frame must be odd and positive, got {num_frame}")
        self.num_frame, self.padding, self.total = num_frame, padding, total
        self.half = num_frame // 2
        self.targets = None if targets is None else sorted(set(int(t) for t in targets))
        self._buffer: dict[int, Any] = {}
        self._received = 0  # frames pushed so far
        self._next = 0  # next centre to emit (position in the target list when targets is set)
        self._ended = False
        self.peak = 0  # the most frames ever held at once

    # ------------------------------------------------------------------ state
    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _centre(self, k: int) -> int | None:
        """The k-th centre to emit, or None when there is none left."""
        c = k if self.targets is None else (self.targets[k] if k < len(self.targets) else None)
        n = self._length()
        return None if c is None or (n is not None and c >= n) else c

    def _length(self) -> int | None:
        return self._received if self._ended else self.total

    def _indices(self, c: int) -> list[int] | None:
        """The window of centre ``c`` if it is known now and all its frames have arrived."""
        n = self._length()
        if n is not None:
            idx = _indices(c, n, self.num_frame, self.padding)
            return idx if max(idx) < self._received else None
        # Length unknown: wait for frame c + h (2h for the first centres, whose reflected
        # windows reach that far). Any length >= that gives the same window.
        need = max(c + self.half, 2 * self.half if c < self.half else 0)
        if self._received <= need:
            return None
        return _indices(c, need + 1, self.num_frame, self.padding)

    def _evict(self, next_centre: int | None) -> None:
        if next_centre is None:
            self._buffer.clear()
            return
        n = self._length()
        last_lower = (n if n is not None else self._received) - 1  # the clip's last index >= this
        keep_from = min(next_centre - self.half, last_lower - 2 * self.half)
        if self.targets is not None:  # the remaining targets are sorted: nothing earlier needed
            keep_from = min(keep_from, next_centre - self.half)
        for i in [i for i in self._buffer if i < keep_from]:
            del self._buffer[i]

    def _needed(self, i: int) -> bool:
        if self.targets is None:
            return True
        # Frame i can only serve windows of targets within 2h of it.
        return any(abs(t - i) <= 2 * self.half for t in self.targets[self._next:])

    def _ready(self) -> Iterator[tuple[int, list[int], list[Any]]]:
        while True:
            c = self._centre(self._next)
            if c is None:
                self._evict(None)
                return
            idx = self._indices(c)
            if idx is None:
                return
            yield c, idx, [self._buffer[i] for i in idx]
            self._next += 1
            self._evict(self._centre(self._next))

    # ------------------------------------------------------------------ API
    def push(self, frame: Any) -> list[tuple[int, list[int], list[Any]]]:
        """Adds the next frame; returns the windows that became complete (maybe none)."""
        if self._ended:
            raise RuntimeError("SlidingWindows: push after finish")
        if self.total is not None and self._received >= self.total:
            raise ValueError(f"SlidingWindows: more frames than the {self.total} announced")
        i = self._received
        self._received += 1
        if self._needed(i):
            self._buffer[i] = frame
            self.peak = max(self.peak, len(self._buffer))
        return list(self._ready())

    def finish(self) -> list[tuple[int, list[int], list[Any]]]:
        """Marks the end of the stream; returns the remaining windows."""
        if self.total is not None and self._received != self.total:
            raise ValueError(f"SlidingWindows: {self._received} frames pushed, "
                             f"{self.total} announced")
        if self._received == 0:
            self._ended = True
            return []
        self._ended = True
        return list(self._ready())


def sliding_windows(frames: Iterable[Any], num_frame: int, padding: str,
                    total: int | None = None, targets: Sequence[int] | None = None
                    ) -> Iterator[tuple[int, list[int], list[Any]]]:
    """Generator form of :class:`SlidingWindows` over an iterable of frames."""
    sw = SlidingWindows(num_frame, padding, total, targets)
    for f in frames:
        yield from sw.push(f)
    yield from sw.finish()
