"""Makes the EDVR reference fixtures in tests/data/edvr/ with BasicSR 1.4.2's real EDVR.

Run once in a separate environment, never in CI:

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
    /tmp/ref/bin/pip install basicsr==1.4.2 --no-deps
    /tmp/ref/bin/python tests/make_fixtures_edvr.py

Only ``basicsr/archs/arch_util.py`` and ``basicsr/archs/edvr_arch.py`` are executed (the
package ``__init__`` imports modules that fail with new torchvision), with tiny stand-ins
for BasicSR's registry and logger.

For every variant the script builds a small BasicSR EDVR, gives *every* parameter
random values -- including the offset convs BasicSR zero-initialises, scaled so that the
offsets are several pixels and the output depends strongly on alignment -- runs it on a
random clip and saves:

* ``<variant>.pth``: ``{'params': state_dict}`` as BasicSR's official files (zip format);
* ``<variant>_mmagic.pth`` for the variants mmagic supports: ``{'meta': ..., 'state_dict':
  {'generator.' + mmagic_key: ...}}`` with mmagic's EDVRNet names (ConvModule ``.conv``
  levels, ``pcd_alignment``, ``upsample1.upsample_conv``, ...);
* ``sr_tsa_2019.pth``: the first variant with the 2019 names, legacy (pre-1.6) format;
* ``io.npz``: inputs, outputs and the mean |offset| of every DCNv2Pack call. Outputs are
  computed in float64 from the float32 weights and inputs (an exact reference).
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import pathlib
import sys
import types

import numpy as np
import torch
from mmagic_names import to_mmagic  # tests/ is on sys.path when this script runs

OUT = pathlib.Path(__file__).resolve().parent / "data" / "edvr"

VARIANTS = {
    # name: (EDVR kwargs, input (T, H, W))
    "sr_tsa": (dict(num_feat=8, num_frame=5, deformable_groups=2, num_extract_block=1,
                    num_reconstruct_block=1), (5, 12, 20)),
    "sr_wotsa": (dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=2,
                      num_reconstruct_block=1, with_tsa=False), (3, 16, 12)),
    # 7 frames (the Vimeo-90K model) with a centre other than num_frame // 2.
    "sr_tsa_t7": (dict(num_feat=8, num_frame=7, deformable_groups=4, num_extract_block=1,
                       num_reconstruct_block=2, center_frame_idx=2), (7, 8, 16)),
    "srblur": (dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1,
                    num_reconstruct_block=1, with_predeblur=True), (3, 16, 16)),
    "deblur": (dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1,
                    num_reconstruct_block=1, with_predeblur=True, hr_in=True), (3, 32, 48)),
}
MMAGIC_VARIANTS = ("sr_tsa",)
# Stage 2 of the two-stage model: an hr_in EDVR on stage-1 ("sr_tsa") outputs.
STAGE2 = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1,
              num_reconstruct_block=1, with_predeblur=True, hr_in=True)


def load_basicsr_edvr():
    """Imports basicsr.archs.edvr_arch from its file, bypassing the package __init__."""
    spec = importlib.util.find_spec("basicsr")
    root = pathlib.Path(spec.submodule_search_locations[0])
    for name, path in (("basicsr", root), ("basicsr.archs", root / "archs"),
                       ("basicsr.utils", root / "utils"), ("basicsr.ops", root / "ops")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(path)]
        sys.modules[name] = mod
    sys.modules["basicsr.utils"].get_root_logger = lambda *a, **k: logging.getLogger("basicsr")
    registry = types.ModuleType("basicsr.utils.registry")
    registry.ARCH_REGISTRY = types.SimpleNamespace(register=lambda: (lambda cls: cls))
    sys.modules["basicsr.utils.registry"] = registry

    def load(name, path):
        s = importlib.util.spec_from_file_location(name, path)
        m = importlib.util.module_from_spec(s)
        sys.modules[name] = m
        s.loader.exec_module(m)
        return m

    load("basicsr.archs.arch_util", root / "archs" / "arch_util.py")
    return load("basicsr.archs.edvr_arch", root / "archs" / "edvr_arch.py")


def randomize(net, gen):
    """Random values for every parameter; offset convs large enough to move samples pixels."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            fan_in = p[0].numel() if p.ndim > 1 else 16
            if "conv_offset" in name:
                if p.ndim > 1:
                    p.copy_(torch.randn(p.shape, generator=gen) * 2.0 / fan_in**0.5)
                else:
                    p.copy_(torch.empty(p.shape).uniform_(-4, 4, generator=gen))
            elif p.ndim > 1:
                p.copy_(torch.empty(p.shape).uniform_(-1, 1, generator=gen) * (4.0 / fan_in) ** 0.5)
            else:
                p.copy_(torch.empty(p.shape).uniform_(-0.1, 0.1, generator=gen))


def record_offsets(net):
    """Hooks every DCNv2Pack and records the mean |offset| of each call."""
    stats: dict[str, list[float]] = {}

    def hook(name):
        def fn(module, inputs, output):
            out = module.conv_offset(inputs[1])
            o1, o2, _ = torch.chunk(out, 3, dim=1)
            stats.setdefault(name, []).append(float(torch.cat([o1, o2], 1).abs().mean()))
        return fn

    for name, module in net.named_modules():
        if type(module).__name__ == "DCNv2Pack":
            module.register_forward_hook(hook(name))
    return stats


