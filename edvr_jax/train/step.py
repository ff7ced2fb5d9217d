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
from edvr_jax.train.optim import Phases, global_norm
from edvr_jax.train.state import TrainState

Batch = dict[str, jax.Array]  # {'lq': (B, T, h, w, 3), 'gt': (B, H, W, 3)} float32 in [0, 1]
Metrics = dict[str, jax.Array]


def _norm(tree: Any) -> jax.Array:
    return optax.tree.norm(jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), tree))


def train_step(state: TrainState, batch: Batch, *, model, tx: optax.GradientTransformation,
               schedule: optax.Schedule, loss_reduction: str = "sum", loss_eps: float = 1e-12,
               ema_decay: float | None = None, trained: Any = None) -> tuple[TrainState, Metrics]:
    """Charbonnier loss, Adam update, optional EMA; returns the new state and metrics.

    ``trained``: a pytree of Python bools like the params (``Phases.trained(step)``), or
    None for all. Only those leaves are differentiated; the others are constants of the
    program, get zero gradients, and the backward pass of what only they feed (PCD and
    its DCNs in the TSA-only phase) is not built at all.

    Metrics (scalars): loss, lr, grad_norm (over the trained parameters), param_norm,
    update_norm, the mean |offset| of every DCNv2Pack (``offset/<dcn>``; BasicSR warns
    above 50) and ``finite``.
    """
    def loss_fn(params):
        out, mutated = model.apply({"params": params}, batch["lq"], mutable=["diagnostics"])
        loss = charbonnier_loss(out, batch["gt"], eps=loss_eps, reduction=loss_reduction)
        return loss, mutated.get("diagnostics", {})  # none without DCNs (an ablation)

    flat, treedef = jax.tree_util.tree_flatten(state.params)
    mask = [True] * len(flat) if trained is None else treedef.flatten_up_to(trained)

    def loss_of_trained(sub):
        it = iter(sub)
        return loss_fn(treedef.unflatten([next(it) if m else jax.lax.stop_gradient(p)
                                          for p, m in zip(flat, mask, strict=True)]))

    (loss, diagnostics), sub_grads = jax.value_and_grad(loss_of_trained, has_aux=True)(
        [p for p, m in zip(flat, mask, strict=True) if m])
    it = iter(sub_grads)
    grads = treedef.unflatten([next(it) if m else jnp.zeros_like(p) for p, m in zip(flat, mask, strict=True)])
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = state.ema_params
    if ema is not None:
        d = ema_decay if ema_decay is not None else 0.999
        ema = jax.tree_util.tree_map(lambda e, p: e * d + p * (1 - d), ema, params)
    grad_norm = global_norm(sub_grads)
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


class PhasedStep:
    """The compiled step of each training phase, chosen on the host: ``fn(state, batch, step)``
    runs ``phases.trained(step)``'s program. At most one program per phase (two with a
    TSA-only phase, one without); each compiles on its first call and is then reused."""

    def __init__(self, programs: dict[str, Callable], phases: Phases | None):
        self.programs, self.phases = programs, phases

    def __call__(self, state: TrainState, batch: Batch, step: int) -> tuple[TrainState, Metrics]:
        tsa = self.phases is not None and step < self.phases.tsa_end
        return self.programs["tsa" if tsa else "full"](state, batch)

    def cache_sizes(self) -> dict[str, int]:
        return {k: f._cache_size() for k, f in self.programs.items()}


def compile_train_step(mesh: Mesh, phases: Phases | None = None, **step_kwargs) -> PhasedStep:
    """``jax.jit`` of ``train_step`` per phase of ``phases`` (None: every parameter trains):
    batch sharded on ``data``, state replicated, state donated.

    XLA inserts the gradient all-reduce; results are identical to a single device up
    to float round-off (reductions are summed in a different order).
    """
    rep, data = replicated(mesh), batch_sharding(mesh)
    masks = {"full": None if phases is None else phases.full}
    if phases is not None and phases.tsa_end:
        masks["tsa"] = phases.tsa
    programs = {k: jax.jit(functools.partial(train_step, trained=m, **step_kwargs), in_shardings=(rep, data),
                           out_shardings=(rep, rep), donate_argnums=(0,)) for k, m in masks.items()}
    return PhasedStep(programs, phases)


def place_state(state: TrainState, mesh: Mesh) -> TrainState:
    """The state replicated on the mesh, exactly as the compiled step returns it, so the
    second call hits the first call's compiled program."""
    return jax.device_put(state, replicated(mesh))


def global_batch(local: dict[str, Any], mesh: Mesh) -> Batch:
    """Assembles each process's slice of the batch into global sharded arrays."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, v)
            for k, v in local.items() if k in ("lq", "gt")}
