"""A small EDVR on the embedded demo clips: trains to a visible result in minutes on a CPU.

    make demo            # = python -m edvr_jax.demo: trains (or resumes) in runs/demo, then
                         #   compares with bicubic upsampling on the held-out demo clips
    python train.py --config configs/demo.py --workdir runs/demo

Hardware: a laptop / 2-core CPU, about 8 minutes for 600 steps (0.8 s per step here).
Data: 8 clips x 30 frames (256x256 GT, 64x64 bicubic LQ) generated from scikit-image
photographs by a moving virtual camera (see edvr_jax.data.demo_clips); 6 train, 2 held
out. Expected result: above MATLAB-bicubic upsampling on the held-out clips (the demo
prints the margin). Not a benchmark: EDVR's published numbers need REDS and 600k steps.
"""

from edvr_jax.train.config import base_config


def get_config():
    c = base_config()
    c.data.dataset = "demo"
    c.data.root = ""  # generated into ~/.cache/edvr_jax/demo/... on first use
    c.data.gt_size = 96  # LQ crops 24x24
    c.data.demo_clips = 8
    c.data.demo_frames = 30
    c.data.demo_size = 256
    c.model.num_feat = 32
    c.model.num_frame = 5
    c.model.deformable_groups = 4
    c.model.num_extract_block = 2
    c.model.num_reconstruct_block = 4
    c.train.num_steps = 600
    c.train.batch_size = 8
    c.train.lr = 1e-3
    c.train.periods = [600]
    c.train.restart_weights = [1.0]
    c.train.checkpoint_every = 100
    c.train.log_every = 20
    c.eval.every = 300
    c.eval.batch_size = 8
    return c
