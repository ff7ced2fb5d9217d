"""The restoration tasks and the dataset names the tools accept: one source for each.

Imports nothing: the tools build their argument parsers from it before TensorFlow or JAX.

* ``TASKS``: REDS's four tracks, task -> ``RedsTask(lq, gt, scale)`` (REDS folder kinds).
* ``TRAIN_DATASETS``: the readers behind ``edvr_jax.data.get_clipset`` (training,
  ``edvr-data``, validation).
* ``EVAL_DATASETS``: the published test protocols of ``eval.py``
  (``edvr_jax.evaluate.protocols``).
* ``ENSEMBLE_NAMES``: the test-time self-ensembles (``edvr_jax.evaluate.ensemble``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["BLUR_TASKS", "ENSEMBLE_NAMES", "EVAL_DATASETS", "TASKS", "TRAIN_DATASETS", "RedsTask"]


class RedsTask(NamedTuple):
    lq: str  # REDS folder kind of the low-quality frames (train_<lq>/, val_<lq>/)
    gt: str  # folder kind of the ground truth
    scale: int  # GT size / LQ size


TASKS: dict[str, RedsTask] = {
    "sr": RedsTask("sharp_bicubic", "sharp", 4),
    "srblur": RedsTask("blur_bicubic", "sharp", 4),
    "deblur": RedsTask("blur", "sharp", 1),
    "deblurcomp": RedsTask("blur_comp", "sharp", 1),
}
# Tasks whose input is blurred: their published models pad time with 'replicate'.
BLUR_TASKS = tuple(t for t, spec in TASKS.items() if spec.lq.startswith("blur"))

TRAIN_DATASETS = ("reds", "vimeo90k", "vid4", "folder", "demo", "tfds")
EVAL_DATASETS = ("reds4", "redsofficial4", "vid4", "vimeo90k_t", "folder")
ENSEMBLE_NAMES = ("none", "flip4", "x8")
