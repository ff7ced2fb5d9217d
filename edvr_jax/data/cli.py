"""Command line: edvr-data {check,preview,demo,build-tfds,stage1} ... (also python -m edvr_jax.data).

  check       scan every frame of a dataset, print every problem, exit 1 if any error
  preview     write a PNG grid of sampled LQ/GT training windows and print throughput
  demo        write the embedded demo clips (REDS layout) into a folder
  build-tfds  build the REDS TFDS dataset (ArrayRecord) from a REDS folder
  stage1      restore every frame of a dataset with a checkpoint: the LQ side of stage 2

Sizes are height x width (HxW), as everywhere in edvr_jax.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from edvr_jax.errors import UserError, accept_underscores, counted, run_cli
from edvr_jax.tasks import ENSEMBLE_NAMES, TASKS, TRAIN_DATASETS


class _Help(argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and every option's default (if it has one) in its
    help."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _dataset_args(p: argparse.ArgumentParser, split_default: str | None) -> None:
    p.add_argument("--dataset", default="reds", choices=TRAIN_DATASETS, help="dataset layout")
    p.add_argument("--root", help="dataset folder (tfds: its data_dir; demo: optional, the "
                                  "cache by default; folder: use --gt-root/--lq-root)")
    p.add_argument("--task", default="sr", choices=list(TASKS), help="REDS task")
    p.add_argument("--split", default=split_default,
                   help="'train', 'val' or 'all' (REDS); 'train' or 'test' (Vimeo-90K)"
                        + ("" if split_default else "; unset: the dataset's default"))
    p.add_argument("--partition", default="REDS4", help="REDS validation partition")
    p.add_argument("--gt-root", help="folder dataset: GT clips folder")
    p.add_argument("--lq-root", help="folder dataset: LQ clips folder")
    p.add_argument("--scale", type=int, default=4, help="folder dataset: GT/LQ size ratio")
    p.add_argument("--num-frame", type=int, default=None,
                   help="frames per training window (check: clips shorter are errors; "
                        "preview: unset means 5)")


def _check_roots(args) -> None:
    """The dataset's folders are given (answered before TensorFlow is imported)."""
    if args.root is None and args.dataset not in ("demo", "folder"):
        raise UserError(f"--dataset {args.dataset} needs --root DIR, the dataset folder"
                        + (" (the TFDS data_dir)" if args.dataset == "tfds" else "")
                        + "; --dataset demo needs none")
    if args.dataset == "folder" and not (args.gt_root and args.lq_root):
        raise UserError("--dataset folder needs --gt-root DIR and --lq-root DIR, the folders "
                        "of GT and LQ clips (GT_ROOT/<clip>/<frames>, LQ_ROOT/<clip>/<frames>)")


def _clipset(args, errors=None):
    from edvr_jax.data.datasets import get_clipset  # each command ran _check_roots first

    kw = {}
    if args.dataset == "folder":
        kw = dict(gt_root=args.gt_root, lq_root=args.lq_root, scale=args.scale)
    return get_clipset(args.dataset, args.root, task=args.task, split=args.split,
                       partition=args.partition, num_frame=None, errors=errors, **kw)


def cmd_check(args) -> int:
    _check_roots(args)
    from edvr_jax.data.check import CheckReport, check_clipset
    from edvr_jax.data.clips import DatasetError

    report = CheckReport()
    try:
        clips = _clipset(args, errors=report.errors)
    except UserError as e:
        if isinstance(e, DatasetError):
            print(f"ERROR {e}")
            return 1
        raise
    print(clips.describe())
    check_clipset(clips, num_frame=args.num_frame, decode=args.decode, workers=args.workers,
                  report=report)
    for msg in report.errors:
        print(f"ERROR {msg}")
    for msg in report.notes[:args.max_notes]:
        print(f"NOTE  {msg}")
    if len(report.notes) > args.max_notes:
        print(f"NOTE  ... {len(report.notes) - args.max_notes} more notes")
    print(report.summary())
    return 0 if report.ok else 1


