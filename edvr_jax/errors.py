"""One error type for user mistakes, and the one way every command-line tool reports them.

A ``UserError`` is something the user can fix (a missing file, data that does not fit the
model, a bad option); its message is one line that names the file, key or shape. The
package's specific errors (``DatasetError``, ``ConversionError``, ``CheckpointError``,
``EvaluationError``, ``WindowError``, ``RestoreError``, ``TrainingError``,
``CheckpointWriteError``) subclass it, so a caller can catch them all at once. Anything
else is a bug and keeps its traceback.

This module imports nothing heavy: the tools import it before JAX or TensorFlow.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["UserError", "run_cli"]


class UserError(Exception):
    """A user mistake; ``str(error)`` is one line for the user."""


def run_cli(tool: str, main_fn: Callable[[], int | None], *, exit_code: int = 2,
            also: tuple[type[BaseException], ...] = ()) -> int:
    """Runs ``main_fn()`` and returns its exit status (0 if it returns None). A ``UserError``
    (or one of ``also``, e.g. ``FileNotFoundError`` from the file system) becomes one line
    ``<tool>: error: <message>`` on stderr and ``exit_code``, without a traceback. The
    process-wide settings every tool shares (``edvr_jax.process``) are applied first."""
    from edvr_jax.process import configure_tool_process

    configure_tool_process()
    try:
        status = main_fn()
    except (UserError, *also) as e:
        print(f"{tool}: error: {e}", file=sys.stderr)
        return exit_code
    return 0 if status is None else status
