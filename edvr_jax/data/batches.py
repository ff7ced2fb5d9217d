"""Training batches as numpy arrays, with errors that name the frame.

`make_train_dataset` checks the configuration and the first frame headers up front, but a
frame met later (a PNG damaged after its header, a frame of another size inside a clip, a
GT frame that is not scale x LQ, a file that vanished) stops the tf.data iterator with a
`tf.errors.OpError` whose message may not name the file: TensorFlow's PNG decoder does not.
`iterate_batches` turns such a failure into a one-line DatasetError naming the frame. The
samples of the failing step are a pure function of (seed, step, slot), so they are drawn
again with `sample_choice` and their frames read and checked in Python.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from edvr_jax.data.clips import (
    ClipSet,
    DatasetError,
    decode_frame,
    gt_scale_problem,
    patch_problem,
    read_bytes,
    same_size_problem,
)
from edvr_jax.data.pipeline import make_train_dataset, sample_choice


def iterate_batches(clips: ClipSet, **kwargs) -> Iterator[dict[str, np.ndarray]]:
    """`make_train_dataset(clips, **kwargs)` as numpy batches, with errors that name the frame.

    A frame met while iterating that cannot be read or decoded, or whose size does not fit,
    raises DatasetError naming it (see the module docstring); anything else TensorFlow
    reports is raised as DatasetError with its message cleaned to one line.
    """
    args = inspect.signature(make_train_dataset).bind(clips, **kwargs)
    args.apply_defaults()
    opts = dict(args.arguments)
    if opts["process_index"] is None or opts["process_count"] is None:
        import jax

        opts["process_index"] = jax.process_index() if opts["process_index"] is None \
            else opts["process_index"]
        opts["process_count"] = jax.process_count() if opts["process_count"] is None \
            else opts["process_count"]
    return _numpy_batches(make_train_dataset(**opts), opts)  # the dataset is checked now


def _numpy_batches(ds: tf.data.Dataset, opts: dict) -> Iterator[dict[str, np.ndarray]]:
    it = ds.as_numpy_iterator()
    step = int(opts["start_step"])
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except tf.errors.OpError as e:
            raise DatasetError(explain_failed_step(step, e, opts)) from None
        yield batch
        step += 1


def explain_failed_step(step: int, error: Exception, opts: dict) -> str:
    """One line naming the frame that made step `step` (0-based) fail, found by re-reading
    the frames of that step's samples (and of the next one, which tf.data may be reading)."""
    clips, scale, gt_size = opts["clips"], opts["clips"].scale, opts["gt_size"]
    b = opts["global_batch_size"] // opts["process_count"]
    frames = tf.constant([c.num_frames for c in clips], tf.int64)
    centers = tf.constant([-1 if c.center is None else c.center for c in clips], tf.int64)
    choice = {k: opts[k] for k in ("num_frame", "interval_list", "random_reverse", "use_hflip",
                                   "use_rot")}
    decoded: dict[str, np.ndarray] = {}

    def read(ref, source):
        if ref not in decoded:
            decoded[ref] = decode_frame(read_bytes(ref, source), ref)
        return decoded[ref]

    for s in (step, step + 1):
        for slot in range(opts["process_index"] * b, (opts["process_index"] + 1) * b):
            ch = sample_choice(opts["seed"], s, slot, frames, centers, **choice)
            clip = clips.clips[int(ch["clip"])]
            lq_refs = [clip.lq_paths[int(i)] for i in ch["frames"].numpy()]
            gt_ref = clip.gt_paths[int(ch["center"])]
            try:
                lq = [read(r, clip.source) for r in lq_refs]
                gt = read(gt_ref, clip.source)
            except DatasetError as e:
                return f"training step {s + 1}: {e}"
            problem = next((m for ref, img in zip(lq_refs, lq, strict=True)
                            if (m := same_size_problem(ref, img.shape, lq_refs[0], lq[0].shape))),
                           None)
            problem = (problem or gt_scale_problem(gt_ref, gt.shape, lq_refs[0], lq[0].shape, scale)
                       or patch_problem(lq_refs[0], lq[0].shape, gt_size // scale))
            if problem:
                return f"training step {s + 1}: {problem}"
    return f"training input failed at step {step + 1}: {_tf_message(error)}"


def _tf_message(error: Exception) -> str:
    text = getattr(error, "message", None) or str(error)
    asserted = re.findall(r"\[([^\[\]]*)\]", text.split("assertion failed:", 1)[1]) \
        if "assertion failed:" in text else None
    if asserted:
        return " ".join(a.strip() for a in asserted if not a.startswith("{{"))
    text = re.sub(r"\{\{.*?\}\}|\[\[.*?\]\]|\[Op:\w+\]", "", text, flags=re.S)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(error).__name__
