"""The one description every dataset reader produces, and frame reading for evaluation.

A dataset is a `ClipSet`: a tuple of `Clip`s plus the dataset's scale. A `Clip` is a named
sequence of paired frames: `lq_paths[i]` and `gt_paths[i]` are the low-quality input and the
ground truth of frame `i` (the same number of each). A clip with a fixed `center` (Vimeo-90K,
where only the middle frame im4 is a target) is always sampled around that frame.

Paths are strings understood by `tf.io.gfile` (local paths or `gs://...`). A clip may instead
carry a `source` (an object with `read_bytes(ref) -> bytes` and `tf_read(refs) -> tf.string
tensor`), in which case its "paths" are references into that source (the TFDS reader does
this). Frames are PNG (or JPEG/BMP) images; they are decoded to RGB, grayscale frames are
replicated to three channels and an alpha channel is dropped (not composited); `check`
reports such frames.

Arrays: frames come back as float32 RGB in [0, 1], computed as `uint8 / 255` (the same
arithmetic as BasicSR's `img.astype(np.float32) / 255.`), clips as `(T, H, W, 3)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import tensorflow as tf

from edvr_jax.errors import UserError, counted
from edvr_jax.frames import (  # noqa: F401  (re-exported: the readers' conversions and rules)
    gt_scale_problem,
    patch_problem,
    same_size_problem,
    tensor_to_uint8,
    to_float,
)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


class DatasetError(UserError, ValueError):
    """A problem with the data on disk or with how it was asked for; the message says which."""


@dataclasses.dataclass(frozen=True)
class Clip:
    """One video clip of paired frames.

    Attributes:
      name: clip name, e.g. '000' (REDS), '00001/0001' (Vimeo-90K), 'calendar' (Vid4).
      lq_paths: LQ frame paths (or source references), in temporal order.
      gt_paths: GT frame paths, same length and order as `lq_paths`.
      center: if set, the only frame index used as a target (Vimeo-90K: 3, i.e. im4);
        `None` means every frame whose window fits may be a target.
      source: `None` for files; otherwise the object that resolves the references.
    """

    name: str
    lq_paths: tuple[str, ...]
    gt_paths: tuple[str, ...]
    center: int | None = None
    source: Any = dataclasses.field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if len(self.lq_paths) != len(self.gt_paths):
            raise DatasetError(f"clip {self.name}: {len(self.lq_paths)} LQ frames but "
                               f"{len(self.gt_paths)} GT frames; expected the same number")
        if self.center is not None and not 0 <= self.center < len(self.lq_paths):
            raise DatasetError(f"clip {self.name}: center {self.center} outside its "
                               f"{len(self.lq_paths)} frames")

    @property
    def num_frames(self) -> int:
        return len(self.lq_paths)


@dataclasses.dataclass(frozen=True)
class ClipSet:
    """A list of clips with the dataset's scale (GT size = scale * LQ size).

    Attributes:
      dataset: 'reds', 'vimeo90k', 'vid4', 'folder', 'demo' or 'tfds'.
      scale: 4 for x4 super-resolution, 1 for deblurring (LQ and GT the same size).
      clips: the clips, in a stable (sorted) order; sampling indexes into this tuple.
      root: where the data was found. task, split, partition: what was asked for.
      layout: which on-disk layout was detected (e.g. 'official', 'regrouped'), with details.
    """

    dataset: str
    scale: int
    clips: tuple[Clip, ...]
    root: str = ""
    task: str = ""
    split: str = ""
    partition: str = ""
    layout: str = ""

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self):
        return iter(self.clips)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.clips)

    @property
    def num_frames(self) -> int:
        """Total number of frames over all clips."""
        return sum(c.num_frames for c in self.clips)

    def clip(self, name: str) -> Clip:
        for c in self.clips:
            if c.name == name:
                return c
        raise DatasetError(f"{self.dataset}: no clip named {name!r}; have {_short(self.names)}")

    def subset(self, names: Iterable[str], split: str | None = None) -> ClipSet:
        """The clips named in `names` (in this set's order); unknown names are an error."""
        wanted = list(names)
        missing = sorted(set(wanted) - set(self.names))
        if missing:
            raise DatasetError(f"{self.dataset}: clips {_short(missing)} not found under "
                               f"{self.root or '?'}; have {_short(self.names)}")
        keep = set(wanted)
        clips = tuple(c for c in self.clips if c.name in keep)
        return dataclasses.replace(self, clips=clips, split=split or self.split)

    def require_frames(self, num_frame: int) -> None:
        """Raise if any clip is too short to give a window of `num_frame` frames."""
        for c in self.clips:
            need = num_frame if c.center is None else None
            if need is not None and c.num_frames < need:
                raise DatasetError(f"{self.dataset} clip {c.name}: {c.num_frames} frames, fewer "
                                   f"than num_frame={num_frame}")
            if c.center is not None and not (num_frame // 2 <= c.center
                                             < c.num_frames - num_frame // 2):
                raise DatasetError(f"{self.dataset} clip {c.name}: a window of {num_frame} frames "
                                   f"around frame {c.center} leaves its {c.num_frames} frames")

    def describe(self) -> str:
        """One line: dataset, split, clip and frame counts, scale and layout."""
        parts = [f"{self.dataset}", f"split={self.split or '-'}", counted(len(self.clips), "clip"),
                 counted(self.num_frames, "frame"), f"scale={self.scale}"]
        if self.task:
            parts.insert(1, f"task={self.task}")
        if self.partition:
            parts.insert(2, f"partition={self.partition}")
        if self.layout:
            parts.append(f"layout={self.layout}")
        return ", ".join(parts) + f" at {self.root}"


def _short(names: Sequence[str], n: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


# ----------------------------------------------------------------------------- file helpers

def join(*parts: str) -> str:
    return tf.io.gfile.join(*parts)


def isdir(path: str) -> bool:
    return tf.io.gfile.isdir(path)


def list_subdirs(path: str) -> list[str]:
    """Sorted names of the sub-folders of `path` (GCS listings end dirs with '/')."""
    out = []
    for name in tf.io.gfile.listdir(path):
        name = name.rstrip("/")
        if isdir(join(path, name)):
            out.append(name)
    return sorted(out)


def list_frames(path: str) -> list[str]:
    """Sorted file names of the image frames in folder `path`."""
    return sorted(n for n in (m.rstrip("/") for m in tf.io.gfile.listdir(path))
                  if n.lower().endswith(IMAGE_EXTENSIONS))


def parallel_map(fn, items: Sequence, workers: int = 16) -> list:
    """`[fn(x) for x in items]` with threads (listing and header reads are I/O bound)."""
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def problem(errors: list[str] | None, message: str) -> None:
    """Raise `message` as a DatasetError, or collect it when `errors` is a list."""
    if errors is None:
        raise DatasetError(message)
    errors.append(message)


# ----------------------------------------------------------------------------- frame reading

def read_bytes(ref: str, source: Any = None) -> bytes:
    """The encoded bytes of one frame (a gfile path, or a reference into `source`)."""
    try:
        if source is not None:
            return source.read_bytes(ref)
        with tf.io.gfile.GFile(ref, "rb") as f:
            return f.read()
    except (tf.errors.OpError, OSError, KeyError, IndexError) as e:
        raise DatasetError(f"cannot read frame {ref}: {type(e).__name__}: {e}") from None


_tf_off_accelerators = False


def hide_accelerators_from_tf() -> None:
    """Keeps TensorFlow off GPUs, so that it reserves no accelerator memory JAX needs.

    Called where TensorFlow first runs an op (decoding a frame, building a tf.data
    pipeline), not at import: importing edvr_jax changes nothing process-wide."""
    global _tf_off_accelerators
    if _tf_off_accelerators:
        return
    _tf_off_accelerators = True
    try:
        tf.config.set_visible_devices([], "GPU")
    except (RuntimeError, ValueError):  # TensorFlow already initialised its devices
        pass


GRAY_NOTE = "grayscale frames are converted to RGB"
ALPHA_NOTE = "RGBA frames: the alpha channel is dropped"


def decode_frame(data: bytes, name: str = "<bytes>", notes: set[str] | None = None
                 ) -> np.ndarray:
    """Encoded PNG/JPEG/BMP bytes -> uint8 RGB array (H, W, 3); names `name` if corrupt.

    Grayscale is replicated to RGB and alpha dropped (what `decode_image(channels=3)` does);
    when `notes` is a set, a sentence saying so is added to it.
    """
    if not data:
        raise DatasetError(f"frame {name} is empty (0 bytes)")
    # Checked here rather than read out of TensorFlow's error text: what the file is, and
    # whether it ends as its format requires.
    if not (data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")):
        raise DatasetError(f"frame {name} is not a readable image: not PNG, JPEG, BMP, GIF, WebP "
                           f"nor JPEG XL (it starts with {data[:8]!r})")
    if problem := _cut_off(name, data[:8], data[-64:], len(data)):
        raise DatasetError(problem)
    hide_accelerators_from_tf()
    try:
        img = tf.io.decode_image(data, channels=0, dtype=tf.uint8,
                                 expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise DatasetError(f"frame {name} is not a readable image: its {len(data)} bytes do not "
                           f"decode ({type(e).__name__} from tf.io.decode_image)") from None
    channels = img.shape[-1]
    if channels in (1, 2):
        img = np.repeat(img[..., :1], 3, axis=-1)
    elif channels == 4:
        img = np.ascontiguousarray(img[..., :3])
    if notes is not None and channels != 3:
        notes.add(GRAY_NOTE if channels < 3 else ALPHA_NOTE)
        if channels == 2:
            notes.add(ALPHA_NOTE)
    return img


def read_frames(paths: Sequence[str], source: Any = None, workers: int = 8,
                notes: set[str] | None = None) -> np.ndarray:
    """Read and decode frames into one float32 RGB array (T, H, W, 3) in [0, 1].

    Raises DatasetError naming the first unreadable frame or the first frame whose size
    differs from the first frame's. `notes`: see `decode_frame`.
    """
    if not paths:
        raise DatasetError("read_frames: no frames given")

    def load(p):
        return decode_frame(read_bytes(p, source), p, notes)

    frames = parallel_map(load, list(paths), workers)
    for p, f in zip(paths, frames, strict=True):
        if problem := same_size_problem(p, f.shape, paths[0], frames[0].shape):
            raise DatasetError(problem)
    return to_float(np.stack(frames))


def read_clip(clip: Clip, lq_indices: Sequence[int] | None = None,
              gt_indices: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames of one clip for evaluation: `(lq, gt)` float32 RGB in [0, 1].

    Args:
      clip: a Clip from any reader.
      lq_indices: frame indices of the LQ frames to read, in the order wanted (e.g. a padded
        window such as [4, 3, 0, 1, 2]); None reads all frames.
      gt_indices: frame indices of the GT frames; None reads all frames.

    Returns:
      lq (len(lq_indices), h, w, 3) and gt (len(gt_indices), H, W, 3). Repeated indices are
      read once.
    """
    n = clip.num_frames

    def pick(paths, idx, kind):
        idx = list(range(n)) if idx is None else [int(i) for i in idx]
        bad = [i for i in idx if not 0 <= i < n]
        if bad:
            raise DatasetError(f"clip {clip.name}: {kind} frame indices {bad} outside 0..{n - 1}")
        uniq = sorted(set(idx))
        arr = read_frames([paths[i] for i in uniq], clip.source)
        pos = {i: k for k, i in enumerate(uniq)}
        return arr[[pos[i] for i in idx]]

    return pick(clip.lq_paths, lq_indices, "LQ"), pick(clip.gt_paths, gt_indices, "GT")


def read_window(clip: Clip, lq_indices: Sequence[int], gt_index: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """One evaluation sample: LQ window (T, h, w, 3) and its GT frame (H, W, 3)."""
    lq, gt = read_clip(clip, lq_indices, [gt_index])
    return lq, gt[0]


_PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC: the last 8 bytes of a PNG
_PNG, _JPEG = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"
# What tf.io.decode_image reads, by signature (WebP: RIFF....WEBP; JPEG XL: bare or boxed).
_SIGNATURES = (_PNG, _JPEG, b"GIF87a", b"GIF89a", b"BM", b"\xff\x0a",
               b"\x00\x00\x00\x0cJXL \x0d\x0a\x87\x0a")


def truncation_problem(ref: str, source: Any = None) -> str | None:
    """Whether a PNG or JPEG frame ends as its format requires (PNG's IEND chunk, JPEG's
    end-of-image marker), read from the file's first and last bytes: a cut-off copy or
    download, caught without decoding. Other formats are not judged (None)."""
    try:
        if source is not None:
            data = source.read_bytes(ref)
            head, tail, size = data[:8], data[-64:], len(data)
        else:
            size = tf.io.gfile.stat(ref).length
            with tf.io.gfile.GFile(ref, "rb") as f:
                head = f.read(8)
                f.seek(max(size - 64, 0))
                tail = f.read()
    except (tf.errors.OpError, OSError, KeyError, IndexError) as e:
        return f"cannot read frame {ref}: {type(e).__name__}: {e}"
    return _cut_off(ref, head, tail, size)


def _cut_off(ref: str, head: bytes, tail: bytes, size: int) -> str | None:
    if head.startswith(_PNG) and not tail.endswith(_PNG_END):
        return f"frame {ref} is not a readable image: a truncated PNG ({size} bytes, no IEND chunk at the end)"
    if head.startswith(_JPEG) and b"\xff\xd9" not in tail[-64:]:
        return f"frame {ref} is not a readable image: a truncated JPEG ({size} bytes, no end-of-image marker)"
    return None


def frame_header(ref: str, source: Any = None) -> tuple[int, int, str]:
    """(height, width, PIL mode) of one frame from its first 64 KB; DatasetError if unreadable."""
    import io

    from PIL import Image, UnidentifiedImageError

    def parse(data: bytes):
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.height, im.width, im.mode
        except UnidentifiedImageError:
            raise DatasetError(f"frame {ref} is not a readable image: no PNG/JPEG/BMP header "
                               f"found, or the file is truncated ({len(data)} bytes)") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise DatasetError(f"frame {ref} is not a readable image: {e}") from None

    try:
        if source is not None:
            return parse(source.read_bytes(ref))
        with tf.io.gfile.GFile(ref, "rb") as f:
            head = f.read(65536)
            try:
                return parse(head)
            except DatasetError:
                if len(head) < 65536:
                    raise
                return parse(head + f.read())  # e.g. a JPEG with a large EXIF block
    except (tf.errors.OpError, OSError) as e:
        raise DatasetError(f"cannot read frame {ref}: {type(e).__name__}: {e}") from None