def cmd_preview(args) -> int:
    _check_roots(args)
    if os.path.exists(args.out) and not args.overwrite:
        raise UserError(f"{args.out} exists; pass --overwrite to replace it (or --out PATH)")
    import numpy as np
    from PIL import Image

    from edvr_jax.data.clips import DatasetError
    from edvr_jax.data.pipeline import make_train_dataset
    from edvr_jax.data.preview import measure_throughput, preview_grid
    from edvr_jax.outputs import replacing_file

    clips = _clipset(args)
    num_frame = args.num_frame or 5
    try:
        ds = make_train_dataset(clips, num_frame=num_frame, gt_size=args.gt_size,
                                interval_list=tuple(args.interval_list),
                                random_reverse=args.random_reverse, seed=args.seed,
                                global_batch_size=args.batch, process_index=0, process_count=1,
                                with_info=True)
    except DatasetError as e:
        if "smaller than the LQ patch" not in str(e):
            raise
        raise UserError(f"{e}; pass a smaller --gt-size (it is {args.gt_size}, the GT crop; "
                        f"the LQ patch is --gt-size / {clips.scale})") from None
    batch = next(iter(ds))
    grid = preview_grid(np.asarray(batch["lq"]), np.asarray(batch["gt"]), clips.scale)
    with replacing_file(args.out) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    print(clips.describe())
    for i in range(args.batch):
        flips = batch["flips"][i].numpy().tolist()
        print(f"  sample {i}: clip {clips.names[int(batch['clip'][i])]} frames "
              f"{batch['frames'][i].numpy().tolist()} LQ crop at "
              f"{batch['origin'][i].numpy().tolist()} hflip/vflip/transpose {flips}")
    print(f"wrote {args.out}: rows = samples; columns = {num_frame} LQ frames "
          f"(x{clips.scale} nearest) then the GT patch")
    stats = measure_throughput(ds, batches=args.batches)
    print(json.dumps({"pipeline": "make_train_dataset", "batch": args.batch,
                      "gt_size": args.gt_size, "num_frame": num_frame, **stats}))
    return 0


def cmd_demo(args) -> int:
    from edvr_jax.data.demo_clips import make_demo_clips

    make_demo_clips(args.root, num_clips=args.num_clips, num_frames=args.num_frames,
                    gt_size=(args.height, args.width), seed=args.seed)
    print(f"wrote {counted(args.num_clips, 'demo clip')} x {counted(args.num_frames, 'frame')} "
          f"to {args.root}")
    return 0


def cmd_build_tfds(args) -> int:
    from edvr_jax.data.tfds_reds import build_reds_tfds

    b = build_reds_tfds(args.root, args.data_dir, task=args.task, file_format=args.file_format)
    print(f"built {b.info.full_name} in {b.data_dir}: "
          + ", ".join(f"{k} {v.num_examples} frame records" for k, v in b.info.splits.items()))
    return 0


