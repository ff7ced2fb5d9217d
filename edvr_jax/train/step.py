"""One pure training step and its data-parallel compilation over a device mesh."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from edvr_jax.models import offset_stats
from edvr_jax.train.loss import charbonnier_loss
from edvr_jax.train.state import TrainState

Batch = dict[str, jax.Array]  # {'lq': (B, T, h, w, 3), 'gt': (B, H, W, 3)} float32 in [0, 1]
Metrics = dict[str, jax.Array]


def _norm(tree: Any) -> jax.Array:
    return optax.tree.norm(jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), tree))


def train_step(state: TrainState, batch: Batch, *, model, tx: optax.GradientTransformation,
               schedule: optax.Schedule, loss_reduction: str = "sum", loss_eps: float = 1e-12,
               ema_decay: float | None = None) -> tuple[TrainState, Metrics]:
    """Charbonnier loss, Adam update, optional EMA; returns the new state and metrics.

    Metrics (scalars): loss, lr, grad_norm, param_norm, update_norm, the mean |offset|
    of every DCNv2Pack (``offset/<dcn>``; BasicSR warns above 50) and ``finite``.
    """
    def loss_fn(params):
        out, mutated = model.apply({"params": params}, batch["lq"], mutable=["diagnostics"])
        loss = charbonnier_loss(out, batch["gt"], eps=loss_eps, reduction=loss_reduction)
        return loss, mutated["diagnostics"]

    (loss, diagnostics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = state.ema_params
    if ema is not None:
        d = ema_decay if ema_decay is not None else 0.999
        ema = jax.tree_util.tree_map(lambda e, p: e * d + p * (1 - d), ema, params)
    grad_norm = _norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    first_bad = jnp.where((state.first_nonfinite_step < 0) & ~finite, state.step,
                          state.first_nonfinite_step)
    metrics = {"loss": loss, "lr": jnp.asarray(schedule(state.step), jnp.float32),
               "grad_norm": grad_norm, "param_norm": _norm(params), "update_norm": _norm(updates),
               "finite": finite}
    metrics.update({f"offset/{k}": v for k, v in offset_stats(diagnostics).items()})
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              ema_params=ema, first_nonfinite_step=first_bad)
    return new_state, metrics


def make_mesh(devices=None) -> Mesh:
    """A 1-D ``data`` mesh over all devices of all processes."""
    devices = jax.devices() if devices is None else devices
    return Mesh(devices, ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def compile_train_step(mesh: Mesh, **step_kwargs) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
    """``jax.jit`` of ``train_step``: batch sharded on ``data``, state replicated, state donated.

    XLA inserts the gradient all-reduce; results are identical to a single device up
    to float round-off (reductions are summed in a different order).
    """
    fn = functools.partial(train_step, **step_kwargs)
    rep, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(fn, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=(0,))


def place_state(state: TrainState, mesh: Mesh) -> TrainState:
    """The state replicated on the mesh, exactly as the compiled step returns it, so the
    second call hits the first call's compiled program."""
    return jax.device_put(state, replicated(mesh))


def global_batch(local: dict[str, Any], mesh: Mesh) -> Batch:
    """Assembles each process's slice of the batch into global sharded arrays."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v)
            for k, v in local.items() if k in ("lq", "gt")}
