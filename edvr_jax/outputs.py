"""Outputs that appear whole or not at all: the tools write under a temporary name next to
the final one and rename it into place on success.

A temporary name is a hidden sibling, ``.<name>.partial-<pid>[<ext>]`` (the extension kept,
so that FFmpeg picks the right container). On any failure, Ctrl-C included, it is removed,
so an interrupted ``edvr-restore``, ``eval.py --save_images/--out`` or ``edvr-convert``
leaves no output that looks complete; a killed process (SIGKILL) may leave a ``.partial-``
entry, never the final name. Files get the mode the umask gives (0644 typically).

This module imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

__all__ = ["file_mode", "partial_name", "replacing_file", "replacing_folder"]


def file_mode() -> int:
    """0o666 minus the process umask: the mode ``open()`` gives a new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def partial_name(path: str | os.PathLike) -> str:
    """The temporary sibling of ``path``: ``dir/.name.partial-<pid>`` keeping the extension."""
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.partial-{os.getpid()}{ext}")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


@contextlib.contextmanager
def replacing_file(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary file name to write; on success it replaces ``path`` (atomically,
    with the umask's mode), on failure it is removed."""
    tmp = partial_name(path)
    os.makedirs(os.path.dirname(tmp), exist_ok=True)
    try:
        yield tmp
        if os.path.exists(tmp):  # nothing written, nothing replaced
            os.chmod(tmp, file_mode())
            os.replace(tmp, os.fspath(path))
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def replacing_folder(path: str | os.PathLike, *, merge: bool = False) -> Iterator[str]:
    """Yields a new temporary folder to fill; on success it becomes ``path``, on failure it
    is removed. An existing ``path`` is replaced as a whole, or with ``merge`` kept, the
    new files moved into it (replacing files of the same name)."""
    path = os.path.abspath(os.fspath(path))
    tmp = partial_name(path)
    try:  # creating it is inside: a Ctrl-C just after the folder appears removes it too
        _remove(tmp)
        os.makedirs(tmp)
        yield tmp
        if not os.path.exists(path):
            os.rename(tmp, path)
        elif merge:
            for root, _dirs, files in os.walk(tmp):
                dest = os.path.join(path, os.path.relpath(root, tmp))
                os.makedirs(dest, exist_ok=True)
                for f in files:
                    os.replace(os.path.join(root, f), os.path.join(dest, f))
            shutil.rmtree(tmp)
        else:
            old = partial_name(path) + ".old"
            os.rename(path, old)
            os.rename(tmp, path)
            _remove(old)
    except BaseException:
        _remove(tmp)
        raise
