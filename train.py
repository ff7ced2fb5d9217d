"""Train EDVR: flags only. Everything else lives in edvr_jax.train.

    python train.py --config configs/edvr_m_reds_wotsa.py --workdir runs/m_wotsa
    python train.py --config configs/tiny.py --workdir /tmp/tiny --config.train.num_steps=20

Resumes automatically from the latest checkpoint in --workdir. Any config field can be
overridden with --config.<group>.<field>=value. Multi-host: --distributed (TPU pods,
SLURM, Open MPI auto-detect) or --coordinator_address/--num_processes/--process_id.
"""

import os
import sys

from absl import app, flags
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "a configs/*.py file", lock_config=True)
flags.DEFINE_string("workdir", None, "run directory (checkpoints, TensorBoard, export)")
flags.DEFINE_bool("distributed", False, "call jax.distributed.initialize() before anything else")
flags.DEFINE_string("coordinator_address", None, "multi-process: host:port of process 0")
flags.DEFINE_integer("num_processes", None, "multi-process: number of processes")
flags.DEFINE_integer("process_id", None, "multi-process: this process's index")
flags.mark_flags_as_required(["config", "workdir"])
FLAGS = flags.FLAGS


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing with one-line errors: a missing --config file, a config key that
    does not exist or a value of the wrong type (exit code 1, no traceback)."""
    for i, arg in enumerate(argv[1:], 1):
        if arg == "--config" or arg.startswith("--config="):
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            path = arg.split("=", 1)[1] if "=" in arg else nxt
            if path and not os.path.isfile(path.split(":")[0]):
                sys.exit(f"train.py: error: --config {path}: no such file (expected a configs/*.py "
                         f"file with get_config())")
    try:
        return FLAGS(argv)
    except flags.Error as e:
        sys.exit(f"train.py: error: {e} (see --helpfull)")
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        detail = str(e.args[0] if e.args else e).replace("\\n", " ").replace("\\'", "'")
        detail = " ".join(detail.split()).strip("'\"").replace("' ", ": ", 1)
        bad = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.") and any(
            part in detail for part in a.split("=")[0][len("--config."):].split("."))]
        where = f"{bad[0]}: config key {bad[0][len('--config.'):]!r} does not exist" if bad \
            else "bad --config override"
        sys.exit(f"train.py: error: {where} ({detail})")


def main(argv):
    if len(argv) > 1:
        sys.exit(f"train.py: unexpected arguments {argv[1:]}")
    from edvr_jax.train.cli import run

    sys.exit(run(FLAGS.config, FLAGS.workdir, distributed=FLAGS.distributed,
                 coordinator_address=FLAGS.coordinator_address,
                 num_processes=FLAGS.num_processes, process_id=FLAGS.process_id))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
