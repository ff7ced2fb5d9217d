"""``train_and_evaluate(config, workdir)``: the training run, resumable from its workdir.

A chain of short functions in the style of the flax examples: build the model, the
data and the optimizer, restore or initialise the state, then loop over steps with a
jitted data-parallel step, periodic logging, checkpoints and validation.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from edvr_jax.convert.loader import abstract_params
from edvr_jax.errors import UserError
from edvr_jax.models import EDVR, init_input, warn_large_offsets
from edvr_jax.train import checkpoints
from edvr_jax.train.config import model_kwargs
from edvr_jax.train.faults import NO_FAULTS, FaultHooks
from edvr_jax.train.optim import make_optimizer, train_phases
from edvr_jax.train.schedule import cosine_restart_schedule
from edvr_jax.train.state import TrainState
from edvr_jax.train.step import (
    PhasedStep,
    compile_train_step,
    global_batch,
    make_mesh,
    place_state,
    replicated,
)

log = logging.getLogger("edvr_jax.train")


class TrainingError(UserError, RuntimeError):
    """A run that cannot continue (divergence, bad configuration); the message says why."""


class Preempted(Exception):
    """SIGTERM (or a preemption notice) arrived; a checkpoint was written."""

    def __init__(self, step: int):
        super().__init__(f"stopped by SIGTERM at step {step}; checkpoint {step} saved, "
                         "run the same command to resume")
        self.step = step


def create_model(config: ml_collections.ConfigDict) -> EDVR:
    dtypes = {"float32": None, "bfloat16": jnp.bfloat16}
    if config.train.compute_dtype not in dtypes:
        raise TrainingError(f"train.compute_dtype must be float32 or bfloat16, got "
                            f"{config.train.compute_dtype!r}")
    return EDVR(**model_kwargs(config), dtype=dtypes[config.train.compute_dtype])


def create_clipsets(config: ml_collections.ConfigDict):
    """(training clips, validation clips) for ``config.data``. With ``data.lq_root`` (any
    file dataset but ``folder``, whose LQ tree it is anyway) the LQ frames are the restored
    frames there (``edvr-data stage1``): a stage-2 model's input, scale 1."""
    from edvr_jax.data.restored import with_restored_lq

    train, val = _source_clipsets(config)
    if not restored_lq(config):
        return train, val
    lq_root = config.data.lq_root
    return (with_restored_lq(train, lq_root),
            None if val is None or config.eval.dataset else with_restored_lq(val, lq_root))


def restored_lq(config: ml_collections.ConfigDict) -> bool:
    """Whether the LQ frames are stage-1 outputs (``data.lq_root`` of a non-folder dataset):
    validation then reports their scores beside the model's."""
    return bool(config.data.lq_root) and config.data.dataset != "folder"


def _source_clipsets(config: ml_collections.ConfigDict):
    from edvr_jax import data

    d = config.data
    common = dict(task=d.task, partition=d.partition, num_frame=config.model.num_frame)
    if d.dataset == "demo":
        demo = dict(num_clips=d.demo_clips, num_frames=d.demo_frames, gt_size=(d.demo_size, d.demo_size))
        root = d.root or None
        return (data.demo_clipset(root, split="train", **demo), data.demo_clipset(root, split="val", **demo))
    if d.dataset == "folder":
        folder = dict(gt_root=d.root, lq_root=d.lq_root, scale=d.scale)
        return data.get_clipset("folder", None, **folder), None
    train = data.get_clipset(d.dataset, d.root, split="train", **common)
    if config.eval.dataset:
        return train, data.get_clipset(config.eval.dataset, config.eval.root or None,
                                       num_frame=config.model.num_frame)
    try:
        val = data.get_clipset(d.dataset, d.root, split="val", **common)
    except data.DatasetError as e:
        log.warning("no validation clips (%s); periodic validation is off", e)
        val = None
    return train, val


def create_optimizer(config: ml_collections.ConfigDict, params: Any):
    t = config.train
    schedule = cosine_restart_schedule(t.lr, list(t.periods), list(t.restart_weights), t.eta_min)
    tx = make_optimizer(params, schedule, b1=t.b1, b2=t.b2, weight_decay=t.weight_decay,
                        dcn_lr_mul=t.dcn_lr_mul, tsa_iter=t.tsa_iter,
                        grad_clip_norm=t.grad_clip_norm or None, frozen=list(t.frozen))
    return tx, schedule


