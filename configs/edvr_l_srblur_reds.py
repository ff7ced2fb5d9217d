"""EDVR-L SRblur (REDS blur_bicubic -> sharp, x4), with the predeblur module.

    python train.py --config configs/edvr_l_srblur_reds.py --workdir runs/edvr_l_srblur \\
        --config.data.root=datasets/REDS --config.train.init_from=PREDEBLUR_OR_SR_MODEL

BasicSR ships no training config for this track; this follows its L TSA recipe with the
SRblur test settings (predeblur, replicate temporal padding). The 2019 authors pretrained
the predeblur part separately (xinntao/EDVR#66, #87); init_from a model holding it.
Hardware: 8 GPUs x batch 4, 600k steps. Expected: 28.88 / 0.8361 on REDS4, RGB
(BasicSR ModelZoo, EDVR_L_x4_SRblur_REDS).
"""

from edvr_jax.train.config import base_config, use_edvr_l, use_tsa_schedule


def get_config():
    c = base_config()
    use_edvr_l(c)
    use_tsa_schedule(c, restart_weight=0.5)
    c.data.task = "srblur"
    c.model.with_predeblur = True
    c.eval.padding = "replicate"
    return c
