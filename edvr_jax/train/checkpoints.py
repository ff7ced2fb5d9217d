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
import orbax.checkpoint as ocp

from edvr_jax.convert.saved import (  # noqa: F401  (re-exported: reading a workdir lives there)
    _HANDLERS,
    MODEL_JSON,
    latest_complete_step,
    load_workdir_model,
    orbax_reason,
    quiet_orbax,
    restore_to_host,
)
from edvr_jax.errors import UserError


def make_manager(workdir: str | pathlib.Path, keep: int = 3) -> ocp.CheckpointManager:
    directory = pathlib.Path(workdir).absolute() / "checkpoints"
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=True,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(directory, options=options, item_handlers=_HANDLERS())


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


def write_run_files(workdir: pathlib.Path, config_json: str, model_arch: dict) -> None:
    if jax.process_index() != 0:
        return
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config_json)
    (workdir / MODEL_JSON).write_text(json.dumps(model_arch, indent=2))


