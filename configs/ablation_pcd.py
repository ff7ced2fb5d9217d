"""Ablation row "full PCD, no TSA" (the EDVR paper's PCD/TSA ablation), EDVR-M, REDS SR x4.

Full PCD, no TSA (the model of configs/edvr_m_reds_wotsa.py).

    python train.py --config configs/ablation_pcd.py --workdir runs/ablation_pcd \\
        --config.data.root=datasets/REDS
    python eval.py --checkpoint runs/ablation_pcd --dataset reds4 --data_root datasets/REDS

Model options: BasicSR's EDVR, with_tsa=False; 2,996,259 parameters. Every ablation_*.py row trains
with the same one-stage recipe (edvr_jax.train.config.use_ablation), so the rows compare.
Hardware: as BasicSR's EDVR-M, 8 GPUs x batch 4 (global batch 32); 600k steps. A shorter
comparison: --config.train.num_steps=N for every row.
Expected: the paper's ablation table reports this row, but its numbers are not
in this project's verified references, so none is quoted. The same model trained
this way by mmagic (edvrm_wotsa) reaches 30.34/0.8664 on REDS4 (RGB).
"""

from edvr_jax.train.config import base_config, use_ablation


def get_config():
    c = base_config()
    use_ablation(c)
    return c
