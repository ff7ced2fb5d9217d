"""The repository's top-level scripts and configs, loaded the way tests need them."""

from __future__ import annotations

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_eval_py():
    """``eval.py`` as a module (its ``main(argv)`` runs in-process)."""
    spec = importlib.util.spec_from_file_location("eval_entry", ROOT / "eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_config(**overrides):
    """``configs/tiny.py`` with ``group.field=value`` overrides, e.g. ``**{"train.num_steps": 2}``."""
    from edvr_jax.demo import load_config

    c = load_config(ROOT / "configs" / "tiny.py")
    for key, value in overrides.items():
        group, field = key.split(".")
        setattr(c[group], field, value)
    return c
