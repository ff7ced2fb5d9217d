"""EDVR-L with TSA, REDS SR x4: step 2 of BasicSR's L recipe (experiment 104).

    python train.py --config configs/edvr_l_reds.py --workdir runs/edvr_l_reds \\
        --config.data.root=datasets/REDS --config.train.init_from=runs/edvr_l_reds_wotsa

TSA-only for the first 50k steps, then everything. Hardware: 8 GPUs x batch 4 in BasicSR;
600k steps.
Expected: 31.09 / 0.8800 PSNR/SSIM on REDS4, RGB (BasicSR ModelZoo, EDVR_L_x4_SR_REDS).
"""

from edvr_jax.train.config import base_config, use_edvr_l, use_tsa_schedule


def get_config():
    c = base_config()
    use_edvr_l(c)
    use_tsa_schedule(c, restart_weight=0.5)
    c.train.tsa_iter = 50_000
    c.train.init_from = "runs/edvr_l_reds_wotsa"
    return c
