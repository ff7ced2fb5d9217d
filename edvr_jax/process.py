"""Process-wide settings owned by the entry points, applied once per process.

Library modules change nothing global at import: no environment variables, no logger
levels, no interpreter hooks. Every command-line tool calls ``configure_tool_process()``
first (``edvr_jax.errors.run_cli`` does it), before TensorFlow or JAX is imported:

* ``TF_CPP_MIN_LOG_LEVEL=2`` unless set (TensorFlow's C++ start-up INFO/WARNING lines);
* absl, orbax and asyncio loggers at CRITICAL, tensorflow and jax internals at ERROR: a
  failed checkpoint read or write is reported by the tool as one line, not as the
  libraries' tracebacks (set ``EDVR_JAX_VERBOSE=1`` to keep every library's logs);
* an ``sys.unraisablehook`` filter for one message only: after a failed orbax write or
  read, TensorStore callbacks still pending reach an asyncio loop orbax has closed, and
  Python would print each as an unraisable ``RuntimeError: Event loop is closed``.

Hiding GPUs from TensorFlow (so that it reserves no accelerator memory JAX needs) is done
where a tf.data pipeline is built (``edvr_jax.data.hide_accelerators_from_tf``), not here.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["configure_tool_process"]

_QUIET = {"absl": logging.CRITICAL, "orbax": logging.CRITICAL, "asyncio": logging.CRITICAL,
          "tensorflow": logging.ERROR, "jax._src": logging.ERROR}
_configured = False


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
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    sys.unraisablehook = _drop_closed_loop_noise(sys.unraisablehook)
