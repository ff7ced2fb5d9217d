"""The saved-model format and reading a training workdir: what ``edvr-convert``, the
training export and ``load_model`` share, below both ``train/`` and ``evaluate/``.

    model directory (edvr-convert, save_model, a run's export/)
      edvr_jax.json        {"format": "edvr_jax.model", "version": 1, "architecture": ...}
      params/              the parameters, orbax StandardCheckpointer
    training workdir (written by edvr_jax.train)
      model.json           the architecture (architecture_of)
      checkpoints/<step>/  orbax CheckpointManager steps: the whole TrainState
      export/              the final model, a model directory

orbax is imported inside the functions that use it: ``import edvr_jax`` and the tools'
``--help`` stay fast (orbax pulls in TensorStore and asyncio machinery).
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import shutil
from typing import Any

import jax
import numpy as np

from edvr_jax.architecture import ARCHITECTURE_FIELDS
from edvr_jax.convert.loader import ConversionError, abstract_params
from edvr_jax.models import EDVR, TwoStageEDVR

MODEL_FILE = "edvr_jax.json"  # in a model directory
FORMAT = "edvr_jax.model"
MODEL_JSON = "model.json"  # in a training workdir


def architecture_of(model) -> dict[str, Any]:
    """A JSON-able description of a model (``model_from_architecture`` inverts it)."""
    if isinstance(model, TwoStageEDVR):
        return {"type": "TwoStageEDVR", "stage1": architecture_of(model.stage1)["kwargs"],
                "stage2": architecture_of(model.stage2)["kwargs"]}
    return {"type": "EDVR", "kwargs": {f: getattr(model, f) for f in ARCHITECTURE_FIELDS}}



def model_from_architecture(arch: dict[str, Any], **overrides: Any):
    if arch.get("type") == "TwoStageEDVR":
        return TwoStageEDVR(stage1=EDVR(**{**arch["stage1"], **overrides}),
                            stage2=EDVR(**{**arch["stage2"], **overrides}))
    if arch.get("type") == "EDVR":
        return EDVR(**{**arch["kwargs"], **overrides})
    raise ConversionError(f"unknown architecture type {arch.get('type')!r} (expected EDVR or TwoStageEDVR)")



def abstract_model_params(model) -> dict:
    if isinstance(model, TwoStageEDVR):
        return {"stage1": abstract_params(model.stage1), "stage2": abstract_params(model.stage2)}
    return abstract_params(model)



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
    ckpt = None
    try:
        if main:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        multihost_utils.sync_global_devices("edvr_jax.save_model:prepare")
        ckpt = ocp.StandardCheckpointer()
        ckpt.save(tmp / "params", jax.tree_util.tree_map(np.asarray, params))
        ckpt.wait_until_finished()
        if main:
            meta = {"format": FORMAT, "version": 1, "architecture": architecture_of(model),
                    **(extra or {})}
            (tmp / MODEL_FILE).write_text(json.dumps(meta, indent=2))
            if dst.exists():
                shutil.rmtree(dst)
            tmp.rename(dst)
    except BaseException:  # an error or Ctrl-C: no half-written folder is left behind
        if ckpt is not None:
            try:  # orbax's background writes end before the folder is removed
                ckpt.close()
            except Exception:  # noqa: BLE001 - the save has failed already
                pass
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
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
    try:
        with quiet_orbax():
            params = ocp.StandardCheckpointer().restore(path / "params", target)
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise ConversionError(f"{path}: cannot read the parameters in params/ (damaged or "
                              f"incompletely copied?): {orbax_reason(e)}") from None
    return model, {"params": params}



@contextlib.contextmanager
def quiet_orbax():
    """orbax logs a failed read with tracebacks (absl logger, ERROR) before raising; callers
    report the failure as one line instead."""
    import logging

    logger = logging.getLogger("absl")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)



def orbax_reason(e: BaseException) -> str:
    """The informative part of an orbax/TensorStore error, on one line."""
    import re

    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    code = re.search(r"os_error_code='?(\d+)", text)
    if code:
        import os

        where = re.search(r'(?:Failed writing|Error reading|local file):? "([^"]+)"', text)
        return os.strerror(int(code.group(1))) + (f" (at {where.group(1)})" if where else "")
    return text[:400]



def _HANDLERS() -> dict:
    import orbax.checkpoint as ocp

    return {"state": ocp.StandardCheckpointHandler()}



def latest_complete_step(directory: pathlib.Path) -> int | None:
    """The newest complete checkpoint step in ``directory`` (read only), or None."""
    import orbax.checkpoint as ocp

    if not directory.is_dir():
        return None
    return ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True)).latest_step()



def restore_to_host(workdir: str | pathlib.Path, step: int | None = None) -> tuple[dict, int]:
    """(state as nested dicts of numpy arrays, step) whatever topology saved it.

    A checkpoint written on 8 devices or a TPU pod restores on a laptop: the target is
    built from the checkpoint's own metadata as host arrays.
    """
    import orbax.checkpoint as ocp

    directory = pathlib.Path(workdir).absolute() / "checkpoints"
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True),
                                    item_handlers=_HANDLERS())
    step = manager.latest_step() if step is None else step
    if step is None:
        partial = sorted(p.name for p in directory.glob("*.orbax-checkpoint-tmp*"))
        found = (f"only {', '.join(partial)}, left by an interrupted save" if partial
                 else "it is empty" if directory.is_dir() else "the folder does not exist")
        raise ConversionError(f"{directory} holds no complete checkpoint yet ({found})")
    try:
        with quiet_orbax():
            meta = manager.item_metadata(step)["state"]
            target = jax.tree_util.tree_map(lambda m: np.zeros(m.shape, m.dtype), meta)
            state = manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target)))
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise ConversionError(f"{directory / str(step)}: cannot read the checkpoint "
                              f"({orbax_reason(e)})") from None
    return state["state"], step



def load_workdir_model(workdir: str | pathlib.Path, *, param_key: str | None = None, **overrides):
    """(model, variables) from a training workdir.

    ``param_key=None`` takes the final export when the run finished, else the latest
    checkpoint's EMA parameters when the run keeps an EMA, else its parameters;
    ``'params'`` / ``'params_ema'`` pick from the latest checkpoint explicitly.
    """
    workdir = pathlib.Path(workdir).absolute()
    export = workdir / "export" / MODEL_FILE
    if param_key is None and export.exists():
        # The export is the final model of a finished run, unless a resumed run has
        # checkpointed past it since.
        exported_at = json.loads(export.read_text()).get("step", 0)
        latest = latest_complete_step(workdir / "checkpoints")
        if latest is None or exported_at >= latest:
            return load_saved_model(workdir / "export", **overrides)
    arch_file = workdir / MODEL_JSON
    if not arch_file.exists():
        hint = ("; it is the temporary folder of an interrupted save (edvr-convert / save_model): "
                "run the conversion again" if workdir.name.endswith(".tmp-edvr") else "")
        raise ConversionError(f"{workdir}: neither an edvr_jax model directory ({MODEL_FILE}) nor a "
                              f"training workdir ({MODEL_JSON}, checkpoints/){hint}")
    model = model_from_architecture(json.loads(arch_file.read_text()), **overrides)
    state, step = restore_to_host(workdir)
    if param_key not in (None, "params", "params_ema"):
        raise ConversionError(f"param_key must be params or params_ema, got {param_key!r}")
    want_ema = param_key == "params_ema" or (param_key is None and state.get("ema_params") is not None)
    params = state.get("ema_params") if want_ema else state["params"]
    if params is None:
        raise ConversionError(f"{workdir}: the run keeps no EMA parameters (train.ema_decay = 0)")
    # Orbax restores plain containers; check the tree against the architecture.
    expected = jax.tree_util.tree_structure(abstract_model_params(model))
    if jax.tree_util.tree_structure(params) != expected:
        raise ConversionError(f"{workdir}: checkpoint {step} does not match {MODEL_JSON}")
    return model, {"params": params}

