"""Fault injection for the robustness tests: ``EDVR_JAX_FAULTS=kill@save:10,nan@step:5``.

``kill@<point>:<step>`` makes the process SIGKILL itself at that point of that step:
``step`` right after the step is dispatched (the device is still computing), ``save``
right after an asynchronous checkpoint save has started (orbax is writing in the
background), ``validation`` in the middle of periodic validation, ``export`` after the
final checkpoint is complete and before the model is exported. ``nan@step:<step>``
feeds that step a batch of NaNs. Unset in normal runs; nothing is checked per step
beyond one set lookup.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("EDVR_JAX_FAULTS", "")
_FAULTS = {tuple(item.replace("@", ":").split(":")) for item in _SPEC.split(",") if "@" in item}


def maybe_kill(point: str, step: int) -> None:
    if _FAULTS and ("kill", point, str(step)) in _FAULTS:
        os.kill(os.getpid(), signal.SIGKILL)


def maybe_poison(step: int, batch: dict) -> dict:
    """``batch`` with NaN inputs if ``nan@step:<step>`` is set (``step`` is 1-based)."""
    if _FAULTS and ("nan", "step", str(step)) in _FAULTS:
        return {k: v * float("nan") if k == "lq" else v for k, v in batch.items()}
    return batch
