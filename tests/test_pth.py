"""edvr_jax.convert.pth: torch-made checkpoints read exactly without torch, hostile files refused.

The fixtures in tests/data/pth were written by real torch (tests/make_fixtures_pth.py) in
both the zip and the legacy (torch < 1.6) format; expected.npz/json hold what torch saw.
Hostile and malformed files are built here with the stdlib only.
"""

import argparse
import functools
import importlib
import importlib.util
import io
import json
import os
import pathlib
import pickle
import shutil
import struct
import subprocess
import sys
import time
import zipfile

import ml_dtypes
import numpy as np
import pytest

from edvr_jax.convert.pth import CheckpointError, OpaqueObject, load_pth, save_pth

PTH = pathlib.Path(__file__).resolve().parent / "data" / "pth"
EXPECTED = dict(np.load(PTH / "expected.npz"))
SKELETON = json.loads((PTH / "expected.json").read_text())
MAGIC, PROTOCOL = 0x1950A86A20F9469CFC6C, 1001
BITS_AS = {"bfloat16": ml_dtypes.bfloat16, "float8_e4m3fn": ml_dtypes.float8_e4m3fn}


# ------------------------------------------------------------------ expected values, compare
def decode(node):
    if isinstance(node, dict) and "__array__" in node:
        a = EXPECTED[node["__array__"]]
        return a.view(BITS_AS[node["dtype"]]) if node["dtype"] in BITS_AS else a
    if isinstance(node, dict) and "__numpy__" in node:
        a = EXPECTED[node["__numpy__"]]
        return a[()] if node["scalar"] else a
    if isinstance(node, dict) and "__dtype__" in node:
        return np.dtype(BITS_AS.get(node["__dtype__"], node["__dtype__"]))
    if isinstance(node, dict) and "__bytes__" in node:
        return bytes.fromhex(node["__bytes__"])
    if isinstance(node, dict) and "__dict__" in node:
        return {k: decode(v) for k, v in node["__dict__"]}
    if isinstance(node, dict) and "__tuple__" in node:
        return tuple(decode(v) for v in node["__tuple__"])
    if isinstance(node, dict) and "__list__" in node:
        return [decode(v) for v in node["__list__"]]
    return node


def assert_same(got, want, where="top"):
    assert type(got) is type(want), (where, type(got), type(want))
    if isinstance(want, np.ndarray):
        assert (got.dtype, got.shape) == (want.dtype, want.shape), where
        assert got.tobytes() == want.tobytes(), where  # bit-exact, NaN-safe
        assert got.flags.c_contiguous and got.flags.writeable, where
    elif isinstance(want, dict):
        assert list(got) == list(want), where
        for k in want:
            assert_same(got[k], want[k], f"{where}/{k}")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}/{i}")
    else:
        assert got == want, (where, got, want)


FIXTURES = [
    (c, k) for c in ("basicsr", "mmagic", "bare", "views", "dtypes") for k in ("zip", "legacy")
]


@pytest.mark.parametrize("case,container", FIXTURES + [("newdtypes", "zip")])
def test_reads_torch_fixtures_exactly(case, container):
    got = load_pth(PTH / f"{case}_{container}.pth")
    assert_same(got, decode(SKELETON[case]), case)
    assert "torch" not in sys.modules


def test_fixture_contents_are_what_users_meet():
    # Legacy files really are legacy (magic pickle); five views share one storage.
    assert (PTH / "bare_legacy.pth").read_bytes()[:15] == pickle.dumps(MAGIC, protocol=2)
    with zipfile.ZipFile(PTH / "views_zip.pth") as zf:
        assert len([n for n in zf.namelist() if "/data/" in n]) == 4  # 8 tensors, 4 storages
    got = load_pth(PTH / "basicsr_zip.pth")
    assert set(got) == {"params", "params_ema"}
    assert got["params"]["body.1.num_batches_tracked"] == np.array(7, dtype=np.int64)
    assert not np.array_equal(
        got["params"]["conv_first.weight"], got["params_ema"]["conv_first.weight"]
    )
    mm = load_pth(PTH / "mmagic_legacy.pth")
    assert all(k.startswith("generator.") for k in mm["state_dict"])
    assert mm["meta"]["iter"] == 600000 and mm["meta"]["seed"] == np.int64(2020)