def initial_params(config: ml_collections.ConfigDict, model: EDVR, mesh) -> tuple[Any, dict]:
    """Fresh parameters (BasicSR's initialisation), optionally overlaid from ``train.init_from``
    (read first, so that a bad file fails before anything is computed)."""
    init_sd = read_init_state_dict(config) if config.train.init_from else None
    key = jax.random.fold_in(jax.random.key(config.train.seed), 0)
    params = jax.jit(lambda k: model.init(k, init_input(model))["params"],
                     out_shardings=replicated(mesh))(key)
    report: dict = {}
    if init_sd is not None:
        params, report = overlay_state_dict(config.train.init_from, init_sd, model, params)
    return params, report


def read_init_state_dict(config: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
    """BasicSR-named tensors of ``train.init_from``: a ``.pth`` (any EDVR, whatever its
    architecture), an edvr_jax model directory or a training workdir. Unreadable, hostile or
    non-EDVR files raise TrainingError naming ``train.init_from`` and the file."""
    from edvr_jax.convert import keymap
    from edvr_jax.convert.api import load_model
    from edvr_jax.convert.loader import (
        ConversionError,
        find_state_dict,
        infer_architecture,
        to_basicsr_names,
    )
    from edvr_jax.convert.pth import CheckpointError, load_pth

    src, key = config.train.init_from, config.train.init_param_key or None
    try:
        if pathlib.Path(src).is_file():
            sd, _ = find_state_dict(load_pth(src), key, source=src)
            sd, _ = to_basicsr_names(sd)
            infer_architecture(sd, source=src)  # refuses a state_dict of another network
            return sd
        _, variables = load_model(src, param_key=key)
    except (FileNotFoundError, ConversionError, CheckpointError) as e:
        raise TrainingError(f"train.init_from: {e}") from None
    return keymap.params_to_state_dict(variables["params"])


def overlay_state_dict(source: str, sd: dict, model, params):
    """Non-strict load (BasicSR ``strict_load_g: false``): matching tensors replace the fresh
    ones; each missing, unexpected or misshapen key is logged and keeps its fresh value."""
    from edvr_jax.convert.loader import merge_params, state_dict_to_params

    loaded, keys, problems = state_dict_to_params(sd, model, strict=False, source=source)
    if not keys:
        raise TrainingError(f"train.init_from: no tensor of {source} fits the model "
                            f"({'; '.join(problems[:3])}; ...)")
    merged = merge_params(loaded, jax.device_get(params))
    for p in problems:
        log.warning("init_from %s: %s (kept the fresh initialisation)", source, p)
    log.info("init_from %s: loaded %d tensors, skipped %d", source, len(keys), len(problems))
    return jax.tree_util.tree_map(jnp.asarray, merged), {"loaded": keys, "skipped": problems}


@dataclasses.dataclass(frozen=True)
class RunStart:
    """Where a run starts: its TrainState, the optimizer and schedule it was built with,
    what ``train.init_from`` loaded (or ``{"resumed": True}``) and the step."""

    state: TrainState
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    init_report: dict
    step: int


def abstract_state(config, model, mesh):
    """``(state, tx, schedule)`` with the TrainState as ``jax.ShapeDtypeStruct`` leaves placed
    as the compiled step holds it (replicated on ``mesh``); nothing is computed or allocated."""
    shapes = abstract_params(model)
    tx, schedule = create_optimizer(config, shapes)
    abstract = jax.eval_shape(lambda: TrainState.create(
        jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes), tx,
        config.train.ema_decay > 0))
    rep = replicated(mesh)
    abstract = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=rep), abstract)
    return abstract, tx, schedule


def create_train_step(config, model, params, tx, schedule, mesh) -> PhasedStep:
    """The jitted data-parallel step of every training phase (``compile_train_step``) for
    ``config``; ``params`` may be abstract (only their tree and names are read)."""
    phases = train_phases(params, config.train.tsa_iter, list(config.train.frozen))
    return compile_train_step(mesh, phases, model=model, tx=tx, schedule=schedule,
                              loss_reduction=config.train.loss_reduction,
                              loss_eps=config.train.loss_eps,
                              ema_decay=config.train.ema_decay or None)