def to_2019(key: str) -> str:
    """BasicSR EDVR key -> xinntao/EDVR 2019 key, as BasicSR's convert_models.py pairs them."""
    import re

    if key.startswith("predeblur."):
        raise ValueError("the 2019 fixture covers the SR model only")
    rules = [
        (r"^conv_l([23])_([12])\.", r"fea_L\1_conv\2."),
        (r"^pcd_align\.offset_conv(\d)\.l(\d)\.", r"pcd_align.L\2_offset_conv\1."),
        (r"^pcd_align\.dcn_pack\.l(\d)\.conv_offset\.", r"pcd_align.L\1_dcnpack.conv_offset_mask."),
        (r"^pcd_align\.dcn_pack\.l(\d)\.", r"pcd_align.L\1_dcnpack."),
        (r"^pcd_align\.feat_conv\.l(\d)\.", r"pcd_align.L\1_fea_conv."),
        (r"^pcd_align\.cas_dcnpack\.conv_offset\.", "pcd_align.cas_dcnpack.conv_offset_mask."),
        (r"^fusion\.temporal_attn1\.", "tsa_fusion.tAtt_2."),
        (r"^fusion\.temporal_attn2\.", "tsa_fusion.tAtt_1."),
        (r"^fusion\.feat_fusion\.", "tsa_fusion.fea_fusion."),
        (r"^fusion\.spatial_attn_add(\d)\.", r"tsa_fusion.sAtt_add_\1."),
        (r"^fusion\.spatial_attn_l(\d)\.", r"tsa_fusion.sAtt_L\1."),
        (r"^fusion\.spatial_attn(\d)\.", r"tsa_fusion.sAtt_\1."),
        (r"^reconstruction\.", "recon_trunk."),
        (r"^conv_hr\.", "HRconv."),
    ]
    for pattern, repl in rules:
        new = re.sub(pattern, repl, key)
        if new != key:
            return new
    return key


def main():
    edvr_arch = load_basicsr_edvr()
    OUT.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(20190513)
    io: dict[str, np.ndarray] = {}
    nets = {}
    for name, (kwargs, (t, h, w)) in VARIANTS.items():
        net = edvr_arch.EDVR(**kwargs).eval()
        randomize(net, gen)
        sd = {k: v.detach().clone() for k, v in net.state_dict().items()}  # float32, as released
        x = torch.rand((1, t, 3, h, w), generator=gen)
        # The reference output is computed in float64 from the very float32 weights and
        # inputs, so it is exact and our float32 run is judged on its own round-off.
        net64 = copy.deepcopy(net).double()
        stats = record_offsets(net64)
        with torch.no_grad():
            y = net64(x.double()).float()
        torch.save({"params": sd}, OUT / f"{name}.pth")
        if name in MMAGIC_VARIANTS:
            mm = {"generator." + to_mmagic(k): v for k, v in sd.items()}
            meta = {"mmedit_version": "0.16.0", "config": "model = dict(type='EDVR')",
                    "epoch": 0, "iter": 600000}
            torch.save({"meta": meta, "state_dict": mm}, OUT / f"{name}_mmagic.pth")
        io[f"{name}/x"] = x.numpy().transpose(0, 1, 3, 4, 2)  # (B, T, H, W, 3)
        io[f"{name}/y"] = y.numpy().transpose(0, 2, 3, 1)
        for dcn, values in stats.items():
            io[f"{name}/offset_absmean/{dcn}"] = np.float64(np.mean(values))
        io[f"{name}/num_params"] = np.int64(sum(p.numel() for p in net.parameters()))
        nets[name] = net
        print(f"{name}: out {tuple(y.shape)}, offsets abs mean "
              + ", ".join(f"{k.split('.')[-1]}={np.mean(v):.2f}" for k, v in stats.items()))

    # The 2019 names in the legacy (pre-1.6) container, as the original release files.
    sd = nets["sr_tsa"].state_dict()
    torch.save({to_2019(k): v for k, v in sd.items()}, OUT / "sr_tsa_2019.pth",
               _use_new_zipfile_serialization=False)

    # Two-stage: stage 2 (hr_in EDVR) refines three consecutive stage-1 outputs.
    stage2 = edvr_arch.EDVR(**STAGE2).eval()
    randomize(stage2, gen)
    torch.save({"params": stage2.state_dict()}, OUT / "stage2.pth")
    stage1, stage2 = copy.deepcopy(nets["sr_tsa"]).double(), stage2.double()
    x = torch.rand((1, 5 + 3 - 1, 3, 12, 16), generator=gen)
    with torch.no_grad():
        frames = torch.stack([stage1(x[:, i:i + 5].double()) for i in range(3)], dim=1)
        y = stage2(frames).float()
    io["two_stage/x"] = x.numpy().transpose(0, 1, 3, 4, 2)
    io["two_stage/y"] = y.numpy().transpose(0, 2, 3, 1)

    import torchvision

    io["versions"] = np.array(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
                              "basicsr 1.4.2")
    np.savez_compressed(OUT / "io.npz", **io)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1e6:.2f} MB, to {OUT}")


if __name__ == "__main__":
    main()
