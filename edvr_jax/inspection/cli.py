"""``edvr-inspect``: what PCD alignment and TSA fusion did for one output frame.

    edvr-inspect frames/ --checkpoint EDVR_M_x4_SR_REDS --frame 10 --out inspect10/
    edvr-inspect input.mp4 --checkpoint model.pth --frame 0 --out inspect0/ --tile 128

Restores output frame N of INPUT (a folder of frames or a video file, read as
``edvr-restore`` reads them; frames of any size, the protocol's temporal border padding) and
writes to DIR: ``inspect.json`` (per window frame: mean and max |offset| and mean mask of
every deformable convolution, TSA's temporal attention, the feature difference to the
centre frame before and after alignment, and where offsets exceed BasicSR's warning
threshold of 50), PNG pictures of the offsets, masks and attention maps, and
``report.html`` showing them with the numbers. DIR appears whole or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys

from edvr_jax.errors import Interrupted, accept_underscores, run_cli
from edvr_jax.evaluate.frame_index import PADDING_MODES
from edvr_jax.evaluate.video_io import RestoreError
from edvr_jax.zoo import check, resolve

__all__ = ["build_parser", "main", "read_window", "run"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edvr-inspect", description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("input", help="a folder of frames or a video file")
    p.add_argument("--checkpoint", required=True,
                   help="a model name (edvr-zoo list), a .pth (BasicSR/mmagic/2019), an "
                        "edvr-convert directory or a workdir")
    p.add_argument("--frame", type=int, required=True, metavar="N",
                   help="the output frame to inspect (0-based index in INPUT)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for inspect.json, "
                   "the pictures and report.html")
    p.add_argument("--tile", type=int, default=None, metavar="SIZE",
                   help="run in tiles of SIZE x SIZE input pixels (bounds device memory)")
    p.add_argument("--tile-overlap", "--tile_overlap", type=int, default=32, metavar="N",
                   help="margin around each tile in input pixels (default 32)")
    p.add_argument("--padding", choices=PADDING_MODES, default=None,
                   help="temporal border padding (default: the protocol's, as edvr-restore)")
    p.add_argument("--center-frame-idx", "--center_frame_idx", type=int, default=None,
                   help="centre frame of the model's window if not num_frame // 2")
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    return p


def read_window(path: str, frame: int, num_frame: int, padding: str):
    """``(indices, names, frames)`` of the window for output ``frame`` of the clip at
    ``path``: the temporal padding of ``generate_frame_indices``; frames uint8 ``(H, W, 3)``.

    Only frames within ``num_frame`` of ``frame`` are kept (every padding mode draws its
    substitutes from there), and a video is decoded no further than that."""
    from edvr_jax.evaluate.frame_index import generate_frame_indices
    from edvr_jax.evaluate.video_io import open_source

    source = open_source(path)
    kept: dict[int, tuple[str, object]] = {}
    count = 0
    try:
        for i, f in enumerate(source.frames()):
            count = i + 1
            if abs(i - frame) <= num_frame:
                kept[i] = (f.name, f.image)
            if i > frame + num_frame:
                break
    finally:
        source.close()
    if not 0 <= frame < count:
        raise RestoreError(f"--frame {frame} is outside {path}, which has {count} frames "
                           f"(valid 0..{count - 1})")
    try:
        indices = generate_frame_indices(frame, count, num_frame, padding)
    except ValueError as e:
        raise RestoreError(str(e)) from None
    return indices, [kept[i][0] for i in indices], [kept[i][1] for i in indices]


def _check_out(path: str, overwrite: bool) -> None:
    if os.path.isfile(path):
        raise RestoreError(f"--out {path} is a file; give a folder name")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise RestoreError(f"--out {path} exists and is not empty; pass --overwrite to replace it")


def run(args: argparse.Namespace, echo=print) -> dict:
    """Does what ``edvr-inspect`` does; returns the contents of ``inspect.json``."""
    check(args.checkpoint, "checkpoint")
    if not os.path.exists(args.input):
        raise RestoreError(f"input {args.input} does not exist")
    if args.frame < 0:
        raise RestoreError(f"--frame must be >= 0, got {args.frame}")
    if (args.tile is not None and args.tile < 1) or args.tile_overlap < 0:
        raise RestoreError("--tile must be >= 1 and --tile-overlap >= 0")
    _check_out(args.out, args.overwrite)

    import numpy as np

    from edvr_jax.evaluate.protocols import temporal_padding
    from edvr_jax.evaluate.run_eval import load, to_json
    from edvr_jax.inspection.core import inspect_window, large_offsets, statistics
    from edvr_jax.inspection.report import write_report
    from edvr_jax.models import EDVR, OFFSET_WARNING_THRESHOLD
    from edvr_jax.outputs import replacing_folder

    try:
        model, variables = load(resolve(args.checkpoint), None, args.center_frame_idx)
        if not isinstance(model, EDVR):
            raise RestoreError(f"edvr-inspect takes a single EDVR checkpoint, got {type(model).__name__}")
        padding = args.padding or temporal_padding(model)
        indices, names, frames = read_window(args.input, args.frame, model.num_frame, padding)
        window = np.stack(frames).astype(np.float32) / np.float32(255)
        echo(f"frame {args.frame}: window {indices} ({padding} padding), "
             f"{window.shape[1]}x{window.shape[2]} (HxW)")
        ins = inspect_window(model, variables, window, tile=args.tile,
                             tile_overlap=args.tile_overlap)
        result = {"frame": args.frame, "window": indices, "center": model.center,
                  "frame_names": names,
                  "checkpoint": args.checkpoint, "padding": padding,
                  "threshold": OFFSET_WARNING_THRESHOLD, **statistics(ins),
                  "warnings": large_offsets(ins, indices)}
        with replacing_folder(args.out) as tmp:
            result["pictures"] = write_report(tmp, ins, result, frames)
            with open(os.path.join(tmp, "inspect.json"), "w") as f:
                f.write(to_json(result))  # strict JSON: a diverged model's NaN becomes null
    except KeyboardInterrupt:
        raise Interrupted("; nothing was written") from None
    for w in result["warnings"]:
        echo(f"warning: offsets above {OFFSET_WARNING_THRESHOLD:g} in {w['dcn']}, frame "
             f"{w['frame']}: mean {w['offset_absmean']:.2f}, {100 * w['pixels_over']:.1f}% "
             f"of pixels, box {w['bbox']}")
    echo(f"wrote {args.out}/inspect.json and {args.out}/report.html")
    return result


def main(argv: list[str] | None = None) -> int:
    args = accept_underscores(build_parser()).parse_args(argv)

    def inspect() -> None:
        run(args)

    return run_cli("edvr-inspect", inspect, also=(FileNotFoundError, FileExistsError))


if __name__ == "__main__":
    sys.exit(main())
