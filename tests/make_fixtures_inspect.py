"""Makes the ``edvr-inspect`` reference fixtures in tests/data/inspect/ with BasicSR 1.4.2.

Run once in a separate environment, never in CI (the same one as make_fixtures_edvr.py):

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
    /tmp/ref/bin/pip install basicsr==1.4.2 --no-deps
    /tmp/ref/bin/python tests/make_fixtures_inspect.py

It writes:

* ``clip/00000000.png ...``: a 7-frame 16x24 clip (a smooth random texture panning right
  and down, so that alignment has motion to undo);
* ``expected.json``: what BasicSR's real ``EDVR`` (the committed ``edvr/sr_tsa.pth``, whose
  offset convs are randomized, run in float64) computes for output frame ``FRAME`` of that
  clip, read with forward hooks on its modules: per ``DCNv2Pack`` and window frame the mean
  and max |offset| and the mean sigmoid mask; TSA's temporal attention (sigmoid of the
  embedding dot product) per frame and the mean spatial attention (``sigmoid`` of
  ``spatial_attn5``'s output); the L1 features' and PCD outputs' mean |frame - centre|; the
  restored frame;
* ``flow_colors.npz``: synthetic offset fields and torchvision's ``flow_to_image`` of
  them (the Middlebury colour wheel), which our numpy flow colouring must reproduce.
"""

from __future__ import annotations

import copy
import json
import pathlib

import numpy as np
import torch
from make_fixtures_edvr import VARIANTS, load_basicsr_edvr  # tests/ is on sys.path

DATA = pathlib.Path(__file__).resolve().parent / "data"
OUT = DATA / "inspect"
FRAME = 1
# BasicSR's generate_frame_indices(1, 7, 5, 'reflection_circle'): index -1 becomes
# crt_idx + num_pad - i = 1 + 2 + 1 = 4.
WINDOW = [4, 0, 1, 2, 3]


def make_clip(gen: torch.Generator) -> np.ndarray:
    """(7, 16, 24, 3) uint8: a blurred noise texture shifted by (1, 2) pixels per frame."""
    big = torch.rand((3, 40, 48), generator=gen)
    k = torch.ones(1, 1, 5, 5) / 25
    smooth = torch.nn.functional.conv2d(big[:, None], k, padding=2)[:, 0]
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    frames = [smooth[:, 4 + i:20 + i, 4 + 2 * i:28 + 2 * i] for i in range(7)]
    clip = torch.stack(frames).permute(0, 2, 3, 1).numpy()
    return np.round(clip * 255).astype(np.uint8)


def hook_everything(net, centre: int):
    """Forward hooks recording, per call (one call per window frame), what inspect.json
    reports; returns the dict they fill."""
    rec: dict = {"dcn": {}, "before": [], "after": []}

    def dcn_hook(name):
        def fn(module, inputs, output):
            out = module.conv_offset(inputs[1])
            o1, o2, mask = torch.chunk(out, 3, dim=1)
            offset = torch.cat([o1, o2], 1).abs()
            d = rec["dcn"].setdefault(name, {"offset_absmean": [], "offset_max": [], "mask_mean": []})
            d["offset_absmean"].append(float(offset.mean()))
            d["offset_max"].append(float(offset.max()))
            d["mask_mean"].append(float(torch.sigmoid(mask).mean()))
        return fn

    def pcd_hook(module, inputs, output):
        nbr, ref = inputs[0][0], inputs[1][0]
        rec["before"].append(float((nbr - ref).abs().mean()))
        rec.setdefault("aligned", []).append(output)

    def fusion_hook(module, inputs, output):
        aligned = inputs[0]  # (b, t, c, h, w)
        b, t, c, h, w = aligned.shape
        ref = module.temporal_attn1(aligned[:, module.center_frame_idx].clone())
        emb = module.temporal_attn2(aligned.view(-1, c, h, w)).view(b, t, -1, h, w)
        rec["temporal"] = [float(torch.sigmoid((emb[:, i] * ref).sum(1)).mean()) for i in range(t)]

    def spatial_hook(module, inputs, output):
        rec["spatial"] = float(torch.sigmoid(output).mean())

    for name, module in net.named_modules():
        if type(module).__name__ == "DCNv2Pack":
            module.register_forward_hook(dcn_hook(name))
    net.pcd_align.register_forward_hook(pcd_hook)
    net.fusion.register_forward_hook(fusion_hook)
    net.fusion.spatial_attn5.register_forward_hook(spatial_hook)
    return rec


def flow_fixtures() -> dict[str, np.ndarray]:
    """Synthetic (dx, dy) fields and torchvision's colour images of them."""
    from torchvision.utils import flow_to_image

    yy, xx = np.mgrid[-8:8, -8:8].astype(np.float32) + 0.5
    fields = {
        "right": np.stack([np.full_like(xx, 3.0), np.zeros_like(xx)]),
        "down": np.stack([np.zeros_like(xx), np.full_like(xx, 3.0)]),
        "rotation": np.stack([-yy, xx]),  # counter-clockwise in image coordinates
        "random": np.random.default_rng(7).normal(size=(2, 16, 16)).astype(np.float32),
    }
    out = {}
    for name, f in fields.items():
        out[f"{name}/flow"] = f.transpose(1, 2, 0)  # (H, W, 2): dx, dy
        out[f"{name}/image"] = flow_to_image(torch.from_numpy(f)).permute(1, 2, 0).numpy()
    return out


def main():
    from PIL import Image

    edvr_arch = load_basicsr_edvr()
    OUT.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(20190514)
    clip = make_clip(gen)
    (OUT / "clip").mkdir(exist_ok=True)
    for i, frame in enumerate(clip):
        Image.fromarray(frame).save(OUT / "clip" / f"{i:08d}.png")

    kwargs = VARIANTS["sr_tsa"][0]
    net = edvr_arch.EDVR(**kwargs).eval()
    sd = torch.load(DATA / "edvr" / "sr_tsa.pth", weights_only=True)["params"]
    net.load_state_dict(sd)
    net = copy.deepcopy(net).double()
    centre = kwargs["num_frame"] // 2
    rec = hook_everything(net, centre)
    x = torch.from_numpy(clip[WINDOW].astype(np.float64) / 255).permute(0, 3, 1, 2)[None]
    with torch.no_grad():
        y = net(x)
    aligned = rec.pop("aligned")
    after = [float((a - aligned[centre]).abs().mean()) for a in aligned]
    restored = np.round(y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(restored).save(OUT / "restored.png")
    expected = {
        "checkpoint": "edvr/sr_tsa.pth", "frame": FRAME, "window": WINDOW,
        "dcn": rec["dcn"],
        "tsa": {"temporal_attention_mean": rec["temporal"], "spatial_attention_mean": rec["spatial"]},
        "alignment": {"feature_diff_before": rec["before"], "feature_diff_after": after},
        "versions": f"torch {torch.__version__}, basicsr 1.4.2, float64",
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    np.savez_compressed(OUT / "flow_colors.npz", **flow_fixtures())
    for k, v in rec["dcn"].items():
        print(k, "absmean", np.round(v["offset_absmean"], 3))
    print("before", np.round(rec["before"], 4), "after", np.round(after, 4))
    print("temporal", np.round(rec["temporal"], 4))


if __name__ == "__main__":
    main()
