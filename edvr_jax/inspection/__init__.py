"""``edvr-inspect``: what PCD alignment and TSA fusion did for one frame (maps, statistics,
pictures, an HTML report), from the model's own sown intermediates."""

from edvr_jax.inspection.core import DCN_NAMES, Inspection, inspect_window, large_offsets, statistics

__all__ = ["DCN_NAMES", "Inspection", "inspect_window", "large_offsets", "statistics"]
