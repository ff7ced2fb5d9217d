"""Process-wide settings owned by the entry points, applied once per process.

Library modules change nothing global at import: no environment variables, no logger
levels, no interpreter hooks. Every command-line tool calls ``configure_tool_process()``
first (``edvr_jax.errors.run_cli`` does it), before TensorFlow or JAX is imported:

* ``TF_CPP_MIN_LOG_LEVEL=2`` and ``TF_ENABLE_ONEDNN_OPTS=0`` unless set: TensorFlow's C++
  start-up lines (``oneDNN custom operations are on ...`` and absl's ``WARNING: All log
  messages before absl::InitializeLog() ...``, which the log level alone does not stop).
  The tools use TensorFlow only to read and augment uint8 frames, where oneDNN changes no
  result;
* absl, orbax and asyncio loggers at CRITICAL, tensorflow and jax internals at ERROR: a
  failed checkpoint read or write is reported by the tool as one line, not as the
  libraries' tracebacks (set ``EDVR_JAX_VERBOSE=1`` to keep every library's logs);
* an ``sys.unraisablehook`` filter for one message only: after a failed orbax write or
  read, TensorStore callbacks still pending reach an asyncio loop orbax has closed, and
  Python would print each as an unraisable ``RuntimeError: Event loop is closed``.

``interrupt_once()`` (entered by ``run_cli`` around the tool's work) makes the first Ctrl-C
raise ``KeyboardInterrupt`` as usual and ignores every later one, and SIGINT is ignored
from the moment the interpreter starts exiting: cleaning up after a Ctrl-C (removing a
partial output) and JAX's exit hooks (``clear_backends``) are not cut short by a second
Ctrl-C, which would print a traceback; after a Ctrl-C, the "coroutine ... was never
awaited" warnings of writes orbax had under way are not printed. The previous handler is
restored when the tool's work ends without a Ctrl-C (so in-process callers, e.g. tests,
keep theirs). ``deferred_interrupt()`` holds a Ctrl-C until a block that must not be cut
midway (a model folder's orbax save) has ended.

Hiding GPUs from TensorFlow (so that it reserves no accelerator memory JAX needs) is done
where a tf.data pipeline is built (``edvr_jax.data.hide_accelerators_from_tf``), not here.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import warnings

__all__ = ["configure_compile_only_tpu", "configure_tool_process", "deferred_interrupt", "interrupt_once"]

_QUIET = {"absl": logging.CRITICAL, "orbax": logging.CRITICAL, "asyncio": logging.CRITICAL,
          "tensorflow": logging.ERROR, "jax._src": logging.ERROR}
_configured = False
_exit_hook = False


def _drop_closed_loop_noise(hook):
    def filtered(unraisable):
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
            return
        hook(unraisable)

    return filtered


def configure_tool_process() -> None:
    """Applies the settings above; later calls do nothing."""
    global _configured
    if _configured:
        return
    _configured = True
    if os.environ.get("EDVR_JAX_VERBOSE", "") not in ("", "0"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    sys.unraisablehook = _drop_closed_loop_noise(sys.unraisablehook)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _raise_once(signum, frame):
    _ignore_sigint()
    # Work the libraries had under way is dropped; orbax's pending writes would each be
    # reported at exit as "RuntimeWarning: coroutine ... was never awaited".
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited",
                            category=RuntimeWarning)
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_once():
    """See the module docstring. Does nothing outside the main thread."""
    global _exit_hook
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _raise_once)
    try:
        yield
    finally:
        if not _exit_hook:  # after the tool's work imported JAX, so it runs before JAX's hooks
            _exit_hook = True
            atexit.register(_ignore_sigint)
        if signal.getsignal(signal.SIGINT) is _raise_once:  # not interrupted
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def deferred_interrupt():
    """A Ctrl-C inside the block is held until the block ends, then raised as usual: for
    work a library cannot abandon cleanly midway (orbax's threaded checkpoint writes leave
    files and tracebacks behind when interrupted). Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held and previous is not signal.SIG_IGN:
        if callable(previous):
            previous(signal.SIGINT, None)  # _raise_once or Python's default: raises
        raise KeyboardInterrupt


def configure_compile_only_tpu() -> None:
    """Environment for compiling for TPU topologies on a machine without a TPU (``edvr-aot``,
    the tests): set before JAX is imported, each only if unset.

    JAX opens no accelerator (``JAX_PLATFORMS=cpu``; the TPU compiler is reached through
    ``jax.experimental.topologies``), libtpu does not look for TPU metadata the host lacks,
    and several processes may load libtpu at once (compiling touches no chip). The host
    name and accelerator type only quiet libtpu's probe of this host; the compilation
    target is the topology asked for (v5p and v6e capacities are unchanged by them).
    """
    for name, value in (("JAX_PLATFORMS", "cpu"), ("TPU_SKIP_MDS_QUERY", "1"),
                        ("ALLOW_MULTIPLE_LIBTPU_LOAD", "1"), ("TPU_WORKER_HOSTNAMES", "localhost"),
                        ("TPU_ACCELERATOR_TYPE", "v5litepod-4")):
        os.environ.setdefault(name, value)
