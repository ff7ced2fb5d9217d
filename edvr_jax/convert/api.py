"""``load_model``: one call from a checkpoint path to ``(model, variables)``.

A path can be
* a model name from the catalogue (``edvr-zoo list``, e.g. ``"EDVR_M_x4_SR_REDS"``):
  downloaded once into the cache, verified, then read as the ``.pth`` it is,
* a PyTorch ``.pth`` (BasicSR, mmagic/mmediting or the 2019 release; read without torch),
* a directory written by ``edvr-convert`` / ``save_model`` (``edvr_jax.json`` + orbax
  ``params/``), or
* a training workdir (its final export, or else its latest checkpoint).

``model.apply(variables, x)`` maps ``(B, T, H, W, 3)`` float32 RGB in [0, 1] to the
restored centre frame.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import numpy as np

from edvr_jax.convert import keymap
from edvr_jax.convert.loader import (
    find_state_dict,
    infer_architecture,
    state_dict_to_params,
    to_basicsr_names,
)
from edvr_jax.convert.saved import (  # noqa: F401  (re-exported: the saved-model format lives there)
    FORMAT,
    MODEL_FILE,
    abstract_model_params,
    architecture_of,
    load_saved_model,
    load_workdir_model,
    model_from_architecture,
    save_model,
)
from edvr_jax.models import EDVR
from edvr_jax.zoo import resolve


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


def load_model(path: str | pathlib.Path, *, param_key: str | None = None, **model_overrides: Any):
    """``(model, variables)`` from a ``.pth``, a converted directory or a training workdir.

    Args:
      path: the checkpoint, or a catalogue name (``edvr_jax.zoo``; fetched into the cache
        on first use, see ``edvr-zoo``).
      param_key: for ``.pth`` files, which entry holds the weights. The default takes
        ``params_ema`` when the file has it (the EMA weights BasicSR validates with),
        else ``params`` (official BasicSR files), else mmagic's ``state_dict``.
      model_overrides: EDVR fields that do not change parameters, e.g.
        ``center_frame_idx``, ``dtype``, ``max_columns_bytes``.

    Raises (each with a one-line message naming the file, what was expected and found):
      FileNotFoundError: ``path`` does not exist and is not a catalogue name (a close
        match is suggested).
      ZooError: a catalogue name that cannot be downloaded or verified (no network, HTTP
        error, wrong SHA-256, disk full); the message says what to do.
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
    p = pathlib.Path(resolve(path))
    if p.is_dir():
        if (p / MODEL_FILE).exists():
            return load_saved_model(p, **model_overrides)
        return load_workdir_model(p, param_key=param_key, **model_overrides)
    model, variables, _ = load_pth_model(p, param_key=param_key, **model_overrides)
    return model, variables


def export_pth(params, path: str | pathlib.Path, *, key: str = "params") -> None:
    """Writes params as a BasicSR-loadable ``.pth`` (``{key: state_dict}``, zip format)."""
    from edvr_jax.convert.pth import save_pth

    save_pth({key: keymap.params_to_state_dict(params)}, path)
