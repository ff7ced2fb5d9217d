"""EDVR-M without TSA, REDS SR x4: step 1 of BasicSR's M recipe (experiment 101).

    python train.py --config configs/edvr_m_reds_wotsa.py --workdir runs/edvr_m_reds_wotsa \\
        --config.data.root=datasets/REDS

Hardware: BasicSR used 8 GPUs x batch 4 (global batch 32, here data-parallel over every
device of every host); 600k steps. Then run configs/edvr_m_reds.py from this run.
Expected: BasicSR publishes no woTSA number; mmagic's EDVR-M woTSA reaches 30.34/0.8664
on REDS4 (RGB), the TSA model 30.53/0.8699 (BasicSR ModelZoo).
"""

from edvr_jax.train.config import base_config


def get_config():
    c = base_config()
    c.model.with_tsa = False
    c.train.ema_decay = 0.999
    return c
