"""Charbonnier loss as in BasicSR (``basicsr/losses/basic_loss.py``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

EPS = 1e-12  # BasicSR's CharbonnierLoss default (the 2019 code used 1e-6)


def charbonnier_loss(pred: jax.Array, target: jax.Array, *, eps: float = EPS,
                     reduction: str = "sum", weight: float = 1.0) -> jax.Array:
    """``weight * reduce(sqrt((pred - target)^2 + eps))`` computed in float32.

    ``reduction='sum'`` (BasicSR's EDVR configs) sums over every element of the
    batch, so loss values of 1e4-1e7 are normal; ``'mean'`` averages instead.
    The value does not depend on how the batch is sharded over devices.
    """
    diff = pred.astype(jnp.float32) - target.astype(jnp.float32)
    err = jnp.sqrt(diff * diff + eps)
    if reduction == "sum":
        return weight * jnp.sum(err)
    if reduction == "mean":
        return weight * jnp.mean(err)
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
