"""Safe, torch-free reading and writing of PyTorch ``.pth`` checkpoints.

``load_pth`` reads both containers ``torch.save`` has produced:

* zip (torch >= 1.6): ``<archive>/data.pkl`` (the object pickle, whose persistent ids name
  storages), ``<archive>/data/<key>`` (raw storage bytes), ``<archive>/byteorder``; the
  archive folder may have any name;
* legacy (torch < 1.6, e.g. the 2019 EDVR releases): five pickles in a row (magic number,
  protocol version 1001, sys_info, the object, the sorted storage keys) followed by every
  storage as an 8-byte little-endian element count and its little-endian bytes.

Safety: pickles are unpickled by a restricted ``pickle.Unpickler`` whose ``find_class`` admits
only the few globals a state dict needs (tensor rebuild functions, storage and dtype names,
``collections.OrderedDict``, ``torch.Size``, numpy's scalar/array reconstructors and a few
builtins for bytes, sets and complex numbers) and maps each of them to a function of
``pth_pickle`` that builds inert records; torch is never imported. Every pickle is also scanned
opcode by opcode (``pickletools``) before it runs and refused if it names any other global
inline, uses the copyreg extension registry or memo indices beyond its own length. A hostile
file raises ``CheckpointError`` naming the file and the global, and nothing from it has run.
Storage sizes, zip entry sizes and the bytes of the returned arrays are checked against the
file and ``max_total_bytes`` before anything large is read; nothing is ever extracted to disk.

Returned structure: dicts (``OrderedDict`` becomes ``dict``, order kept, torch's ``_metadata``
dropped), lists, tuples, sets and python scalars as pickled; every tensor or Parameter becomes a
new writable C-contiguous numpy array of torch's dtype and shape (bfloat16 and float8 via
ml_dtypes), views of shared storages are copied out (so no two arrays share memory); numpy
scalars/arrays stay numpy, torch dtypes become ``numpy.dtype``.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from edvr_jax.convert.pth_pickle import (
    STORAGE_DTYPES,
    Capped,
    CheckpointError,
    OpaqueObject,
    StorageRef,
    TensorRef,
    Unpickler,
    resolve,
    scan,
    storage_leaves,
    unpickle,
)
from edvr_jax.outputs import file_mode

__all__ = ["CheckpointError", "OpaqueObject", "DEFAULT_MAX_TOTAL_BYTES", "load_pth", "save_pth"]

DEFAULT_MAX_TOTAL_BYTES = 4 * 2**30  # EDVR-L training checkpoints are ~170 MB
_MAX_DEFLATE_RATIO = 100  # torch never compresses; float weights deflate ~1.1x, zero bombs ~1000x
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_WRITE_STORAGE = {np.dtype(v): k for k, v in STORAGE_DTYPES.items() if k != "UntypedStorage"}


# --------------------------------------------------------------- bounds and materialisation
def _extent(t: TensorRef) -> tuple[int, int]:
    """(first byte, one past the last byte) ``t`` reads in its root storage; (0, 0) if empty."""
    s, size = t.storage, t.dtype.itemsize
    start = s.offset * s.dtype.itemsize + t.offset * size
    if 0 in t.shape:
        return 0, 0
    last = sum((n - 1) * st for n, st in zip(t.shape, t.stride, strict=True))
    view_end = (s.offset + s.numel) * s.dtype.itemsize
    end = start + (last + 1) * size
    if end > view_end:
        raise CheckpointError(
            f"tensor of shape {t.shape}, stride {t.stride}, offset {t.offset} "
            f"reads past the end of storage {s.key} ({view_end} bytes)"
        )
    return start, end


def _plan(obj: Any, limit: int) -> tuple[list[tuple[Any, TensorRef]], dict[str, StorageRef]]:
    """(placeholder, tensor to build) pairs and the root storages they need; bounds checked."""
    pairs, roots = [], {}
    for leaf in storage_leaves(obj):
        t = (
            leaf
            if isinstance(leaf, TensorRef)
            else TensorRef(leaf, 0, (leaf.numel,), (1,), leaf.dtype)
        )
        _extent(t)
        pairs.append((leaf, t))
        root = t.storage.root or t.storage
        roots[root.key] = root
    declared = sum(r.numel * r.dtype.itemsize for r in roots.values())
    output = sum(int(np.prod(t.shape, dtype=object)) * t.dtype.itemsize for _, t in pairs)
    for what, n in (("declared storages", declared), ("tensors", output)):
        if n > limit:
            raise CheckpointError(f"{what} need {n} bytes, more than max_total_bytes={limit}")
    return pairs, roots


def _materialise(t: TensorRef, raw: bytes, big_endian: bool) -> np.ndarray:
    start, _ = _extent(t)
    size = t.dtype.itemsize
    view = np.ndarray(
        t.shape,
        t.dtype,
        buffer=raw,
        offset=start if 0 not in t.shape else 0,
        strides=tuple(st * size for st in t.stride),
    )
    out = view.copy(order="C")
    if big_endian and size > 1:
        unit = size // 2 if t.dtype.kind == "c" else size
        out.reshape(-1).view(f"u{unit}").byteswap(inplace=True)
    return out


def _finish(
    obj: Any,
    limit: int,
    check: Callable[[StorageRef], Any],
    read: Callable[[StorageRef], bytes],
    big_endian: bool,
) -> Any:
    """Check every storage, then read each once and copy its tensors out of it."""
    pairs, roots = _plan(obj, limit)
    for root in roots.values():
        check(root)
    arrays: dict[int, np.ndarray] = {}
    key_of = lambda pair: (pair[1].storage.root or pair[1].storage).key
    current, raw = None, b""
    for leaf, t in sorted(pairs, key=key_of):  # one storage in memory at a time
        if key_of((leaf, t)) != current:
            current = key_of((leaf, t))
            raw = read(roots[current])
        arrays[id(leaf)] = _materialise(t, raw, big_endian)
    return resolve(obj, arrays, {})


# ----------------------------------------------------------------------------- containers
def _checked_info(zf: zipfile.ZipFile, name: str, limit: int) -> zipfile.ZipInfo:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise CheckpointError(f"zip entry {name} is missing") from None
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise CheckpointError(f"zip entry {name} uses unsupported compression")
    if info.file_size > limit:
        raise CheckpointError(
            f"zip entry {name} declares {info.file_size} bytes, more than max_total_bytes={limit}"
        )
    stored = info.compress_type == zipfile.ZIP_STORED
    if (stored and info.file_size != info.compress_size) or (
        not stored and info.file_size > _MAX_DEFLATE_RATIO * max(info.compress_size, 1)
    ):
        raise CheckpointError(
            f"zip entry {name} declares {info.file_size} bytes from "
            f"{info.compress_size} compressed bytes (zip bomb?)"
        )
    return info


def _load_zip(path: str, limit: int, keep_unknown: bool) -> Any:
    with zipfile.ZipFile(path) as zf:
        pkls = [n for n in zf.namelist() if n.split("/")[-1] == "data.pkl" and n.count("/") <= 1]
        if len(pkls) != 1:
            raise CheckpointError(
                f"zip archive has {len(pkls)} '<archive>/data.pkl' entries, "
                "expected 1 (is this a torch.save file?)"
            )
        prefix = pkls[0][: -len("data.pkl")]
        storages: dict[str, StorageRef] = {}
        obj = unpickle(zf.read(_checked_info(zf, pkls[0], limit)), storages, keep_unknown)
        big_endian = False
        if prefix + "byteorder" in zf.namelist():
            order = zf.read(_checked_info(zf, prefix + "byteorder", 16))
            if order not in (b"little", b"big"):
                raise CheckpointError(f"unknown byteorder {order[:16]!r}")
            big_endian = order == b"big"

        def check(s: StorageRef) -> zipfile.ZipInfo:
            info = _checked_info(zf, f"{prefix}data/{s.key}", limit)
            if info.file_size != s.numel * s.dtype.itemsize:
                raise CheckpointError(
                    f"zip entry {info.filename} has {info.file_size} bytes, "
                    f"storage declares {s.numel * s.dtype.itemsize}"
                )
            return info

        return _finish(obj, limit, check, lambda s: zf.read(check(s)), big_endian)


def _load_legacy(f, size: int, limit: int, keep_unknown: bool) -> Any:
    def next_pickle(storages=None):
        start = f.tell()
        scan(Capped(f, size), globals_ok=storages is not None, keep_unknown=keep_unknown)
        end = f.tell()
        f.seek(start)
        return Unpickler(f.read(end - start), storages, keep_unknown).load()

    if next_pickle() != _LEGACY_MAGIC:
        raise CheckpointError("a pickle without torch's magic number, not a torch.save file")
    version = next_pickle()
    if version != _LEGACY_PROTOCOL:
        raise CheckpointError(f"legacy protocol version {version!r:.20}, expected 1001")
    if not isinstance(next_pickle(), dict):
        raise CheckpointError("legacy sys_info is not a dict")
    storages: dict[str, StorageRef] = {}
    obj = next_pickle(storages)
    keys = next_pickle()
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise CheckpointError("legacy storage key list is not a list of strings")
    if sorted(keys) != sorted(storages):
        raise CheckpointError(
            f"legacy storage keys {sorted(keys)[:4]} do not match the "
            f"storages the object uses {sorted(storages)[:4]}"
        )
    offsets, pos = {}, f.tell()
    for key in keys:  # storages follow in key-list order, each after an 8-byte element count
        offsets[key] = pos
        pos += 8 + storages[key].numel * storages[key].dtype.itemsize

    def check(s: StorageRef) -> None:
        if pos > size:
            raise CheckpointError(
                f"file has {size} bytes but its storages end at byte {pos} (truncated?)"
            )

    def read(s: StorageRef) -> bytes:
        f.seek(offsets[s.key])
        (count,) = struct.unpack("<q", f.read(8))
        if count != s.numel:
            raise CheckpointError(f"storage {s.key} holds {count} elements, declared {s.numel}")
        return f.read(s.numel * s.dtype.itemsize)

    return _finish(obj, limit, check, read, big_endian=False)


def load_pth(
    path: str | os.PathLike,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    keep_unknown: bool = False,
) -> Any:
    """Read a ``torch.save`` file (zip or legacy format) without torch and without running it.

    Args:
      path: the ``.pth``/``.pt`` file.
      max_total_bytes: upper bound, in bytes, on any zip entry, on the storages the file
        declares and on the arrays returned (each counted separately).
      keep_unknown: if True, a global that is not admitted becomes an inert ``OpaqueObject``
        recording its name and arguments instead of raising (e.g. an ``argparse.Namespace``
        saved beside the weights); still nothing from the file is imported or run.
    Returns: the saved structure, tensors as numpy arrays (see the module docstring).
    Raises: ``CheckpointError`` (a ValueError) naming the file and what was wrong.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(512)
        try:
            if head[:4] == b"PK\x03\x04":
                return _load_zip(path, max_total_bytes, keep_unknown)
            if head[:1] == b"\x80":
                f.seek(0)
                return _load_legacy(f, size, max_total_bytes, keep_unknown)
        except CheckpointError as e:
            raise CheckpointError(f"{path}: {e}") from None
        except Exception as e:  # anything a corrupt file can raise inside zipfile/pickle/numpy
            msg = f"{path}: corrupt or truncated checkpoint ({type(e).__name__}: {e})"
            raise CheckpointError(msg.replace("\n", " ")) from e
    if not head:
        raise CheckpointError(f"{path}: empty file")
    what = (
        "a tar archive (torch < 0.4 format, unsupported)"
        if head[257:262] == b"ustar"
        else (f"starts with {head[:8]!r}")
    )
    raise CheckpointError(
        f"{path}: not a PyTorch checkpoint, neither a zip archive (torch >= 1.6)"
        f" nor a legacy pickle (torch < 1.6): {what}"
    )


