"""edvr_jax: EDVR video restoration in JAX/Flax."""

__version__ = "0.1.0"


def load_model(path, *, param_key=None, **model_overrides):
    """``(model, variables)`` from a ``.pth`` (BasicSR/mmagic/2019), a converted directory
    or a training workdir; see ``edvr_jax.convert.api.load_model``."""
    from edvr_jax.convert.api import load_model as _load

    return _load(path, param_key=param_key, **model_overrides)
