"""EDVR-L SRblur (REDS blur_bicubic -> sharp, x4), with the predeblur module.

    python train.py --config configs/edvr_l_srblur_reds.py --workdir runs/edvr_l_srblur \\
        --config.data.root=datasets/REDS --config.train.init_from=PREDEBLUR_OR_SR_MODEL

BasicSR ships no training config for this track; this follows its L TSA recipe with the
SRblur test settings (predeblur, replicate temporal padding). The 2019 authors pretrained
the predeblur part separately (xinntao/EDVR#66, #87); init_from a model holding it.
Hardware: 8 GPUs x batch 4, 600k steps. Expected: 28.88 / 0.8361 on REDS4, RGB
(BasicSR ModelZoo, EDVR_L_x4_SRblur_REDS).
"""

from edvr_jax.train.config import base_config


def get_config():
    c = base_config()
    c.data.task = "srblur"
    c.model.num_feat = 128
    c.model.num_reconstruct_block = 40
    c.model.with_predeblur = True
    c.train.periods = [50_000, 100_000, 150_000, 150_000, 150_000]
    c.train.restart_weights = [1.0, 0.5, 0.5, 0.5, 0.5]
    c.train.ema_decay = 0.999
    c.eval.padding = "replicate"
    return c