def test_views_become_independent_arrays():
    got = load_pth(PTH / "views_zip.pth")
    arrays = [got[k] for k in ("base", "transposed", "row1", "tail", "every_other_col")]
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(got["transposed"], got["base"].T)
    np.testing.assert_array_equal(got["tail"], got["base"][2, 3:])
    got["base"][:] = 0
    assert got["row1"].any() and got["transposed"].any()


def test_any_archive_folder_name(tmp_path):
    src = PTH / "basicsr_zip.pth"
    dst = tmp_path / "renamed.pth"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr("some dir.v2/" + info.filename.split("/", 1)[1], zin.read(info))
    assert_same(load_pth(dst), load_pth(src))


# ------------------------------------------------------- stdlib builders for crafted files
def G(module, name):
    return f"c{module}\n{name}\n".encode()


def S(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def Int(value):
    n = (value.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + value.to_bytes(n, "little", signed=True)


def T(*items):
    return b"(" + b"".join(items) + b"t"


def D(**items):
    return b"}(" + b"".join(S(k) + v for k, v in items.items()) + b"u"


def tensor(key, numel, shape, stride, offset=0, stype="FloatStorage", legacy=False):
    pid = T(
        S("storage"), G("torch", stype), S(key), S("cpu"), Int(numel), *([b"N"] if legacy else [])
    )
    hooks = G("collections", "OrderedDict") + b")R"
    args = T(pid + b"Q", Int(offset), T(*map(Int, shape)), T(*map(Int, stride)), b"\x89", hooks)
    return G("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def pkl(body):
    return b"\x80\x02" + body + b"."


def write_zip(path, data_pkl, storages=(), prefix="archive/", byteorder=b"little", extra=()):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(prefix + "data.pkl", data_pkl)
        if byteorder is not None:
            zf.writestr(prefix + "byteorder", byteorder)
        for key, raw in dict(storages).items():
            zf.writestr(f"{prefix}data/{key}", raw)
        for name, data in extra:
            zf.writestr(name, data)
    return path


def write_legacy(path, obj_pkl, storages=(), counts=None):
    storages = dict(storages)
    sys_info = {
        "protocol_version": PROTOCOL,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 8},
    }
    out = b"".join(pickle.dumps(x, protocol=2) for x in (MAGIC, PROTOCOL, sys_info)) + obj_pkl
    out += pickle.dumps(sorted(storages), protocol=2)
    for key in sorted(storages):
        count = (counts or {}).get(key, len(storages[key]) // 4)
        out += struct.pack("<q", count) + storages[key]
    path.write_bytes(out)
    return path


def test_crafted_tensor_roundtrip_both_containers(tmp_path):
    raw = np.arange(6, dtype="<f4").tobytes()
    for legacy in (False, True):
        body = pkl(D(w=tensor("0", 6, (2, 2), (1, 2), offset=1, legacy=legacy)))
        path = (write_legacy if legacy else write_zip)(tmp_path / f"{legacy}.pth", body, {"0": raw})
        np.testing.assert_array_equal(
            load_pth(path)["w"], np.array([[1.0, 3.0], [2.0, 4.0]], np.float32)
        )


def test_big_endian_zip(tmp_path):
    values = {
        "FloatStorage": np.array([1.5, -2.25, 3e7], np.float32),
        "DoubleStorage": np.array([np.pi, -1e300], np.float64),
        "ComplexFloatStorage": np.array([1 + 2j, -3.5j], np.complex64),
        "BFloat16Storage": np.array([1.5, -7.0, 0.1], ml_dtypes.bfloat16),
        "ShortStorage": np.array([-2, 300], np.int16),
    }
    items, storages = {}, {}
    for i, (stype, a) in enumerate(values.items()):
        items[stype] = tensor(str(i), a.size, a.shape, (1,), stype=stype)
        big = a.view(f"u{a.itemsize // 2 if a.dtype.kind == 'c' else a.itemsize}").byteswap()
        storages[str(i)] = big.tobytes()
    got = load_pth(write_zip(tmp_path / "be.pth", pkl(D(**items)), storages, byteorder=b"big"))
    for stype, a in values.items():
        assert got[stype].dtype == a.dtype and got[stype].tobytes() == a.tobytes(), stype


def test_numpy_metadata_admitted_only_when_numeric(tmp_path):
    old_spelling = pickle.dumps(np.float64(2.5), protocol=2).replace(b"numpy._core", b"numpy.core")
    assert b"numpy.core.multiarray" in old_spelling
    body = pkl(
        D(
            best=old_spelling[2:-1],
            arr=pickle.dumps(np.arange(4.0).reshape(2, 2).T, protocol=2)[2:-1],
        )
    )
    got = load_pth(write_zip(tmp_path / "np.pth", body))
    assert type(got["best"]) is np.float64 and got["best"] == 2.5
    np.testing.assert_array_equal(got["arr"], np.arange(4.0).reshape(2, 2).T)
    obj_array = pickle.dumps({"meta": np.array([1, "a"], dtype=object)}, protocol=2)
    with pytest.raises(CheckpointError, match="numpy dtype 'O8'"):
        load_pth(write_zip(tmp_path / "obj.pth", obj_array))


def test_unknown_classes_kept_inert_on_request(tmp_path):
    ns = pickle.dumps(argparse.Namespace(lr=1e-4, name="edvr"), protocol=2)[2:-1]
    body = pkl(D(params=D(w=tensor("0", 2, (2,), (1,))), args=ns))
    path = write_zip(tmp_path / "ns.pth", body, {"0": np.ones(2, "<f4").tobytes()})
    with pytest.raises(CheckpointError, match=r"ns\.pth: refused global 'argparse\.Namespace'"):
        load_pth(path)
    got = load_pth(path, keep_unknown=True)
    np.testing.assert_array_equal(got["params"]["w"], np.ones(2, np.float32))
    assert isinstance(got["args"], OpaqueObject) and got["args"].global_name == "argparse.Namespace"
    assert got["args"].state == {"lr": 1e-4, "name": "edvr"}


# ------------------------------------------------------------------------- hostile globals
class Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def in_state_dict(evil, protocol=2):
    return pickle.dumps({"params": {"conv_first.weight": evil}}, protocol=protocol)


def payloads(tmp):
    """name -> (pickle bytes, global named in the refusal). Each, if run, touches tmp/marker
    or deletes tmp/victim."""
    marker, touch = str(tmp / "marker"), f"touch {tmp / 'marker'}"
    write_marker = f"open({marker!r}, 'w').close()"
    system = f"{os.system.__module__}.system"  # posix.system on Linux
    return {
        "os.system": (in_state_dict(Reduce(os.system, touch)), system),
        "os.system (handwritten)": (pkl(G("os", "system") + S(touch) + b"\x85R"), "os.system"),
        "builtins.eval": (in_state_dict(Reduce(eval, write_marker)), "builtins.eval"),
        "builtins.exec": (in_state_dict(Reduce(exec, write_marker)), "builtins.exec"),
        "getattr(__import__)": (
            G("builtins", "getattr")
            + b"("
            + G("builtins", "__import__")
            + b"(Vos\ntRVsystem\ntR(V"
            + touch.encode()
            + b"\ntR.",
            "builtins.getattr",
        ),
        "subprocess.Popen": (
            in_state_dict(Reduce(subprocess.Popen, ["touch", marker])),
            "subprocess.Popen",
        ),
        "subprocess.check_output": (
            in_state_dict(Reduce(subprocess.check_output, ["touch", marker])),
            "subprocess.check_output",
        ),
        "importlib.import_module": (
            in_state_dict(Reduce(importlib.import_module, evil_module_name(tmp))),
            "importlib.import_module",
        ),
        "shutil.rmtree": (
            in_state_dict(Reduce(shutil.rmtree, str(tmp / "victim"))),
            "shutil.rmtree",
        ),
        "functools.partial": (
            in_state_dict(Reduce(functools.partial(os.system, touch))),
            "functools.partial",
        ),
        "__reduce__ with STACK_GLOBAL (protocol 4)": (
            in_state_dict(Reduce(os.system, touch), protocol=4),
            system,
        ),
        "INST opcode": (f"(S{touch!r}\nios\nsystem\n.".encode(), "os.system"),
        "OBJ opcode": (b"(" + G("os", "system") + S(touch) + b"o.", "os.system"),
        "nested pickle": (
            in_state_dict(Reduce(pickle.loads, pickle.dumps(Reduce(os.system, touch)))),
            "pickle.loads",
        ),
    }


def evil_module_name(tmp):
    return f"evil_{abs(hash(str(tmp)))}"


def happened(tmp):
    return (tmp / "marker").exists() or not (tmp / "victim").exists()


@pytest.fixture
def armed(tmp_path, monkeypatch):
    """tmp_path with a victim folder and an importable module that would touch the marker."""
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "keep.txt").write_text("x")
    (tmp_path / f"{evil_module_name(tmp_path)}.py").write_text(
        f"open({str(tmp_path / 'marker')!r}, 'w').close()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


PAYLOAD_NAMES = list(payloads(pathlib.Path("/x")))


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_payload_is_live_under_plain_pickle(armed, name):
    """Guards the hostile tests below: each payload does act when unpickled by the stdlib."""
    data, _ = payloads(armed)[name]
    try:
        pickle.loads(data)
    except Exception:  # e.g. the getattr chain returns bytes, then REDUCE fails: it already ran
        pass
    deadline = time.monotonic() + 5  # Popen runs its child asynchronously
    while not happened(armed) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert happened(armed)


@pytest.mark.parametrize("container", ["zip", "legacy", "bare pickle"])
@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_hostile_global_refused_before_running(armed, name, container):
    data, global_name = payloads(armed)[name]
    path = armed / "evil.pth"
    if container == "zip":
        write_zip(path, data)
    elif container == "legacy":
        write_legacy(path, data)
    else:
        path.write_bytes(data)
    with pytest.raises(CheckpointError) as err:
        load_pth(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    if container == "bare pickle" and data[:1] != b"\x80":  # protocol 0: not even a candidate
        assert "not a PyTorch checkpoint" in msg
    else:
        assert (
            f"refused global '{global_name}'" in msg and "nothing from the file was executed" in msg
        )
    time.sleep(0.05 if "Popen" in name else 0)
    assert not happened(armed)
    assert importlib.util.find_spec(evil_module_name(armed)) is not None  # importable, not imported
    assert evil_module_name(armed) not in sys.modules


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_hostile_global_inert_with_keep_unknown(armed, name):
    data, global_name = payloads(armed)[name]
    try:
        got = load_pth(write_zip(armed / "evil.pth", data), keep_unknown=True)
    except CheckpointError as e:  # e.g. calling an inert placeholder: malformed, still inert
        assert "OpaqueObject" in str(e) or "corrupt" in str(e)
    else:
        leaf = got["params"]["conv_first.weight"] if isinstance(got, dict) else got
        assert isinstance(leaf, OpaqueObject)
        assert leaf.global_name == global_name or name == "functools.partial"
    assert not happened(armed)


def test_hostile_inside_legacy_headers_and_storage_ids(armed):
    evil = pickle.dumps(Reduce(os.system, f"touch {armed / 'marker'}"), protocol=2)
    header = pickle.dumps(MAGIC, protocol=2) + pickle.dumps(PROTOCOL, protocol=2)
    (armed / "a.pth").write_bytes(header + evil)  # sys_info slot: no global allowed at all
    pid_global = pkl(
        tensor("0", 1, (1,), (1,)).replace(G("torch", "FloatStorage"), G("os", "system"))
    )
    write_zip(armed / "b.pth", pid_global, {"0": b"\0" * 4})
    keys_global = header + pickle.dumps({}, protocol=2) + pkl(b"N") + evil  # storage key list slot
    (armed / "c.pth").write_bytes(keys_global)
    for name, needle in (("a", "posix.system"), ("b", "os.system"), ("c", "posix.system")):
        with pytest.raises(CheckpointError, match=f"refused global '{needle}'"):
            load_pth(armed / f"{name}.pth")
    # torch internals outside the allowlist (a nested torch.load, a numpy-to-device rebuild)
    for module, name in (
        ("torch.storage", "_load_from_bytes"),
        ("torch._utils", "_rebuild_device_tensor_from_numpy"),
    ):
        write_zip(armed / "t.pth", pkl(G(module, name) + T(S("x")) + b"R"))
        with pytest.raises(CheckpointError, match=f"refused global '{module}.{name}'"):
            load_pth(armed / "t.pth")
    assert not happened(armed)


@pytest.mark.parametrize(
    "body,match",
    [
        (pkl(b"\x82\x01"), "refused opcode EXT1"),
        (pkl(b"Nr\xff\xff\xff\x7f"), "refused memo index"),
        (pkl(tensor("0", 1, (1,), (1,)) + b"}b"), "refused BUILD on Tensor"),
        (pkl(b"]" * 20000 + b"a" * 19999), "RecursionError"),
        (pkl(D(a=tensor("0", 1, (1,), (1,)), b=tensor("0", 2, (1,), (1,)))), "declared twice"),
    ],
    ids=["ext-opcode", "memo-bomb", "build-on-tensor", "deep-nesting", "storage-redeclared"],
)
def test_malformed_pickles(tmp_path, body, match):
    with pytest.raises(CheckpointError, match=match):
        load_pth(write_zip(tmp_path / "m.pth", body, {"0": b"\0" * 8}))


# -------------------------------------------------------------------- sizes and containers
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_size_bounds(tmp_path, legacy):
    def load(body, storages, **kw):
        path = tmp_path / "s.pth"
        (write_legacy if legacy else write_zip)(path, pkl(body), storages)
        return load_pth(path, **kw)

    four = {"0": b"\0" * 16}
    big = D(w=tensor("0", 10**12, (4,), (1,), legacy=legacy))
    with pytest.raises(CheckpointError, match="declared storages need 4000000000000 bytes"):
        load(big, four)
    with pytest.raises(CheckpointError, match="reads past the end of storage 0"):
        load(D(w=tensor("0", 4, (3,), (1,), offset=2, legacy=legacy)), four)
    with pytest.raises(CheckpointError, match="tensors need 4000000000000 bytes"):
        load(D(w=tensor("0", 4, (10**6, 10**6), (0, 0), legacy=legacy)), four)
    with pytest.raises(CheckpointError, match="more than max_total_bytes=8"):
        load(D(w=tensor("0", 4, (4,), (1,), legacy=legacy)), four, max_total_bytes=8)
    short = D(w=tensor("0", 10**6, (4,), (1,), legacy=legacy))
    with pytest.raises(
        CheckpointError, match="truncated" if legacy else "has 16 bytes, storage declares 4000000"
    ):
        load(short, four)
    np.testing.assert_array_equal(
        load(D(w=tensor("0", 4, (2,), (2,), legacy=legacy)), four)["w"], [0, 0]
    )


def test_legacy_storage_count_and_key_mismatch(tmp_path):
    body = pkl(D(w=tensor("0", 4, (4,), (1,), legacy=True)))
    path = write_legacy(tmp_path / "c.pth", body, {"0": b"\0" * 16}, counts={"0": 3})
    with pytest.raises(CheckpointError, match="storage 0 holds 3 elements, declared 4"):
        load_pth(path)
    path = write_legacy(tmp_path / "k.pth", body, {"1": b"\0" * 16})
    with pytest.raises(CheckpointError, match="do not match"):
        load_pth(path)


def test_zip_bombs(tmp_path):
    body = pkl(D(w=tensor("0", 2**21, (2**21,), (1,))))
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", body)
        zf.writestr("archive/data/0", b"\0" * 2**23, compress_type=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 2**15
    with pytest.raises(CheckpointError, match="zip bomb"):
        load_pth(path)
    with pytest.raises(CheckpointError, match="more than max_total_bytes=1048576"):
        load_pth(path, max_total_bytes=2**20)
    # A central directory that lies about an entry's size is refused before reading it.
    lying = tmp_path / "lying.pth"
    write_zip(lying, pkl(D(w=tensor("0", 1, (1,), (1,)))), {"0": b"\0" * 4})
    raw = bytearray(lying.read_bytes())
    entry = raw.rfind(b"archive/data/0") - 46  # its central directory record
    assert raw[entry : entry + 4] == b"PK\x01\x02"
    raw[entry + 24 : entry + 28] = struct.pack("<I", 0xF0000000)  # uncompressed size
    lying.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="declares 4026531840 bytes"):
        load_pth(lying)


def test_member_names_with_dotdot_write_nothing(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    body = pkl(D(w=tensor("0", 2, (2,), (1,))))
    extra = [
        ("../../escape.txt", b"x"),
        ("/abs_escape.txt", b"x"),
        ("../data/../../escape2.txt", b"x"),
    ]
    path = write_zip(
        work / "dots.pth", body, {"0": np.ones(2, "<f4").tobytes()}, prefix="../", extra=extra
    )
    before = sorted(p for p in tmp_path.rglob("*"))
    np.testing.assert_array_equal(load_pth(path)["w"], np.ones(2, np.float32))
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "escape.txt").exists() and not pathlib.Path("/abs_escape.txt").exists()


def test_not_a_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert noise[:1] not in (b"\x80", b"P")
    cases = {
        "empty.pth": (b"", "empty file"),
        "noise.pth": (noise, "not a PyTorch checkpoint"),
        "pickle_noise.pth": (b"\x80" + noise, "refused|corrupt"),
        "tar.pth": (b"storages".ljust(257, b"\0") + b"ustar\x0000" + b"\0" * 300, "tar archive"),
        "plain_pickle.pth": (
            pickle.dumps({"w": [1.0]}, protocol=2),
            "without torch's magic number",
        ),
        "no_data_pkl.pth": (None, "0 '<archive>/data.pkl' entries"),
    }
    with zipfile.ZipFile(tmp_path / "no_data_pkl.pth", "w") as zf:
        zf.writestr("archive/model.bin", b"\0" * 16)
    for name, (data, match) in cases.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=match) as err:
            load_pth(tmp_path / name)
        assert str(err.value).startswith(str(tmp_path / name)) and "\n" not in str(err.value)


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_truncated_files(tmp_path, container):
    data = (PTH / f"basicsr_{container}.pth").read_bytes()
    for cut in (1, 20, 300, len(data) // 2, len(data) - 30, len(data) - 1):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as err:
            load_pth(path)
        assert str(path) in str(err.value), cut


# -------------------------------------------------------------------------------- writing
def test_save_pth_round_trip(tmp_path):
    import jax.numpy as jnp

    shared = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    tree = {
        "params": {
            "conv.weight": shared,
            "conv.bias": np.array([0.5, -0.25], np.float32),
            "alias": shared,
        },
        "dtypes": {
            "f64": np.array([np.pi], np.float64),
            "f16": np.array([1.5, np.inf], np.float16),
            "bf16": np.array([[0.1, -3.0]], ml_dtypes.bfloat16),
            "i64": np.array([-(2**62)], np.int64),
            "i32": np.arange(3, dtype=np.int32),
            "i16": np.array([-5], np.int16),
            "i8": np.array([-128], np.int8),
            "u8": np.array([255], np.uint8),
            "bool": np.array([True, False]),
            "c64": np.array([1 - 1j], np.complex64),
            "c128": np.array([2j], np.complex128),
            "scalar": np.array(7.0, np.float32),
            "empty": np.zeros((0, 4), np.float32),
        },
        "layouts": {
            "transposed": np.arange(12, dtype=np.float32).reshape(3, 4).T,
            "big_endian": np.array([1.25, -2.5], ">f4"),
            "jax": jnp.arange(4, dtype=jnp.float32) * 0.5,
        },
        "meta": {
            "iter": 600000,
            "big": -(2**80),
            "lr": 4e-4,
            "name": "EDVR-M",
            "ok": True,
            "none": None,
        },
        "seq": [1, (2.5, "x"), [np.int64(3), np.float32(0.5)]],
    }
    path = tmp_path / "out.pth"
    save_pth(tree, path)
    got = load_pth(path)
    want = {
        **tree,
        "layouts": {
            "transposed": np.ascontiguousarray(tree["layouts"]["transposed"]),
            "big_endian": np.array([1.25, -2.5], np.float32),
            "jax": np.arange(4, dtype=np.float32) * 0.5,
        },
        "seq": [1, (2.5, "x"), [3, 0.5]],
    }
    assert_same(got, want)
    assert not np.shares_memory(got["params"]["conv.weight"], got["params"]["alias"])
    assert list(os.listdir(tmp_path)) == ["out.pth"]  # no temporary left behind
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert (
            names[0] == "archive/data.pkl"
            and "archive/byteorder" in names
            and "archive/version" in names
        )
        assert (
            len([n for n in names if n.startswith("archive/data/")]) == 2 + 13 + 3
        )  # alias shares a storage
        raw = path.read_bytes()
        for info in zf.infolist():
            name_len, extra_len = struct.unpack(
                "<HH", raw[info.header_offset + 26 : info.header_offset + 30]
            )
            assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, info.filename
            assert info.compress_type == zipfile.ZIP_STORED


def test_save_pth_overwrites_and_refuses_what_torch_cannot_hold(tmp_path):
    path = tmp_path / "w.pth"
    save_pth({"a": np.ones(1, np.float32)}, path)
    save_pth({"b": np.zeros(2, np.float32)}, path)
    assert list(load_pth(path)) == ["b"]
    for bad, match in (
        ({"params": {"w": np.array([1, "a"], dtype=object)}}, "array at params.w has dtype object"),
        ({"params": {"w": {1, 2}}}, "cannot store set at params.w"),
        ({"meta": [b"raw"]}, r"cannot store bytes at meta\[0\]"),
        ({("tuple", "key"): 1}, "is not a str or int"),
        ({"u16": np.zeros(2, np.uint16)}, "dtype uint16"),
    ):
        with pytest.raises(CheckpointError, match=match):
            save_pth(bad, path)
    assert sorted(os.listdir(tmp_path)) == ["w.pth"] and list(load_pth(path)) == ["b"]


def test_save_pth_output_is_plain_protocol_2(tmp_path):
    """Only the globals torch's weights_only loader admits, no memo, protocol 2."""
    import pickletools

    save_pth({"params": {"w": np.ones((2, 3), np.float32)}, "n": 3}, tmp_path / "p.pth")
    with zipfile.ZipFile(tmp_path / "p.pth") as zf:
        ops = list(pickletools.genops(io.BytesIO(zf.read("archive/data.pkl"))))
    globals_used = {arg for op, arg, _ in ops if op.name == "GLOBAL"}
    assert globals_used == {
        "torch._utils _rebuild_tensor_v2",
        "torch FloatStorage",
        "collections OrderedDict",
    }
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    assert not any("PUT" in op.name or "GET" in op.name for op, _, _ in ops)
