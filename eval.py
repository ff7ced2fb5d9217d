"""Evaluation entry point (flags only). Not built yet: see issue "Jitted evaluation"."""

import sys

if __name__ == "__main__":
    sys.exit("eval.py is not built yet: evaluation arrives with the evaluation issue. "
             "Run `make demo` for what works today.")
