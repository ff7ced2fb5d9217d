"""Training entry point (flags only). Not built yet: see issue "Training"."""

import sys

if __name__ == "__main__":
    sys.exit("train.py is not built yet: training arrives with the training issue. "
             "Run `make demo` for what works today.")
