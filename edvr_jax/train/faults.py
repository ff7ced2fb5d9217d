"""Fault injection for the robustness tests, an explicit seam of the training loop.

``train_and_evaluate(..., faults=FaultHooks.parse("kill@save:10,nan@step:5"))``; train.py
builds it from ``EDVR_JAX_FAULTS`` (``from_env``), a library import reads nothing.

``kill@<point>:<step>`` makes the process SIGKILL itself at that point of that step:
``step`` right after the step is dispatched (the device is still computing), ``save``
right after an asynchronous checkpoint save has started (orbax is writing in the
background), ``validation`` in the middle of periodic validation, ``export`` after the
final checkpoint is complete and before the model is exported. ``nan@step:<step>``
feeds that step a batch of NaNs. Empty in normal runs (``NO_FAULTS``); nothing is
checked per step beyond one set lookup.
"""

from __future__ import annotations

import dataclasses
import os
import signal

ENV_VAR = "EDVR_JAX_FAULTS"


@dataclasses.dataclass(frozen=True)
class FaultHooks:
    """The faults to inject, as ``(kind, point, step)`` string triples."""

    faults: frozenset[tuple[str, ...]] = frozenset()

    @classmethod
    def parse(cls, spec: str) -> FaultHooks:
        return cls(frozenset(tuple(item.replace("@", ":").split(":"))
                             for item in spec.split(",") if "@" in item))

    @classmethod
    def from_env(cls, environ=os.environ) -> FaultHooks:
        return cls.parse(environ.get(ENV_VAR, ""))

    def maybe_kill(self, point: str, step: int) -> None:
        if self.faults and ("kill", point, str(step)) in self.faults:
            os.kill(os.getpid(), signal.SIGKILL)

    def maybe_poison(self, step: int, batch: dict) -> dict:
        """``batch`` with NaN inputs if ``nan@step:<step>`` is set (``step`` is 1-based)."""
        if self.faults and ("nan", "step", str(step)) in self.faults:
            return {k: v * float("nan") if k == "lq" else v for k, v in batch.items()}
        return batch


NO_FAULTS = FaultHooks()
