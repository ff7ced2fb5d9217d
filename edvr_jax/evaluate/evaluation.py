"""Jitted evaluation of an EDVR on a ClipSet with BasicSR's video test protocol.

Protocol (BasicSR ``VideoTestDataset`` + ``VideoBaseModel.dist_validation``):

* every frame of every clip is a target (border frames included); a clip with a fixed
  ``center`` (Vimeo-90K-T) has only that frame (im4) as target;
* the input of target ``c`` is the window ``generate_frame_indices(c, N, num_frame,
  padding)`` of LQ frames (float32 ``uint8 / 255``, RGB);
* the output is clamped, scaled to 255 and rounded to uint8 (``tensor2img``) and scored
  against the uint8 GT frame: PSNR and SSIM (``edvr_jax.evaluate.metrics``, float32
  within 1e-5 dB / 5e-7 of BasicSR's float64), on RGB and/or BT.601 Y, after removing
  ``crop_border`` pixels;
* per-frame values are averaged per clip, then the clip means are averaged;
* an output frame with NaN/inf (a diverged model) stops the evaluation with an
  :class:`EvaluationError` naming its clip and frame instead of being scored as black.

Beyond BasicSR: frames of any size are padded (bottom/right reflection) to the model's
``size_multiple`` and the output cropped back, where BasicSR asserts; a two-stage model
(``TwoStageEDVR``) runs stage 1 over the frames its stage-2 windows need, rounds those
outputs to uint8 (the 2019 pipeline read them back from PNG files) and runs stage 2 with
the same temporal padding.

Execution: windows of one frame size go through the model in batches of a fixed size
(the last batch padded), so there is one compilation per frame size (kept for the
process: calling again, e.g. for periodic validation, does not recompile); with several
devices the batch is sharded over a 1-D ``'data'`` mesh of the process's devices (in a
multi-process run each process evaluates the whole set on its own devices). Frames are
read on a background thread, a batch ahead; the LQ frames of a clip are held only as
long as some window needs them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from edvr_jax.errors import UserError
from edvr_jax.evaluate.frame_index import generate_frame_indices
from edvr_jax.evaluate.inference import NonFiniteOutput, Restorer, nonfinite_message
from edvr_jax.evaluate.metrics import psnr_batch, ssim_batch, tensor_to_uint8
from edvr_jax.evaluate.stream import chain_stages, make_stages
from edvr_jax.frames import gt_scale_problem, same_size_problem
from edvr_jax.models import OFFSET_WARNING_THRESHOLD, warn_large_offsets

if TYPE_CHECKING:  # the readers import TensorFlow: only when frames are read
    from edvr_jax.data import Clip, ClipSet

__all__ = ["EvaluationError", "clip_windows", "evaluate_clipset", "frame_name", "metric_names"]

log = logging.getLogger(__name__)


class EvaluationError(UserError, ValueError):
    """A user-facing problem (data that does not fit the model, ...); the message says which."""


def metric_names(test_y_channel: bool, report_rgb_and_y: bool = True) -> tuple[str, ...]:
    """Result keys: ``psnr``/``ssim`` are RGB, ``psnr_y``/``ssim_y`` BT.601 Y."""
    names = ()
    if not test_y_channel or report_rgb_and_y:
        names += ("psnr", "ssim")
    if test_y_channel:
        names += ("psnr_y", "ssim_y")
    return names


@partial(jax.jit, static_argnames=("crop_border", "names"))
def _score(out, gt, *, crop_border: int, names: tuple[str, ...]):
    fns = {"psnr": psnr_batch, "ssim": ssim_batch}
    return {n: fns[n.split("_")[0]](out, gt, crop_border=crop_border,
                                    test_y_channel=n.endswith("_y")) for n in names}


@dataclasses.dataclass
class _Item:
    clip: str
    index: int
    window: np.ndarray  # (T, h, w, 3) float32
    gt_path: str
    source: Any
    name: str  # output file stem


def _read_one(path: str, source: Any, notes: set[str] | None = None) -> np.ndarray:
    from edvr_jax.data import read_frames

    return read_frames([path], source, notes=notes)[0]


def _prefetched(fn, args: list, pool: ThreadPoolExecutor, ahead: int = 4) -> Iterator[Any]:
    """``fn(*a) for a in args`` computed on ``pool``, at most ``ahead`` in flight, in order."""
    futures = []
    for a in args:
        futures.append(pool.submit(fn, *a) if a is not None else None)
        if len(futures) > ahead:
            f = futures.pop(0)
            yield f.result() if f is not None else None
    for f in futures:
        yield f.result() if f is not None else None


def frame_name(path) -> str:
    """The file stem of a frame: its name in messages and in saved outputs."""
    return os.path.splitext(os.path.basename(str(path)))[0]


def _targets(clip: Clip) -> list[int]:
    return [clip.center] if clip.center is not None else list(range(clip.num_frames))


def _needed(targets: list[int], n: int, num_frame: int, padding: str, clip: str) -> list[int]:
    try:
        return sorted({i for c in targets
                       for i in generate_frame_indices(c, n, num_frame, padding)})
    except ValueError as e:
        raise EvaluationError(f"clip {clip}: {e}") from None


def clip_windows(clip: Clip, stages: list[Restorer], padding: str, pool: ThreadPoolExecutor,
                 notes: set[str] | None = None, targets: list[int] | None = None
                 ) -> Iterator[tuple[int, np.ndarray]]:
    """(target, window) for the last stage, in target order; earlier stages run here.

    ``targets``: the frame indices to restore (default: the protocol's, ``_targets``).
    Only the LQ frames some window needs are read (on ``pool``); an earlier stage's NaN/inf
    output raises :class:`EvaluationError` naming the clip and frame."""
    n = clip.num_frames
    targets = [_targets(clip) if targets is None else sorted(targets)]
    for r in reversed(stages[1:]):  # frames each earlier stage must produce
        targets.insert(0, _needed(targets[0], n, r.model.num_frame, padding, clip.name))
    lq_needed = set(_needed(targets[0], n, stages[0].model.num_frame, padding, clip.name))
    frames = _prefetched(_read_one, [(p, clip.source, notes) if i in lq_needed else None
                                     for i, p in enumerate(clip.lq_paths)], pool)

    def checked(stream):  # the frame rules: one size within a clip
        first = None
        for i, frame in enumerate(stream):
            if frame is not None:
                first = first or (clip.lq_paths[i], frame.shape)
                if problem := same_size_problem(clip.lq_paths[i], frame.shape, *first):
                    raise EvaluationError(f"clip {clip.name}: {problem}")
            yield frame

    windows = chain_stages(checked(frames), stages, [padding] * len(stages), total=n, targets=targets)
    try:
        yield from windows
    except NonFiniteOutput as e:  # an earlier stage's output
        frame = frame_name(clip.lq_paths[e.index])
        raise EvaluationError(f"stage {e.stage + 1}: " + nonfinite_message(clip.name, frame)) from None


def _batches(clipset: ClipSet, stages: list[Restorer], padding: str, stop: threading.Event,
             notes: set[str] | None = None) -> Iterator[tuple[np.ndarray, list[_Item]]]:
    """Lists of items of one window shape, at most ``batch_size`` long, in clip order."""
    size = stages[-1].batch_size
    with ThreadPoolExecutor(max_workers=8) as pool:
        cur: list[_Item] = []
        for clip in clipset.clips:
            for c, window in clip_windows(clip, stages, padding, pool, notes):
                if stop.is_set():
                    return
                if cur and (len(cur) == size or window.shape != cur[0].window.shape):
                    yield cur
                    cur = []
                cur.append(_Item(clip.name, c, window, clip.gt_paths[c], clip.source,
                                 frame_name(clip.lq_paths[c])))
        if cur:
            yield cur


def _producer(clipset, stages, padding, scale, out_queue, stop, notes=None):
    """Background thread: complete batches (lq, gt uint8, items), then None; or the exception."""

    def put(item) -> None:
        while not stop.is_set():
            try:
                out_queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            for items in _batches(clipset, stages, padding, stop, notes):
                gts = list(pool.map(lambda it: _read_one(it.gt_path, it.source, notes), items))
                t, h, w, _ = items[0].window.shape
                for it, g in zip(items, gts, strict=True):
                    if gt_scale_problem(it.gt_path, g.shape, "", (h, w), scale):
                        raise EvaluationError(  # the same rule, said in the model's terms
                            f"GT frame {it.gt_path} is {g.shape[0]}x{g.shape[1]}, but the x{scale} "
                            f"model restores its {h}x{w} LQ frames to {scale * h}x{scale * w}")
                lq = np.stack([it.window for it in items])
                gt = tensor_to_uint8(np.stack(gts))  # exact: the frames are uint8 / 255
                put((lq, gt, items))
    except BaseException as e:  # noqa: BLE001 - handed to the consumer
        put(e)
    put(None)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def evaluate_clipset(model, variables, clipset: ClipSet, *, padding: str,
                     test_y_channel: bool = False, crop_border: int = 0, batch_size: int = 4,
                     mesh: Any = "auto", save_dir: str | None = None, progress: bool = True,
                     report_rgb_and_y: bool = True, ensemble: str = "none",
                     stage1_input: bool = False) -> dict[str, Any]:
    """Scores ``model`` on every target frame of ``clipset`` (see the module docstring).

    Args:
      model, variables: an ``EDVR`` or ``TwoStageEDVR`` and its variables.
      clipset: from ``edvr_jax.data.get_clipset``; its scale must be the model's.
      padding: temporal border padding (``generate_frame_indices`` mode), for every stage.
      test_y_channel: score BT.601 Y (``psnr_y``/``ssim_y``); ``report_rgb_and_y`` keeps
        the RGB numbers (``psnr``/``ssim``) as well.
      crop_border: pixels removed from every edge before scoring.
      batch_size: windows per device call (rounded up to a multiple of the device count).
      mesh: ``"auto"`` shards over all local devices when there are several; ``None``
        runs on the default device; or a 1-D ``('data',)`` Mesh.
      save_dir: if set, restored frames are written as ``save_dir/<clip>/<frame>.png``.
      progress: show a tqdm bar (frames/s, ETA).
      ensemble: test-time self-ensemble of every stage, ``"none"``, ``"flip4"`` or ``"x8"``
        (``edvr_jax.evaluate.ensemble``).
      stage1_input: the clip's LQ frames are stage-1 outputs (a stage-2 model on
        ``edvr-data stage1`` frames): score them too. A ``TwoStageEDVR`` always scores its
        stage-1 frames. They are the centre frame of each last-stage window, already
        rounded to uint8; their scores are ``stage1_<metric>`` beside the final ones.

    Returns ``{"settings", "clips": {name: {metric: clip mean, "num_frames", "frames":
    [{"index", metric...}]}}, "mean": {metric: mean over clips}, "timing": {"frames",
    "seconds", "frames_per_second", "compilations" (distinct batch shapes run)},
    "offsets": {dcn: largest batch mean |offset|}, "warnings": [...], "notes": [...]}``;
    with stage-1 scores, every metric dict also has ``stage1_psnr``, ... side by side.
    (notes: conversions applied while reading, e.g. grayscale frames replicated to RGB).
    PSNR is ``inf`` for a frame equal to its GT.
    """
    if clipset.scale != model.scale:
        raise EvaluationError(
            f"the model restores x{model.scale} ({'hr_in, ' if model.scale == 1 else ''}"
            f"output {model.scale}x the input size) but {clipset.dataset} "
            f"{clipset.task or ''} data is x{clipset.scale} (GT {clipset.scale}x the LQ size)")
    if not clipset.clips:
        raise EvaluationError(f"{clipset.dataset}: no clips to evaluate under {clipset.root}")
    stages = make_stages(model, variables, batch_size=batch_size, mesh=mesh, ensemble=ensemble)
    for clip in clipset.clips:  # a clip too short for the padding, before anything compiles
        targets = _targets(clip)
        for r in reversed(stages):
            targets = _needed(targets, clip.num_frames, r.model.num_frame, padding, clip.name)
    final = stages[-1]
    names = metric_names(test_y_channel, report_rgb_and_y)
    stage1 = len(stages) > 1 or stage1_input
    if stage1 and final.model.scale != 1:
        raise EvaluationError("stage-1 scores need a last stage that works at output "
                              "resolution (hr_in); this model upsamples x"
                              f"{final.model.scale}")
    keys = names + tuple(f"stage1_{n}" for n in names) if stage1 else names
    per_frame: dict[str, list[dict[str, float]]] = {c.name: [] for c in clipset.clips}
    clip_offsets: dict[str, dict[str, float]] = {}
    total = sum(len(_targets(c)) for c in clipset.clips)

    from tqdm.auto import tqdm

    # "compiling" until the first batch is scored; the rate and ETA then restart from it.
    bar = tqdm(total=total, unit="frame", disable=not progress, dynamic_ncols=True,
               desc=f"{clipset.dataset} (compiling)")
    stop, q = threading.Event(), queue.Queue(maxsize=2)
    notes: set[str] = set()  # frame conversions met while reading (grayscale, alpha)
    thread = threading.Thread(target=_producer, daemon=True, name="edvr_jax-eval-reader",
                              args=(clipset, stages, padding, final.model.scale, q, stop, notes))
    start = time.perf_counter()
    thread.start()
    pool = ThreadPoolExecutor(max_workers=4) if save_dir else None

    def finish(pending):
        out, stats, finite, scores, first, items = pending
        try:  # a diverged model is refused, not scored as black frames
            final.check_finite(finite, len(items))
        except NonFiniteOutput as e:
            it = items[e.index]
            prefix = f"stage {len(stages)}: " if len(stages) > 1 else ""
            raise EvaluationError(prefix + nonfinite_message(it.clip, it.name)) from None
        scores = jax.device_get(scores)
        if first is not None:
            scores.update({f"stage1_{n}": v for n, v in jax.device_get(first).items()})
        stats = {k: float(v) for k, v in jax.device_get(stats).items()}
        final.record(stats)
        if save_dir:
            out = np.asarray(out)
        for j, it in enumerate(items):
            per_frame[it.clip].append({"index": it.index,
                                       **{n: float(scores[n][j]) for n in keys}})
            mx = clip_offsets.setdefault(it.clip, {})
            for k, v in stats.items():
                mx[k] = max(mx.get(k, v), v)
            if save_dir:
                path = os.path.join(save_dir, *it.clip.split("/"), it.name + ".png")
                pool.submit(_save_png, path, out[j])
        bar.set_postfix_str(f"clip {items[-1].clip}", refresh=False)
        if bar.n == 0:
            bar.set_description(clipset.dataset, refresh=False)
            bar.reset(total=total)
        bar.update(len(items))

    pending = None
    try:
        while (got := q.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            lq, gt, items = got
            out, stats, finite = final.apply_batch(final.pad_batch(lq))
            gt_dev = final.put(final.pad_batch(gt))
            scores = _score(out, gt_dev, crop_border=crop_border, names=names)
            first = None
            if stage1:  # the window's centre: the stage-1 frame stage 2 refines (exact uint8)
                centre = tensor_to_uint8(lq[:, final.model.center])
                first = _score(final.put(final.pad_batch(centre)), gt_dev,
                               crop_border=crop_border, names=names)
            if pending is not None:  # fetch the previous batch while this one runs
                finish(pending)
            pending = (out, stats, finite, scores, first, items)
        if pending is not None:
            finish(pending)
    finally:
        stop.set()
        # The reader may be inside JAX or an image decoder; left running into interpreter
        # exit (after Ctrl-C or an error) it would be torn down there and abort the process.
        # It stops within one frame read or stage-1 batch of ``stop``.
        thread.join()
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True)
    seconds = time.perf_counter() - start

    warnings = []
    prefix = "stage2/" if len(stages) > 1 else ""
    for clip, stats in clip_offsets.items():
        warnings += warn_large_offsets({f"clip {clip}, {prefix}{k}": v for k, v in stats.items()},
                                       OFFSET_WARNING_THRESHOLD)
    offsets = {prefix + k: v for k, v in final.offsets.items()}
    if len(stages) > 1:
        first = {f"stage1/{k}": v for k, v in stages[0].offsets.items()}
        warnings += warn_large_offsets(first, OFFSET_WARNING_THRESHOLD)
        offsets = {**first, **offsets}
    clips = {}
    for clip, frames in per_frame.items():
        frames.sort(key=lambda f: f["index"])
        clips[clip] = {**{n: _mean([f[n] for f in frames]) for n in keys},
                       "num_frames": len(frames), "frames": frames}
    return {
        "settings": {"padding": padding, "test_y_channel": test_y_channel,
                     "crop_border": crop_border, "metrics": list(names),
                     "batch_size": final.batch_size, "ensemble": ensemble,
                     "devices": 1 if final.mesh is None else int(final.mesh.devices.size),
                     "num_frame": [s.model.num_frame for s in stages]},
        "clips": clips,
        "mean": {n: _mean([c[n] for c in clips.values()]) for n in keys},
        "timing": {"frames": total, "seconds": seconds,
                   "frames_per_second": total / seconds if seconds > 0 else float("nan"),
                   "compilations": sum(len(s.shapes) for s in stages)},
        "offsets": offsets,
        "warnings": warnings,
        "notes": sorted(notes),
    }


def _save_png(path: str, img: np.ndarray) -> None:
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path)
