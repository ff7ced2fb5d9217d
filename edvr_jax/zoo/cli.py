"""``edvr-zoo``: the catalogue of official EDVR weights and the local cache.

    edvr-zoo list                       # name, size, source, published numbers, cached?
    edvr-zoo download EDVR_M_x4_SR_REDS # or a list of names, or "all"
    edvr-zoo path EDVR_M_x4_SR_REDS     # the cached file (exit 1 if not downloaded yet)

Names work wherever a checkpoint is taken (``load_model``, ``eval.py --checkpoint``,
``edvr-restore --checkpoint``, ``edvr-convert NAME DST``). Environment: ``EDVR_JAX_CACHE``
(the cache folder), ``EDVR_JAX_ZOO_URL`` (a mirror: base URL or folder holding the files),
``EDVR_JAX_ZOO_CATALOG`` (a JSON file of a team's own entries), ``EDVR_JAX_ZOO_VERIFY=0``.
"""

from __future__ import annotations

import argparse
import sys

from edvr_jax.errors import accept_underscores, run_cli
from edvr_jax.zoo.catalog import PRESET_PARAMS, Entry, ZooError, catalog, lookup
from edvr_jax.zoo.fetch import cache_dir, fetch, source_url

__all__ = ["build_parser", "main", "format_list"]


def build_parser() -> argparse.ArgumentParser:
    text = __doc__.replace("``", "")  # plain text for --help
    p = argparse.ArgumentParser(prog="edvr-zoo", description=text.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=text.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the catalogue, with what is cached")
    d = sub.add_parser("download", help="fetch and verify into the cache")
    d.add_argument("names", nargs="+", metavar="NAME", help="catalogue names, or all")
    d.add_argument("--zoo-url", default=None, metavar="URL",
                   help="mirror base URL or folder (default $EDVR_JAX_ZOO_URL)")
    d.add_argument("--no-verify", action="store_true",
                   help="keep a file whose SHA-256 does not match the catalogue")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    pa = sub.add_parser("path", help="print the cache path of a model")
    pa.add_argument("name", metavar="NAME")
    return p


def _size(entry: Entry, cached) -> str:
    if cached is not None:
        return f"{cached.stat().st_size / 1e6:.1f} MB"
    params = PRESET_PARAMS.get(entry.preset or "")
    return f"~{4 * params / 1e6:.0f} MB" if params else "?"


def _published(entry: Entry) -> str:
    return ", ".join(f"{k} {p:.2f}/{s:.4f}" for k, (p, s) in entry.published.items()) or "-"


def format_list(table: dict[str, Entry] | None = None) -> str:
    """The catalogue as a text table, one model per line, then the cache folder."""
    table = catalog() if table is None else table
    folder = cache_dir()
    rows = []
    for e in table.values():
        path = folder / e.file
        cached = path if path.is_file() else None
        source = {"basicsr": "BasicSR (Google Drive)", "mmagic": "mmagic"}.get(e.source, e.url)
        rows.append((e.name, _size(e, cached), source, _published(e), "yes" if cached else "no"))
    head = ("name", "size", "source", "published PSNR/SSIM", "cached")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*r).rstrip() for r in [head, ["-" * w for w in widths], *rows]]
    lines.append(f"cache: {folder}")
    return "\n".join(lines)


def _download(args) -> int:
    table = catalog()
    names = list(table) if args.names == ["all"] else args.names
    entries = [lookup(n, table) for n in names]  # every name is checked before any download
    failed = 0
    for e in entries:
        try:
            path = fetch(e, progress=not args.no_progress, mirror=args.zoo_url,
                         verify=False if args.no_verify else None)
        except ZooError as err:
            if len(entries) == 1:
                raise
            print(f"edvr-zoo: error: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{e.name}: {path}")
    if failed:
        print(f"edvr-zoo: {failed} of {len(entries)} downloads failed", file=sys.stderr)
        return 2
    return 0


def run(args) -> int:
    if args.command == "list":
        print(format_list())
        return 0
    if args.command == "download":
        return _download(args)
    entry = lookup(args.name)
    path = cache_dir() / entry.file
    print(path)
    if not path.is_file():
        print(f"edvr-zoo: {entry.name} is not downloaded yet (edvr-zoo download {entry.name}, "
              f"or put {entry.file} from {source_url(entry)} there)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = accept_underscores(build_parser()).parse_args(argv)
    return run_cli("edvr-zoo", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