def batch_shapes(config, model, scale: int) -> dict[str, tuple[int, ...]]:
    """Global shapes of one training batch: ``lq (B, T, h, w, 3)`` and ``gt (B, H, W, 3)``."""
    b, gt = config.train.batch_size, config.data.gt_size
    lq = gt // scale
    return {"lq": (b, model.num_frame, lq, lq, model.num_in_ch), "gt": (b, gt, gt, 3)}


def check_run(config, model, mesh, scale: int) -> None:
    """Refuses (TrainingError, one line) a batch that does not split over the devices or a
    crop the model cannot take."""
    _check_batch_size(config, mesh)
    _check_crop(config, model, scale)


def create_state(config, model, mesh, manager) -> RunStart:
    """The TrainState: restored from the latest checkpoint, or freshly initialised.

    The optimizer is built once, from the parameters' shapes. On resume nothing is
    initialised: the restore target is built abstractly with ``jax.eval_shape``.
    """
    abstract, tx, schedule = abstract_state(config, model, mesh)
    start = manager.latest_step()
    if start is None:
        params, report = initial_params(config, model, mesh)
        state = TrainState.create(params, tx, config.train.ema_decay > 0)
        return RunStart(place_state(state, mesh), tx, schedule, report, 0)
    state = checkpoints.restore(manager, abstract, start)
    log.info("resumed from %s at step %d", manager.directory, start)
    return RunStart(state, tx, schedule, {"resumed": True}, int(start))


def create_train_iterator(config, clips, start_step: int):
    """Numpy batches from ``start_step`` on; a bad frame raises DatasetError naming it."""
    from edvr_jax import data

    d, t = config.data, config.train
    return data.iterate_batches(
        clips, num_frame=config.model.num_frame, gt_size=d.gt_size, scale=clips.scale,
        interval_list=tuple(d.interval_list), random_reverse=d.random_reverse,
        use_hflip=d.use_hflip, use_rot=d.use_rot, seed=t.seed, start_step=start_step,
        global_batch_size=t.batch_size, process_index=jax.process_index(),
        process_count=jax.process_count())


def _check_batch_size(config, mesh) -> None:
    n = mesh.devices.size
    if config.train.batch_size % n:
        raise TrainingError(f"train.batch_size={config.train.batch_size} must be a multiple of the "
                            f"{n} devices (each device takes an equal slice)")


def _check_crop(config, model, scale: int) -> None:
    gt, m = config.data.gt_size, model.size_multiple
    lq = gt // scale
    if gt % scale or lq % m:
        raise TrainingError(f"data.gt_size={gt} gives LQ crops of {lq}x{lq} (gt_size / scale "
                            f"{scale}), but EDVR needs a multiple of {m}: use a data.gt_size that "
                            f"is a multiple of {m * scale}")


class _SigtermFlag:
    """Remembers a SIGTERM instead of dying, so the loop can checkpoint first."""

    def __init__(self):
        self.raised = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)

    def agreed(self, step: int) -> bool:
        """Whether every process stops after ``step``. One process: its own flag and orbax's
        preemption sync point, every step. Several: a host signalled alone must not leave the
        others blocked in the next collective, so the flags are all-gathered, every
        ``STOP_CHECK_EVERY`` steps (the same steps on every host, one host round-trip each)."""
        if jax.process_count() == 1:
            return self.raised
        if step % STOP_CHECK_EVERY:
            return False
        from jax.experimental import multihost_utils

        return bool(np.any(multihost_utils.process_allgather(np.array([self.raised], np.int32))))


