"""Train EDVR: flags only. Everything else lives in edvr_jax.train.

    python train.py --config configs/edvr_m_reds_wotsa.py --workdir runs/m_wotsa
    python train.py --config configs/tiny.py --workdir /tmp/tiny --config.train.num_steps=20

Resumes automatically from the latest checkpoint in --workdir. Any config field can be
overridden with --config.<group>.<field>=value. Multi-host: --distributed (TPU pods,
SLURM, Open MPI auto-detect) or --coordinator_address/--num_processes/--process_id.
"""

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


def main(argv):
    if len(argv) > 1:
        sys.exit(f"train.py: unexpected arguments {argv[1:]}")
    from edvr_jax.train.cli import run

    sys.exit(run(FLAGS.config, FLAGS.workdir, distributed=FLAGS.distributed,
                 coordinator_address=FLAGS.coordinator_address,
                 num_processes=FLAGS.num_processes, process_id=FLAGS.process_id))


if __name__ == "__main__":
    from edvr_jax.train.cli import parse_flags

    app.run(main, flags_parser=lambda argv: parse_flags(FLAGS, argv))
