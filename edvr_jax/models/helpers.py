"""Model helpers: any-size inference, parameter counts and summaries, offset diagnostics."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from edvr_jax.models.dcn import OFFSET_WARNING_THRESHOLD

log = logging.getLogger(__name__)


def init_input(model) -> jax.Array:
    """The smallest clip ``model`` accepts, zeros of shape (1, T, m, m, C) with m its size
    multiple: what ``model.init`` is traced with (parameters do not depend on the size)."""
    m = model.size_multiple
    return jnp.zeros((1, model.num_frame, m, m, model.num_in_ch), jnp.float32)


def pad_to_multiple(x: jax.Array, multiple: int, mode: str = "reflect") -> tuple[jax.Array, tuple[int, int]]:
    """Pads the H and W axes of ``(..., H, W, C)`` at the bottom/right up to a multiple.

    Reflection padding (the default) keeps image statistics at the border; frames
    smaller than the padding fall back to edge replication. Returns the padded
    array and the original ``(H, W)`` for ``crop_output``. A numpy array is padded on the
    host (numpy in, numpy out: tiling pads whole windows before they go to a device).
    """
    xp = np if isinstance(x, np.ndarray) else jnp
    h, w = x.shape[-3], x.shape[-2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "edge"
    pads = [(0, 0)] * (x.ndim - 3) + [(0, ph), (0, pw), (0, 0)]
    return xp.pad(x, pads, mode=mode), (h, w)


def crop_output(y: jax.Array, size: tuple[int, int], scale: int) -> jax.Array:
    """Crops ``(..., H', W', C)`` model output back to ``scale * size``."""
    return y[..., : size[0] * scale, : size[1] * scale, :]


def restore_any_size(model, variables, x: jax.Array, mode: str = "reflect") -> jax.Array:
    """``model.apply`` on clips of any H, W: pads to the model's multiple and crops back."""
    padded, size = pad_to_multiple(x, model.size_multiple, mode)
    return crop_output(model.apply(variables, padded), size, model.scale)


def count_params(tree: Any) -> int:
    """Total number of parameter values in a pytree."""
    return int(sum(np.prod(np.shape(a)) for a in jax.tree_util.tree_leaves(tree)))


def summary(params: Mapping[str, Any], depth: int = 1) -> str:
    """A table of parameter counts per module (to ``depth`` levels) and the total."""
    rows: dict[str, int] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = [str(getattr(k, "key", k)) for k in path][:depth]
        name = "/".join(keys)
        rows[name] = rows.get(name, 0) + int(np.prod(np.shape(leaf)))
    width = max([len(k) for k in rows] + [6])
    lines = [f"{'module':<{width}}  {'params':>12}", "-" * (width + 14)]
    lines += [f"{k:<{width}}  {v:>12,}" for k, v in rows.items()]
    lines += ["-" * (width + 14), f"{'total':<{width}}  {sum(rows.values()):>12,}"]
    return "\n".join(lines)


def offset_stats(diagnostics: Mapping[str, Any]) -> dict[str, jax.Array]:
    """Mean |offset| per DCNv2Pack from the ``diagnostics`` collection.

    Keys are ``dcn_pack_l3``, ``dcn_pack_l2``, ``dcn_pack_l1`` and ``cas_dcnpack``
    (prefixed with ``stage1/``/``stage2/`` for two-stage models). Works under jit.
    """
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(dict(diagnostics))[0]:
        keys = [str(getattr(k, "key", k)) for k in path]
        if "offset_absmean" not in keys:
            continue
        stage = [k for k in keys if k.startswith("stage")]
        dcn = [k for k in keys if k.startswith(("dcn_pack", "cas_dcnpack"))]
        out["/".join(stage + dcn[-1:])] = jnp.asarray(leaf).reshape(-1)[0]
    return out


def warn_large_offsets(stats: Mapping[str, Any], threshold: float = OFFSET_WARNING_THRESHOLD) -> list[str]:
    """Logs BasicSR's warning for every DCN whose mean |offset| exceeds ``threshold``.

    Call on the host with fetched values. Returns the warnings it logged.
    """
    msgs = []
    for name, value in stats.items():
        v = float(value)
        if not np.isfinite(v) or v > threshold:
            msgs.append(f"Offset abs mean is {v}, larger than {threshold:g} ({name}).")
            log.warning(msgs[-1])
    return msgs
