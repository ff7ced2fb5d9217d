"""Stage 2 of the demo: a shallower hr_in EDVR refines the demo EDVR's output frames.

    make demo-two-stage  # = python -m edvr_jax.demo --two-stage: trains (or resumes) the
                         #   demo EDVR (configs/demo.py), writes its flip4 outputs of all
                         #   demo clips, trains this stage 2 on them in runs/demo_stage2 and
                         #   compares bicubic / stage 1 / two stages on the held-out clips
    python train.py --config configs/demo_stage2.py --workdir runs/demo_stage2 \\
        --config.data.lq_root=runs/demo_stage2/stage1_frames

Hardware: a 2-core CPU (the README gives the times measured there). Data: the demo clips
(configs/demo.py), LQ = the stage-1 EDVR's outputs at 256x256 (``data.lq_root``), GT the
sharp frames; 96x96 crops. Model: hr_in + predeblur, 32 channels, 3 frames, 2
reconstruction blocks (stage 1 has 4). Expected: above stage 1 on the held-out clips (the
demo prints the margin); not a benchmark.
"""

from edvr_jax.train.config import base_config


def get_config():
    c = base_config()
    c.data.dataset = "demo"
    c.data.root = ""  # the demo clips of configs/demo.py (cache dir)
    c.data.lq_root = "runs/demo_stage2/stage1_frames"
    c.data.gt_size = 96  # scale 1: input crops 96x96 too
    c.data.demo_clips = 8
    c.data.demo_frames = 30
    c.data.demo_size = 256
    c.model.num_feat = 32
    c.model.num_frame = 3
    c.model.deformable_groups = 4
    c.model.num_extract_block = 2
    c.model.num_reconstruct_block = 2
    c.model.hr_in = True
    c.model.with_predeblur = True
    c.train.num_steps = 200
    c.train.batch_size = 8
    c.train.lr = 1e-3
    c.train.periods = [200]
    c.train.restart_weights = [1.0]
    c.train.checkpoint_every = 100
    c.train.log_every = 20
    c.eval.every = 0  # the demo scores both stages itself at the end
    c.eval.padding = "reflection_circle"  # as stage 1 (x4 SR)
    c.eval.batch_size = 8
    return c
