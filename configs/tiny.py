"""The smallest EDVR and crops, for tests and smoke runs (seconds on a CPU).

    python train.py --config configs/tiny.py --workdir /tmp/tiny

Hardware: any CPU. Expected result: none (a plumbing check); the loss falls within a
few dozen steps on the demo clips. GT crops 64x64 / LQ 16x16, 3 frames, batch 8 (a
multiple of 8 so the same config runs on 8 simulated devices).
"""

from edvr_jax.train.config import base_config


def get_config():
    c = base_config()
    c.data.dataset = "demo"
    c.data.root = ""  # the demo clips are generated into a cache dir on first use
    c.data.gt_size = 64
    c.data.demo_clips = 3
    c.data.demo_frames = 8
    c.data.demo_size = 128
    c.model.num_feat = 8
    c.model.num_frame = 3
    c.model.deformable_groups = 2
    c.model.num_extract_block = 1
    c.model.num_reconstruct_block = 1
    c.train.num_steps = 36
    c.train.batch_size = 8
    c.train.lr = 1e-3  # a tiny model and few steps: faster than BasicSR's 4e-4
    c.train.periods = [36]
    c.train.restart_weights = [1.0]
    c.train.checkpoint_every = 12
    c.train.keep_checkpoints = 5
    c.train.log_every = 6
    c.train.progress = False
    c.eval.every = 0
    c.eval.batch_size = 2
    c.eval.max_clips = 1
    c.eval.max_frames = 2
    return c
