"""Makes the tiny torch checkpoints in tests/data/pth/ and checks save_pth against torch.load.

Run once with the reference venv (torch 2.14.1, numpy, ml_dtypes), never in CI:

    /work/venvs/torch/bin/python tests/make_fixtures_pth.py

Every case is saved twice, as ``<case>_zip.pth`` (torch >= 1.6 format) and
``<case>_legacy.pth`` (``_use_new_zipfile_serialization=False``, the format of the 2019 EDVR
releases), except ``newdtypes`` (uint16/float8 tensors, zip only). ``expected.npz`` holds every
tensor as torch sees it (bfloat16/float8 as their raw bits) and ``expected.json`` the
structure, with ``{"__array__": npz key, "dtype": name}`` where a tensor sits. The test reads
the files with edvr_jax.convert.pth (no torch) and compares both exactly.

Then ``save_pth`` (loaded from its files, without importing jax) writes a BasicSR-style file
that must load with ``torch.load(weights_only=True)`` (also with ``mmap=True``) into an
``nn.Module`` with ``strict=True`` and equal every array bit for bit.
"""

import collections
import importlib.util
import json
import pathlib
import sys
import tempfile

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "pth"


class TinyNet(torch.nn.Module):
    """A few named submodules, like EDVR's, with conv weights, biases and a BatchNorm."""

    def __init__(self):
        super().__init__()
        self.conv_first = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4))
        self.conv_last = torch.nn.Conv2d(4, 3, 3, padding=1, bias=False)


def tiny_state_dict(seed):
    torch.manual_seed(seed)
    net = TinyNet()
    with torch.no_grad():
        net.body[1].running_mean.normal_()
        net.body[1].num_batches_tracked.fill_(7)
    return net.state_dict()


def cases():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3.0
    views = {
        "base": base,
        "transposed": base.t(),  # non-contiguous view of the same storage
        "row1": base[1],  # offset 6 into the shared storage
        "tail": base[2, 3:],  # offset 15
        "every_other_col": base[:, ::2],
        "expanded": torch.tensor([1.5, -2.0, 4.0]).expand(4, 3),  # stride 0
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
    }
    gen = torch.Generator().manual_seed(3)
    r = torch.randn(2, 3, generator=gen)
    dtypes = {
        "float32": r,
        "float64": r.double() / 3,
        "float16": r.half(),
        "bfloat16": r.bfloat16(),
        "int64": torch.tensor([-(2**40), 0, 2**40 + 3]),
        "int32": torch.tensor([-(2**31), 5, 2**31 - 1], dtype=torch.int32),
        "int16": torch.tensor([-300, 7], dtype=torch.int16),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "complex64": torch.tensor([1 + 2j, -0.5j]),
        "parameter": torch.nn.Parameter(torch.tensor([[1.0, -1.0]])),
        "size": torch.Size([2, 3]),
        "dtype_obj": torch.float16,
    }
    new = {
        "uint16": torch.tensor([0, 40000, 65535], dtype=torch.int32).to(torch.uint16),
        "float8": r.to(torch.float8_e4m3fn),
    }
    sd = tiny_state_dict(0)
    meta = {
        "mmedit_version": "0.14.0",
        "time": "Fri May 22 10:11:12 2020",
        "epoch": 3,
        "iter": 600000,
        "config": "model = dict(type='EDVR', generator=dict(type='EDVRNet'))",
        "hook_msgs": {"last_ckpt": "/work/latest.pth", "best_score": np.float64(28.25)},
        "lr": [0.0004, 1e-07],
        "flags": (True, None, 2.5),
        "seed": np.int64(2020),
        "crop": np.array([[64, 64], [256, 256]], dtype=np.int32),
        "raw": b"\x00\xffbytes",
    }
    return {
        "basicsr": {"params": tiny_state_dict(0), "params_ema": tiny_state_dict(1)},
        "mmagic": {
            "meta": meta,
            "state_dict": collections.OrderedDict(("generator." + k, v) for k, v in sd.items()),
        },
        "bare": tiny_state_dict(2),
        "views": views,
        "dtypes": dtypes,
        "newdtypes": new,
    }


