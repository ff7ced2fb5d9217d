"""Restored frames as the low-quality side of a dataset: the input of a stage-2 EDVR.

The paper's second stage is trained on the first stage's outputs with the sharp frames as
ground truth. ``edvr-data stage1`` writes them as ``<lq_root>/<clip>/<frame>.png``: the
clip's name (``000`` for REDS, ``00001/0001`` for Vimeo-90K, so two folder levels) and the
stem of the clip's LQ frame file (REDS ``00000000``, Vimeo ``im1`` ... ``im7``). This module
owns that layout, for the writer (:func:`restored_path`) and for the training readers
(:func:`with_restored_lq`: any ClipSet, its LQ paths swapped for the restored frames, scale
1, everything else kept, partitions and Vimeo's centre frame included). Paths go through
``tf.io.gfile`` (local or ``gs://``).
"""

from __future__ import annotations

import dataclasses
import posixpath

from edvr_jax.data.clips import ClipSet, DatasetError, isdir, join, list_frames, parallel_map

__all__ = ["clip_folder", "restored_path", "with_restored_lq"]


def clip_folder(lq_root: str, clip: str) -> str:
    """The folder of one clip's restored frames (a Vimeo key is two levels)."""
    return join(lq_root, *clip.split("/"))


def restored_path(lq_root: str, clip: str, lq_path: str) -> str:
    """Where the restored frame of LQ frame ``lq_path`` of ``clip`` lives (always .png)."""
    stem = posixpath.splitext(posixpath.basename(str(lq_path).replace("\\", "/")))[0]
    return join(clip_folder(lq_root, clip), stem + ".png")


def with_restored_lq(clips: ClipSet, lq_root: str) -> ClipSet:
    """``clips`` with every LQ frame replaced by its restored frame under ``lq_root``.

    The restored frames have the GT's size, so the result has scale 1. Raises
    :class:`DatasetError` naming the folder when ``lq_root`` is missing, or the clip and
    the first missing frame when some frames were not (yet) restored.
    """
    hint = (f"make it with: edvr-data stage1 --checkpoint STAGE1 --dataset {clips.dataset} "
            f"--root {clips.root or 'ROOT'} --out {lq_root}")
    if not lq_root or not isdir(lq_root):
        raise DatasetError(f"data.lq_root: stage-1 output folder {lq_root or '(empty)'} not "
                           f"found; {hint}")
    for clip in clips.clips:
        if clip.source is not None:
            raise DatasetError(f"data.lq_root: {clips.dataset} clips are not files; restored "
                               f"frames need a file dataset (reds, vimeo90k, folder, demo)")
    new = [dataclasses.replace(c, lq_paths=tuple(restored_path(lq_root, c.name, p)
                                                 for p in c.lq_paths)) for c in clips.clips]

    def missing(clip):
        folder = clip_folder(lq_root, clip.name)
        have = set(list_frames(folder)) if isdir(folder) else set()
        return [p for p in clip.lq_paths if posixpath.basename(p) not in have]

    for clip, gone in zip(new, parallel_map(missing, new), strict=True):
        if gone:
            raise DatasetError(f"data.lq_root: clip {clip.name} lacks {len(gone)} of its "
                               f"{clip.num_frames} restored frames (first: {gone[0]}); {hint} "
                               f"(it resumes where it stopped)")
    return dataclasses.replace(clips, scale=1, clips=tuple(new),
                               layout=f"{clips.layout}; LQ: restored frames in {lq_root}")