STOP_CHECK_EVERY = 4  # multi-process runs: steps between all-gathers of the SIGTERM flags


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                       faults: FaultHooks = NO_FAULTS) -> dict:
    """Trains (or resumes) in ``workdir``; returns the last logged metrics and validation."""
    from edvr_jax.convert.api import architecture_of, save_model
    from edvr_jax.train.reporting import Reporter

    workdir = pathlib.Path(workdir).absolute()
    mesh = make_mesh()
    _check_batch_size(config, mesh)
    model = create_model(config)
    train_clips, val_clips = create_clipsets(config)
    if train_clips.scale != model.scale:
        raise TrainingError(f"the data has scale {train_clips.scale} but the model outputs "
                            f"x{model.scale} (hr_in={model.hr_in}); check data.task / model.hr_in")
    _check_crop(config, model, train_clips.scale)
    checkpoints.check_writable(workdir)
    checkpoints.write_run_files(workdir, config.to_json_best_effort(indent=2),
                                architecture_of(model.clone(dtype=None)))
    manager = checkpoints.make_manager(workdir, config.train.keep_checkpoints)
    saver = checkpoints.Saver(manager)
    # The data (its frame headers) is checked before any parameter is initialised.
    batches = create_train_iterator(config, train_clips, manager.latest_step() or 0)

    run_start = create_state(config, model, mesh, manager)
    state, tx, schedule, init_report, start = (run_start.state, run_start.tx, run_start.schedule,
                                               run_start.init_report, run_start.step)
    step_fn = create_train_step(config, model, state.params, tx, schedule, mesh)
    reporter = Reporter(config, workdir, start=start, total=config.train.num_steps)
    summary: dict[str, Any] = {"init": init_report, "resumed_from": start}
    last_saved = start
    t = config.train
    with _SigtermFlag() as sigterm:
        for step in range(start, t.num_steps):
            local = faults.maybe_poison(step + 1, next(batches))
            state, metrics = step_fn(state, global_batch(local, mesh), step)
            done = step + 1
            faults.maybe_kill("step", done)
            saver.check()  # a background save that failed (disk full, ...) stops the run now
            reporter.step(done, metrics)
            checked = False
            if done % t.log_every == 0 or done == t.num_steps:
                logged = reporter.log(done)
                _check_finite(state, saver, last_saved)
                checked = True
                warn_large_offsets({k[7:]: v for k, v in logged.items() if k.startswith("offset/")})
                summary["train"] = logged
            if config.eval.every and val_clips is not None and done % config.eval.every == 0:
                summary["val"] = validate(config, model, state, val_clips, mesh, reporter, done,
                                          faults=faults)
            preempted = sigterm.agreed(done) or manager.reached_preemption(done)
            if done % t.checkpoint_every == 0 or done == t.num_steps or preempted:
                if not checked:  # the state has not changed since the check at the log
                    _check_finite(state, saver, last_saved)
                saver.save(done, state)
                faults.maybe_kill("save", done)
                last_saved = done
            if preempted:
                saver.wait()
                reporter.close()
                raise Preempted(done)
    saver.wait()
    # A run resumed after its last step has nothing left to do once its export exists; one
    # stopped between its last save and its export only writes the export.
    finished_before = start >= t.num_steps
    if not (finished_before and _exported_step(workdir) == start):
        faults.maybe_kill("export", int(state.step))
        final = state.ema_params if state.ema_params is not None else state.params
        save_model(workdir / "export", model.clone(dtype=None), jax.device_get(final), overwrite=True,
                   extra={"step": int(state.step),
                          "param_key": "params_ema" if state.ema_params is not None else "params"})
    if not finished_before and config.eval.every and val_clips is not None and "val" not in summary:
        summary["val"] = validate(config, model, state, val_clips, mesh, reporter, int(state.step),
                                  faults=faults)
    reporter.close()
    summary["step"] = int(state.step)
    if not finished_before and jax.process_index() == 0:
        (workdir / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2))
    return summary


def _exported_step(workdir: pathlib.Path) -> int | None:
    from edvr_jax.convert.api import MODEL_FILE

    try:
        return json.loads((workdir / "export" / MODEL_FILE).read_text()).get("step")
    except (OSError, ValueError):
        return None


def _check_finite(state: TrainState, saver, last_saved: int) -> None:
    bad = int(jax.device_get(state.first_nonfinite_step))
    if bad >= 0:
        saver.wait()
        raise TrainingError(
            f"loss or gradient became NaN/inf at step {bad + 1}; stopped without saving. "
            f"The last good checkpoint is step {saver.manager.latest_step() or last_saved} "
            "(lower train.lr or train.dcn_lr_mul, or set train.grad_clip_norm)")


