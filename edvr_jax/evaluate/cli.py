"""Evaluate an EDVR checkpoint with the published protocols (flags only).

    edvr-eval --checkpoint EDVR_L_x4_SR_REDS_official-9f5f5039.pth \\
        --dataset reds4 --data-root datasets/REDS --out results/edvr_l_reds4.json
    python eval.py --checkpoint EDVR_L_x4_SR_REDS --dataset reds4 --data-root datasets/REDS

``edvr-eval`` (installed) and ``python eval.py`` (the repository's script) are the same
tool. Every flag is accepted as ``--data-root`` and as ``--data_root``; the help shows the
first.

Prints a per-clip table and the mean, and writes JSON ``{"settings", "clips", "mean",
...}``. Defaults follow BasicSR's test configs: REDS4 SR uses reflection_circle border
padding, the srblur/deblur/deblurcomp tracks replicate; Vimeo-90K-T is scored on the
centre frame im4 only; Vid4 and Vimeo-90K-T on Y (as published) and RGB. See
``edvr_jax/evaluate/protocols.py`` and ``evaluation.py``.
"""

from __future__ import annotations

import argparse
import sys

from edvr_jax.evaluate.frame_index import PADDING_MODES
from edvr_jax.tasks import ENSEMBLE_NAMES, EVAL_DATASETS, TASKS


def build_parser(prog: str = "edvr-eval") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True,
                   help="a model name (edvr-zoo list, fetched once into the cache), a .pth "
                        "(BasicSR/mmagic/2019), an edvr-convert directory or a workdir")
    p.add_argument("--dataset", required=True, choices=EVAL_DATASETS, type=str.lower)
    p.add_argument("--data-root", "--data_root", required=True,
                   help="REDS: folder with train_sharp/ ...; Vid4: with GT/ and BIx4/; "
                        "Vimeo-90K: with vimeo_septuplet/ and vimeo_septuplet_matlabLRx4/; "
                        "folder: with GT/<clip>/ and LQ/<clip>/")
    p.add_argument("--task", choices=list(TASKS), default=None,
                   help="REDS track (default sr; for folder, deblur if the model is hr_in)")
    p.add_argument("--padding", choices=PADDING_MODES, default=None,
                   help="temporal border padding (default: the protocol's)")
    p.add_argument("--y-channel", "--y_channel", action=argparse.BooleanOptionalAction,
                   default=None, help="score BT.601 Y as well as RGB (default: on for vid4 and "
                                      "vimeo90k_t, as published)")
    p.add_argument("--crop-border", "--crop_border", type=int, default=0,
                   help="pixels removed from each edge before scoring (published: 0)")
    p.add_argument("--save-images", "--save_images", default=None, metavar="DIR",
                   help="write the restored frames as DIR/<clip>/<frame>.png")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--batch", type=int, default=4, help="windows per device call (default 4)")
    p.add_argument("--stage2", default=None, metavar="CKPT2",
                   help="an hr_in stage-2 checkpoint run on the stage-1 outputs")
    p.add_argument("--ensemble", choices=ENSEMBLE_NAMES, default="none",
                   help="test-time self-ensemble: flip4 = identity and horizontal, vertical "
                        "and both flips (the 2019 test script's flip_test); x8 adds their "
                        "transposes; outputs flipped back and averaged (default none)")
    p.add_argument("--center-frame-idx", "--center_frame_idx", type=int, default=None,
                   help="centre frame of the model's window if not num_frame // 2")
    p.add_argument("--overwrite", action="store_true", help="replace --out / --save_images")
    p.add_argument("--no-progress", "--no_progress", action="store_true",
                   help="no progress bar")
    return p


def main(argv: list[str] | None = None, prog: str = "edvr-eval") -> int:
    from edvr_jax.errors import Interrupted, accept_underscores, run_cli

    args = accept_underscores(build_parser(prog)).parse_args(argv)
    from edvr_jax.zoo import check

    def evaluate() -> None:
        check(args.checkpoint)  # a typo in a model name is answered before JAX is imported
        from edvr_jax.evaluate.run_eval import run

        try:
            run(checkpoint=args.checkpoint, dataset=args.dataset, data_root=args.data_root,
                task=args.task, padding=args.padding, y_channel=args.y_channel,
                crop_border=args.crop_border, save_images=args.save_images, out=args.out,
                batch=args.batch, stage2=args.stage2, overwrite=args.overwrite,
                center_frame_idx=args.center_frame_idx, progress=not args.no_progress,
                ensemble=args.ensemble)
        except KeyboardInterrupt:  # --save_images/--out are written under temporary names
            raise Interrupted("; nothing was written" if args.save_images or args.out
                              else "") from None

    return run_cli(prog, evaluate, also=(FileNotFoundError, FileExistsError))


if __name__ == "__main__":
    sys.exit(main())
