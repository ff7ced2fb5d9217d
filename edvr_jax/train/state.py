"""The whole training state as one plain pytree."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


class TrainState(flax.struct.PyTreeNode):
    """step: int32 global step (number of updates applied); params / ema_params: the
    model's parameters and their exponential moving average (None without EMA);
    opt_state: the optax state; first_nonfinite_step: -1, or the first step whose
    loss or gradient was NaN/inf (so no checkpoint of a broken run is ever taken)."""

    step: jax.Array
    params: Any
    opt_state: Any
    ema_params: Any
    first_nonfinite_step: jax.Array

    @classmethod
    def create(cls, params: Any, tx: optax.GradientTransformation, use_ema: bool) -> TrainState:
        return cls(step=jnp.zeros([], jnp.int32), params=params, opt_state=tx.init(params),
                   ema_params=jax.tree_util.tree_map(jnp.copy, params) if use_ema else None,
                   first_nonfinite_step=jnp.full([], -1, jnp.int32))