def encode(obj, key, arrays):
    """JSON skeleton of obj; arrays go to `arrays` under npz keys derived from `key`."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        name = str(t.dtype).removeprefix("torch.")
        bits = {torch.bfloat16: torch.int16, torch.float8_e4m3fn: torch.uint8}.get(t.dtype)
        if t.dtype == torch.uint16:
            arrays[key] = t.to(torch.int32).numpy().astype(np.uint16)
        else:
            arrays[key] = (t.contiguous().view(bits) if bits else t).numpy().copy()
        return {"__array__": key, "dtype": name}
    if isinstance(obj, np.ndarray | np.generic):
        arrays[key] = np.asarray(obj)
        return {"__numpy__": key, "scalar": isinstance(obj, np.generic)}
    if isinstance(obj, torch.dtype):
        return {"__dtype__": str(obj).removeprefix("torch.")}
    if isinstance(obj, bytes):
        return {"__bytes__": obj.hex()}
    if isinstance(obj, dict):
        return {"__dict__": [[k, encode(v, f"{key}/{k}", arrays)] for k, v in obj.items()]}
    if isinstance(obj, torch.Size | tuple):
        return {"__tuple__": [encode(v, f"{key}/{i}", arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return {"__list__": [encode(v, f"{key}/{i}", arrays) for i, v in enumerate(obj)]}
    assert obj is None or isinstance(obj, bool | int | float | str), type(obj)
    return obj


def make_fixtures():
    OUT.mkdir(parents=True, exist_ok=True)
    arrays, skeleton = {}, {}
    for name, obj in cases().items():
        torch.save(obj, OUT / f"{name}_zip.pth")
        if name != "newdtypes":
            torch.save(obj, OUT / f"{name}_legacy.pth", _use_new_zipfile_serialization=False)
        skeleton[name] = encode(obj, name, arrays)
    np.savez(OUT / "expected.npz", **arrays)
    (OUT / "expected.json").write_text(json.dumps(skeleton, indent=1) + "\n")
    for path in sorted(OUT.glob("*.pth")):
        print(f"{path.name:28s} {path.stat().st_size:6d} bytes")


def load_pth_module():
    """edvr_jax.convert.pth loaded from its files, without the package (which needs jax)."""
    for name in ("pth_pickle", "pth"):
        spec = importlib.util.spec_from_file_location(
            f"edvr_jax.convert.{name}", ROOT / "edvr_jax" / "convert" / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def check_save_pth():
    """save_pth output must load with torch's weights_only loader, bit for bit."""
    import ml_dtypes

    pth = load_pth_module()
    rng = np.random.default_rng(0)
    ref = TinyNet()
    params = {
        k: rng.standard_normal(tuple(v.shape)).astype(np.float32)
        for k, v in ref.state_dict().items()
    }
    params["body.1.num_batches_tracked"] = np.array(11, dtype=np.int64)
    extras = {
        "transposed": np.arange(12, dtype=np.float32).reshape(3, 4).T,  # non-contiguous input
        "big_endian": np.arange(5, dtype=">f8") / 7,
        "bf16": (np.arange(6, dtype=np.float32) / 3).astype(ml_dtypes.bfloat16),
        "others": [np.array([True, False]), np.array([-3, 250], dtype=np.int16), np.zeros((0, 2))],
        "meta": {"iter": 600000, "name": "edvr", "lr": 2.5e-4, "none": None, "flag": True},
        "big_int": 2**70,
        "tuple": (1, "a", np.float32(0.5)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "net_g.pth"
        pth.save_pth({"params": params, "extras": extras}, path)
        for mmap in (False, True):
            got = torch.load(path, weights_only=True, mmap=mmap)
            net = TinyNet()
            net.load_state_dict(got["params"], strict=True)
            for k, v in params.items():
                t = net.state_dict()[k]
                assert t.dtype == torch.from_numpy(v).dtype and np.array_equal(t.numpy(), v), k
            ex = got["extras"]
            assert np.array_equal(ex["transposed"].numpy(), extras["transposed"])
            assert ex["transposed"].is_contiguous()
            assert ex["big_endian"].dtype == torch.float64
            assert np.array_equal(ex["big_endian"].numpy(), extras["big_endian"])
            assert ex["bf16"].dtype == torch.bfloat16
            bits = ex["bf16"].view(torch.int16).numpy().view(np.uint16)
            assert np.array_equal(bits, extras["bf16"].view(np.uint16))
            for a, b in zip(ex["others"], extras["others"], strict=True):
                assert a.numpy().dtype == b.dtype and np.array_equal(a.numpy(), b)
            assert ex["meta"] == extras["meta"] and ex["big_int"] == 2**70
            assert ex["tuple"] == (1, "a", 0.5)
        # And our own reader agrees with torch on every fixture file.
        for path in sorted(OUT.glob("*.pth")):
            ours = pth.load_pth(path)
            theirs = torch.load(path, weights_only=False)
            compare(ours, theirs, path.name)
    print("save_pth: torch.load(weights_only=True[, mmap=True]) + load_state_dict(strict) OK")
    print("load_pth: equal to torch.load on every fixture")


def compare(ours, theirs, where):
    if isinstance(theirs, torch.Tensor):
        t = theirs.detach().contiguous()
        if t.dtype in (torch.bfloat16, torch.float8_e4m3fn):
            assert ours.tobytes() == t.view(torch.uint8).numpy().tobytes(), where
        elif t.dtype == torch.uint16:
            assert np.array_equal(ours, t.to(torch.int32).numpy()), where
        else:
            assert ours.dtype == t.numpy().dtype and np.array_equal(ours, t.numpy()), where
        assert tuple(ours.shape) == tuple(t.shape), where
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for k in theirs:
            compare(ours[k], theirs[k], f"{where}/{k}")
    elif isinstance(theirs, list | tuple):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            compare(a, b, f"{where}/{i}")
    elif isinstance(theirs, torch.dtype):
        assert str(ours) == str(theirs).removeprefix("torch."), where
    elif isinstance(theirs, np.ndarray):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), where
    else:
        assert ours == theirs and type(ours) is type(theirs), (where, ours, theirs)


if __name__ == "__main__":
    make_fixtures()
    check_save_pth()
