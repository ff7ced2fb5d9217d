"""The published EDVR test protocols (BasicSR's test configs and ModelZoo) as data.

| dataset         | clips                              | temporal padding          | scored on |
|-----------------|------------------------------------|---------------------------|-----------|
| `reds4`         | REDS 000, 011, 015, 020 (100 each) | sr: reflection_circle;    | RGB       |
|                 |                                    | blur tracks: replicate    |           |
| `redsofficial4` | REDS 240, 241, 246, 257            | as reds4                  | RGB       |
| `vid4`          | calendar, city, foliage, walk      | reflection_circle         | Y and RGB |
| `vimeo90k_t`    | the 7,824 test septuplets          | none (fixed window)       | Y and RGB |
| `folder`        | `root/GT/<clip>`, `root/LQ/<clip>` | replicate for blur tasks  | RGB       |
|                 |                                    | or models, else refl._c.  |           |

Every frame of every clip is scored (border frames included), except Vimeo-90K-T where
only the centre frame im4 of each septuplet is; no border pixels are cropped; no
self-ensemble. Metrics: PSNR/SSIM on uint8-rounded outputs, averaged per clip, then over
clips (see ``evaluation.py``). :func:`temporal_padding` decides the padding for eval.py,
edvr-restore and training-time validation alike.
"""

from __future__ import annotations

import dataclasses

from edvr_jax.tasks import BLUR_TASKS, EVAL_DATASETS
from edvr_jax.tasks import TASKS as REDS_TASKS

__all__ = ["EVAL_DATASETS", "PUBLISHED", "Protocol", "TASKS", "get_protocol", "temporal_padding"]

TASKS = tuple(REDS_TASKS)


def temporal_padding(model=None, task: str | None = None) -> str:
    """The temporal border padding of the published protocol: the one place that decides it.

    BasicSR's test configs (and the 2019 test script) use ``replicate`` for the blur tracks
    (SRblur, deblur, deblurcomp) and ``reflection_circle`` for plain SR. The track is told by
    ``task`` (a REDS task name) or by the model: a blur-track EDVR has the pre-deblurring
    module (``with_predeblur``; deblurring ones are also ``hr_in``). ``model`` may be an
    ``EDVR``, a ``TwoStageEDVR`` (its first stage decides) or None.
    """
    first = getattr(model, "stage1", model)
    blur_model = bool(getattr(first, "with_predeblur", False) or getattr(first, "hr_in", False))
    return "replicate" if (task in BLUR_TASKS or blur_model) else "reflection_circle"


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one dataset is read and scored.

    Attributes:
      name: the eval.py dataset name.
      reader: the ``edvr_jax.data.get_clipset`` dataset; ``split``/``partition`` for it.
      task: REDS task (LQ kind), 'sr' elsewhere.
      padding: temporal border padding (``generate_frame_indices`` mode).
      test_y_channel: the published numbers are on BT.601 Y (RGB is reported too).
      crop_border: pixels removed from each edge before scoring.
    """

    name: str
    reader: str
    split: str
    partition: str
    task: str
    padding: str
    test_y_channel: bool
    crop_border: int = 0


def get_protocol(dataset: str, task: str | None = None, *, hr_in: bool = False,
                 model=None) -> Protocol:
    """The protocol of ``dataset`` (one of :data:`EVAL_DATASETS`) for ``task``.

    ``task`` defaults to 'sr' (for 'folder': 'deblur' when the model is ``hr_in``);
    only REDS datasets and 'folder' have other tasks. The padding is
    :func:`temporal_padding` of ``model`` (when given) and the task. Raises ValueError
    for unknown names or a task the dataset does not have.
    """
    if model is not None:
        hr_in = getattr(model, "stage1", model).scale == 1
    name = dataset.lower()
    if name not in EVAL_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(EVAL_DATASETS)}")
    if task is None:
        task = "deblur" if (name == "folder" and hr_in) else "sr"
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    padding = temporal_padding(model, task)
    if name in ("reds4", "redsofficial4"):
        partition = "REDS4" if name == "reds4" else "REDSofficial4"
        return Protocol(name, "reds", "val", partition, task, padding, False)
    if task != "sr" and name != "folder":
        raise ValueError(f"dataset {name} has only the x4 'sr' task (got --task {task}); "
                         f"the blur tasks are REDS tracks")
    if name == "vid4":
        return Protocol(name, "vid4", "test", "", "sr", padding, True)
    if name == "vimeo90k_t":
        return Protocol(name, "vimeo90k", "test", "", "sr", padding, True)
    return Protocol(name, "folder", "all", "", task, padding, False)


# The numbers to reproduce (BasicSR ModelZoo, EDVR section), with the official file names.
PUBLISHED = (
    # (model, checkpoint, dataset, task, channel, PSNR, SSIM)
    ("EDVR_L_x4_SR_REDS", "EDVR_L_x4_SR_REDS_official-9f5f5039.pth", "reds4", "sr", "RGB",
     31.09, 0.8800),
    ("EDVR_M_x4_SR_REDS", "EDVR_M_x4_SR_REDS_official-32075921.pth", "reds4", "sr", "RGB",
     30.53, 0.8699),
    ("EDVR_L_x4_SRblur_REDS", "EDVR_L_x4_SRblur_REDS_official-983d7b8e.pth", "reds4", "srblur",
     "RGB", 28.88, 0.8361),
    ("EDVR_L_deblur_REDS", "EDVR_L_deblur_REDS_official-ca46bd8c.pth", "reds4", "deblur", "RGB",
     34.80, 0.9487),
    ("EDVR_L_deblurcomp_REDS", "EDVR_L_deblurcomp_REDS_official-0e988e5c.pth", "reds4",
     "deblurcomp", "RGB", 30.24, 0.8567),
    ("EDVR_L_x4_SR_Vimeo90K", "EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth", "vid4", "sr", "Y",
     27.35, 0.8264),
    ("EDVR_L_x4_SR_Vimeo90K", "EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth", "vid4", "sr", "RGB",
     25.83, 0.8077),
)
