"""The training step and the evaluation forward compile once and are then reused."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from edvr_jax.evaluate.inference import Restorer
from edvr_jax.models import EDVR
from edvr_jax.train.optim import make_optimizer, train_phases
from edvr_jax.train.schedule import cosine_restart_schedule
from edvr_jax.train.state import TrainState
from edvr_jax.train.step import compile_train_step, make_mesh, place_state, train_step

TINY = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)


@pytest.mark.slow
def test_train_step_cache_does_not_grow():
    model = EDVR(**TINY)
    rng = np.random.default_rng(0)
    batch = lambda: {"lq": rng.uniform(size=(2, 3, 8, 8, 3)).astype(np.float32),
                     "gt": rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)}
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 3, 8, 8, 3)))["params"]
    schedule = cosine_restart_schedule(1e-3, [10], [1.0])
    tx = make_optimizer(params, schedule, tsa_iter=3, dcn_lr_mul=0.5)
    mesh = make_mesh()
    state = place_state(TrainState.create(params, tx, use_ema=True), mesh)  # as the loop does
    phases = train_phases(params, tsa_iter=3)
    step = compile_train_step(mesh, phases, model=model, tx=tx, schedule=schedule, ema_decay=0.9)
    state, _ = step(state, batch(), 0)
    assert step.cache_sizes() == {"tsa": 1, "full": 0}
    for i in range(1, 5):  # new data, the TSA phase ending at step 2, new lr: one program per phase
        state, metrics = step(state, batch(), i)
    jax.block_until_ready(metrics)
    assert step.cache_sizes() == {"tsa": 1, "full": 1}
    # the unsharded twin used by tests and benchmarks behaves the same
    plain = jax.jit(functools.partial(train_step, model=model, tx=tx, schedule=schedule))
    for _ in range(2):
        state, _ = plain(state, batch())
    assert plain._cache_size() == 1


@pytest.mark.slow
def test_evaluation_compiles_once_per_frame_size():
    model = EDVR(**TINY)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 3, 8, 8, 3)))
    restorer = Restorer(model, variables, batch_size=4)
    rng = np.random.default_rng(1)
    for n in (3, 4, 7, 1):  # last batches of every length are padded to the same shape
        restorer(rng.uniform(size=(n, 3, 8, 12, 3)).astype(np.float32))
    assert restorer.shapes == {(4, 3, 8, 12, 3)}
    restorer(rng.uniform(size=(2, 3, 12, 12, 3)).astype(np.float32))
    assert len(restorer.shapes) == 2
