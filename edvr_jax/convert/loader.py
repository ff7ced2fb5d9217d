"""From a PyTorch EDVR state_dict (BasicSR, mmagic or 2019 names) to an edvr_jax model.

The architecture is inferred from the tensors themselves, so users name only the file:
``num_feat`` from the first conv, ``num_frame`` from the fusion's input channels,
``deformable_groups`` from ``conv_offset``, block counts by counting keys, and TSA,
predeblur and ``hr_in`` from which modules exist. ``center_frame_idx`` cannot be seen
in the weights; BasicSR's default ``num_frame // 2`` is used unless given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from edvr_jax.architecture import ARCHITECTURE_DEFAULTS, ARCHITECTURE_FIELDS
from edvr_jax.convert import keymap
from edvr_jax.errors import UserError
from edvr_jax.models import EDVR, init_input


class ConversionError(UserError, ValueError):
    """A state_dict that does not describe an EDVR this package can build."""


def find_state_dict(obj: Any, param_key: str | None = None, source: str = "checkpoint"
                    ) -> tuple[dict[str, np.ndarray], str]:
    """Finds the tensors in a loaded checkpoint; returns (state_dict, key used).

    BasicSR files are ``{'params': sd}`` (training ones also ``'params_ema'``);
    mmagic/mmediting files ``{'meta': ..., 'state_dict': sd}``; the 2019 files a bare
    state_dict. ``param_key=None`` picks ``params_ema`` when present (the averaged
    weights BasicSR validates with), else ``params``, else ``state_dict``.
    """
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{source}: expected a dict of tensors, found {type(obj).__name__}")
    if param_key is not None:
        if param_key not in obj:
            raise ConversionError(f"{source}: no {param_key!r} entry; it has {sorted(map(str, obj))}")
        sd, used = obj[param_key], param_key
    else:
        for key in ("params_ema", "params", "state_dict", "model", "generator"):
            if key in obj and isinstance(obj[key], Mapping):
                sd, used = obj[key], key
                break
        else:
            sd, used = obj, ""
    tensors = {str(k): v for k, v in sd.items() if isinstance(v, np.ndarray)}
    if not tensors:
        raise ConversionError(
            f"{source}: found no tensors under {used or 'the top level'!r} (keys: {sorted(map(str, sd))[:8]})")
    return tensors, used


def to_basicsr_names(sd: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """Renames mmagic / 2019 keys to BasicSR's; returns (state_dict, detected layout)."""
    keys = list(sd)
    if all(k.startswith("module.") for k in keys):  # saved from DataParallel/DDP
        sd = {k[len("module."):]: v for k, v in sd.items()}
        keys = list(sd)
    if any(k.startswith("generator.") for k in keys):
        sd = {k[len("generator."):]: v for k, v in sd.items() if k.startswith("generator.")}
        keys = list(sd)
    if any(k.startswith("pcd_alignment.") or k.startswith("feat_l2_conv1.") for k in keys):
        return {keymap.rename(k, keymap.MMAGIC_TO_BASICSR): v for k, v in sd.items()}, "mmagic"
    if any(k.startswith(("tsa_fusion.", "recon_trunk.", "fea_L2_conv1.", "pre_deblur.")) for k in keys):
        return {keymap.rename(k, keymap.EDVR2019_TO_BASICSR): v for k, v in sd.items()}, "edvr2019"
    return dict(sd), "basicsr"


def _count(sd: Mapping[str, Any], prefix: str) -> int:
    pat = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.conv1\.weight$")
    idx = [int(m.group(1)) for k in sd if (m := pat.match(k))]
    return max(idx) + 1 if idx else 0


