"""Optimizer: Adam with BasicSR's parameter groups, written as optax masks over paths.

Labels come from each parameter's BasicSR state_dict name (``models.basicsr_names``), so the
rules read exactly like BasicSR's: a name containing ``dcn`` gets ``lr * dcn_lr_mul``
(BasicSR ``setup_optimizers``), and during the TSA-only phase everything whose name
does not contain ``fusion`` is frozen (BasicSR ``optimize_parameters``). The freeze is
a function of the optimizer's own step count, so it survives a resume in the middle
of the phase. Frozen groups keep their Adam moments untouched and start their own
bias-correction count when they unfreeze, as PyTorch's per-parameter Adam state does
for parameters that had no gradient. Gradient clipping measures the global norm over
the parameters that train at that step only (``Phases``): a frozen or TSA-gated
parameter's gradient never scales the update of one that trains.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from edvr_jax.models import basicsr_names


def param_labels(params: Any, frozen: Sequence[str] = ()) -> Any:
    """'frozen' (a regex in ``frozen`` matches), 'fusion', 'dcn' or 'other' per parameter."""
    pats = [re.compile(p) for p in frozen]

    def label(name: str) -> str:
        if any(p.search(name) for p in pats):
            return "frozen"
        if "fusion" in name:
            return "fusion"
        return "dcn" if "dcn" in name else "other"

    return jax.tree_util.tree_map(label, basicsr_names(params))


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


class Phases(NamedTuple):
    """Which parameters train: ``tsa`` (a pytree of Python bools like the params) in the
    steps before ``tsa_end``, ``full`` from then on. The one source of the freeze rules
    for the optimizer (clipping) and the step (what is differentiated)."""

    tsa_end: int
    tsa: Any
    full: Any

    def trained(self, step: int) -> Any:
        return self.tsa if step < self.tsa_end else self.full


def train_phases(params: Any, tsa_iter: int = 0, frozen: Sequence[str] = ()) -> Phases:
    """BasicSR's phases: with ``tsa_iter > 1`` only ``fusion`` parameters train in the first
    ``tsa_iter - 1`` steps; parameters matching ``frozen`` never train."""
    labels = param_labels(params, frozen)
    full = jax.tree_util.tree_map(lambda lab: lab != "frozen", labels)
    if tsa_iter <= 1:
        return Phases(0, full, full)
    return Phases(tsa_iter - 1, jax.tree_util.tree_map(lambda lab: lab == "fusion", labels), full)


def trained_leaves(tree: Any, mask: Any) -> list:
    """The leaves of ``tree`` whose entry in ``mask`` (a pytree of bools) is True, in order."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return [x for x, m in zip(leaves, treedef.flatten_up_to(mask), strict=True) if m]


def global_norm(leaves: Sequence[jax.Array]) -> jax.Array:
    """sqrt of the sum of squares, in float32 (0 for no leaves)."""
    return jnp.sqrt(sum((jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves), jnp.zeros([], jnp.float32)))


class CountState(NamedTuple):
    count: jax.Array


def clip_trained_by_global_norm(max_norm: float, phases: Phases) -> optax.GradientTransformation:
    """``optax.clip_by_global_norm`` with the norm taken over the parameters that train at
    this step (the phase follows the transform's own step count, so it survives a resume)."""
    def init(params):
        del params
        return CountState(jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        del params
        norm = global_norm(trained_leaves(updates, phases.full))
        if phases.tsa_end:
            norm = jnp.where(state.count < phases.tsa_end, global_norm(trained_leaves(updates, phases.tsa)), norm)
        trigger = norm < max_norm
        updates = jax.tree_util.tree_map(
            lambda t: jax.lax.select(trigger, t, (t / norm.astype(t.dtype)) * max_norm), updates)
        return updates, CountState(state.count + 1)

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
      grad_clip_norm: optional global-norm clipping before Adam, the norm taken over the
        parameters that train at that step (``train_phases``).
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
    phases = train_phases(params, tsa_iter, frozen)
    chain = [clip_trained_by_global_norm(grad_clip_norm, phases)] if grad_clip_norm else []
    chain += [optax.multi_transform(groups, param_labels(params, frozen)),
              optax.scale_by_learning_rate(schedule)]
    return optax.chain(*chain)
