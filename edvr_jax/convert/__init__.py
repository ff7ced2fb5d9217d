"""Loading PyTorch EDVR checkpoints without torch: safe .pth reader, key maps, inference."""

from edvr_jax.convert.api import export_pth, load_model, load_pth_model, save_model
from edvr_jax.convert.loader import ConversionError, infer_architecture
from edvr_jax.convert.pth import CheckpointError, OpaqueObject, load_pth, save_pth

__all__ = ["load_model", "load_pth_model", "save_model", "export_pth", "ConversionError",
           "infer_architecture", "CheckpointError", "OpaqueObject", "load_pth", "save_pth"]
