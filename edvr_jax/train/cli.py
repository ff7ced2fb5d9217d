"""What train.py runs: distributed setup, logging, and one-line errors for user mistakes."""

from __future__ import annotations

import logging
import sys

EXIT_ERROR, EXIT_PREEMPTED = 1, 143  # 143 = 128 + SIGTERM, what a killed job reports


def parse_flags(flag_values, argv: list[str], tool: str = "train.py") -> list[str]:
    """absl flag parsing with one-line errors (exit code 1, no traceback): a missing
    --config file, a config key that does not exist, a value of the wrong type. ``tool``
    names the command in the messages."""
    import os

    from absl import flags

    for i, arg in enumerate(argv[1:], 1):
        if arg == "--config" or arg.startswith("--config="):
            path = arg.split("=", 1)[1] if "=" in arg else (argv[i + 1] if i + 1 < len(argv) else "")
            if path and not os.path.isfile(path.split(":")[0]):
                sys.exit(f"{tool}: error: --config {path}: no such file (expected a configs/*.py "
                         "file with get_config())")
    try:
        return flag_values(argv)
    except flags.Error as e:
        sys.exit(f"{tool}: error: {e} (see --helpfull)")
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        detail = str(e.args[0] if e.args else e).replace("\\n", " ").replace("\\'", "'")
        detail = " ".join(detail.split()).strip("'\"").replace("' ", ": ", 1)
        overrides = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.")]
        bad = [a for a in overrides if any(p in detail for p in a[len("--config."):].split("."))]
        if not bad:
            sys.exit(f"{tool}: error: bad --config override ({detail})")
        key = bad[0][len("--config."):]
        what = (f"config key {key!r} does not exist" if isinstance(e, KeyError | AttributeError)
                else f"bad value for config key {key!r}")
        sys.exit(f"{tool}: error: {bad[0]}: {what} ({detail})")


def run(config, workdir: str, *, distributed: bool = False, coordinator_address: str | None = None,
        num_processes: int | None = None, process_id: int | None = None) -> int:
    from edvr_jax.process import configure_tool_process

    configure_tool_process()  # before TensorFlow and JAX are imported
    import jax

    if coordinator_address or distributed:
        jax.distributed.initialize(coordinator_address=coordinator_address,
                                   num_processes=num_processes, process_id=process_id)
    logging.basicConfig(level=logging.INFO if jax.process_index() == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", force=True)

    from edvr_jax.errors import run_cli
    from edvr_jax.train.faults import FaultHooks
    from edvr_jax.train.loop import Preempted, train_and_evaluate

    faults = FaultHooks.from_env()  # the robustness tests' seam; empty in normal runs

    def train() -> int:
        try:
            summary = train_and_evaluate(config, workdir, faults=faults)
        except Preempted as e:
            print(f"train.py: {e}", file=sys.stderr)
            return EXIT_PREEMPTED
        if jax.process_index() == 0:
            val = summary.get("val") or {}
            extra = "".join(f", {k} {v:.4f}" for k, v in val.items() if isinstance(v, float))
            print(f"train.py: finished at step {summary['step']}{extra}; model exported to {workdir}/export")
        return 0

    # OSError: a workdir or data folder that cannot be read or written.
    return run_cli("train.py", train, exit_code=EXIT_ERROR, also=(OSError,))
