"""Makes tests/data/dcn_torchvision.npz with torchvision.ops.deform_conv2d.

Run once in a separate environment with the `torch` extra, never in CI:

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
    /tmp/tv/bin/python tests/make_fixtures_dcn.py

Every case draws its own random shapes from a fixed seed: inputs, offsets
(some far outside the image, some exactly integer), masks (one all zero),
weights and an output cotangent. Stored in torchvision's NCHW layout with the
forward output and the gradients of sum(out * cotangent) with respect to all
five arguments, in float64 (the reference runs in float32, as users run it).
"""

import numpy as np
import torch
from torchvision.ops import deform_conv2d

CASES = [
    # name, N, Cin, Cout, H, W, G, (kh, kw), stride, padding, dilation, offset scale, special
    ("edvr_like", 2, 16, 16, 12, 10, 8, (3, 3), (1, 1), (1, 1), (1, 1), 3.0, ""),
    ("nonsquare_g2", 1, 6, 5, 9, 14, 2, (3, 3), (1, 1), (1, 1), (1, 1), 2.0, ""),
    ("stride2", 2, 4, 3, 11, 8, 1, (3, 3), (2, 2), (1, 1), (1, 1), 1.5, ""),
    ("dilation2", 1, 8, 4, 10, 10, 4, (3, 3), (1, 1), (2, 2), (2, 2), 2.0, ""),
    ("mixed_hw", 2, 6, 7, 8, 13, 3, (3, 2), (2, 1), (0, 2), (1, 2), 2.0, ""),
    ("far_outside", 1, 8, 4, 7, 9, 2, (3, 3), (1, 1), (1, 1), (1, 1), 12.0, ""),
    ("integer_offsets", 2, 8, 8, 8, 8, 4, (3, 3), (1, 1), (1, 1), (1, 1), 3.0, "integer"),
    ("zero_offsets", 1, 8, 6, 9, 7, 2, (3, 3), (1, 1), (1, 1), (1, 1), 0.0, ""),
    ("zero_mask", 1, 4, 4, 6, 6, 1, (3, 3), (1, 1), (1, 1), (1, 1), 2.0, "zero_mask"),
    ("kernel1x1", 2, 6, 3, 7, 5, 3, (1, 1), (1, 1), (0, 0), (1, 1), 1.0, ""),
    ("c64_g8_edvr", 1, 64, 64, 10, 10, 8, (3, 3), (1, 1), (1, 1), (1, 1), 4.0, ""),
]


def main(path="tests/data/dcn_torchvision.npz"):
    rng = np.random.default_rng(20240611)
    out = {}
    for name, n, cin, cout, h, w, g, (kh, kw), st, pad, dil, scale, special in CASES:
        ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // st[0] + 1
        wo = (w + 2 * pad[1] - dil[1] * (kw - 1) - 1) // st[1] + 1
        x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
        off = (rng.standard_normal((n, 2 * g * kh * kw, ho, wo)) * scale).astype(np.float32)
        if special == "integer":
            off = np.round(off)
        mask = rng.uniform(0, 1, (n, g * kh * kw, ho, wo)).astype(np.float32)
        if special == "zero_mask":
            mask[:] = 0
        weight = (rng.standard_normal((cout, cin, kh, kw)) / np.sqrt(cin * kh * kw)).astype(np.float32)
        bias = rng.standard_normal(cout).astype(np.float32)
        cot = rng.standard_normal((n, cout, ho, wo)).astype(np.float32)
        tx, toff, tmask, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, off, mask, weight, bias))
        y = deform_conv2d(tx, toff, tw, tb, st, pad, dil, tmask)
        (y * torch.tensor(cot)).sum().backward()
        meta = np.array([kh, kw, *st, *pad, *dil], np.int64)
        for key, val in dict(x=x, offset=off, mask=mask, weight=weight, bias=bias, cot=cot,
                             out=y.detach().numpy(), gx=tx.grad.numpy(), goffset=toff.grad.numpy(),
                             gmask=tmask.grad.numpy(), gweight=tw.grad.numpy(), gbias=tb.grad.numpy(),
                             meta=meta).items():
            out[f"{name}/{key}"] = val
    import torchvision

    out["versions"] = np.array(f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    np.savez_compressed(path, **out)
    print("wrote", path, "with", len(CASES), "cases")


if __name__ == "__main__":
    main()
