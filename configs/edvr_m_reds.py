"""EDVR-M with TSA, REDS SR x4: step 2 of BasicSR's M recipe (experiment 102).

    python train.py --config configs/edvr_m_reds.py --workdir runs/edvr_m_reds \\
        --config.data.root=datasets/REDS --config.train.init_from=runs/edvr_m_reds_wotsa

Initialised non-strictly from the woTSA run (its 1x1 fusion is skipped, TSA starts fresh),
then only the TSA fusion trains for tsa_iter=50k steps (the freeze survives resumes), then
everything. Hardware: 8 GPUs x batch 4 in BasicSR; 600k steps.
Expected: 30.53 / 0.8699 PSNR/SSIM on REDS4, RGB (BasicSR ModelZoo, EDVR_M_x4_SR_REDS).
"""

from edvr_jax.train.config import base_config, use_tsa_schedule


def get_config():
    c = base_config()
    use_tsa_schedule(c, restart_weight=1.0)
    c.train.tsa_iter = 50_000
    c.train.init_from = "runs/edvr_m_reds_wotsa"
    return c