def limit_clips(clips, max_clips: int | None = None, max_frames: int | None = None):
    """The first ``max_clips`` clips, each cut to its first ``max_frames`` frames (for cheap
    periodic validation; the cut clip is scored as if it ended there)."""
    import dataclasses

    if max_clips:
        clips = clips.subset(clips.names[:max_clips])
    if max_frames:
        cut = tuple(dataclasses.replace(c, lq_paths=c.lq_paths[:max_frames], gt_paths=c.gt_paths[:max_frames])
                    for c in clips.clips)
        clips = dataclasses.replace(clips, clips=cut)
    return clips


def validate(config, model, state, clips, mesh, reporter, step: int, *,
             faults: FaultHooks = NO_FAULTS) -> dict:
    """PSNR/SSIM on the held-out clips with BasicSR's protocol (uint8 rounding, padding),
    plus an image grid (bicubic | output | GT of the first clip's middle frame). A model whose
    outputs are NaN/inf stops the run (TrainingError naming clip and frame)."""
    from edvr_jax.evaluate.evaluation import EvaluationError, evaluate_clipset
    from edvr_jax.evaluate.protocols import temporal_padding

    params = jax.device_get(state.ema_params if state.ema_params is not None else state.params)
    e = config.eval
    padding = e.padding or temporal_padding(model, config.data.get("task"))
    clips = limit_clips(clips, e.max_clips, e.max_frames)
    t0 = time.perf_counter()
    faults.maybe_kill("validation", step)
    try:
        result = evaluate_clipset(
            model.clone(dtype=None), {"params": params}, clips, padding=padding,
            test_y_channel=e.test_y_channel, crop_border=e.crop_border, batch_size=e.batch_size,
            progress=False, stage1_input=restored_lq(config))
    except EvaluationError as err:
        raise TrainingError(f"validation at step {step}: {err}") from None
    result["preview"] = comparison_grid(model.clone(dtype=None), params, clips.clips[0], padding)
    if e.get("inspect", True):
        result["inspection"] = inspection_pictures(model.clone(dtype=None), params, clips.clips[0],
                                                   padding)
    reporter.validation(step, result, time.perf_counter() - t0)
    return result["mean"]


def comparison_grid(model, params, clip, padding: str, index: int | None = None) -> np.ndarray:
    """uint8 (H, 3W + 8, 3): MATLAB-bicubic LQ | model output | GT for one frame of ``clip``."""
    from edvr_jax.data import imresize_bicubic, read_window
    from edvr_jax.evaluate import Restorer, generate_frame_indices

    n = clip.num_frames
    index = n // 2 if index is None else index
    lq, gt = read_window(clip, generate_frame_indices(index, n, model.num_frame, padding), index)
    # Restorer's jitted forward is keyed on the model: periodic validation compiles it once.
    out = Restorer(model, {"params": params}, mesh=None)(lq[None])[0]
    centre = lq[model.center]
    bic = imresize_bicubic(centre, model.scale) if model.scale > 1 else centre
    from edvr_jax.frames import tensor_to_uint8 as to8

    gap = np.full((gt.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([to8(bic), gap, to8(out), gap, to8(gt)], axis=1)


def inspection_pictures(model, params, clip, padding: str, index: int | None = None) -> dict:
    """``{tag: uint8 image}``: edvr-inspect's offset and attention pictures for the middle
    frame of ``clip`` (``edvr_jax.inspection.report.summary_pictures``), for TensorBoard, so
    that an exploding alignment shows while it happens."""
    from edvr_jax.data import read_window
    from edvr_jax.evaluate import generate_frame_indices
    from edvr_jax.inspection import inspect_window
    from edvr_jax.inspection.report import summary_pictures

    n = clip.num_frames
    index = n // 2 if index is None else index
    lq, _ = read_window(clip, generate_frame_indices(index, n, model.num_frame, padding), index)
    return summary_pictures(inspect_window(model, {"params": params}, lq))


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic | jax.Array):
        return np.asarray(x).item()
    return x
