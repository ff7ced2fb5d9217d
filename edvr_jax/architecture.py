"""EDVR's architecture arguments and BasicSR's defaults for them: the one list.

What a saved model records (``convert/saved.py``), what a checkpoint's tensors decide
(``convert/loader.py``) and the training config's ``model`` group (``train/config.py``) all
read it. ``edvr_jax.models.EDVR`` declares the same fields with the same defaults (a Flax
module's fields must be written out; ``tests/test_layers_and_keymap.py`` holds them equal);
its other fields (``max_columns_bytes``, ``dtype``, ``precision``, ...) are computation
settings, not architecture. Imports nothing, so that configs load without JAX.
"""

from __future__ import annotations

__all__ = ["ARCHITECTURE_DEFAULTS", "ARCHITECTURE_FIELDS"]

# In BasicSR's argument order. num_out_ch is accepted and, as in BasicSR, unused;
# center_frame_idx None means num_frame // 2.
ARCHITECTURE_DEFAULTS: dict[str, object] = {
    "num_in_ch": 3,
    "num_out_ch": 3,
    "num_feat": 64,
    "num_frame": 5,
    "deformable_groups": 8,
    "num_extract_block": 5,
    "num_reconstruct_block": 10,
    "center_frame_idx": None,
    "hr_in": False,
    "with_predeblur": False,
    "with_tsa": True,
    # The paper's ablations, not BasicSR arguments (defaults: BasicSR's EDVR; see
    # edvr_jax.models.EDVR): alignment at all, pyramid levels (3 or 1), the cascading DCN.
    "with_pcd": True,
    "pcd_levels": 3,
    "pcd_cascade": True,
}
ARCHITECTURE_FIELDS = tuple(ARCHITECTURE_DEFAULTS)
