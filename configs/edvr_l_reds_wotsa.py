"""EDVR-L without TSA, REDS SR x4: step 1 of BasicSR's L recipe (experiment 103).

    python train.py --config configs/edvr_l_reds_wotsa.py --workdir runs/edvr_l_reds_wotsa \\
        --config.data.root=datasets/REDS

Hardware: 8 GPUs x batch 4 in BasicSR (global batch 32); 600k steps. BasicSR's L configs
put ema_decay under network_g (which EDVR rejects); here it is a training option.
Expected: no published woTSA number; mmagic's reaches 31.00/0.8784 on REDS4 (RGB).
"""

from edvr_jax.train.config import base_config, use_edvr_l


def get_config():
    c = base_config()
    use_edvr_l(c)
    c.model.with_tsa = False
    c.train.restart_weights = [1.0, 0.5, 0.5, 0.5]
    c.train.ema_decay = 0.999
    return c
