"""edvr_jax: EDVR video restoration in JAX/Flax."""

__version__ = "0.1.0"
