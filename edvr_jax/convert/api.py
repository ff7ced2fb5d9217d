"""``load_model``: one call from a checkpoint path to ``(model, variables)``.

A path can be
* a PyTorch ``.pth`` (BasicSR, mmagic/mmediting or the 2019 release; read without torch),
* a directory written by ``edvr-convert`` / ``save_model`` (``edvr_jax.json`` + orbax
  ``params/``), or
* a training workdir (its final export, or else its latest checkpoint).

``model.apply(variables, x)`` maps ``(B, T, H, W, 3)`` float32 RGB in [0, 1] to the
restored centre frame.
"""

from __future__ import annotations

import json
import pathlib
import shutil
from typing import Any

import jax
import numpy as np

from edvr_jax.convert import keymap
from edvr_jax.convert.loader import (
    ConversionError,
    abstract_params,
    find_state_dict,
    infer_architecture,
    state_dict_to_params,
    to_basicsr_names,
)
from edvr_jax.models import EDVR, TwoStageEDVR

MODEL_FILE = "edvr_jax.json"
FORMAT = "edvr_jax.model"


def architecture_of(model) -> dict[str, Any]:
    """A JSON-able description of a model (``model_from_architecture`` inverts it)."""
    if isinstance(model, TwoStageEDVR):
        return {"type": "TwoStageEDVR", "stage1": architecture_of(model.stage1)["kwargs"],
                "stage2": architecture_of(model.stage2)["kwargs"]}
    fields = ("num_in_ch", "num_out_ch", "num_feat", "num_frame", "deformable_groups",
              "num_extract_block", "num_reconstruct_block", "center_frame_idx", "hr_in",
              "with_predeblur", "with_tsa")
    return {"type": "EDVR", "kwargs": {f: getattr(model, f) for f in fields}}


def model_from_architecture(arch: dict[str, Any], **overrides: Any):
    if arch.get("type") == "TwoStageEDVR":
        return TwoStageEDVR(stage1=EDVR(**{**arch["stage1"], **overrides}),
                            stage2=EDVR(**{**arch["stage2"], **overrides}))
    if arch.get("type") == "EDVR":
        return EDVR(**{**arch["kwargs"], **overrides})
    raise ConversionError(f"unknown architecture type {arch.get('type')!r} (expected EDVR or TwoStageEDVR)")


def load_pth_model(path: str | pathlib.Path, *, param_key: str | None = None,
                   center_frame_idx: int | None = None, **model_overrides: Any):
    """(model, variables, info) from a PyTorch EDVR checkpoint, architecture inferred."""
    from edvr_jax.convert.pth import load_pth

    path = pathlib.Path(path)
    obj = load_pth(path)
    sd, used = find_state_dict(obj, param_key, source=str(path))
    sd, layout = to_basicsr_names(sd)
    arch = infer_architecture(sd, source=str(path))
    if center_frame_idx is not None:
        arch["center_frame_idx"] = center_frame_idx
    model = EDVR(**arch, **model_overrides)
    params, _, _ = state_dict_to_params(sd, model, strict=True, source=str(path))
    info = {"source": str(path), "layout": layout, "param_key": used, "architecture": arch}
    return model, {"params": jax.tree_util.tree_map(np.asarray, params)}, info


def save_model(dst: str | pathlib.Path, model, params, *, extra: dict | None = None,
               overwrite: bool = False) -> pathlib.Path:
    """Writes ``dst/edvr_jax.json`` and ``dst/params`` (orbax) atomically.

    In a multi-process run every process must call it (orbax saves collectively);
    process 0 prepares the folder, writes the JSON and renames it into place.
    """
    import orbax.checkpoint as ocp
    from jax.experimental import multihost_utils

    dst = pathlib.Path(dst).absolute()
    tmp = dst.with_name(dst.name + ".tmp-edvr")
    main = jax.process_index() == 0
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass overwrite=True (--overwrite) to replace it")
    if main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    multihost_utils.sync_global_devices("edvr_jax.save_model:prepare")
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp / "params", jax.tree_util.tree_map(np.asarray, params))
    ckpt.wait_until_finished()
    if main:
        meta = {"format": FORMAT, "version": 1, "architecture": architecture_of(model), **(extra or {})}
        (tmp / MODEL_FILE).write_text(json.dumps(meta, indent=2))
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
    multihost_utils.sync_global_devices("edvr_jax.save_model:done")
    return dst


