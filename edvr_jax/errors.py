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

import argparse
import sys
from collections.abc import Callable

__all__ = ["EXIT_INTERRUPTED", "Interrupted", "UserError", "accept_underscores", "counted", "run_cli"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


class UserError(Exception):
    """A user mistake; ``str(error)`` is one line for the user."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what had been done; ``str(error)`` completes the line ``<tool>:
    interrupted ...``, e.g. ``after 18 of 40 frames; nothing was written`` or ``; nothing
    was written``."""


def run_cli(tool: str, main_fn: Callable[[], int | None], *, exit_code: int = 2,
            also: tuple[type[BaseException], ...] = ()) -> int:
    """Runs ``main_fn()`` and returns its exit status (0 if it returns None). A ``UserError``
    (or one of ``also``, e.g. ``FileNotFoundError`` from the file system) becomes one line
    ``<tool>: error: <message>`` on stderr and ``exit_code``, without a traceback. Ctrl-C
    becomes one line ``<tool>: interrupted`` (completed by an ``Interrupted``'s message) and
    exit status 130; further Ctrl-Cs, while cleaning up and exiting, are ignored. The
    process-wide settings every tool shares (``edvr_jax.process``) are applied first."""
    from edvr_jax.process import configure_tool_process, interrupt_once

    configure_tool_process()
    with interrupt_once():
        try:
            status = main_fn()
        except (UserError, *also) as e:
            print(f"{tool}: error: {e}", file=sys.stderr)
            return exit_code
        except KeyboardInterrupt as e:
            detail = str(e) if isinstance(e, Interrupted) else ""
            sep = "" if not detail or detail[0] in ";,:" else " "
            print(f"{tool}: interrupted{sep}{detail}", file=sys.stderr)
            return EXIT_INTERRUPTED
    return 0 if status is None else status


def accept_underscores(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Every ``--two-words`` option of ``parser`` (and its sub-commands) also answers to
    ``--two_words``, as every tool's flags do; help shows the hyphen spelling only (the one
    documented). Returns ``parser``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                accept_underscores(sub)
            continue
        for opt in list(action.option_strings):
            alias = "--" + opt[2:].replace("-", "_")
            if opt.startswith("--") and alias not in parser._option_string_actions:
                parser._option_string_actions[alias] = action
    return parser


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 clip"``, ``"3 clips"``, ``"0 notes"``: a count in the tools' messages."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
