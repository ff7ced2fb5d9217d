"""Makes tests/data/eval/basicsr_eval.json with BasicSR 1.4.2's own video test path.

Run once in the torch environment, never in CI (see make_fixtures_edvr.py for the venv):

    /work/venvs/torch/bin/python tests/make_fixtures_eval.py

It writes the tiny REDS / Vid4 / Vimeo-90K trees of ``tests/eval_trees.py`` (integer
arithmetic, so the test suite regenerates bit-identical frames), then for each case runs
BasicSR's real modules, loaded from their files with a registry and logger in place of
the package ``__init__`` (which fails to import with new torchvision):

* ``basicsr/data/video_test_dataset.py``: ``VideoTestDataset`` (REDS4, Vid4) and
  ``VideoTestVimeo90KDataset``, with ``data_util.generate_frame_indices`` /
  ``read_img_seq`` (cv2);
* ``basicsr/archs/edvr_arch.py``: EDVR with the weights of ``tests/data/edvr/*.pth``;
* ``basicsr/utils/img_util.py``: ``tensor2img``;
* ``basicsr/metrics/psnr_ssim.py``: ``calculate_psnr`` / ``calculate_ssim``.

The loop and the averaging are ``VideoBaseModel.dist_validation`` and
``_log_validation_metric_values`` written out (that class needs the whole training
stack): per-frame metrics accumulated in a float32 tensor per folder, ``torch.mean`` per
folder, then the Python mean of the folder means. Recorded per case: the per-frame
values (float64, as the metric functions return them), the per-folder means and the
overall means as BasicSR computes them. ``basicsr_outputs.npz`` holds a fingerprint of
every output frame: its 8x8 block sums (uint16 ``(H/8, W/8, 3)``, RGB) under the key
``<case>/<clip>/<index>``. PSNR against a GT that the tiny random-weight models are far
from barely moves when the input window changes; the block sums move by hundreds.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import pathlib
import sys
import tempfile
import types

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import eval_trees  # noqa: E402

OUT = HERE / "data" / "eval" / "basicsr_eval.json"
OUT_BLOCKS = HERE / "data" / "eval" / "basicsr_outputs.npz"
WEIGHTS = HERE / "data" / "edvr"

# case: (tree, dataset class, name, model file, EDVR kwargs, padding, test_y_channel)
CASES = {
    "reds4_sr": ("reds", "VideoTestDataset", "REDS4", "sr_tsa",
                 dict(num_feat=8, num_frame=5, deformable_groups=2, num_extract_block=1,
                      num_reconstruct_block=1), "reflection_circle", False),
    "reds4_deblur": ("reds", "VideoTestDataset", "REDS4", "deblur",
                     dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1,
                          num_reconstruct_block=1, with_predeblur=True, hr_in=True),
                     "replicate", False),
    "vid4": ("vid4", "VideoTestDataset", "Vid4", "sr_tsa",
             dict(num_feat=8, num_frame=5, deformable_groups=2, num_extract_block=1,
                  num_reconstruct_block=1), "reflection_circle", True),
    # 5 frames: BasicSR's Vimeo dataset then reads im2..im6 around im4.
    "vimeo90k_t": ("vimeo", "VideoTestVimeo90KDataset", "Vimeo90K-Test", "sr_tsa",
                   dict(num_feat=8, num_frame=5, deformable_groups=2, num_extract_block=1,
                        num_reconstruct_block=1), "reflection_circle", True),
}


def load_basicsr():
    """BasicSR's modules from their files, with namespace stand-ins for the packages."""
    root = pathlib.Path(importlib.util.find_spec("basicsr").submodule_search_locations[0])
    for name, sub in (("basicsr", ""), ("basicsr.archs", "archs"), ("basicsr.utils", "utils"),
                      ("basicsr.ops", "ops"), ("basicsr.data", "data"),
                      ("basicsr.metrics", "metrics")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(root / sub)]
        sys.modules[name] = mod

    def load(name):
        path = root.joinpath(*name.split(".")[1:]).with_suffix(".py")
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod

    utils = sys.modules["basicsr.utils"]
    utils.get_root_logger = lambda *a, **k: logging.getLogger("basicsr")
    load("basicsr.utils.registry")
    color, img = load("basicsr.utils.color_util"), load("basicsr.utils.img_util")
    load("basicsr.utils.dist_util")
    misc = load("basicsr.utils.misc")
    utils.bgr2ycbcr, utils.img2tensor = color.bgr2ycbcr, img.img2tensor
    utils.tensor2img, utils.scandir = img.tensor2img, misc.scandir
    load("basicsr.archs.arch_util")
    edvr = load("basicsr.archs.edvr_arch")
    load("basicsr.data.transforms")
    load("basicsr.data.data_util")
    vtd = load("basicsr.data.video_test_dataset")
    load("basicsr.metrics.metric_util")
    metrics = load("basicsr.metrics.psnr_ssim")
    return types.SimpleNamespace(EDVR=edvr.EDVR, datasets=vtd, tensor2img=img.tensor2img,
                                 psnr=metrics.calculate_psnr, ssim=metrics.calculate_ssim)


