"""The configuration every recipe starts from (ml_collections), grouped data/model/train/eval.

Each ``configs/*.py`` calls ``base_config()`` and overrides what its recipe changes; any
field can be overridden on the command line (``--config.train.num_steps=1000``).
Durations are in steps (BasicSR "iterations"); ``train.batch_size`` is global (all
devices of all hosts), e.g. 32 for BasicSR's 8 GPUs x 4.
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from edvr_jax.architecture import ARCHITECTURE_DEFAULTS


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()

    c.data = ml_collections.ConfigDict()
    c.data.dataset = "reds"  # reds | vimeo90k | folder | demo | tfds
    c.data.root = "datasets/REDS"
    c.data.task = "sr"  # sr | srblur | deblur | deblurcomp (REDS)
    c.data.partition = "REDS4"  # REDS4 | REDSofficial: held out of training, used for validation
    # folder dataset: LQ tree (GT tree is data.root); other datasets: stage-1 outputs
    # (edvr-data stage1 --out) replacing their LQ frames, for stage-2 training (scale 1)
    c.data.lq_root = ""
    c.data.scale = 4  # folder dataset: LQ -> GT scale
    c.data.gt_size = 256  # GT crop; LQ crop is gt_size // scale
    c.data.interval_list = [1]
    c.data.random_reverse = False
    c.data.use_hflip = True
    c.data.use_rot = True  # vertical flip + transpose, as BasicSR's `augment`
    c.data.demo_clips = 8  # demo dataset: number of generated clips
    c.data.demo_frames = 30
    c.data.demo_size = 256  # demo GT frame size (square)

    # BasicSR's EDVR arguments with BasicSR's defaults (edvr_jax.architecture): num_in_ch,
    # num_out_ch (accepted and, as in BasicSR, unused), num_feat, num_frame,
    # deformable_groups, num_extract_block, num_reconstruct_block, center_frame_idx (unset:
    # num_frame // 2), hr_in, with_predeblur, with_tsa.
    c.model = ml_collections.ConfigDict()
    for name, default in ARCHITECTURE_DEFAULTS.items():
        setattr(c.model, name, placeholder(int) if default is None else default)
    # What the backward pass recomputes instead of storing: none | blocks (residual blocks) |
    # pcd (blocks + PCD as one block) | dcn (blocks + each DCN of PCD); same gradients.
    # See the README's table of what fits on which TPU.
    c.model.remat = "none"

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 600_000
    c.train.batch_size = 32  # global
    c.train.seed = 10  # BasicSR manual_seed
    c.train.lr = 4e-4
    c.train.b1 = 0.9
    c.train.b2 = 0.99
    c.train.weight_decay = 0.0
    c.train.periods = [150_000, 150_000, 150_000, 150_000]
    c.train.restart_weights = [1.0, 1.0, 1.0, 1.0]
    c.train.eta_min = 1e-7
    c.train.loss_reduction = "sum"  # BasicSR: CharbonnierLoss(reduction='sum')
    c.train.loss_eps = 1e-12
    c.train.grad_clip_norm = 0.0  # 0: no clipping
    c.train.ema_decay = 0.0  # 0: no EMA; BasicSR's M configs use 0.999
    c.train.dcn_lr_mul = 1.0
    c.train.tsa_iter = 0  # BasicSR tsa_iter; 0: no TSA-only phase
    c.train.frozen = []  # regexes over BasicSR parameter names that never train
    c.train.init_from = ""  # .pth or edvr_jax checkpoint to start from (non-strict)
    c.train.init_param_key = ""  # params | params_ema ('' = default)
    c.train.compute_dtype = "float32"  # bfloat16 on TPU/GPU for speed
    c.train.checkpoint_every = 5_000
    c.train.keep_checkpoints = 3
    c.train.log_every = 100
    c.train.progress = True

    c.eval = ml_collections.ConfigDict()
    c.eval.every = 5_000  # 0: no periodic validation
    c.eval.dataset = ""  # '' validates on the training data's held-out split; e.g. vid4
    c.eval.root = ""
    c.eval.padding = "reflection_circle"  # temporal padding at clip borders (BasicSR)
    c.eval.max_clips = 0  # 0: all held-out clips
    c.eval.max_frames = 0  # 0: every frame of each clip
    c.eval.batch_size = 4
    c.eval.test_y_channel = False
    c.eval.crop_border = 0
    c.eval.inspect = True  # edvr-inspect's offset/attention pictures of one clip to TensorBoard
    return c


def model_kwargs(config: ml_collections.ConfigDict) -> dict:
    """EDVR constructor arguments from ``config.model``."""
    return dict(config.model)


# Pieces the recipes share (each configs/*.py states its own differences).

def use_edvr_l(c: ml_collections.ConfigDict) -> None:
    """EDVR-L: 128 channels, 40 reconstruction blocks (BasicSR's L configs)."""
    c.model.num_feat = 128
    c.model.num_reconstruct_block = 40


def use_tsa_schedule(c: ml_collections.ConfigDict, restart_weight: float) -> None:
    """BasicSR's TSA-stage cosine restarts: periods 50k, 100k, 150k x 3, EMA 0.999."""
    c.train.periods = [50_000, 100_000, 150_000, 150_000, 150_000]
    c.train.restart_weights = [1.0] + [restart_weight] * 4
    c.train.ema_decay = 0.999


def use_deblur_track(c: ml_collections.ConfigDict, task: str) -> None:
    """REDS deblur/deblurcomp with EDVR-L: predeblur + hr_in, scale 1, 256 crops, replicate."""
    use_edvr_l(c)
    use_tsa_schedule(c, 0.5)
    c.data.task = task
    c.data.gt_size = 256  # scale 1: LQ crops are 256x256 too
    c.model.with_predeblur = True
    c.model.hr_in = True
    c.eval.padding = "replicate"


def use_ablation(c: ml_collections.ConfigDict, **model: object) -> None:
    """One row of the paper's PCD/TSA ablation at EDVR-M size on REDS: every row the same
    one-stage recipe (BasicSR's woTSA M recipe, experiment 101: 600k steps, lr 4e-4, EMA
    0.999, trained from scratch, TSA rows included), only the ``model`` options differ."""
    c.model.with_tsa = False
    c.train.ema_decay = 0.999
    for name, value in model.items():
        if name not in c.model:
            raise KeyError(f"use_ablation: unknown model option {name!r}")
        c.model[name] = value


def use_stage2(c: ml_collections.ConfigDict, preset: str, lq_root: str) -> None:
    """Stage 2 of the two-stage restoration on REDS SR: the ``STAGE2_PRESETS`` model (hr_in +
    predeblur, shallower) trained on stage-1 outputs (``edvr-data stage1 --out lq_root``)
    against the sharp frames, with the deblur track's L recipe (256 crops, restarts, EMA).
    Validation pads time as stage 1 does (reflection_circle for SR), so that its scores
    are those of ``eval.py --stage2`` on the same clips; it reports stage 1 alongside."""
    from edvr_jax.models.presets import STAGE2_PRESETS

    for name, value in STAGE2_PRESETS[preset].items():
        setattr(c.model, name, value)
    use_tsa_schedule(c, 0.5)
    c.data.task = "sr"  # GT: train_sharp; LQ: the stage-1 outputs of the sr track
    c.data.lq_root = lq_root
    c.data.gt_size = 256  # scale 1: the input crops are 256x256 too
    c.eval.padding = "reflection_circle"
