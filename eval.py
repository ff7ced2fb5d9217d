"""Evaluate an EDVR checkpoint with the published protocols: ``python eval.py --help``.

The same tool as the installed ``edvr-eval`` (``edvr_jax/evaluate/cli.py``).
"""

from __future__ import annotations

import sys

from edvr_jax.evaluate.cli import build_parser

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    from edvr_jax.evaluate.cli import main as run

    return run(argv, prog="eval.py")


if __name__ == "__main__":
    sys.exit(main())