def cmd_stage1(args) -> int:
    from edvr_jax.zoo import check

    check(args.checkpoint)  # a missing file or a mistyped model name, before JAX/TF start
    _check_roots(args)
    if args.root and "://" not in args.root and not os.path.isdir(args.root):
        raise UserError(f"dataset root {args.root} does not exist or is not a folder")
    if args.batch < 1 or (args.tile is not None and args.tile < 1) or args.tile_overlap < 0:
        raise UserError("--batch and --tile must be >= 1 and --tile-overlap >= 0")
    if (args.process_index is None) != (args.process_count is None):
        raise UserError("give both --process-index and --process-count, or neither")
    from edvr_jax.evaluate.protocols import temporal_padding
    from edvr_jax.evaluate.run_eval import load
    from edvr_jax.evaluate.stage1 import restore_dataset
    from edvr_jax.zoo import resolve

    model, variables = load(resolve(args.checkpoint, progress=not args.no_progress))
    clips = _clipset(args)
    padding = args.padding or temporal_padding(model)
    print(clips.describe())
    print(f"model x{model.scale}, {model.num_frame} input frames; padding {padding}; "
          f"ensemble {args.ensemble}; writing {args.out}/<clip>/<frame>.png")
    r = restore_dataset(model, variables, clips, args.out, padding=padding, batch_size=args.batch,
                        ensemble=args.ensemble, tile=args.tile, tile_overlap=args.tile_overlap,
                        process_index=args.process_index, process_count=args.process_count,
                        progress=not args.no_progress)
    index, count = r["process"]
    print(f"process {index} of {count}: {len(r['written'])} frames written, {r['skipped']} "
          f"already there, of its {r['frames']}, in {r['seconds']:.1f} s "
          f"({r['frames_per_second']:.2f} frames/s)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="edvr-data", description=__doc__, formatter_class=_Help)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    p = sub.add_parser("check", help="scan every frame and report problems",
                       formatter_class=_Help)
    _dataset_args(p, "all")
    p.add_argument("--decode", action="store_true",
                   help="decode every frame (slower; by default each frame's header and last "
                        "bytes are read, which finds corrupt headers and cut-off files)")
    p.add_argument("--workers", type=int, default=16, help="frames read in parallel")
    p.add_argument("--max-notes", type=int, default=50, help="notes printed at most")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("preview", help="PNG grid of training samples + throughput",
                       formatter_class=_Help)
    _dataset_args(p, None)
    p.add_argument("--out", default="preview.png", help="the PNG grid to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--gt-size", type=int, default=256,
                   help="GT crop side in pixels (the LQ patch is GT_SIZE / scale)")
    p.add_argument("--batch", type=int, default=4, help="samples in the grid (one batch)")
    p.add_argument("--batches", type=int, default=20, help="batches timed for throughput")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--interval-list", type=int, nargs="+", default=[1],
                   help="frame intervals a window is sampled with")
    p.add_argument("--random-reverse", action="store_true", help="reverse windows at random")
    p.set_defaults(fn=cmd_preview)
    p = sub.add_parser("demo", help="write the embedded demo clips", formatter_class=_Help)
    p.add_argument("--root", required=True, help="folder to write (REDS layout)")
    p.add_argument("--num-clips", type=int, default=8, help="clips to write")
    p.add_argument("--num-frames", type=int, default=30, help="frames per clip")
    p.add_argument("--height", type=int, default=256, help="GT frame height")
    p.add_argument("--width", type=int, default=256, help="GT frame width")
    p.add_argument("--seed", type=int, default=0, help="seed of the photographs chosen and their motion")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("build-tfds", help="build the REDS TFDS dataset", formatter_class=_Help)
    p.add_argument("--root", required=True, help="REDS folder (manual_dir)")
    p.add_argument("--data-dir", required=True, help="TFDS data_dir to build into")
    p.add_argument("--task", default="sr", choices=list(TASKS), help="REDS task")
    p.add_argument("--file-format", default="array_record", choices=["array_record"],
                   help="TFDS storage format")
    p.set_defaults(fn=cmd_build_tfds)
    p = sub.add_parser("stage1", help="restore a dataset's frames (stage-2 training input)",
                       description="Restores every frame of every clip of the split into "
                                   "OUT/<clip>/<frame>.png, the data.lq_root of a stage-2 "
                                   "config. Resumable: frames already written are skipped.",
                       formatter_class=_Help)
    _dataset_args(p, "all")
    p.add_argument("--checkpoint", required=True,
                   help="stage-1 model: a name (edvr-zoo list), a .pth, an edvr-convert "
                        "directory or a workdir")
    p.add_argument("--out", required=True, help="output folder (local or gs://)")
    p.add_argument("--ensemble", choices=ENSEMBLE_NAMES, default="none",
                   help="test-time flips averaged (the 2019 authors used flip4 here)")
    p.add_argument("--padding", default=None, help="temporal padding (default: the protocol's)")
    p.add_argument("--batch", type=int, default=4, help="windows per device call")
    p.add_argument("--tile", type=int, default=None, help="restore in tiles of this many LQ pixels")
    p.add_argument("--tile-overlap", type=int, default=32, help="margin around each tile")
    p.add_argument("--process-index", type=int, default=None,
                   help="this process's share (default: jax.process_index())")
    p.add_argument("--process-count", type=int, default=None,
                   help="number of shares (default: jax.process_count())")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_stage1)
    args = accept_underscores(ap).parse_args(argv)
    return run_cli("edvr-data", lambda: args.fn(args), exit_code=1, also=(FileNotFoundError,))


if __name__ == "__main__":
    sys.exit(main())
