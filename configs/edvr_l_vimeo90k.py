"""EDVR-L, 7 frames, Vimeo-90K septuplets SR x4 (the model published for Vid4).

    python train.py --config configs/edvr_l_vimeo90k.py --workdir runs/edvr_l_vimeo90k \\
        --config.data.root=datasets/vimeo90k --config.eval.root=datasets/Vid4

BasicSR ships no training config for Vimeo-90K (users ask in XPixelGroup/BasicSR#589);
this uses the REDS L TSA recipe with 7 input frames around im4 and validates on Vid4
(Y channel, as published). Training from scratch on Vimeo is reported hard
(XPixelGroup/BasicSR#357): initialise from a REDS model with train.init_from.
Hardware: 8 GPUs x batch 4, 600k steps. Expected: 27.35 / 0.8264 on Vid4, Y channel
(BasicSR ModelZoo, EDVR_L_x4_SR_Vimeo90K); Vimeo-90K-T 35.79/0.9374 RGB (xinntao/EDVR#112).
"""

from edvr_jax.train.config import base_config, use_edvr_l, use_tsa_schedule


def get_config():
    c = base_config()
    use_edvr_l(c)
    use_tsa_schedule(c, restart_weight=0.5)
    c.data.dataset = "vimeo90k"
    c.data.root = "datasets/vimeo90k"
    c.model.num_frame = 7
    c.eval.dataset = "vid4"
    c.eval.root = "datasets/Vid4"
    c.eval.test_y_channel = True
    return c
