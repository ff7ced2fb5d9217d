"""Fault injection for the preemption tests: ``EDVR_JAX_FAULTS=kill@save:10,kill@step:13``.

Each entry ``kill@<point>:<step>`` makes the process SIGKILL itself at that point of
that step: ``step`` right after the step is dispatched (the device is still computing),
``save`` right after an asynchronous checkpoint save has started (orbax is writing in
the background), ``validation`` in the middle of periodic validation. Unset in normal
runs; reading the variable costs nothing per step.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("EDVR_JAX_FAULTS", "")
_FAULTS = {tuple(item.split("@", 1)[1].split(":")) for item in _SPEC.split(",") if item.startswith("kill@")}


def maybe_kill(point: str, step: int) -> None:
    if _FAULTS and (point, str(step)) in _FAULTS:
        os.kill(os.getpid(), signal.SIGKILL)
