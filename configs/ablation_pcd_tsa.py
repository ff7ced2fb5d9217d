"""Ablation row "PCD and TSA" (the EDVR paper's PCD/TSA ablation), EDVR-M, REDS SR x4.

Full PCD with TSA, trained from scratch in one stage (BasicSR's published model uses the
two-stage recipe of configs/edvr_m_reds.py instead).

    python train.py --config configs/ablation_pcd_tsa.py --workdir runs/ablation_pcd_tsa \\
        --config.data.root=datasets/REDS
    python eval.py --checkpoint runs/ablation_pcd_tsa --dataset reds4 --data_root datasets/REDS

Model options: BasicSR's EDVR; 3,300,131 parameters. Every ablation_*.py row trains
with the same one-stage recipe (edvr_jax.train.config.use_ablation), so the rows compare.
Hardware: as BasicSR's EDVR-M, 8 GPUs x batch 4 (global batch 32); 600k steps. A shorter
comparison: --config.train.num_steps=N for every row.
Expected: the paper's ablation table reports this row, but its numbers are not
in this project's verified references, so none is quoted. BasicSR's two-stage
EDVR-M (woTSA init, TSA warm-up) reaches 30.53/0.8699 on REDS4 (RGB).
"""

from edvr_jax.train.config import base_config, use_ablation


def get_config():
    c = base_config()
    use_ablation(c, with_tsa=True)
    return c
