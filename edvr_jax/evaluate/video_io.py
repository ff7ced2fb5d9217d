"""Streaming frame sources and sinks for ``edvr-restore``: video files (PyAV) and frame folders.

Sources yield uint8 RGB frames ``(H, W, 3)`` one at a time with their presentation
timestamps; sinks take restored frames in the same order. Video files are decoded and
encoded with PyAV (the ``video`` extra, imported only when a video is involved); the
output is H.264 (libx264, CRF ``crf``; yuv420p, which every player decodes, with an odd
width or height padded to even by repeating the last column or row and a note saying so;
or yuv444p on request, exact at any size) with the input's
time base, frame timestamps and average frame rate, and the first audio stream copied
packet by packet (remuxed, not re-encoded). Grayscale frames are replicated to RGB and
alpha channels dropped; the source says so once per kind in ``notes`` (frame folders count
the frames each note applies to in ``note_counts``; a video's notes apply to every frame).
"""

from __future__ import annotations

import dataclasses
import fractions
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from edvr_jax.errors import UserError

__all__ = ["FolderSink", "FolderSource", "PIX_FMTS", "RestoreError", "VIDEO_EXTENSIONS", "VideoSink",
           "VideoSource", "import_av", "is_video_path", "open_source"]

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts",
                    ".flv", ".wmv")
PIX_FMTS = ("yuv420p", "yuv444p")  # H.264 chroma: 4:2:0 plays everywhere, 4:4:4 is exact
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class RestoreError(UserError, ValueError):
    """A user-facing problem with the input, the output or the options; one-line message."""


def import_av():
    try:
        import av
    except ImportError:
        raise RestoreError("reading or writing video files needs PyAV: pip install "
                           "'edvr_jax[video]' (or: pip install av); frame folders work "
                           "without it") from None
    return av


def is_video_path(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


@dataclasses.dataclass
class Frame:
    """One decoded frame: uint8 RGB pixels, its timestamp (in ``time_base``), its name."""

    image: np.ndarray
    pts: int | None
    name: str


def _to_rgb(arr: np.ndarray) -> tuple[np.ndarray, str | None]:
    """uint8 (H, W[, C]) -> (H, W, 3) RGB, and a note if a conversion was needed."""
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=-1), "grayscale frames are converted to RGB"
    if arr.shape[-1] == 1:
        return np.repeat(arr, 3, axis=-1), "grayscale frames are converted to RGB"
    if arr.shape[-1] == 2:
        return (np.repeat(arr[..., :1], 3, axis=-1),
                "grayscale frames are converted to RGB (alpha dropped)")
    if arr.shape[-1] == 4:
        return arr[..., :3], "RGBA frames: the alpha channel is dropped"
    return arr, None


class FolderSource:
    """The image files of a folder (PNG/JPEG/BMP/TIFF/WebP), in sorted name order."""

    kind = "folder"

    def __init__(self, path: str):
        if not os.path.isdir(path):
            raise RestoreError(f"input folder {path} does not exist")
        self.path = path
        self.names = sorted(n for n in os.listdir(path)
                            if n.lower().endswith(IMAGE_EXTENSIONS)
                            and os.path.isfile(os.path.join(path, n)))
        if not self.names:
            raise RestoreError(f"input folder {path} holds no image frames "
                               f"({', '.join(IMAGE_EXTENSIONS)})")
        self.num_frames: int | None = len(self.names)
        self.rate = None
        self.time_base = None
        self.notes: list[str] = []  # each kind of conversion once, in order of appearance
        self.note_counts: dict[str, int] = {}  # frames each note applies to
        self.has_audio = False

    def frames(self) -> Iterator[Frame]:
        from PIL import Image, UnidentifiedImageError

        size = None
        for name in self.names:
            p = os.path.join(self.path, name)
            try:
                with Image.open(p) as im:
                    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                        arr = (np.asarray(im, np.float64) / 257.0).round().clip(0, 255)
                        arr = arr.astype(np.uint8)
                        note = "16-bit frames are reduced to 8 bits"
                    else:
                        if im.mode not in ("RGB", "L", "LA", "RGBA"):
                            im = im.convert("RGBA" if "A" in im.mode or "transparency"
                                            in im.info else "RGB")
                        arr = np.asarray(im)
                        note = None
            except (UnidentifiedImageError, OSError) as e:
                raise RestoreError(f"frame {p} is not a readable image: {e}") from None
            arr, note2 = _to_rgb(arr)
            for n in (note, note2):
                if n:
                    if n not in self.notes:
                        self.notes.append(n)
                    self.note_counts[n] = self.note_counts.get(n, 0) + 1
            if size is None:
                size = arr.shape
            elif arr.shape != size:
                raise RestoreError(f"frame {p} is {arr.shape[0]}x{arr.shape[1]}, but the first "
                                   f"frame is {size[0]}x{size[1]} (HxW); all frames must share a size")
            yield Frame(np.ascontiguousarray(arr), None, os.path.splitext(name)[0])

    def close(self) -> None:
        pass


