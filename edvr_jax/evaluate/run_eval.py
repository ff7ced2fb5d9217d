"""What ``eval.py`` does once its flags are parsed: load, read, evaluate, print, write JSON.

    python eval.py --checkpoint EDVR_L_x4_SR_REDS_official-9f5f5039.pth \\
        --dataset reds4 --data_root datasets/REDS --out results.json

Per-dataset defaults come from ``protocols.get_protocol``; every flag that is not given
keeps the published protocol. User mistakes (missing checkpoint or data, a layout that
is not found, a model whose scale does not fit the data, an existing output) raise
:class:`EvaluationError` / ``DatasetError`` / ``ConversionError`` with a one-line message.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from typing import Any

from edvr_jax.evaluate.evaluation import EvaluationError, evaluate_clipset, metric_names
from edvr_jax.evaluate.protocols import get_protocol
from edvr_jax.outputs import replacing_file, replacing_folder
from edvr_jax.zoo import check, resolve

__all__ = ["format_table", "run", "to_json"]

_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "psnr_y": "PSNR-Y", "ssim_y": "SSIM-Y"}


def format_table(result: dict[str, Any]) -> str:
    """Per-clip table and the mean, one line each (PSNR in dB with 4 decimals); stage-1
    and two-stage scores side by side when the result has both."""
    names = list(result["settings"]["metrics"])
    labels = {n: _LABELS[n] for n in names}
    if f"stage1_{names[0]}" in result["mean"]:  # stage 1 alone, then both stages
        labels = {**{f"stage1_{n}": f"1:{_LABELS[n]}" for n in names},
                  **{n: f"2:{_LABELS[n]}" for n in names}}
    width = max([len(c) for c in result["clips"]] + [6])
    head = f"{'clip':<{width}}  {'frames':>6}" + "".join(f"  {v:>8}" for v in labels.values())
    lines = [head, "-" * len(head)]

    def row(label, frames, values):
        return f"{label:<{width}}  {frames:>6}" + "".join(f"  {values[n]:>8.4f}" for n in labels)

    for clip, r in result["clips"].items():
        lines.append(row(clip, r["num_frames"], r))
    lines += ["-" * len(head), row("mean", result["timing"]["frames"], result["mean"])]
    if len(labels) > len(names):
        lines.append("1: stage 1 alone (the frames stage 2 refines), 2: both stages")
    return "\n".join(lines)


def _finite(x):
    """JSON has no inf/nan: non-finite numbers become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(_finite(result), indent=1, allow_nan=False) + "\n"


def _check_paths(checkpoint, data_root, stage2, out, save_images, overwrite):
    for what, path in (("checkpoint", checkpoint), ("stage-2 checkpoint", stage2)):
        if path is not None:
            check(path, what)  # an existing path or a catalogue name (fetched by run)
    if "://" in data_root:  # gs:// and the like: through tf.io.gfile
        from edvr_jax.data.clips import isdir
    else:  # a local folder: answered without importing TensorFlow
        isdir = os.path.isdir
    if not isdir(data_root):
        raise EvaluationError(f"data root {data_root} does not exist or is not a folder")
    if out is not None and os.path.exists(out) and not overwrite:
        raise EvaluationError(f"output file {out} exists; pass --overwrite to replace it")
    if save_images is not None and os.path.isdir(save_images) and os.listdir(save_images) \
            and not overwrite:
        raise EvaluationError(f"image folder {save_images} is not empty; pass --overwrite to "
                              f"write into it")


def load(checkpoint: str, stage2: str | None = None, center_frame_idx: int | None = None):
    """``(model, variables)``; with ``stage2`` a ``TwoStageEDVR`` of both checkpoints."""
    from edvr_jax import load_model
    from edvr_jax.models import EDVR, TwoStageEDVR

    overrides = {} if center_frame_idx is None else {"center_frame_idx": center_frame_idx}
    model, variables = load_model(checkpoint, **overrides)
    if stage2 is None:
        return model, variables
    m2, v2 = load_model(stage2)
    if not isinstance(model, EDVR) or not isinstance(m2, EDVR):
        raise EvaluationError("--stage2 needs two single-stage checkpoints")
    if not m2.hr_in:
        raise EvaluationError(f"stage-2 checkpoint {stage2} is not an hr_in model; stage 2 "
                              f"works on the restored frames at output resolution")
    both = TwoStageEDVR(stage1=model, stage2=m2)
    return both, {"params": {"stage1": variables["params"], "stage2": v2["params"]}}


