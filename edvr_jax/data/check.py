"""Scan a whole dataset up front and report every bad frame.

`check_clipset` reads the header and the last bytes of every LQ and GT frame (a PNG must
end with its IEND chunk, a JPEG with its end-of-image marker, which catches cut-off files
without decoding), or with ``decode`` decodes every frame, and reports, one line each:
- errors: unreadable or corrupt frames, frames whose size differs from the clip's first
  frame, GT frames that are not `scale` x their LQ frame, clips shorter than num_frame, and
  (from the reader) clips whose LQ and GT frame lists differ or that are missing a folder;
- notes: frames that are not 8-bit RGB (grayscale, palette, RGBA, 16-bit): the pipeline
  converts them to RGB (gray replicated, alpha dropped, 16-bit scaled to 8-bit), which is
  usually fine but worth knowing.
The command line (`python -m edvr_jax.data check ...`) exits non-zero if there is any error.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

from edvr_jax.data.clips import (
    Clip,
    ClipSet,
    DatasetError,
    decode_frame,
    frame_header,
    gt_scale_problem,
    read_bytes,
    same_size_problem,
    truncation_problem,
)
from edvr_jax.errors import counted

_MODE_NOTES = {"L": "grayscale", "LA": "grayscale+alpha", "P": "palette", "RGBA": "RGBA",
               "I;16": "16-bit grayscale", "I": "32-bit grayscale", "CMYK": "CMYK",
               "I;16B": "16-bit grayscale"}


@dataclasses.dataclass
class CheckReport:
    """Outcome of a scan: `errors` make a dataset unusable, `notes` are conversions."""

    clips: int = 0
    frames: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    decoded: bool = False  # every frame decoded, not only its header and end read

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        verdict = "OK" if self.ok else counted(len(self.errors), "error")
        how = "decoded" if self.decoded else "headers and file ends read, pixels not decoded"
        return (f"checked {counted(self.clips, 'clip')}, {counted(self.frames, 'frame file')} "
                f"({how}): {verdict}, {counted(len(self.notes), 'note')}")


def _inspect(ref: str, source, decode: bool) -> tuple[tuple[int, int] | None, str, str]:
    """(size or None, mode, error message or '') of one frame."""
    try:
        h, w, mode = frame_header(ref, source)
        if decode:
            arr = decode_frame(read_bytes(ref, source), ref)
            if arr.shape[:2] != (h, w):
                return None, mode, f"frame {ref}: header says {h}x{w} but decodes to " \
                                   f"{arr.shape[0]}x{arr.shape[1]}"
        elif problem := truncation_problem(ref, source):
            return None, mode, problem
        return (h, w), mode, ""
    except DatasetError as e:
        return None, "", str(e)


def _check_clip(clip: Clip, scale: int, num_frame: int | None, decode: bool,
                pool: ThreadPoolExecutor) -> tuple[list[str], list[str]]:
    errors, notes = [], []
    if num_frame is not None and clip.center is None and clip.num_frames < num_frame:
        errors.append(f"clip {clip.name}: {clip.num_frames} frames, fewer than "
                      f"num_frame={num_frame}")
    lq_refs = list(clip.lq_paths)
    # fixed-centre clips (Vimeo-90K) use the GT of the target frame only
    gt_refs = list(clip.gt_paths) if clip.center is None else [clip.gt_paths[clip.center]]
    lq = list(pool.map(lambda r: _inspect(r, clip.source, decode), lq_refs))
    gt = list(pool.map(lambda r: _inspect(r, clip.source, decode), gt_refs))
    for refs, results in ((lq_refs, lq), (gt_refs, gt)):
        first = next(((r, s) for r, (s, _, _) in zip(refs, results, strict=True) if s), None)
        for ref, (size, mode, err) in zip(refs, results, strict=True):
            if err:
                errors.append(err)
                continue
            if mode != "RGB":
                notes.append(f"frame {ref} is {_MODE_NOTES.get(mode, mode)} (mode {mode}); "
                             f"it is converted to RGB")
            if first and (problem := same_size_problem(ref, size, *first)):
                errors.append(problem)
    pairs = (list(enumerate(lq)) if clip.center is None
             else [(clip.center, lq[clip.center])])
    for k, (i, (lq_size, _, _)) in enumerate(pairs):
        gt_size = gt[k][0]
        if lq_size and gt_size and (problem := gt_scale_problem(clip.gt_paths[i], gt_size,
                                                                 clip.lq_paths[i], lq_size, scale)):
            errors.append(problem)
    return errors, notes


def check_clipset(clips: ClipSet, *, num_frame: int | None = None, decode: bool = False,
                  workers: int = 16, report: CheckReport | None = None,
                  progress=None) -> CheckReport:
    """Scan every frame of every clip; add findings to `report` (a new one by default).

    `progress`, if given, is called with each clip name as it is done.
    """
    report = report or CheckReport()
    report.decoded = decode
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for clip in clips:
            errs, notes = _check_clip(clip, clips.scale, num_frame, decode, pool)
            report.errors.extend(errs)
            report.notes.extend(notes)
            report.clips += 1
            report.frames += clip.num_frames + (clip.num_frames if clip.center is None else 1)
            if progress is not None:
                progress(clip.name)
    return report
