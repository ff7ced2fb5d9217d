"""EDVR-L deblurcomp (REDS blur_comp -> sharp, same size): predeblur + hr_in.

    python train.py --config configs/edvr_l_deblurcomp_reds.py --workdir runs/edvr_l_deblurcomp \\
        --config.data.root=datasets/REDS

BasicSR ships no training config for this track; this follows its L TSA recipe with the
deblurcomp test settings (hr_in: inputs at full resolution, H and W multiples of 16; scale
1; replicate temporal padding) and the paper's 256x256 input crops. The 2019 authors
pretrained the predeblur part separately (xinntao/EDVR#66, #87): without it users report
~25.4 dB. Hardware: 8 GPUs x batch 4, 600k steps. Expected: 30.24 / 0.8567 on REDS4, RGB
(BasicSR ModelZoo, EDVR_L_deblurcomp_REDS).
"""

from edvr_jax.train.config import base_config, use_deblur_track


def get_config():
    c = base_config()
    use_deblur_track(c, "deblurcomp")
    return c
