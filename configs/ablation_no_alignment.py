"""Ablation row "no alignment" (the EDVR paper's PCD/TSA ablation), EDVR-M, REDS SR x4.

No alignment: each frame's features fused as they are (no PCD), no TSA.

    python train.py --config configs/ablation_no_alignment.py --workdir runs/ablation_no_alignment \\
        --config.data.root=datasets/REDS
    python eval.py --checkpoint runs/ablation_no_alignment --dataset reds4 --data_root datasets/REDS

Model options: with_pcd=False; 1,464,259 parameters. Every ablation_*.py row trains
with the same one-stage recipe (edvr_jax.train.config.use_ablation), so the rows compare.
Hardware: as BasicSR's EDVR-M, 8 GPUs x batch 4 (global batch 32); 600k steps. A shorter
comparison: --config.train.num_steps=N for every row.
Expected: the paper's ablation table reports this row, but its numbers are not
in this project's verified references, so none is quoted; it should score below
ablation_pcd (the paper's claim that this part of PCD helps).
"""

from edvr_jax.train.config import base_config, use_ablation


def get_config():
    c = base_config()
    use_ablation(c, with_pcd=False)
    return c
