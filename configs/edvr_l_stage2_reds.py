"""EDVR-L stage 2 on REDS SR x4: a shallower hr_in EDVR refines EDVR-L's output frames.

The paper's two-stage restoration, in two commands (the stage-1 model: a finished
``configs/edvr_l_reds.py`` run, or the published weights ``EDVR_L_x4_SR_REDS``):

    edvr-data stage1 --checkpoint EDVR_L_x4_SR_REDS --dataset reds --root datasets/REDS \\
        --task sr --out datasets/REDS/stage1_edvr_l --ensemble flip4
    python train.py --config configs/edvr_l_stage2_reds.py --workdir runs/edvr_l_stage2 \\
        --config.data.root=datasets/REDS --config.data.lq_root=datasets/REDS/stage1_edvr_l

then score both stages together (stage 1 and two stages side by side):

    python eval.py --checkpoint EDVR_L_x4_SR_REDS --stage2 runs/edvr_l_stage2 \\
        --dataset reds4 --data-root datasets/REDS --ensemble flip4

``edvr-data stage1`` restores all 270 clips (train and val, 27,000 frames at 720x1280;
the 2019 authors used the flip ensemble, xinntao/EDVR#104) and resumes if stopped; run it
on every host of a pod slice to split the frames. Model: ``EDVR_L_stage2`` (128 channels,
20 reconstruction blocks, hr_in + predeblur), 256x256 crops of stage-1 frames against
train_sharp, the deblur track's recipe. Hardware: as stage 1, 8 GPUs x batch 4, 600k steps;
``--ensemble flip4`` makes stage 1
four forward passes per frame. Expected: no published number for this recipe (BasicSR lists
its stage-2 models without scores); eval.py prints stage 1 (EDVR-L: 31.09 on REDS4
without ensemble) and both stages side by side.
"""

from edvr_jax.train.config import base_config, use_stage2


def get_config():
    c = base_config()
    use_stage2(c, "EDVR_L_stage2", "datasets/REDS/stage1_edvr_l")
    return c