def infer_architecture(sd: Mapping[str, np.ndarray], source: str = "state_dict") -> dict[str, Any]:
    """EDVR constructor arguments implied by a BasicSR-named state_dict."""
    def need(key):
        if key not in sd:
            raise ConversionError(
                f"{source}: not an EDVR state_dict (no {key!r}; first keys: {list(sd)[:5]})")
        return sd[key].shape

    with_predeblur = "predeblur.conv_first.weight" in sd
    if with_predeblur:
        num_feat, num_in_ch = need("predeblur.conv_first.weight")[:2]
    else:
        num_feat, num_in_ch = need("conv_first.weight")[:2]
    with_tsa = "fusion.temporal_attn1.weight" in sd
    fusion_in = need("fusion.feat_fusion.weight" if with_tsa else "fusion.weight")[1]
    if fusion_in % num_feat:
        raise ConversionError(f"{source}: fusion input channels {fusion_in} are not a multiple of "
                              f"num_feat={num_feat}")
    # The paper's ablations (no alignment, L1 only, no cascading DCN) leave modules out.
    with_pcd = any(k.startswith("pcd_align.") for k in sd)
    offset_out = need("pcd_align.dcn_pack.l1.conv_offset.weight")[0] if with_pcd else 27 * 8
    if offset_out % 27:
        raise ConversionError(f"{source}: conv_offset has {offset_out} outputs, not 3*G*9")
    return dict(
        num_in_ch=int(num_in_ch), num_feat=int(num_feat), num_frame=int(fusion_in // num_feat),
        deformable_groups=int(offset_out // 27),
        num_extract_block=_count(sd, "feature_extraction"),
        num_reconstruct_block=_count(sd, "reconstruction"),
        hr_in="predeblur.stride_conv_hr1.weight" in sd,
        with_predeblur=with_predeblur, with_tsa=with_tsa, with_pcd=with_pcd,
        pcd_levels=3 if "pcd_align.dcn_pack.l3.weight" in sd or not with_pcd else 1,
        pcd_cascade="pcd_align.cas_dcnpack.weight" in sd or not with_pcd,
    )


def abstract_params(model: EDVR) -> dict:
    """Shapes of a model's parameters without computing anything."""
    return jax.eval_shape(lambda: model.init(jax.random.key(0), init_input(model)))["params"]


def state_dict_to_params(sd: Mapping[str, np.ndarray], model: EDVR, *, strict: bool = True,
                         source: str = "state_dict") -> tuple[dict, list[str], list[str]]:
    """Maps a BasicSR-named state_dict onto ``model``'s parameter tree.

    With ``strict`` any missing, unexpected or misshapen key raises one
    ConversionError (one line) naming the offenders with expected and found shapes.
    Otherwise matching tensors are taken and the rest reported:
    returns (params, keys_loaded, problems) and parameters not found keep ``None``
    (fill them from an initialised tree with ``merge_params``).
    """
    expected = keymap.flatten(abstract_params(model))
    problems, loaded, flat = [], [], {}
    want = {keymap.flax_path_to_torch_key(p): p for p in expected}
    for key, path in want.items():
        shape = expected[path].shape
        if key not in sd:
            problems.append(f"missing {key} (expected {_torch_shape(shape)})")
            flat[path] = None
            continue
        value = np.asarray(sd[key])
        arr = keymap.torch_to_flax_array(key, value) if value.ndim == 4 else value
        if arr.shape != shape:
            problems.append(f"shape of {key}: expected {_torch_shape(shape)}, found {tuple(value.shape)}")
            flat[path] = None
            continue
        flat[path] = np.asarray(arr, np.float32)
        loaded.append(key)
    problems += [f"unexpected {k} {tuple(np.shape(sd[k]))}" for k in sd if k not in want]
    if strict and problems:
        shown = "; ".join(problems[:_SHOWN]) + (f"; and {len(problems) - _SHOWN} more"
                                                 if len(problems) > _SHOWN else "")
        raise ConversionError(f"{source} does not match EDVR({_describe(model)}): {shown}")
    return keymap.unflatten(flat), loaded, problems


_SHOWN = 6  # problems named in a strict-load error (one line); the rest are counted


def merge_params(loaded: Mapping, init: Mapping) -> dict:
    """Fills the ``None`` leaves of ``loaded`` from ``init`` (non-strict loading)."""
    out = {}
    for k, v in init.items():
        got = loaded.get(k) if isinstance(loaded, Mapping) else None
        if isinstance(v, Mapping):
            out[k] = merge_params(got or {}, v)
        else:
            out[k] = v if got is None else got
    return out


def _torch_shape(flax_shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(flax_shape[i] for i in (3, 2, 0, 1)) if len(flax_shape) == 4 else tuple(flax_shape)


def _describe(model: EDVR) -> str:
    ablation = ("with_pcd", "pcd_levels", "pcd_cascade")  # named only when not BasicSR's
    shown = [f for f in ARCHITECTURE_FIELDS if f not in ("num_in_ch", "num_out_ch", "center_frame_idx")
             and not (f in ablation and getattr(model, f) == ARCHITECTURE_DEFAULTS[f])]
    return ", ".join(f"{f}={getattr(model, f)}" for f in shown)
