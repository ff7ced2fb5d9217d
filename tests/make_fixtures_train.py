"""Makes tests/data/train_basicsr.npz: BasicSR's training semantics, run for real.

Run once with the `torch` extra (see make_fixtures_edvr.py), never in CI:

    /tmp/ref/bin/python tests/make_fixtures_train.py

Executes BasicSR 1.4.2's own CosineAnnealingRestartLR, CharbonnierLoss and EDVR with
torch.optim.Adam, following EDVRModel step by step (loaded from their files): parameter
groups by 'dcn' in the name with ``lr * dcn_lr_mul``, the TSA-only phase (freeze every
name without 'fusion' at iteration 1, unfreeze at ``tsa_iter``), ``update_learning_rate``
stepping the scheduler only from iteration 2, ``zero_grad``/``backward``/``step`` and the
EMA update. Saves the schedule, losses, and parameter deltas after a few iterations.
"""

from __future__ import annotations

import copy
import importlib.util
import pathlib
import sys
import types

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_fixtures_edvr import VARIANTS, load_basicsr_edvr  # noqa: E402

SCHEDULES = {
    # name: (base_lr, periods, restart_weights, eta_min, iterations)
    "m_wotsa": (4e-4, [15, 15, 15, 15], [1, 1, 1, 1], 1e-7, 61),
    "l_tsa": (4e-4, [5, 10, 15, 15, 15], [1, 0.5, 0.5, 0.5, 0.5], 1e-7, 61),
}
TRAIN = dict(lr=4e-4, periods=[2, 2, 3], restart_weights=[1, 0.5, 0.5], eta_min=1e-7,
             dcn_lr_mul=0.5, tsa_iter=3, ema_decay=0.9, iterations=6, batch=2)


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def main(path=HERE / "data" / "train_basicsr.npz"):
    edvr_arch = load_basicsr_edvr()
    root = pathlib.Path(sys.modules["basicsr"].__path__[0])
    sys.modules["basicsr.utils.registry"].LOSS_REGISTRY = types.SimpleNamespace(
        register=lambda: (lambda cls: cls))
    sys.modules["basicsr.losses"] = types.ModuleType("basicsr.losses")
    sys.modules["basicsr.losses"].__path__ = [str(root / "losses")]
    load_module("basicsr.archs.vgg_arch", root / "archs" / "vgg_arch.py")
    load_module("basicsr.losses.loss_util", root / "losses" / "loss_util.py")
    losses = load_module("basicsr.losses.basic_loss", root / "losses" / "basic_loss.py")
    sched = load_module("basicsr.models.lr_scheduler", root / "models" / "lr_scheduler.py")
    out: dict[str, np.ndarray] = {}

    # 1. The schedule: lr used at iterations 1..N (BasicSR's update_learning_rate).
    for name, (base, periods, weights, eta_min, iters) in SCHEDULES.items():
        opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=base)
        s = sched.CosineAnnealingRestartLR(opt, periods, weights, eta_min)
        lrs = []
        for it in range(1, iters + 1):
            if it > 1:
                s.step()
            lrs.append(opt.param_groups[0]["lr"])
        out[f"schedule/{name}"] = np.array(lrs)

    # 2. Charbonnier (sum and mean) value and gradient.
    gen = torch.Generator().manual_seed(7)
    pred = torch.rand((2, 3, 5, 4), generator=gen, dtype=torch.float64).requires_grad_()
    target = torch.rand((2, 3, 5, 4), generator=gen, dtype=torch.float64)
    target[0, 0, 0, 0] = pred.detach()[0, 0, 0, 0]  # one exact match: sqrt(eps)
    for red in ("sum", "mean"):
        loss = losses.CharbonnierLoss(reduction=red)(pred, target)
        (g,) = torch.autograd.grad(loss, pred)
        out[f"charbonnier/{red}/value"] = loss.detach().numpy()
        out[f"charbonnier/{red}/grad"] = g.numpy()
    out["charbonnier/pred"], out["charbonnier/target"] = pred.detach().numpy(), target.numpy()

    # 3. A few real EDVRModel iterations on the tiny sr_tsa network.
    c = TRAIN
    net = edvr_arch.EDVR(**VARIANTS["sr_tsa"][0]).train()
    net.load_state_dict(torch.load(HERE / "data" / "edvr" / "sr_tsa.pth")["params"])
    ema = copy.deepcopy(net)
    init = {k: v.detach().clone() for k, v in net.state_dict().items()}
    normal = [p for n, p in net.named_parameters() if "dcn" not in n]
    dcn = [p for n, p in net.named_parameters() if "dcn" in n]
    opt = torch.optim.Adam([{"params": normal, "lr": c["lr"]},
                            {"params": dcn, "lr": c["lr"] * c["dcn_lr_mul"]}],
                           lr=c["lr"], weight_decay=0, betas=(0.9, 0.99))
    s = sched.CosineAnnealingRestartLR(opt, c["periods"], c["restart_weights"], c["eta_min"])
    cri = losses.CharbonnierLoss(loss_weight=1.0, reduction="sum")
    gen = torch.Generator().manual_seed(11)
    lqs, gts, step_losses, step_lrs = [], [], [], []
    for it in range(1, c["iterations"] + 1):
        if it > 1:
            s.step()
        lq = torch.rand((c["batch"], 5, 3, 8, 12), generator=gen)
        gt = torch.rand((c["batch"], 3, 32, 48), generator=gen)
        if it == 1:
            for n, p in net.named_parameters():
                if "fusion" not in n:
                    p.requires_grad = False
        elif it == c["tsa_iter"]:
            for p in net.parameters():
                p.requires_grad = True
        opt.zero_grad()
        loss = cri(net(lq), gt)
        loss.backward()
        opt.step()
        with torch.no_grad():
            ema_p, net_p = dict(ema.named_parameters()), dict(net.named_parameters())
            for k in ema_p:
                ema_p[k].mul_(c["ema_decay"]).add_(net_p[k], alpha=1 - c["ema_decay"])
        lqs.append(lq.numpy().transpose(0, 1, 3, 4, 2))
        gts.append(gt.numpy().transpose(0, 2, 3, 1))
        step_losses.append(float(loss))
        step_lrs.append([g["lr"] for g in opt.param_groups])
    out["run/lq"], out["run/gt"] = np.stack(lqs), np.stack(gts)
    out["run/loss"], out["run/lr"] = np.array(step_losses), np.array(step_lrs)
    for k, v in net.state_dict().items():
        # Deltas are ~1e-3: float16 keeps them to ~1e-6, far inside the test's tolerance.
        out[f"run/delta/{k}"] = (v - init[k]).numpy().astype(np.float16)
        out[f"run/ema_delta/{k}"] = (ema.state_dict()[k] - init[k]).numpy().astype(np.float16)
    np.savez_compressed(path, **out)
    print("wrote", path, f"{path.stat().st_size / 1e3:.0f} KB; losses", np.round(step_losses, 1))


if __name__ == "__main__":
    main()