class VideoSource:
    """A video file's first video stream (and first audio stream, for remuxing)."""

    kind = "video"

    def __init__(self, path: str):
        av = import_av()
        if not os.path.isfile(path):
            raise RestoreError(f"input video {path} does not exist")
        try:
            self.container = av.open(path)
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise RestoreError(f"cannot read video {path}: {e}") from None
        if not self.container.streams.video:
            self.container.close()
            raise RestoreError(f"{path} has no video stream")
        self.path = path
        self.stream = self.container.streams.video[0]
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        self.has_audio = self.audio is not None
        self.rate = self.stream.average_rate or self.stream.guessed_rate
        self.time_base = self.stream.time_base
        self.num_frames = int(self.stream.frames) or None  # container metadata; may be absent
        self.notes: list[str] = []
        fmt = self.stream.codec_context.pix_fmt or ""
        if fmt.startswith(("gray", "ya", "monob", "monow")):
            self.notes.append("grayscale frames are converted to RGB")
        if fmt.startswith(("yuva", "rgba", "bgra", "argb", "abgr", "ya", "gbrap")):
            self.notes.append("the alpha channel is dropped")
        self.note_counts: dict[str, int] = {}  # a stream's format applies to every frame

    def events(self) -> Iterator[tuple[str, Any]]:
        """``("video", Frame)`` and ``("audio", packet)`` in demuxing order."""
        av = import_av()
        streams = [self.stream] + ([self.audio] if self.audio is not None else [])
        i = 0
        try:
            for packet in self.container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None:
                        yield "audio", packet
                    continue
                for frame in packet.decode():
                    img = frame.to_ndarray(format="rgb24")
                    yield "video", Frame(img, frame.pts, f"{i:08d}")
                    i += 1
        except av.error.FFmpegError as e:
            raise RestoreError(f"cannot decode video {self.path} after {i} frames: {e}") from None
        if i == 0:
            raise RestoreError(f"video {self.path} has no decodable frames")

    def frames(self) -> Iterator[Frame]:
        for kind, item in self.events():
            if kind == "video":
                yield item

    def close(self) -> None:
        self.container.close()


def open_source(path: str):
    """A FolderSource for a folder, else a VideoSource (any file PyAV can open)."""
    if os.path.isdir(path):
        return FolderSource(path)
    if not os.path.exists(path):
        raise RestoreError(f"input {path} does not exist")
    return VideoSource(path)


class FolderSink:
    """Writes frames as ``<folder>/<name>.png``."""

    def __init__(self, path: str):
        os.makedirs(path, exist_ok=True)
        self.path = path

    def write(self, image: np.ndarray, frame: Frame) -> None:
        from PIL import Image

        Image.fromarray(image).save(os.path.join(self.path, frame.name + ".png"))

    def audio(self, packet) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class VideoSink:
    """H.264 video with the source's timing; the source's audio packets copied through."""

    def __init__(self, path: str, source, width: int, height: int, crf: int = 18,
                 pix_fmt: str = "yuv420p"):
        av = import_av()
        if pix_fmt not in PIX_FMTS:
            raise RestoreError(f"--pix-fmt {pix_fmt!r}: choose one of {', '.join(PIX_FMTS)}")
        # yuv420p (what every player decodes) needs even sizes: an odd size is padded by
        # repeating the last column/row, and the user told (``notes``).
        self.pad = (height % 2, width % 2) if pix_fmt == "yuv420p" else (0, 0)
        self.notes: list[str] = []
        if any(self.pad):
            self.notes.append(
                f"the restored frames are {height}x{width} (HxW); yuv420p video needs even sizes, "
                f"so the video is {height + self.pad[0]}x{width + self.pad[1]} with the last "
                f"{'row and column' if all(self.pad) else 'column' if self.pad[1] else 'row'} "
                f"repeated (--pix-fmt yuv444p keeps {height}x{width})")
        width, height = width + self.pad[1], height + self.pad[0]
        try:
            self.container = av.open(path, "w")
        except (av.error.FFmpegError, ValueError) as e:
            raise RestoreError(f"cannot create video {path}: {e}") from None
        self.path = path
        rate = source.rate or fractions.Fraction(25)
        stream = self.container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt
        self.time_base = source.time_base or fractions.Fraction(1, 1) / rate
        stream.time_base = self.time_base
        stream.codec_context.time_base = self.time_base
        stream.options = {"crf": str(int(crf))}
        self.stream = stream
        self.audio_stream = None
        if getattr(source, "audio", None) is not None:
            self.audio_stream = self.container.add_stream_from_template(source.audio)
        self._count = 0
        self._step = max(1, round(1 / (rate * self.time_base))) if source.time_base else 1
        try:  # the file and its header now, not when libx264's lookahead releases a packet
            self.container.start_encoding()
        except (av.error.FFmpegError, ValueError) as e:
            self.container.close()
            raise RestoreError(f"cannot create video {path}: {e}") from None

    def _mux(self, packet) -> None:
        av = import_av()
        try:
            self.container.mux(packet)
        except av.error.FFmpegError as e:
            raise RestoreError(f"cannot write {self.path}: {e} (a container such as .mkv "
                               f"accepts more audio codecs)") from None

    def write(self, image: np.ndarray, frame: Frame) -> None:
        av = import_av()
        if any(self.pad):
            image = np.pad(image, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        vf.pts = frame.pts if frame.pts is not None else self._count * self._step
        vf.time_base = self.time_base
        self._count += 1
        for packet in self.stream.encode(vf):
            self._mux(packet)

    def audio(self, packet) -> None:
        if self.audio_stream is not None:
            packet.stream = self.audio_stream
            self._mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self._mux(packet)
        self.container.close()

    def abort(self) -> None:
        """Closes the file without flushing the encoder (after an error or Ctrl-C)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the file is removed anyway
            pass
