"""BasicSR's CosineAnnealingRestartLR as a pure optax schedule.

``lr(step) = eta_min + w_i * 0.5 * (base - eta_min) * (1 + cos(pi * (step - restart_i) / period_i))``
where ``i`` is the cycle that contains ``step`` (0-based). BasicSR steps its scheduler
only from iteration 2 on, so its iteration ``k`` (1-based) uses ``lr(k - 1)``: the same
value our 0-based step ``k - 1`` gets.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import optax


def cosine_restart_schedule(base_lr: float, periods: Sequence[int], restart_weights: Sequence[float] = (1.0,),
                            eta_min: float = 0.0) -> optax.Schedule:
    """Cosine annealing with restarts; after the last period the lr stays at the last cycle's end."""
    if len(periods) != len(restart_weights):
        raise ValueError(f"periods {list(periods)} and restart_weights {list(restart_weights)} "
                         "must have the same length (as in BasicSR)")
    if any(p <= 0 for p in periods):
        raise ValueError(f"every period must be positive, got {list(periods)}")
    ends = np.cumsum(periods)
    starts = jnp.asarray(np.concatenate([[0], ends[:-1]]), jnp.float32)
    ends_j = jnp.asarray(ends, jnp.int32)
    periods_j = jnp.asarray(periods, jnp.float32)
    weights = jnp.asarray(restart_weights, jnp.float32)

    def schedule(step):
        step = jnp.asarray(step)
        # BasicSR's get_position_from_periods: first i with step <= cumulative_period[i].
        idx = jnp.minimum(jnp.sum(step > ends_j), len(periods) - 1)
        t = jnp.minimum((step.astype(jnp.float32) - starts[idx]) / periods_j[idx], 1.0)
        # 0.5 * (1 + cos(pi t)) written as cos(pi t / 2)^2: no float32 cancellation near the minimum.
        return eta_min + weights[idx] * (base_lr - eta_min) * jnp.cos(0.5 * jnp.pi * t) ** 2

    return schedule
