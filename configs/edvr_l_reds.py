"""EDVR-L with TSA, REDS SR x4: step 2 of BasicSR's L recipe (experiment 104).

    python train.py --config configs/edvr_l_reds.py --workdir runs/edvr_l_reds \\
        --config.data.root=datasets/REDS --config.train.init_from=runs/edvr_l_reds_wotsa

TSA-only for the first 50k steps, then everything. Hardware: 8 GPUs x batch 4 in BasicSR;
600k steps.
Expected: 31.09 / 0.8800 PSNR/SSIM on REDS4, RGB (BasicSR ModelZoo, EDVR_L_x4_SR_REDS).
"""

from edvr_jax.train.config import base_config


def get_config():
    c = base_config()
    c.model.num_feat = 128
    c.model.num_reconstruct_block = 40
    c.train.periods = [50_000, 100_000, 150_000, 150_000, 150_000]
    c.train.restart_weights = [1.0, 0.5, 0.5, 0.5, 0.5]
    c.train.tsa_iter = 50_000
    c.train.ema_decay = 0.999
    c.train.init_from = "runs/edvr_l_reds_wotsa"
    return c
