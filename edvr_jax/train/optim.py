"""Optimizer: Adam with BasicSR's parameter groups, written as optax masks over paths.

Labels come from each parameter's BasicSR state_dict name (the keymap rule), so the
rules read exactly like BasicSR's: a name containing ``dcn`` gets ``lr * dcn_lr_mul``
(BasicSR ``setup_optimizers``), and during the TSA-only phase everything whose name
does not contain ``fusion`` is frozen (BasicSR ``optimize_parameters``). The freeze is
a function of the optimizer's own step count, so it survives a resume in the middle
of the phase. Frozen groups keep their Adam moments untouched and start their own
bias-correction count when they unfreeze, as PyTorch's per-parameter Adam state does
for parameters that had no gradient.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from edvr_jax.convert.keymap import flax_path_to_torch_key


def torch_names(params: Any) -> Any:
    """A pytree like ``params`` holding each leaf's BasicSR state_dict name."""
    def name(path, _):
        keys = tuple(str(getattr(k, "key", k)) for k in path)
        stage = [k for k in keys if k in ("stage1", "stage2")]
        rest = tuple(k for k in keys if k not in ("stage1", "stage2"))
        return ".".join(stage + [flax_path_to_torch_key(rest)])

    return jax.tree_util.tree_map_with_path(name, params)


def param_labels(params: Any, frozen: Sequence[str] = ()) -> Any:
    """'frozen' (a regex in ``frozen`` matches), 'fusion', 'dcn' or 'other' per parameter."""
    pats = [re.compile(p) for p in frozen]

    def label(name: str) -> str:
        if any(p.search(name) for p in pats):
            return "frozen"
        if "fusion" in name:
            return "fusion"
        return "dcn" if "dcn" in name else "other"

    return jax.tree_util.tree_map(label, torch_names(params))


class SkipState(NamedTuple):
    count: jax.Array
    inner: Any


def skip_until(inner: optax.GradientTransformation, start_step: int) -> optax.GradientTransformation:
    """``inner`` from step ``start_step`` on; before that zero updates and an untouched state."""
    def init(params):
        return SkipState(jnp.zeros([], jnp.int32), inner.init(params))

    def update(updates, state, params=None):
        active = state.count >= start_step
        new_updates, new_inner = inner.update(updates, state.inner, params)
        new_updates = jax.tree_util.tree_map(lambda u: jnp.where(active, u, jnp.zeros_like(u)), new_updates)
        new_inner = jax.tree_util.tree_map(lambda n, o: jnp.where(active, n, o), new_inner, state.inner)
        return new_updates, SkipState(state.count + 1, new_inner)

    return optax.GradientTransformation(init, update)


def make_optimizer(params: Any, schedule: optax.Schedule, *, b1: float = 0.9, b2: float = 0.99,
                   eps: float = 1e-8, weight_decay: float = 0.0, dcn_lr_mul: float = 1.0,
                   tsa_iter: int = 0, grad_clip_norm: float | None = None,
                   frozen: Sequence[str] = ()) -> optax.GradientTransformation:
    """BasicSR's EDVR optimizer (Adam, betas 0.9/0.99 by default) as one optax transform.

    Args:
      schedule: learning rate per global step (e.g. ``cosine_restart_schedule``).
      dcn_lr_mul: learning-rate multiplier of the deformable-conv parameters.
      tsa_iter: BasicSR's ``tsa_iter``; only ``fusion`` parameters train during the
        first ``tsa_iter - 1`` steps (BasicSR unfreezes at iteration ``tsa_iter``,
        1-based). 0 disables the phase.
      grad_clip_norm: optional global-norm clipping before Adam.
      frozen: regexes over BasicSR names of parameters that never train.
    """
    def adam():
        parts = [optax.add_decayed_weights(weight_decay)] if weight_decay else []
        return optax.chain(*parts, optax.scale_by_adam(b1=b1, b2=b2, eps=eps))

    def gated(tx):
        return skip_until(tx, tsa_iter - 1) if tsa_iter > 1 else tx

    groups = {
        "fusion": adam(),
        "dcn": gated(optax.chain(adam(), optax.scale(dcn_lr_mul))),
        "other": gated(adam()),
        "frozen": optax.set_to_zero(),
    }
    chain = [optax.clip_by_global_norm(grad_clip_norm)] if grad_clip_norm else []
    chain += [optax.multi_transform(groups, param_labels(params, frozen)),
              optax.scale_by_learning_rate(schedule)]
    return optax.chain(*chain)