def run(*, checkpoint: str, dataset: str, data_root: str, task: str | None = None,
        padding: str | None = None, y_channel: bool | None = None, crop_border: int = 0,
        save_images: str | None = None, out: str | None = None, batch: int = 4,
        stage2: str | None = None, overwrite: bool = False,
        center_frame_idx: int | None = None, progress: bool = True, ensemble: str = "none",
        echo=print) -> dict[str, Any]:
    """Evaluates a checkpoint on a dataset with its published protocol; see ``eval.py``.
    ``checkpoint`` and ``stage2`` may be catalogue names (``edvr-zoo list``): they are
    checked with the other arguments and downloaded into the cache before loading.

    Returns the result dict (also written to ``out`` as JSON when given):
    ``{"settings", "clips", "mean", "timing", "offsets", "warnings"}``.
    """
    _check_paths(checkpoint, data_root, stage2, out, save_images, overwrite)
    if crop_border < 0:
        raise EvaluationError(f"--crop_border must be >= 0, got {crop_border}")
    if batch < 1:
        raise EvaluationError(f"--batch must be >= 1, got {batch}")
    names = {"checkpoint_name": checkpoint if check(checkpoint) else None,
             "stage2_name": stage2 if stage2 and check(stage2) else None}
    checkpoint = resolve(checkpoint, progress=progress)
    stage2 = resolve(stage2, "stage-2 checkpoint", progress=progress) if stage2 else None
    model, variables = load(checkpoint, stage2, center_frame_idx)
    try:
        proto = get_protocol(dataset, task, model=model)
    except ValueError as e:
        raise EvaluationError(str(e)) from None
    if proto.reader == "reds":
        from edvr_jax.tasks import TASKS as REDS_TASKS

        if REDS_TASKS[proto.task].scale != model.scale:
            fits = "deblur or deblurcomp" if model.scale == 1 else "sr or srblur"
            raise EvaluationError(
                f"the checkpoint restores x{model.scale} but REDS --task {proto.task} data is "
                f"x{REDS_TASKS[proto.task].scale}; this model fits --task {fits}")
    padding = padding or proto.padding
    test_y = proto.test_y_channel if y_channel is None else bool(y_channel)
    kwargs = {"scale": model.scale} if proto.reader == "folder" else {}
    from edvr_jax.data import get_clipset  # TensorFlow, once the arguments are known good

    clipset = get_clipset(proto.reader, data_root, task=proto.task, split=proto.split,
                          partition=proto.partition or "REDS4", **kwargs)
    echo(f"{clipset.describe()}")
    echo(f"model x{model.scale}, {model.num_frame} input frames; padding {padding}; scored on "
         f"{'Y and RGB' if test_y else 'RGB'}; crop_border {crop_border}"
         + ("" if ensemble == "none" else f"; ensemble {ensemble}"))
    # Restored frames go to a hidden temporary folder moved into place at the end, so an
    # error or Ctrl-C leaves no partial --save_images folder (edvr_jax.outputs).
    images = (replacing_folder(save_images, merge=True) if save_images is not None
              else contextlib.nullcontext(None))
    with images as save_dir:
        result = evaluate_clipset(model, variables, clipset, padding=padding,
                                  test_y_channel=test_y, crop_border=crop_border,
                                  batch_size=batch, save_dir=save_dir, progress=progress,
                                  report_rgb_and_y=True, ensemble=ensemble)
    result["settings"] = {
        "checkpoint": os.path.abspath(checkpoint),
        "stage2": os.path.abspath(stage2) if stage2 else None, **names,
        "dataset": proto.name, "task": proto.task, "data_root": data_root,
        "layout": clipset.layout, **result["settings"],
        "center_only": any(c.center is not None for c in clipset.clips),
    }
    assert tuple(result["settings"]["metrics"]) == metric_names(test_y, True)
    for note in result.get("notes", []):
        echo(f"note: {note}")
    echo(format_table(result))
    t = result["timing"]
    echo(f"{t['frames']} frames in {t['seconds']:.1f} s ({t['frames_per_second']:.2f} frames/s, "
         f"{t['compilations']} compilation(s))")
    if out is not None:
        with replacing_file(out) as tmp, open(tmp, "w") as f:
            f.write(to_json(result))
        echo(f"wrote {out}")
    return result
