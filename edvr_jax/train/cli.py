"""What train.py runs: distributed setup, logging, and one-line errors for user mistakes."""

from __future__ import annotations

import logging
import sys

EXIT_ERROR, EXIT_PREEMPTED = 1, 143  # 143 = 128 + SIGTERM, what a killed job reports


def run(config, workdir: str, *, distributed: bool = False, coordinator_address: str | None = None,
        num_processes: int | None = None, process_id: int | None = None) -> int:
    import jax

    if coordinator_address or distributed:
        jax.distributed.initialize(coordinator_address=coordinator_address,
                                   num_processes=num_processes, process_id=process_id)
    logging.basicConfig(level=logging.INFO if jax.process_index() == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", force=True)
    for noisy in ("absl", "orbax", "tensorflow", "jax._src"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # orbax logs a failed background save with tracebacks at ERROR, and asyncio its
    # unretrieved write tasks; the run reports the failure as one line (CheckpointWriteError).
    for noisy in ("absl", "orbax", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    from edvr_jax.convert.loader import ConversionError
    from edvr_jax.convert.pth import CheckpointError
    from edvr_jax.data import DatasetError
    from edvr_jax.train.loop import Preempted, TrainingError, train_and_evaluate

    try:
        summary = train_and_evaluate(config, workdir)
    except Preempted as e:
        print(f"train.py: {e}", file=sys.stderr)
        return EXIT_PREEMPTED
    except (TrainingError, DatasetError, ConversionError, CheckpointError, FileNotFoundError,
            PermissionError, OSError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    if jax.process_index() == 0:
        val = summary.get("val") or {}
        extra = "".join(f", {k} {v:.4f}" for k, v in val.items() if isinstance(v, float))
        print(f"train.py: finished at step {summary['step']}{extra}; model exported to {workdir}/export")
    return 0
