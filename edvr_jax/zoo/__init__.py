"""Official EDVR weights by name: the catalogue, and fetching into a verified local cache.

    import edvr_jax
    model, variables = edvr_jax.load_model("EDVR_M_x4_SR_REDS")   # downloaded once

``edvr-zoo list`` shows the names. Standard library only at import (tools import this
before JAX); see ``catalog.py`` for the table and ``fetch.py`` for the cache.
"""

from edvr_jax.zoo.catalog import BUILTIN, CATALOG_ENV, Entry, ZooError, catalog, lookup
from edvr_jax.zoo.fetch import (
    CACHE_ENV,
    MIRROR_ENV,
    VERIFY_ENV,
    NotFound,
    cache_dir,
    cached_path,
    check,
    fetch,
    resolve,
    sha256_of,
    source_url,
    verify_enabled,
)

__all__ = ["BUILTIN", "CACHE_ENV", "CATALOG_ENV", "MIRROR_ENV", "VERIFY_ENV", "Entry", "NotFound",
           "ZooError", "cache_dir", "cached_path", "catalog", "check", "fetch", "lookup", "resolve",
           "sha256_of", "source_url", "verify_enabled"]
