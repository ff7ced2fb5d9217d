"""`python -m edvr_jax.data ...`: see edvr_jax.data.cli."""

import sys

from edvr_jax.data.cli import main

sys.exit(main())
