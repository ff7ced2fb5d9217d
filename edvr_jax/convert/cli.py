"""``edvr-convert``: PyTorch EDVR checkpoints to edvr_jax and back, without torch.

    edvr-convert EDVR_M_x4_SR_REDS_official-32075921.pth models/edvr_m
    edvr-convert EDVR_M_x4_SR_REDS models/edvr_m    # a catalogue name: fetched once, cached
    edvr-convert models/edvr_m edvr_m_back.pth --to-torch

The architecture is inferred from the state_dict; the result loads with
``edvr_jax.load_model(DST)``. ``--to-torch`` writes ``{'params': state_dict}`` with
BasicSR's names and layouts, loadable by BasicSR's EDVR (``strict=True``), with the mode
the umask gives (0644 typically); a ``.pth`` source is re-exported that way (with a note).
The direction is never guessed: a DST ending in ``.pth`` without ``--to-torch`` is refused
with a hint. Outputs are written under a temporary name and renamed at the end, so Ctrl-C
(exit status 130) leaves nothing at DST.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from edvr_jax.convert.loader import ConversionError
from edvr_jax.errors import Interrupted, accept_underscores, run_cli
from edvr_jax.zoo import check, resolve


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edvr-convert", description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("src", help="a .pth file (BasicSR, mmagic or 2019) or a model name "
                               "(edvr-zoo list), or with --to-torch an edvr_jax model directory "
                               "or training workdir")
    p.add_argument("dst", help="output directory (or .pth file with --to-torch)")
    p.add_argument("--param-key", default=None,
                   help="entry holding the weights: params or params_ema (default: params_ema "
                        "when present, else params / state_dict)")
    p.add_argument("--center-frame-idx", type=int, default=None,
                   help="centre frame index if not num_frame // 2 (the weights cannot tell)")
    p.add_argument("--to-torch", action="store_true", help="convert edvr_jax -> BasicSR .pth")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    return p


def run(args: argparse.Namespace) -> None:
    named = check(args.src, what="") is not None  # a name is known before anything is fetched
    dst = pathlib.Path(args.dst)
    if not args.to_torch and dst.suffix.lower() in (".pth", ".pt"):
        raise ConversionError(
            f"{dst} ends in {dst.suffix}, but without --to-torch edvr-convert writes an "
            f"edvr_jax model folder; add --to-torch to write a BasicSR .pth, or give a folder "
            f"name")
    if dst.exists() and not args.overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to replace it")
    src = pathlib.Path(resolve(args.src, what=""))
    if named:
        print(f"{args.src}: {src}")
    if src.is_dir() and not args.to_torch:
        raise ConversionError(f"{src} is a folder, expected a .pth file (to export an edvr_jax "
                              f"model folder or training workdir to .pth, add --to-torch)")
    try:
        _convert(args, src, dst)
    except KeyboardInterrupt:  # both writers use a temporary name, removed on the way out
        raise Interrupted(f"; nothing was written to {dst}") from None


def _convert(args: argparse.Namespace, src: pathlib.Path, dst: pathlib.Path) -> None:
    from edvr_jax.convert.api import export_pth, load_model, load_pth_model, save_model
    from edvr_jax.models import count_params, summary
    from edvr_jax.outputs import replacing_folder
    from edvr_jax.process import deferred_interrupt

    if args.to_torch:
        if src.is_file():
            print(f"note: {src} is already a .pth; re-exporting its weights as BasicSR "
                  f"{{'params': state_dict}} (BasicSR names and layouts, one entry)")
        overrides = {} if args.center_frame_idx is None else {"center_frame_idx": args.center_frame_idx}
        model, variables = load_model(src, param_key=args.param_key, **overrides)
        params = variables["params"]
        if "stage1" in params:
            raise ConversionError("a two-stage model has two BasicSR networks; export each stage "
                                  "separately (they are EDVRs under stage1/ and stage2/)")
        export_pth(params, dst)
        print(f"wrote {dst}: {count_params(params):,} parameters as BasicSR {{'params': state_dict}}")
        return
    model, variables, info = load_pth_model(src, param_key=args.param_key,
                                            center_frame_idx=args.center_frame_idx)
    # Into a hidden temporary folder renamed at the end; a Ctrl-C during orbax's save is
    # held until the save ends, then the folder is removed.
    with replacing_folder(dst) as tmp, deferred_interrupt():
        save_model(tmp, model, variables["params"], overwrite=True,
                   extra={"source": str(src.name), "layout": info["layout"],
                          "param_key": info["param_key"]})
    arch = ", ".join(f"{k}={v}" for k, v in info["architecture"].items())
    print(f"read {src} ({info['layout']} names, weights under {info['param_key'] or 'the top level'!r})")
    print(f"architecture: EDVR({arch}, center_frame_idx={model.center})")
    print(summary(variables["params"]))
    print(f"wrote {dst} ({count_params(variables['params']):,} parameters); "
          f"load it with edvr_jax.load_model({str(dst)!r})")


def main(argv: list[str] | None = None) -> int:
    args = accept_underscores(build_parser()).parse_args(argv)
    return run_cli("edvr-convert", lambda: run(args), also=(FileNotFoundError, FileExistsError))


if __name__ == "__main__":
    sys.exit(main())
