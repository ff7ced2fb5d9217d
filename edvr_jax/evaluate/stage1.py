"""Stage-1 outputs of a whole dataset: the training input of a stage-2 EDVR.

    edvr-data stage1 --checkpoint runs/edvr_m_reds/export --dataset reds --root datasets/REDS \\
        --task sr --out datasets/REDS/stage1_edvr_m --ensemble flip4

:func:`restore_dataset` restores every frame of every clip of a ClipSet (border frames
with the protocol's temporal padding, Vimeo-90K's seven frames each, not only im4) into
``out/<clip>/<frame>.png`` (``edvr_jax.data.restored``, the layout ``data.lq_root``
reads). The frames are split between processes (``jax.process_index()`` of
``jax.process_count()``, contiguous runs of the clip-ordered list, so that neighbouring
windows share reads) and each process restores its share in batches sharded over its
devices. Frames that exist are skipped, so a stopped run resumes where it was; each frame
is written atomically (``edvr_jax.outputs``: a hidden ``.<frame>.partial-<pid>.png``
renamed into place; on ``gs://`` an object appears only once its upload completes), so a
frame that exists is whole.
"""

from __future__ import annotations

import contextlib
import io
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from edvr_jax.data import ClipSet
from edvr_jax.data.clips import isdir, list_frames
from edvr_jax.data.restored import clip_folder, restored_path
from edvr_jax.evaluate.evaluation import EvaluationError, clip_windows, frame_name
from edvr_jax.evaluate.inference import NonFiniteOutput, nonfinite_message
from edvr_jax.evaluate.stream import make_stages, stage_outputs

__all__ = ["process_share", "restore_dataset", "write_png"]


def process_share(clips: ClipSet, index: int, count: int) -> list[tuple[int, int]]:
    """``(clip index, frame index)`` of the frames process ``index`` of ``count`` restores:
    a contiguous run of the clip-ordered list of all frames; the shares partition it."""
    if not 0 <= index < count:
        raise ValueError(f"process index {index} is not in 0..{count - 1}")
    jobs = [(k, i) for k, c in enumerate(clips.clips) for i in range(c.num_frames)]
    bounds = np.linspace(0, len(jobs), count + 1).round().astype(int)
    return jobs[bounds[index]:bounds[index + 1]]


def write_png(path: str, img: np.ndarray) -> None:
    """Writes uint8 ``(H, W, 3)`` as a PNG that appears whole or not at all (and removes
    the temporary files a killed run left for it)."""
    from PIL import Image

    if "://" in path:
        import tensorflow as tf

        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
        with tf.io.gfile.GFile(path, "wb") as f:  # an object exists once it is complete
            f.write(buf.getvalue())
        return
    import glob
    import os

    from edvr_jax.outputs import partial_name, replacing_file

    with replacing_file(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")
    # A killed earlier run may have left its temporary file for this frame: now it is done.
    folder, name = os.path.split(os.path.abspath(path))
    stem = os.path.splitext(name)[0]
    for stale in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(stem)}.partial-*")):
        if stale != partial_name(path):
            with contextlib.suppress(OSError):
                os.unlink(stale)


def _existing(out: str, clip: str) -> set[str]:
    folder = clip_folder(out, clip)
    if not isdir(folder):
        return set()
    return {n for n in list_frames(folder) if not n.startswith(".")}  # not .partial- files


def restore_dataset(model, variables, clips: ClipSet, out: str, *, padding: str,
                    batch_size: int = 4, ensemble: str = "none", tile: int | None = None,
                    tile_overlap: int = 0, mesh: Any = "auto", process_index: int | None = None,
                    process_count: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Restores this process's share of the frames of ``clips`` into ``out``.

    Args:
      model, variables: an ``EDVR`` or ``TwoStageEDVR``; its scale must be the data's.
      padding: temporal border padding (``generate_frame_indices`` mode).
      batch_size, ensemble, tile, tile_overlap, mesh: as for ``make_stages``.
      process_index, process_count: default ``jax.process_index()`` / ``process_count()``.

    Returns ``{"frames": this process's share, "skipped": already there, "written": [paths
    written now, in order], "seconds", "frames_per_second"}`` (rate over frames written).
    """
    import jax
    from tqdm.auto import tqdm

    if clips.scale != model.scale:
        raise EvaluationError(f"the model restores x{model.scale} but {clips.dataset} "
                              f"{clips.task or ''} data is x{clips.scale}")
    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    share = process_share(clips, index, count)
    todo: dict[int, list[int]] = {}
    skipped = 0
    for k in sorted({k for k, _ in share}):
        have = _existing(out, clips.clips[k].name)
        for kk, i in share:
            if kk != k:
                continue
            clip = clips.clips[k]
            if restored_path(out, clip.name, clip.lq_paths[i]).rsplit("/", 1)[-1] in have:
                skipped += 1
            else:
                todo.setdefault(k, []).append(i)
    stages = make_stages(model, variables, batch_size=batch_size, tile=tile,
                         tile_overlap=tile_overlap, mesh=mesh, ensemble=ensemble)
    total = sum(len(v) for v in todo.values())
    bar = tqdm(total=total, unit="frame", disable=not progress, dynamic_ncols=True,
               desc="stage 1 (compiling)")
    written: list[str] = []
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as readers, ThreadPoolExecutor(max_workers=2) as writers:
        pending = []
        for k, targets in todo.items():
            clip = clips.clips[k]
            windows = clip_windows(clip, stages, padding, readers, targets=targets)
            try:
                for i, img in enumerate(stage_outputs(windows, stages[-1], stage=len(stages) - 1)):
                    if img is None:
                        continue
                    path = restored_path(out, clip.name, clip.lq_paths[i])
                    pending.append(writers.submit(write_png, path, img))
                    written.append(path)
                    while len(pending) > 8:  # bounded memory; a write error surfaces here
                        pending.pop(0).result()
                    if len(written) == 1:
                        bar.set_description("stage 1", refresh=False)
                        bar.reset(total=total)
                    bar.set_postfix_str(f"clip {clip.name}", refresh=False)
                    bar.update(1)
            except NonFiniteOutput as e:
                prefix = f"stage {e.stage + 1}: " if len(stages) > 1 else ""
                raise EvaluationError(prefix + nonfinite_message(
                    clip.name, frame_name(clip.lq_paths[e.index]))) from None
        for f in pending:
            f.result()
    bar.close()
    seconds = time.perf_counter() - start
    return {"frames": len(share), "skipped": skipped, "written": written, "seconds": seconds,
            "frames_per_second": len(written) / seconds if seconds > 0 else float("nan"),
            "process": [index, count]}