def load_saved_model(path: str | pathlib.Path, **model_overrides: Any):
    """(model, variables) from a directory written by ``save_model``."""
    import orbax.checkpoint as ocp

    path = pathlib.Path(path).absolute()
    meta_file = path / MODEL_FILE
    try:
        meta = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise ConversionError(f"{path}: no {MODEL_FILE}; not a model saved by edvr_jax") from None
    except json.JSONDecodeError as e:
        raise ConversionError(f"{meta_file}: not valid JSON ({e})") from None
    if meta.get("format") != FORMAT:
        raise ConversionError(f"{meta_file}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    model = model_from_architecture(meta["architecture"], **model_overrides)
    target = abstract_model_params(model)
    if not (path / "params").is_dir():
        raise ConversionError(f"{path}: the params/ folder is missing (an interrupted save?)")
    from edvr_jax.train.checkpoints import orbax_reason, quiet_orbax

    try:
        with quiet_orbax():
            params = ocp.StandardCheckpointer().restore(path / "params", target)
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise ConversionError(f"{path}: cannot read the parameters in params/ (damaged or "
                              f"incompletely copied?): {orbax_reason(e)}") from None
    return model, {"params": params}


def abstract_model_params(model) -> dict:
    if isinstance(model, TwoStageEDVR):
        return {"stage1": abstract_params(model.stage1), "stage2": abstract_params(model.stage2)}
    return abstract_params(model)


def load_model(path: str | pathlib.Path, *, param_key: str | None = None, **model_overrides: Any):
    """``(model, variables)`` from a ``.pth``, a converted directory or a training workdir.

    Args:
      path: the checkpoint.
      param_key: for ``.pth`` files, which entry holds the weights. The default takes
        ``params_ema`` when the file has it (the EMA weights BasicSR validates with),
        else ``params`` (official BasicSR files), else mmagic's ``state_dict``.
      model_overrides: EDVR fields that do not change parameters, e.g.
        ``center_frame_idx``, ``dtype``, ``max_columns_bytes``.

    Raises (each with a one-line message naming the file, what was expected and found):
      FileNotFoundError: ``path`` does not exist.
      CheckpointError: the ``.pth`` is not a readable PyTorch checkpoint (truncated, not a
        zip or legacy pickle, ...) or is hostile (a pickle naming globals such as
        ``os.system``; refused before anything in it runs).
      ConversionError: the weights are not an EDVR this package builds (another network;
        a missing, unexpected or misshapen key), ``param_key`` is not in the file, or a
        directory is neither a model directory nor a training workdir with a complete
        checkpoint (e.g. an interrupted save) or cannot be read.
      TypeError: a ``model_overrides`` name that is not an EDVR field.
    Both CheckpointError and ConversionError are ValueErrors.
    """
    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    if p.is_dir():
        if (p / MODEL_FILE).exists():
            return load_saved_model(p, **model_overrides)
        from edvr_jax.train.checkpoints import load_workdir_model  # training workdirs

        return load_workdir_model(p, param_key=param_key, **model_overrides)
    model, variables, _ = load_pth_model(p, param_key=param_key, **model_overrides)
    return model, variables


def export_pth(params, path: str | pathlib.Path, *, key: str = "params") -> None:
    """Writes params as a BasicSR-loadable ``.pth`` (``{key: state_dict}``, zip format)."""
    from edvr_jax.convert.pth import save_pth

    save_pth({key: keymap.params_to_state_dict(params)}, path)