def dataset_opt(tree: str, roots: dict, name: str, cls: str, num_frame: int, padding: str,
                tmp: pathlib.Path, model: str) -> dict:
    opt = dict(name=name, io_backend=dict(type="disk"), cache_data=False, num_frame=num_frame,
               padding=padding)
    if tree == "reds":
        lq = "train_blur" if model == "deblur" else "train_sharp_bicubic"
        meta = tmp / "meta_info_REDS4_test_GT.txt"
        meta.write_text("".join(f"{c} 6 (128,128,3)\n" for c in eval_trees.REDS4))
        opt.update(dataroot_gt=f"{roots['reds']}/train_sharp", dataroot_lq=f"{roots['reds']}/{lq}",
                   meta_info_file=str(meta))
    elif tree == "vid4":
        opt.update(dataroot_gt=f"{roots['vid4']}/GT", dataroot_lq=f"{roots['vid4']}/BIx4")
    else:
        meta = tmp / "meta_info_Vimeo90K_test_GT.txt"
        meta.write_text("".join(f"{k} 7 (128,128,3)\n" for k in eval_trees.VIMEO_KEYS))
        base = roots["vimeo"]
        opt.update(dataroot_gt=f"{base}/vimeo_septuplet/sequences",
                   dataroot_lq=f"{base}/vimeo_septuplet_matlabLRx4/sequences",
                   meta_info_file=str(meta))
    assert cls in ("VideoTestDataset", "VideoTestVimeo90KDataset")
    return opt


def block_sums(img_rgb: np.ndarray) -> np.ndarray:
    h, w, c = img_rgb.shape
    return img_rgb.astype(np.int64).reshape(h // 8, 8, w // 8, 8, c).sum(axis=(1, 3)).astype(
        np.uint16)


def run_case(bsr, roots, tmp, case, blocks):
    tree, cls, name, model_file, kwargs, padding, y = CASES[case]
    net = bsr.EDVR(**kwargs).eval()
    net.load_state_dict(torch.load(WEIGHTS / f"{model_file}.pth")["params"], strict=True)
    ds = getattr(bsr.datasets, cls)(dataset_opt(tree, roots, name, cls, kwargs["num_frame"],
                                                padding, tmp, model_file))
    metric_opts = {"psnr": dict(crop_border=0, test_y_channel=False),
                   "ssim": dict(crop_border=0, test_y_channel=False)}
    if y:
        metric_opts.update(psnr_y=dict(crop_border=0, test_y_channel=True),
                           ssim_y=dict(crop_border=0, test_y_channel=True))
    # dist_validation: a float32 (num_frame_in_folder, num_metrics) tensor per folder.
    from collections import Counter

    counts = Counter(ds.data_info["folder"])
    results = {f: torch.zeros(n, len(metric_opts), dtype=torch.float32) for f, n in counts.items()}
    frames: dict[str, list] = {}
    for idx in range(len(ds)):
        data = ds[idx]
        folder = data["folder"]
        frame_idx = int(data["idx"].split("/")[0])
        with torch.no_grad():
            out = net(data["lq"].unsqueeze(0))
        result_img = bsr.tensor2img([out.detach().cpu()])
        gt_img = bsr.tensor2img([data["gt"].unsqueeze(0)])
        values = {}
        for j, (metric, mopt) in enumerate(metric_opts.items()):
            fn = bsr.psnr if metric.startswith("psnr") else bsr.ssim
            values[metric] = float(fn(result_img, gt_img, **mopt))
            results[folder][frame_idx, j] += values[metric]
        # Vimeo puts every septuplet in folder 'vimeo90k'; record them by sequence key.
        key = folder if cls == "VideoTestDataset" else "/".join(data["lq_path"].split("/")[-3:-1])
        index = frame_idx if cls == "VideoTestDataset" else 3
        frames.setdefault(key, []).append({"index": index, **values})
        blocks[f"{case}/{key}/{index}"] = block_sums(result_img[..., ::-1])  # BGR -> RGB
    # _log_validation_metric_values
    avg = {f: torch.mean(t, dim=0).cpu() for f, t in results.items()}
    total = {m: 0 for m in metric_opts}
    for f in avg:
        for j, m in enumerate(total):
            total[m] += avg[f][j].item()
    total = {m: v / len(avg) for m, v in total.items()}
    folders = {f: {m: avg[f][j].item() for j, m in enumerate(metric_opts)} for f in avg}
    print(f"{case}: " + ", ".join(f"{m} {v:.4f}" for m, v in total.items()))
    return {"model": model_file, "padding": padding, "num_frame": kwargs["num_frame"],
            "dataset_class": cls, "name": name, "frames": frames, "folders": folders,
            "mean": total}


def main():
    torch.set_num_threads(2)
    bsr = load_basicsr()
    out, blocks = {}, {}
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        roots = eval_trees.make_all(str(tmp / "trees"))
        for case in CASES:
            out[case] = run_case(bsr, roots, tmp, case, blocks)
    import cv2
    import torchvision

    out["versions"] = (f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
                       f"opencv {cv2.__version__}, numpy {np.__version__}, basicsr 1.4.2")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    np.savez_compressed(OUT_BLOCKS, **blocks)
    print(f"wrote {OUT} and {OUT_BLOCKS}")


if __name__ == "__main__":
    main()