# --------------------------------------------------------------------------------- writing
def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class _Writer:
    """Emits a protocol-2 pickle the way torch.save does (no memo), collecting the arrays."""

    def __init__(self):
        self.out = io.BytesIO()
        self.arrays: list[np.ndarray] = []
        self._index: dict[int, int] = {}

    def emit(self, x: Any, where: str) -> None:
        w = self.out.write
        if x is None or isinstance(x, bool):
            w({None: b"N", True: b"\x88", False: b"\x89"}[x])
        elif isinstance(x, int):
            if 0 <= x < 256:
                w(b"K" + bytes([x]))
            elif -(2**31) <= x < 2**31:
                w(b"J" + struct.pack("<i", x))
            else:
                n = (x.bit_length() + 8) // 8
                if n > 255:
                    raise CheckpointError(f"save_pth: integer at {where or 'top'} is too large")
                w(b"\x8a" + bytes([n]) + x.to_bytes(n, "little", signed=True))
        elif isinstance(x, float):
            w(b"G" + struct.pack(">d", x))
        elif isinstance(x, str):
            data = x.encode("utf-8", "surrogatepass")
            w(b"X" + struct.pack("<I", len(data)) + data)
        elif isinstance(x, Mapping):
            w(b"}(")
            for k, v in x.items():
                if not isinstance(k, str | int):
                    raise CheckpointError(
                        f"save_pth: key {k!r:.40} at {where or 'top'} is not a str or int"
                    )
                self.emit(k, where)
                self.emit(v, f"{where}.{k}" if where else str(k))
            w(b"u")
        elif isinstance(x, list | tuple):
            w(b"]" if isinstance(x, list) else b"")
            w(b"(")
            for i, v in enumerate(x):
                self.emit(v, f"{where}[{i}]")
            w(b"e" if isinstance(x, list) else b"t")
        elif isinstance(x, np.generic):
            self.emit(x.item(), where)
        elif hasattr(x, "__array__") and hasattr(x, "shape") and hasattr(x, "dtype"):
            self._tensor(x, where)
        else:
            raise CheckpointError(
                f"save_pth: cannot store {type(x).__name__} at "
                f"{where or 'top'} (dicts, lists, tuples, str, numbers, "
                "None and arrays only)"
            )

    def _tensor(self, x: Any, where: str) -> None:
        a = np.asarray(x)
        name = _WRITE_STORAGE.get(a.dtype.newbyteorder("="))
        if name is None:
            raise CheckpointError(
                f"save_pth: array at {where or 'top'} has dtype {a.dtype}, "
                f"expected one of {sorted(map(str, _WRITE_STORAGE))}"
            )
        key = self._index.setdefault(id(x), len(self.arrays))
        if key == len(self.arrays):
            self.arrays.append(a)
        # _rebuild_tensor_v2(<storage pid>, 0, shape, stride, False, OrderedDict())
        w = self.out.write
        w(b"ctorch._utils\n_rebuild_tensor_v2\n((")
        self.emit("storage", where)
        w(f"ctorch\n{name}\n".encode())
        for item in (str(key), "cpu", a.size):
            self.emit(item, where)
        w(b"tQ")
        for item in (0, tuple(a.shape), _contiguous_strides(a.shape)):
            self.emit(item, where)
        w(b"\x89ccollections\nOrderedDict\n)RtR")


