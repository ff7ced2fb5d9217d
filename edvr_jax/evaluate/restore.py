"""``edvr-restore``: restore a video file or a folder of frames with an EDVR checkpoint.

    edvr-restore input.mp4 output.mp4 --checkpoint EDVR_M_x4_SR_REDS   # fetched once, cached
    edvr-restore input.mp4 output.mp4 --checkpoint EDVR_M_x4_SR_REDS_official-32075921.pth
    edvr-restore frames/ restored/ --checkpoint edvr_l_deblur/ --tile 128

INPUT is a video file (anything FFmpeg reads, via PyAV: ``pip install 'edvr_jax[video]'``)
or a folder of frames (sorted by name). OUTPUT is a video file when it has a video
extension (.mp4, .mkv, .mov, ...: H.264 with the input's frame rate and timestamps, the
audio stream copied; yuv420p, an odd size padded to even by edge replication, or
``--pix-fmt yuv444p``) and otherwise a folder of PNGs (named after the input frames, or
00000000.png ... for a video). Frames of any size work (padded to the model's multiple and
cropped back); border frames use the protocol's temporal padding (reflection_circle for
x4 SR models, replicate for the blur tracks: SRblur and hr_in deblurring models). Frames are decoded, restored and
encoded as a stream, so memory does not grow with the video length. ``--tile`` restores
large frames in tiles (see ``edvr_jax.evaluate.tiling`` for when tiles are exact).
OUTPUT is written under a hidden temporary name and renamed at the end
(``edvr_jax.outputs``): after an error or Ctrl-C (exit status 130) there is nothing at OUTPUT.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

from edvr_jax.errors import Interrupted, accept_underscores, run_cli
from edvr_jax.evaluate.frame_index import PADDING_MODES
from edvr_jax.evaluate.video_io import PIX_FMTS, RestoreError, is_video_path
from edvr_jax.tasks import ENSEMBLE_NAMES
from edvr_jax.zoo import check, resolve

__all__ = ["build_parser", "main", "run"]

DEFAULT_OVERLAP = 32


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edvr-restore", description=__doc__.split("\n\n")[0].replace("``", ""))
    p.add_argument("input", help="a video file or a folder of frames")
    p.add_argument("output", help="a video file (.mp4, .mkv, .mov, ...) or a folder for PNGs")
    p.add_argument("--checkpoint", required=True,
                   help="a model name (edvr-zoo list), a .pth (BasicSR/mmagic/2019), an "
                        "edvr-convert directory or a workdir")
    p.add_argument("--stage2", default=None, metavar="CKPT2",
                   help="an hr_in stage-2 checkpoint run on the stage-1 outputs")
    p.add_argument("--tile", type=int, default=None, metavar="SIZE",
                   help="restore in tiles of SIZE x SIZE input pixels (bounds device memory)")
    p.add_argument("--tile-overlap", "--tile_overlap", type=int, default=DEFAULT_OVERLAP,
                   metavar="N", help=f"margin around each tile in input pixels (default "
                                     f"{DEFAULT_OVERLAP}; exact when >= the receptive field)")
    p.add_argument("--batch", type=int, default=1,
                   help="windows (or tiles) per device call (default 1)")
    p.add_argument("--ensemble", choices=ENSEMBLE_NAMES, default="none",
                   help="test-time self-ensemble: flip4 (identity, horizontal, vertical, both "
                        "flips) or x8 (and their transposes), averaged; 4 or 8 times the "
                        "compute (default none)")
    p.add_argument("--padding", choices=PADDING_MODES, default=None,
                   help="temporal border padding (default: reflection_circle for x4 SR models, "
                        "replicate for SRblur and hr_in deblurring models)")
    p.add_argument("--center-frame-idx", "--center_frame_idx", type=int, default=None,
                   help="centre frame of the model's window if not num_frame // 2")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality, 0 (lossless) .. 51 (default 18)")
    p.add_argument("--pix-fmt", "--pix_fmt", choices=PIX_FMTS, default="yuv420p",
                   help="H.264 chroma sampling: yuv420p plays everywhere (an odd width or "
                        "height is padded to even by repeating the last column/row); yuv444p "
                        "keeps full colour resolution and any size, but many players refuse "
                        "it (default: yuv420p)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--no-progress", "--no_progress", action="store_true", help="no progress bar")
    return p


def _check_output(path: str, overwrite: bool) -> str:
    """'video' or 'folder' for OUTPUT; refuses an existing output unless ``overwrite`` (an
    existing video is replaced when written, PNGs in an existing folder are overwritten)."""
    ext = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        kind = "folder"
    elif is_video_path(path):
        kind = "video"
    elif os.path.exists(path):
        raise RestoreError(f"output {path} is an existing file but not a video (.mp4, .mkv, "
                           f".mov, ...); give a video file name or a folder")
    elif ext:
        raise RestoreError(f"output {path}: unknown video extension {ext!r}; use .mp4, .mkv, "
                           f".mov, ... or a folder name (no extension) for PNG frames")
    else:
        kind = "folder"
    exists = os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path))
    if exists and not overwrite:
        raise RestoreError(f"output {path} exists; pass --overwrite to replace it")
    return kind


def _refusing_nonfinite(outputs, name: str, meta: collections.deque, num_stages: int):
    """``outputs``, with a diverged model's NaN/inf frame turned into a RestoreError naming
    the input and the frame (``meta[0]`` is the frame the next output belongs to)."""
    from edvr_jax.evaluate.inference import NonFiniteOutput, nonfinite_message

    done = 0
    try:
        for out in outputs:
            yield out
            done += 1
    except NonFiniteOutput as e:
        k = e.index - done
        frame = meta[k].name if 0 <= k < len(meta) else f"{e.index}"
        prefix = f"stage {e.stage + 1}: " if num_stages > 1 and e.stage is not None else ""
        raise RestoreError(prefix + nonfinite_message(name, frame)) from None


def run(args: argparse.Namespace, echo=print) -> dict:
    """Does what ``edvr-restore`` does; returns a summary (frames, seconds, notes)."""
    for what, path in (("checkpoint", args.checkpoint), ("stage-2 checkpoint", args.stage2)):
        if path is not None:
            check(path, what)  # an existing path or a catalogue name (fetched below)
    if not os.path.exists(args.input):
        raise RestoreError(f"input {args.input} does not exist")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise RestoreError("input and output are the same path")
    if args.batch < 1 or (args.tile is not None and args.tile < 1) or args.tile_overlap < 0:
        raise RestoreError("--batch and --tile must be >= 1 and --tile-overlap >= 0")
    import time

    from tqdm.auto import tqdm

    from edvr_jax.evaluate.protocols import temporal_padding
    from edvr_jax.evaluate.run_eval import load
    from edvr_jax.evaluate.stream import make_stages, restore_stream
    from edvr_jax.evaluate.video_io import FolderSink, VideoSink, open_source
    from edvr_jax.models import OFFSET_WARNING_THRESHOLD, warn_large_offsets
    from edvr_jax.outputs import replacing_file, replacing_folder

    source = open_source(args.input)
    count = 0
    try:
        kind = _check_output(args.output, args.overwrite)
        checkpoint = resolve(args.checkpoint, progress=not args.no_progress)
        stage2 = (resolve(args.stage2, "stage-2 checkpoint", progress=not args.no_progress)
                  if args.stage2 else None)
        model, variables = load(checkpoint, stage2, args.center_frame_idx)
        padding = args.padding or temporal_padding(model)
        stages = make_stages(model, variables, batch_size=args.batch, tile=args.tile,
                             tile_overlap=args.tile_overlap, ensemble=args.ensemble)
        paddings = [padding] * len(stages)
        echo(f"model x{model.scale}, {len(stages)} stage(s), {model.num_frame} input frames, "
             f"padding {padding}" + (f", tiles {args.tile} + {args.tile_overlap}"
                                     if args.tile else "")
             + ("" if args.ensemble == "none" else f", ensemble {args.ensemble}"))
        meta: collections.deque = collections.deque()  # the frames between decoder and encoder
        sink = None

        def frames():
            events = source.events() if source.kind == "video" else (
                ("video", f) for f in source.frames())
            for kind_, item in events:
                if kind_ == "audio":
                    if sink is not None:
                        sink.audio(item)
                    else:
                        pending_audio.append(item)
                    continue
                if first and item.image.shape != first[0]:
                    raise RestoreError(f"frame {item.name} of {args.input} is "
                                       f"{item.image.shape[0]}x{item.image.shape[1]}, earlier "
                                       f"frames {first[0][0]}x{first[0][1]} (HxW); the frame size "
                                       f"must not change")
                if not first:
                    first.append(item.image.shape)
                meta.append(item)
                yield item.image

        pending_audio: list = []  # audio packets demuxed before the first frame is restored
        first: list = []  # the first frame's shape
        # "compiling" until the first frame is out; the rate and ETA then restart from it,
        # so that they do not count XLA's compilation.
        bar = tqdm(total=source.num_frames, unit="frame", disable=args.no_progress,
                   dynamic_ncols=True, desc="restore (compiling)")
        start = time.perf_counter()
        # Written under a hidden temporary name and renamed into place at the end: an
        # error or Ctrl-C leaves nothing at OUTPUT (edvr_jax.outputs).
        target = (replacing_file(args.output) if kind == "video"
                  else replacing_folder(args.output, merge=True))
        with target as tmp:
            try:
                for out in _refusing_nonfinite(
                        restore_stream(frames(), stages, paddings, total=None),
                        args.input, meta, len(stages)):
                    info = meta.popleft()
                    if sink is None:
                        sink = (VideoSink(tmp, source, out.shape[1], out.shape[0], args.crf,
                                          args.pix_fmt) if kind == "video" else FolderSink(tmp))
                        for packet in pending_audio:
                            sink.audio(packet)
                        pending_audio.clear()
                    sink.write(out, info)
                    count += 1
                    if count == 1:
                        bar.set_description("restore", refresh=False)
                        bar.reset(total=source.num_frames)
                    bar.update(1)
            except BaseException:
                if sink is not None:
                    sink.abort()
                raise
            finally:
                bar.close()
            if sink is not None:
                sink.close()
        seconds = time.perf_counter() - start
        for note in source.notes:  # after the bar, one line per kind, counted
            n = source.note_counts.get(note, count)
            echo(f"note: {note} ({'all ' if n == count else f'{n} of '}{count} frames)")
        for note in getattr(sink, "notes", ()):
            echo(f"note: {note}")
        for k, r in enumerate(stages):
            prefix = f"stage{k + 1}/" if len(stages) > 1 else ""
            for msg in warn_large_offsets({prefix + n: v for n, v in r.offsets.items()},
                                          OFFSET_WARNING_THRESHOLD):
                echo(f"warning: {msg}")
        echo(f"wrote {count} frames to {args.output} in {seconds:.1f} s "
             f"({count / seconds:.2f} frames/s)")
        return {"frames": count, "seconds": seconds, "notes": list(source.notes), "kind": kind,
                "ensemble": args.ensemble}
    except KeyboardInterrupt:
        total = source.num_frames
        raise Interrupted(f"after {count}{f' of {total}' if total else ''} frames; nothing "
                          f"was written") from None
    finally:
        source.close()


def main(argv: list[str] | None = None) -> int:
    args = accept_underscores(build_parser()).parse_args(argv)

    def restore() -> None:
        run(args)

    return run_cli("edvr-restore", restore, also=(FileNotFoundError, FileExistsError))


if __name__ == "__main__":
    sys.exit(main())
