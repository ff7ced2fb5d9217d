"""Training input on tf.data: stateless, resumable, per process.

The sample in slot `j` of the global batch of step `s` is a pure function of `(seed, s, j)`
(and the ClipSet): `sample_choice` draws, with `tf.random.stateless_*` ops keyed by
`fold_in(fold_in(seed, s), j)`,

- the clip: a frame drawn uniformly over all frames of all clips, i.e. clips weighted by
  their length, like BasicSR's key list of `clip/frame` entries;
- the interval: uniform over `interval_list`;
- the centre frame: uniform over the centres whose window of `num_frame` frames at that
  interval stays inside the clip (BasicSR redraws until it fits: the same distribution);
  clips with a fixed `center` (Vimeo-90K im4) always use it, with interval 1;
- reverse (p=0.5 if `random_reverse`), the crop position (as two fractions in [0, 1),
  turned into a uniform integer origin by `crop_origin` once the frame size is known),
  hflip, vflip and transpose (p=0.5 each if `use_hflip` / `use_rot`).

`apply_choice` then crops an LQ patch of `gt_size // scale` at (top, left) and the GT patch
of `gt_size` at (scale*top, scale*left), and flips/transposes both identically, in
BasicSR's order (hflip = reverse columns, vflip = reverse rows, then swap H and W).

`make_train_dataset` maps `tf.data.Dataset.range` over per-process sample indices through
that function, reads and decodes in parallel (deterministic order) and batches, so starting
at `start_step` gives exactly the batches an uninterrupted run sees from that step, and
process `p` of `P` builds only slots `[p*b, (p+1)*b)` with `b = global_batch_size // P`.

Errors: configuration mistakes, and the first LQ/GT frame headers of up to `validate_clips`
clips, are checked when the dataset is made (DatasetError). Problems met later while reading
(a frame of another size inside a clip, a GT frame that is not scale x LQ, an empty or
non-PNG `.png` file, a PNG damaged after its header) stop the tf.data iterator with a
`tf.errors.OpError`, whose message may not name the file (TensorFlow's PNG decoder does not).
`edvr_jax.data.batches.iterate_batches` turns that into a DatasetError naming the frame;
`python -m edvr_jax.data check --decode` finds every such frame up front.
Grayscale frames are replicated to RGB and an alpha channel is dropped (as everywhere in
`edvr_jax.data`); the header check logs a warning when it meets such a frame.

Differences from BasicSR, on purpose: samples are drawn i.i.d. (BasicSR permutes its key
list each epoch, enlarged 200x), and Vimeo-90K `random_reverse` reverses per sample (BasicSR
reverses its shared neighbour list in place, which persists across samples).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from edvr_jax.data.clips import (
    ClipSet,
    DatasetError,
    frame_header,
    gt_scale_problem,
    hide_accelerators_from_tf,
    parallel_map,
    patch_problem,
)

log = logging.getLogger("edvr_jax.data")


def _key(seed, step, slot) -> tf.Tensor:
    base = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    key = tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64))
    return tf.random.experimental.stateless_fold_in(key, tf.cast(slot, tf.int64))


def sample_choice(seed, step, slot, clip_frames, clip_centers=None, *, num_frame: int,
                  interval_list: Sequence[int] = (1,), random_reverse: bool = False,
                  use_hflip: bool = True, use_rot: bool = True) -> dict[str, tf.Tensor]:
    """Every random decision for one training sample, a pure function of its arguments.

    Args:
      seed, step, slot: ints (or int tensors): run seed, global step, slot in the global batch.
      clip_frames: (num_clips,) frame count of each clip.
      clip_centers: (num_clips,) fixed centre frame per clip, -1 where free; None = all free.
      num_frame: odd window length T. Other args as in `make_train_dataset`.

    Returns a dict of tensors: clip, interval, center (int64 scalars), frames (int64 (T,),
    the LQ frame indices in input order), reverse, hflip, vflip, transpose (bool scalars) and
    crop (float64 (2,), fractions in [0, 1) for top and left; see `crop_origin`).
    """
    clip_frames = tf.cast(tf.reshape(clip_frames, [-1]), tf.int64)
    if clip_centers is None:
        clip_centers = -tf.ones_like(clip_frames)
    clip_centers = tf.cast(tf.reshape(clip_centers, [-1]), tf.int64)
    intervals = tf.constant(list(interval_list), tf.int64)
    half = num_frame // 2
    keys = tf.random.experimental.stateless_split(_key(seed, step, slot), num=8)

    def uniform_int(k, lo, hi):  # uniform in [lo, hi)
        return tf.random.stateless_uniform([], seed=keys[k], minval=lo, maxval=hi,
                                           dtype=tf.int64)

    def coin(k, enabled):
        return tf.logical_and(tf.constant(bool(enabled)),
                              tf.random.stateless_uniform([], seed=keys[k]) < 0.5)

    cum = tf.cumsum(clip_frames)
    frame = uniform_int(0, tf.constant(0, tf.int64), cum[-1])
    clip = tf.searchsorted(cum, tf.reshape(frame, [1]), side="right", out_type=tf.int64)[0]
    n = clip_frames[clip]
    fixed = clip_centers[clip]
    interval = tf.where(fixed >= 0, tf.constant(1, tf.int64),
                        tf.gather(intervals, uniform_int(1, 0, len(interval_list))))
    reach = half * interval
    free_center = uniform_int(2, reach, tf.maximum(n - reach, reach + 1))
    center = tf.where(fixed >= 0, fixed, free_center)
    reverse = coin(3, random_reverse)
    offsets = tf.range(-half, half + 1, dtype=tf.int64) * interval
    frames = center + tf.where(reverse, -offsets, offsets)
    crop = tf.random.stateless_uniform([2], seed=keys[4], dtype=tf.float64)
    return {"clip": clip, "interval": interval, "center": center, "frames": frames,
            "reverse": reverse, "crop": crop, "hflip": coin(5, use_hflip),
            "vflip": coin(6, use_rot), "transpose": coin(7, use_rot)}


def crop_origin(crop, lq_h, lq_w, lq_patch: int) -> tf.Tensor:
    """LQ crop origin (top, left), int64 (2,), uniform over [0, lq_h - p] x [0, lq_w - p]."""
    room = tf.cast(tf.stack([lq_h, lq_w]), tf.int64) - lq_patch + 1
    pos = tf.cast(tf.floor(tf.cast(crop, tf.float64) * tf.cast(room, tf.float64)), tf.int64)
    return tf.minimum(pos, room - 1)


def apply_choice(lq: tf.Tensor, gt: tf.Tensor, choice: dict, *, gt_size: int, scale: int
                 ) -> tuple[tf.Tensor, tf.Tensor]:
    """Aligned crop + flips: lq (T, h, w, C), gt (H, W, C) -> (T, p, p, C), (gt_size, gt_size, C).

    p = gt_size // scale; H, W must be scale*h, scale*w (checked by the caller).
    """
    p = gt_size // scale
    shape = tf.shape(lq, out_type=tf.int64)
    top, left = tf.unstack(crop_origin(choice["crop"], shape[1], shape[2], p))
    lq = lq[:, top:top + p, left:left + p]
    gt = gt[top * scale:top * scale + gt_size, left * scale:left * scale + gt_size]
    lq = tf.cond(choice["hflip"], lambda: tf.reverse(lq, [2]), lambda: lq)
    gt = tf.cond(choice["hflip"], lambda: tf.reverse(gt, [1]), lambda: gt)
    lq = tf.cond(choice["vflip"], lambda: tf.reverse(lq, [1]), lambda: lq)
    gt = tf.cond(choice["vflip"], lambda: tf.reverse(gt, [0]), lambda: gt)
    lq = tf.cond(choice["transpose"], lambda: tf.transpose(lq, [0, 2, 1, 3]), lambda: lq)
    gt = tf.cond(choice["transpose"], lambda: tf.transpose(gt, [1, 0, 2]), lambda: gt)
    return lq, gt


def _decode(data: tf.Tensor, ref: tf.Tensor) -> tf.Tensor:
    """Encoded frame -> uint8 (H, W, 3); empty or non-image data fails naming the frame."""
    is_png = tf.strings.regex_full_match(tf.strings.lower(ref), r".*\.png")
    sig = tf.strings.substr(data, 0, 8)
    ok = tf.logical_and(tf.strings.length(data) > 0,
                        tf.logical_or(tf.logical_not(is_png), tf.equal(sig, b"\x89PNG\r\n\x1a\n")))
    check = tf.debugging.Assert(ok, ["edvr_jax.data: frame is empty or not a PNG file "
                                     "(run `python -m edvr_jax.data check`):", ref])
    with tf.control_dependencies([check]):
        return tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)


def _validate_first_frames(clips: ClipSet, lq_patch: int, max_clips: int) -> None:
    """Header check of the first LQ and GT frame of up to `max_clips` clips (evenly spread)."""
    if max_clips <= 0:
        return
    idx = np.unique(np.linspace(0, len(clips) - 1, min(max_clips, len(clips))).astype(int))
    picked = [clips.clips[i] for i in idx]

    def one(c):
        lh, lw, lmode = frame_header(c.lq_paths[0], c.source)
        gh, gw, gmode = frame_header(c.gt_paths[0], c.source)
        for ref, mode in ((c.lq_paths[0], lmode), (c.gt_paths[0], gmode)):
            if mode in ("L", "LA", "I", "I;16", "1") or "A" in mode:
                conversion = ("grayscale: replicated to RGB" if mode[0] in "LI1"
                              else "the alpha channel is dropped")
                log.warning("frame %s is %s (%s); frames are read as RGB", ref, mode, conversion)
        problem = (gt_scale_problem(c.gt_paths[0], (gh, gw), c.lq_paths[0], (lh, lw), clips.scale)
                   or patch_problem(c.lq_paths[0], (lh, lw), lq_patch))
        if problem:
            raise DatasetError(f"{clips.dataset} clip {c.name}: {problem}")

    parallel_map(one, picked)


def make_train_dataset(clips: ClipSet, *, num_frame: int, gt_size: int, scale: int | None = None,
                       interval_list: Sequence[int] = (1,), random_reverse: bool = False,
                       use_hflip: bool = True, use_rot: bool = True, seed: int,
                       start_step: int = 0, num_steps: int | None = None,
                       global_batch_size: int, process_index: int | None = None,
                       process_count: int | None = None, with_info: bool = False,
                       validate_clips: int = 64) -> tf.data.Dataset:
    """Per-process training batches, a pure function of (seed, step, slot).

    Args:
      clips: the training ClipSet (any reader).
      num_frame: odd number of input frames T. gt_size: GT patch side, divisible by scale.
      scale: defaults to clips.scale (must agree). interval_list, random_reverse, use_hflip,
        use_rot: BasicSR's options of the same names.
      seed: run seed. start_step: first global step produced. num_steps: how many steps
        (None: endless).
      global_batch_size: batch over all processes; must be divisible by process_count.
      process_index, process_count: default `jax.process_index()`, `jax.process_count()`.
      with_info: also yield 'clip' (int64), 'frames' (int64 (T,)), 'origin' (int64 (2,), LQ
        crop top/left) and 'flips' (bool (3,): hflip, vflip, transpose) per sample.
      validate_clips: header-check the first frames of this many clips up front (0: skip).

    Yields dicts of per-process batches, b = global_batch_size // process_count:
      'lq' float32 (b, T, gt_size//scale, gt_size//scale, 3) in [0, 1], RGB;
      'gt' float32 (b, gt_size, gt_size, 3); 'step' int64 (b,) the global step.
    """
    hide_accelerators_from_tf()
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    scale = clips.scale if scale is None else int(scale)
    if scale != clips.scale:
        raise DatasetError(f"scale={scale} but the {clips.dataset} ClipSet has scale "
                           f"{clips.scale}")
    if num_frame < 1 or num_frame % 2 == 0:
        raise DatasetError(f"num_frame must be a positive odd number, got {num_frame}")
    if gt_size % scale:
        raise DatasetError(f"gt_size {gt_size} is not divisible by scale {scale}")
    if not interval_list or min(interval_list) < 1:
        raise DatasetError(f"interval_list must hold positive ints, got {interval_list}")
    if global_batch_size % process_count:
        raise DatasetError(f"global_batch_size {global_batch_size} is not divisible by "
                           f"process_count {process_count}")
    if not 0 <= process_index < process_count:
        raise DatasetError(f"process_index {process_index} outside 0..{process_count - 1}")
    if len(clips) == 0:
        raise DatasetError(f"{clips.dataset}: the ClipSet has no clips")
    clips.require_frames(num_frame)
    span = (num_frame - 1) * max(interval_list) + 1
    for c in clips:
        if c.center is None and c.num_frames < span:
            raise DatasetError(f"{clips.dataset} clip {c.name}: {c.num_frames} frames, fewer than "
                               f"the {span} a window of {num_frame} at interval "
                               f"{max(interval_list)} spans")
    sources = {id(c.source) for c in clips}
    if len(sources) != 1:
        raise DatasetError("all clips of a ClipSet must come from the same frame source")
    source = clips.clips[0].source
    _validate_first_frames(clips, gt_size // scale, validate_clips)

    b = global_batch_size // process_count
    clip_frames = tf.constant([c.num_frames for c in clips], tf.int64)
    clip_centers = tf.constant([-1 if c.center is None else c.center for c in clips], tf.int64)
    starts = tf.constant(np.cumsum([0] + [c.num_frames for c in clips])[:-1], tf.int64)
    lq_table = tf.constant([p for c in clips for p in c.lq_paths])
    gt_table = tf.constant([p for c in clips for p in c.gt_paths])
    names = tf.constant(list(clips.names))
    opts = dict(num_frame=num_frame, interval_list=tuple(interval_list),
                random_reverse=random_reverse, use_hflip=use_hflip, use_rot=use_rot)

    def read(refs):
        if source is None:
            return tf.stack([tf.io.read_file(refs[i]) for i in range(num_frame + 1)])
        return source.tf_read(refs)

    def load(index):
        step = index // b
        slot = process_index * b + index % b
        ch = sample_choice(seed, step, slot, clip_frames, clip_centers, **opts)
        base = starts[ch["clip"]]
        refs = tf.concat([tf.gather(lq_table, base + ch["frames"]),
                          tf.gather(gt_table, base + ch["center"])[None]], 0)
        data = read(refs)
        imgs = [_decode(data[i], refs[i]) for i in range(num_frame + 1)]
        lq_hw = tf.shape(imgs[0], out_type=tf.int64)[0:2]
        same = [tf.debugging.Assert(
            tf.reduce_all(tf.equal(tf.shape(imgs[i], out_type=tf.int64)[0:2], lq_hw)),
            ["edvr_jax.data: frame", refs[i], "size", tf.shape(imgs[i])[0:2], "differs from",
             refs[0], "size", lq_hw, "(frames of one clip must share a size)"])
            for i in range(1, num_frame)]
        with tf.control_dependencies(same):
            lq, gt = tf.stack(imgs[:-1]), imgs[-1]
        gt_hw = tf.shape(gt, out_type=tf.int64)[0:2]
        ok = tf.reduce_all(tf.equal(gt_hw, lq_hw * scale))
        big = tf.reduce_all(lq_hw >= gt_size // scale)
        checks = [tf.debugging.Assert(ok, ["edvr_jax.data: GT frame", refs[-1], "size", gt_hw,
                                           "is not", scale, "x LQ size", lq_hw, "of", refs[0]]),
                  tf.debugging.Assert(big, ["edvr_jax.data: LQ frames of clip",
                                            names[ch["clip"]], "are", lq_hw,
                                            "smaller than the LQ patch", gt_size // scale])]
        with tf.control_dependencies(checks):
            lq_p, gt_p = apply_choice(lq, gt, ch, gt_size=gt_size, scale=scale)
        p = gt_size // scale
        out = {"lq": tf.ensure_shape(tf.cast(lq_p, tf.float32) / 255.0, [num_frame, p, p, 3]),
               "gt": tf.ensure_shape(tf.cast(gt_p, tf.float32) / 255.0, [gt_size, gt_size, 3]),
               "step": step}
        if with_info:
            out.update(clip=ch["clip"], frames=ch["frames"],
                       origin=crop_origin(ch["crop"], lq_hw[0], lq_hw[1], p),
                       flips=tf.stack([ch["hflip"], ch["vflip"], ch["transpose"]]))
        return out

    first = int(start_step) * b
    last = (int(start_step) + int(num_steps)) * b if num_steps is not None else 2**62
    ds = tf.data.Dataset.range(first, last)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(b, drop_remainder=True, num_parallel_calls=tf.data.AUTOTUNE,
                  deterministic=True)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options)

