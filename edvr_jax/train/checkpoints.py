"""Training checkpoints in a workdir, with orbax.

    workdir/
      config.json          the run's configuration (written once)
      model.json           the architecture (edvr_jax.convert.api.architecture_of)
      checkpoints/<step>/  orbax CheckpointManager steps: the whole TrainState
      export/              the final model, as written by edvr_jax.convert.api.save_model

Saves are asynchronous and atomic: orbax writes into a temporary folder and renames it
when complete, so a process killed during a save leaves the previous step as the latest
and the temporary folder is cleaned up at the next start.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from edvr_jax.convert.loader import ConversionError
from edvr_jax.errors import UserError

MODEL_JSON = "model.json"


def make_manager(workdir: str | pathlib.Path, keep: int = 3) -> ocp.CheckpointManager:
    directory = pathlib.Path(workdir).absolute() / "checkpoints"
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=True,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(directory, options=options, item_handlers=_HANDLERS())


def _HANDLERS() -> dict:
    return {"state": ocp.StandardCheckpointHandler()}


def save(manager: ocp.CheckpointManager, step: int, state: Any, *, force: bool = False) -> bool:
    return manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)), force=force)


class CheckpointWriteError(UserError, OSError):
    """A checkpoint could not be written (disk full, read-only or vanished folder, ...).

    The message names the step, the folder and the reason, and the latest complete
    checkpoint, which is intact: orbax renames a save into place only once it is whole.
    """


class Saver:
    """Asynchronous saves whose failures surface as one CheckpointWriteError, as soon as the
    background write reports them (``check``, called every step) or at the next save/wait."""

    def __init__(self, manager: ocp.CheckpointManager):
        self.manager = manager
        self.pending: int | None = None  # the step whose save was started last
        ignore_closed_loop_noise()

    @contextlib.contextmanager
    def _guard(self, step: int | None):
        try:
            yield
        except (ValueError, OSError, RuntimeError) as e:
            failed = self.pending if self.pending is not None else step
            directory = pathlib.Path(self.manager.directory)
            latest = latest_complete_step(directory)
            kept = (f"checkpoint {latest} is intact and the same command resumes from it"
                    if latest is not None else "no complete checkpoint exists yet")
            raise CheckpointWriteError(
                f"could not write checkpoint {failed} in {directory}: {orbax_reason(e)}; "
                f"{kept} once the folder is writable and has room") from None

    def save(self, step: int, state: Any) -> None:
        with self._guard(step):
            save(self.manager, step, state, force=True)
        self.pending = step

    def check(self) -> None:
        """Raises if the last save has finished and failed; never blocks."""
        if self.pending is not None and not self.manager.is_saving_in_progress():
            self.wait()  # returns at once: the background save is over

    def wait(self) -> None:
        with self._guard(None):
            self.manager.wait_until_finished()
        self.pending = None


def latest_complete_step(directory: pathlib.Path) -> int | None:
    """The newest complete checkpoint step in ``directory`` (read only), or None."""
    if not directory.is_dir():
        return None
    return ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True)).latest_step()


def check_writable(workdir: pathlib.Path) -> None:
    """Creates ``workdir/checkpoints`` and writes a probe file there: a workdir that cannot
    hold checkpoints fails now, with its path, rather than after the first steps."""
    folder = workdir / "checkpoints"
    probe = folder / f".write_probe.{jax.process_index()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"probe")
        probe.unlink()
    except OSError as e:
        raise CheckpointWriteError(f"workdir {workdir}: cannot write checkpoints to {folder}: "
                                   f"{e.strerror or e} ({e.filename or folder}); expected a "
                                   f"writable folder") from None


def restore(manager: ocp.CheckpointManager, abstract_state: Any, step: int | None = None) -> Any:
    """The TrainState at ``step`` (default: the latest complete one), shaped like ``abstract_state``."""
    step = manager.latest_step() if step is None else step
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"]


def restore_to_host(workdir: str | pathlib.Path, step: int | None = None) -> tuple[dict, int]:
    """(state as nested dicts of numpy arrays, step) whatever topology saved it.

    A checkpoint written on 8 devices or a TPU pod restores on a laptop: the target is
    built from the checkpoint's own metadata as host arrays.
    """
    directory = pathlib.Path(workdir).absolute() / "checkpoints"
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True),
                                    item_handlers=_HANDLERS())
    step = manager.latest_step() if step is None else step
    if step is None:
        partial = sorted(p.name for p in directory.glob("*.orbax-checkpoint-tmp*"))
        found = (f"only {', '.join(partial)}, left by an interrupted save" if partial
                 else "it is empty" if directory.is_dir() else "the folder does not exist")
        raise ConversionError(f"{directory} holds no complete checkpoint yet ({found})")
    try:
        with quiet_orbax():
            meta = manager.item_metadata(step)["state"]
            target = jax.tree_util.tree_map(lambda m: np.zeros(m.shape, m.dtype), meta)
            state = manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target)))
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise ConversionError(f"{directory / str(step)}: cannot read the checkpoint "
                              f"({orbax_reason(e)})") from None
    return state["state"], step


def ignore_closed_loop_noise() -> None:
    """After a failed orbax write or read, TensorStore callbacks still pending reach an
    asyncio loop that orbax has closed, and Python prints each as an unraisable
    ``RuntimeError: Event loop is closed`` traceback. Those (and only those) are dropped;
    the failure itself is reported as one line by the caller."""
    import sys

    hook = sys.unraisablehook
    if getattr(hook, "_edvr_jax", False):
        return

    def filtered(unraisable):
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
            return
        hook(unraisable)

    filtered._edvr_jax = True
    sys.unraisablehook = filtered


@contextlib.contextmanager
def quiet_orbax():
    """orbax logs a failed read with tracebacks (absl logger, ERROR) before raising; callers
    report the failure as one line instead."""
    import logging

    ignore_closed_loop_noise()
    logger = logging.getLogger("absl")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(old)


def orbax_reason(e: BaseException) -> str:
    """The informative part of an orbax/TensorStore error, on one line."""
    import re

    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    code = re.search(r"os_error_code='?(\d+)", text)
    if code:
        import os

        where = re.search(r'(?:Failed writing|Error reading|local file):? "([^"]+)"', text)
        return os.strerror(int(code.group(1))) + (f" (at {where.group(1)})" if where else "")
    return text[:400]


def write_run_files(workdir: pathlib.Path, config_json: str, model_arch: dict) -> None:
    if jax.process_index() != 0:
        return
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config_json)
    (workdir / MODEL_JSON).write_text(json.dumps(model_arch, indent=2))


def load_workdir_model(workdir: str | pathlib.Path, *, param_key: str | None = None, **overrides):
    """(model, variables) from a training workdir.

    ``param_key=None`` takes the final export when the run finished, else the latest
    checkpoint's EMA parameters when the run keeps an EMA, else its parameters;
    ``'params'`` / ``'params_ema'`` pick from the latest checkpoint explicitly.
    """
    from edvr_jax.convert.api import (
        MODEL_FILE,
        abstract_model_params,
        load_saved_model,
        model_from_architecture,
    )

    workdir = pathlib.Path(workdir).absolute()
    export = workdir / "export" / MODEL_FILE
    if param_key is None and export.exists():
        # The export is the final model of a finished run, unless a resumed run has
        # checkpointed past it since.
        exported_at = json.loads(export.read_text()).get("step", 0)
        latest = latest_complete_step(workdir / "checkpoints")
        if latest is None or exported_at >= latest:
            return load_saved_model(workdir / "export", **overrides)
    arch_file = workdir / MODEL_JSON
    if not arch_file.exists():
        hint = ("; it is the temporary folder of an interrupted save (edvr-convert / save_model): "
                "run the conversion again" if workdir.name.endswith(".tmp-edvr") else "")
        raise ConversionError(f"{workdir}: neither an edvr_jax model directory ({MODEL_FILE}) nor a "
                              f"training workdir ({MODEL_JSON}, checkpoints/){hint}")
    model = model_from_architecture(json.loads(arch_file.read_text()), **overrides)
    state, step = restore_to_host(workdir)
    if param_key not in (None, "params", "params_ema"):
        raise ConversionError(f"param_key must be params or params_ema, got {param_key!r}")
    want_ema = param_key == "params_ema" or (param_key is None and state.get("ema_params") is not None)
    params = state.get("ema_params") if want_ema else state["params"]
    if params is None:
        raise ConversionError(f"{workdir}: the run keeps no EMA parameters (train.ema_decay = 0)")
    # Orbax restores plain containers; check the tree against the architecture.
    expected = jax.tree_util.tree_structure(abstract_model_params(model))
    if jax.tree_util.tree_structure(params) != expected:
        raise ConversionError(f"{workdir}: checkpoint {step} does not match {MODEL_JSON}")
    return model, {"params": params}