def _little_endian_bytes(a: np.ndarray) -> memoryview:
    a = np.ascontiguousarray(a)
    native_big = sys.byteorder == "big"
    if a.dtype.itemsize > 1 and (
        a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and native_big)
    ):
        unit = a.dtype.itemsize // 2 if a.dtype.kind == "c" else a.dtype.itemsize
        a = a.reshape(-1).view(f"u{unit}").byteswap()
    return a.reshape(-1).view(np.uint8).data


def save_pth(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` in torch's zip format, loadable by ``torch.load(path, weights_only=True)``.

    ``obj`` is a (nested) dict/list/tuple of str, int, float, bool, None and arrays (numpy,
    jax or anything with ``__array__``) of dtype float64/32/16, bfloat16, int64/32/16/8,
    uint8, bool or complex64/128; arrays become contiguous CPU tensors, numpy scalars become
    python numbers, dicts stay plain dicts (torch's ``load_state_dict`` accepts them). E.g.
    ``save_pth({'params': state_dict}, 'net_g.pth')`` gives a BasicSR-style file. Storage
    records are 64-byte aligned like torch's (so ``torch.load(..., mmap=True)`` works); the
    file is written to a temporary name and then renamed into place.
    """
    writer = _Writer()
    writer.out.write(b"\x80\x02")
    writer.emit(obj, "")
    writer.out.write(b".")
    pkl = writer.out.getvalue()
    ident = str(int.from_bytes(hashlib.sha256(pkl).digest(), "big") % 10**40).zfill(40)
    records: list[tuple[str, Any]] = [
        ("data.pkl", pkl),
        (".format_version", b"1"),
        (".storage_alignment", b"64"),
        ("byteorder", b"little"),
    ]
    records += [(f"data/{i}", _little_endian_bytes(a)) for i, a in enumerate(writer.arrays)]
    records += [("version", b"3\n"), (".data/serialization_id", ident.encode())]
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pth", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
            for name, data in records:
                info = zipfile.ZipInfo(f"archive/{name}", date_time=(1980, 1, 1, 0, 0, 0))
                zip64 = 20 if len(data) * 1.05 > zipfile.ZIP64_LIMIT else 0  # zipfile adds it
                pad = -(fh.tell() + 30 + len(info.filename) + 4 + zip64) % 64
                info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
                zf.writestr(info, data)
        os.chmod(tmp, file_mode())  # mkstemp's 0600 -> what open() would give (the umask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
