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
builtins for bytes, sets and complex numbers) and maps each of them to a function of this
module; torch is never imported. Before unpickling, every pickle is scanned opcode by opcode
(``pickletools``) and refused if it names any other global, uses the copyreg extension registry
or memo indices beyond its own length, so a hostile file raises ``CheckpointError`` before
anything from it runs. Storage sizes, zip entry sizes and the bytes of the returned arrays are
checked against the file and ``max_total_bytes`` before anything large is read; nothing is
ever extracted to disk.

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
import pickle
import pickletools
import struct
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import ml_dtypes
import numpy as np

__all__ = [
    "CheckpointError",
    "OpaqueObject",
    "DEFAULT_MAX_TOTAL_BYTES",
    "load_pth",
    "save_pth",
    "extract_state_dict",
]

DEFAULT_MAX_TOTAL_BYTES = 4 * 2**30  # EDVR-L training checkpoints are ~170 MB
_MAX_DEFLATE_RATIO = 100  # torch never compresses; float weights deflate ~1.1x, zero bombs ~1000x
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_NOTHING_RAN = "nothing from the file was executed"


class CheckpointError(ValueError):
    """A checkpoint file is malformed, too large, or asks for something not admitted."""


# ------------------------------------------------------------------------------------ dtypes
# fmt: off
_STORAGE_DTYPES = {  # torch.<name> storage classes (legacy and zip pickles) -> element dtype
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "ComplexFloatStorage": np.complex64,
    "ComplexDoubleStorage": np.complex128, "UntypedStorage": np.uint8,
}
_TORCH_DTYPES = {  # torch.<name> dtype globals (_rebuild_tensor_v3, metadata)
    "float64": np.float64, "float32": np.float32, "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16, "int64": np.int64, "int32": np.int32, "int16": np.int16,
    "int8": np.int8, "uint8": np.uint8, "bool": np.bool_, "complex64": np.complex64,
    "complex128": np.complex128, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn, "float8_e5m2": ml_dtypes.float8_e5m2,
}
_NUMPY_DTYPE_CODES = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8",
                      "c8", "c16"}
# fmt: on
_WRITE_STORAGE = {np.dtype(v): k for k, v in _STORAGE_DTYPES.items() if k != "UntypedStorage"}


# ------------------------------------------------------- inert objects built while unpickling
class _Inert:
    """Base of every object the unpickler can create; refuses pickle's BUILD (__setstate__)."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError(f"refused BUILD on {type(self).__name__.strip('_')}; {_NOTHING_RAN}")


class _Named(_Inert):
    """torch.FloatStorage / torch.float32 / torch.Tensor and other name-only markers."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: Any = None):
        self.name, self.dtype = name, None if dtype is None else np.dtype(dtype)


class _Storage(_Inert):
    """A torch storage: ``numel`` elements of ``dtype``; legacy views point into ``root``."""

    __slots__ = ("key", "dtype", "numel", "root", "offset")

    def __init__(self, key: str, dtype: np.dtype, numel: int, root=None, offset: int = 0):
        self.key, self.dtype, self.numel, self.root, self.offset = key, dtype, numel, root, offset


class _Tensor(_Inert):
    """A strided view (element offset/shape/strides of ``dtype``) into a ``_Storage``."""

    __slots__ = ("storage", "offset", "shape", "stride", "dtype")

    def __init__(self, storage, offset, shape, stride, dtype):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride
        self.dtype = np.dtype(dtype)


class _NpDType(_Inert):
    __slots__ = ("dtype",)

    def __setstate__(self, state: Any) -> None:  # numpy's (version, byteorder, None, None, ...)
        if not (
            isinstance(state, tuple)
            and len(state) >= 5
            and state[1] in "<>|="
            and state[2:5] == (None, None, None)
        ):
            raise CheckpointError(f"refused numpy dtype state {state!r:.80}")
        self.dtype = self.dtype.newbyteorder(state[1] if state[1] != "|" else "=")


class _NpArray(_Inert):
    __slots__ = ("array",)

    def __setstate__(self, state: Any) -> None:  # numpy's (1, shape, dtype, is_fortran, bytes)
        ok = isinstance(state, tuple) and len(state) == 5 and isinstance(state[2], _NpDType)
        if not ok or not isinstance(state[4], bytes):
            raise CheckpointError("refused numpy array state (only numeric arrays are admitted)")
        shape, dtype = _ints(state[1], "numpy array shape"), state[2].dtype
        if len(state[4]) != np.prod(shape, dtype=object) * dtype.itemsize:
            raise CheckpointError(f"numpy array of shape {shape} has {len(state[4])} data bytes")
        flat = np.frombuffer(state[4], dtype).astype(dtype.newbyteorder("="))
        self.array = flat.reshape(shape, order="F" if state[3] else "C").copy()


class OpaqueObject:
    """An object of a class ``load_pth(keep_unknown=True)`` does not admit: its global's name,
    constructor arguments and BUILD state are recorded, nothing of that class is imported or
    run. ``global_name`` is ``"module.name"``."""

    global_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        self = object.__new__(cls)
        self.args, self.kwargs, self.state = args, kwargs, None
        return self

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"OpaqueObject({self.global_name}, args={self.args!r:.60}, state={self.state!r:.60})"


def _opaque_class(module: str, name: str) -> type:
    return type("OpaqueObject", (OpaqueObject,), {"global_name": f"{module}.{name}"})


class _OrderedDict(dict):
    def __setstate__(self, state: Any) -> None:  # torch's state_dict()._metadata: dropped
        pass


# -------------------------------------------------------------- functions globals map to
def _ints(x: Any, what: str) -> tuple[int, ...]:
    if not isinstance(x, tuple | list) or not all(type(v) is int and 0 <= v < 2**62 for v in x):
        raise CheckpointError(f"{what} must be non-negative ints, found {x!r:.80}")
    return tuple(x)


def _rebuild_tensor(storage, storage_offset, size, stride, dtype=None) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"tensor storage must be a persistent storage, found {storage!r:.60}")
    (offset,), shape = _ints((storage_offset,), "tensor offset"), _ints(size, "tensor shape")
    stride = _ints(stride, "tensor stride")
    if len(shape) != len(stride):
        raise CheckpointError(f"tensor shape {shape} and stride {stride} differ in length")
    return _Tensor(storage, offset, shape, stride, storage.dtype if dtype is None else dtype)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
) -> _Tensor:
    if metadata:
        raise CheckpointError(f"tensors with conj/neg bits are not supported ({metadata!r:.60})")
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
) -> _Tensor:
    if not (isinstance(dtype, _Named) and dtype.name[6:] in _TORCH_DTYPES) or metadata:
        raise CheckpointError(f"unsupported _rebuild_tensor_v3 dtype/metadata {dtype!r:.60}")
    return _rebuild_tensor(storage, storage_offset, size, stride, dtype.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise CheckpointError(f"Parameter data must be a tensor, found {data!r:.60}")
    return data


_REBUILDS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func, new_type, args, state) -> _Tensor:
    if func not in _REBUILDS or not isinstance(new_type, _Named) or not isinstance(args, tuple):
        raise CheckpointError(f"refused _rebuild_from_type_v2({func!r:.40}, {new_type!r:.40})")
    return func(*args)


def _torch_size(dims=()) -> tuple[int, ...]:
    return _ints(dims, "torch.Size")


def _torch_device(kind, index=None) -> str:
    if not isinstance(kind, str) or not (index is None or type(index) is int):
        raise CheckpointError(f"refused torch.device{(kind, index)!r:.60}")
    return kind if index is None else f"{kind}:{index}"


def _codecs_encode(text, encoding="utf-8") -> bytes:  # how protocol 2 stores python bytes
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError(f"refused _codecs.encode with {encoding!r:.20}")
    return text.encode("latin1")


def _bytearray(data=b"", encoding=None) -> bytearray:
    if isinstance(data, str) and encoding in ("latin1", "latin-1"):
        data = data.encode("latin1")
    if not isinstance(data, bytes):
        raise CheckpointError(f"refused bytearray({type(data).__name__})")
    return bytearray(data)


def _container(kind: type) -> Callable[..., Any]:
    def build(items=()):
        if not isinstance(items, list | tuple):
            raise CheckpointError(f"refused {kind.__name__}({type(items).__name__})")
        return kind(items)

    return build


def _complex(real=0.0, imag=0.0) -> complex:
    if not all(type(v) in (int, float) for v in (real, imag)):
        raise CheckpointError("refused complex() of non-numbers")
    return complex(real, imag)


def _np_dtype(spec, align=False, copy=False) -> _NpDType:
    if spec not in _NUMPY_DTYPE_CODES:
        raise CheckpointError(f"refused numpy dtype {spec!r:.40} (only bool/int/float/complex)")
    out = _NpDType()
    out.dtype = np.dtype(spec)
    return out


def _np_scalar(dtype, data=None):
    if not (
        isinstance(dtype, _NpDType)
        and isinstance(data, bytes)
        and len(data) == dtype.dtype.itemsize
    ):
        raise CheckpointError("refused numpy scalar (only numeric scalars are admitted)")
    return np.frombuffer(data, dtype.dtype)[0]


def _np_reconstruct(cls, shape=(0,), typecode=b"b") -> _NpArray:
    if not (isinstance(cls, _Named) and cls.name == "numpy.ndarray"):
        raise CheckpointError(f"refused numpy _reconstruct of {cls!r:.60}")
    return _NpArray()


def _allowed_globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): _OrderedDict,
        ("torch", "Size"): _torch_size,
        ("torch", "device"): _torch_device,
        ("torch", "Tensor"): _Named("torch.Tensor"),
        ("torch.nn.parameter", "Parameter"): _Named("torch.nn.parameter.Parameter"),
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("_codecs", "encode"): _codecs_encode,
        ("builtins", "bytearray"): _bytearray,
        ("builtins", "set"): _container(set),
        ("builtins", "frozenset"): _container(frozenset),
        ("builtins", "complex"): _complex,
        ("numpy", "dtype"): _np_dtype,
        ("numpy", "ndarray"): _Named("numpy.ndarray"),
    }
    for fn, name in zip(
        _REBUILDS[:3], ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3"), strict=True
    ):
        table[("torch._utils", name)] = fn
    for name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
        table[("torch._utils", name)] = _rebuild_parameter
    for name, dtype in _STORAGE_DTYPES.items():
        for module in ("torch", "torch.cuda", "torch.storage"):
            table[(module, name)] = _Named(f"torch.{name}", dtype)
    for name, dtype in _TORCH_DTYPES.items():
        table[("torch", name)] = _Named(f"torch.{name}", dtype)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "scalar")] = _np_scalar
        table[(module, "_reconstruct")] = _np_reconstruct
    return table


_ALLOWED = _allowed_globals()


def _refusal(module: str, name: str) -> str:
    return (
        f"refused global '{module}.{name}' (only tensor, storage, dtype and container "
        f"types are admitted); {_NOTHING_RAN}"
    )


# --------------------------------------------------------------------- restricted unpickling
class _Capped:
    """A read-only view of ``f`` from its position up to ``end``, for ``pickletools``."""

    def __init__(self, f, end: int):
        self._f, self._end = f, end

    def read(self, n: int = -1) -> bytes:
        left = self._end - self._f.tell()
        return self._f.read(left if n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self._f.readline(self._end - self._f.tell())

    def tell(self) -> int:
        return self._f.tell()


def _scan(stream, *, globals_ok: bool, keep_unknown: bool) -> None:
    """Check one pickle's opcodes before it is run; leaves ``stream`` just after its STOP."""
    ops = 0
    for op, arg, _ in pickletools.genops(stream):
        ops += 1
        if op.name.startswith("EXT"):
            raise CheckpointError(f"refused opcode {op.name} (copyreg extension registry)")
        if op.name in ("GLOBAL", "INST"):
            module, _, name = arg.partition(" ")
            if not globals_ok or ((module, name) not in _ALLOWED and not keep_unknown):
                raise CheckpointError(_refusal(module, name))
        if op.name.endswith("PUT") and arg > ops:
            raise CheckpointError(f"refused memo index {arg} in a pickle of {ops} opcodes")


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, storages: dict | None, keep_unknown: bool):
        super().__init__(io.BytesIO(data))
        self._storages, self._keep_unknown = storages, keep_unknown

    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name)) if self._storages is not None else None
        if found is not None:
            return found
        if self._keep_unknown and self._storages is not None:
            return _opaque_class(module, name)
        raise CheckpointError(_refusal(module, name))

    def persistent_load(self, pid: Any) -> _Storage:
        if self._storages is None or not isinstance(pid, tuple) or len(pid) not in (5, 6):
            raise CheckpointError(f"refused persistent id {pid!r:.80}")
        kind, stype, key, _location, numel = pid[:5]
        if (
            kind not in ("storage", b"storage")
            or not isinstance(stype, _Named)
            or not stype.name.endswith("Storage")
            or not isinstance(key, str | int)
        ):
            raise CheckpointError(f"refused persistent id {pid!r:.80}")
        key, (numel,) = str(key), _ints((numel,), "storage size")
        root = self._storages.setdefault(key, _Storage(key, stype.dtype, numel))
        if (root.dtype, root.numel) != (stype.dtype, numel):
            raise CheckpointError(f"storage {key} declared twice with different dtype or size")
        if len(pid) == 5 or pid[5] is None:
            return root
        view = pid[5]  # legacy storage view: (view_key, element offset, element count)
        if not (isinstance(view, tuple) and len(view) == 3):
            raise CheckpointError(f"refused storage view {view!r:.60}")
        offset, size = _ints(view[1:], "storage view")
        if offset + size > numel:
            raise CheckpointError(f"storage view {view!r:.60} exceeds storage {key} ({numel})")
        return _Storage(str(view[0]), root.dtype, size, root, offset)


def _unpickle(data: bytes, storages: dict | None = None, keep_unknown: bool = False) -> Any:
    stream = io.BytesIO(data)
    _scan(stream, globals_ok=storages is not None, keep_unknown=keep_unknown)
    if stream.tell() != len(data):
        raise CheckpointError(f"{len(data) - stream.tell()} stray bytes after the pickle")
    return _Unpickler(data, storages, keep_unknown).load()


# --------------------------------------------------------------- bounds and materialisation
def _leaves(obj: Any) -> list:
    """Every storage-backed placeholder in the unpickled structure (iterative, cycle-safe)."""
    seen, out, stack = set(), [], [obj]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, _Tensor | _Storage):
            out.append(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list | tuple | set | frozenset):
            stack.extend(x)
        elif isinstance(x, OpaqueObject):
            stack.extend((x.args, x.kwargs, x.state))
    return out


def _extent(t: _Tensor) -> tuple[int, int]:
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


def _plan(obj: Any, limit: int) -> tuple[list[tuple[Any, _Tensor]], dict[str, _Storage]]:
    """(placeholder, tensor to build) pairs and the root storages they need; bounds checked."""
    pairs, roots = [], {}
    for leaf in _leaves(obj):
        t = leaf if isinstance(leaf, _Tensor) else _Tensor(leaf, 0, (leaf.numel,), (1,), leaf.dtype)
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


def _materialise(t: _Tensor, raw: bytes, big_endian: bool) -> np.ndarray:
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


def _build(obj: Any, arrays: dict[int, np.ndarray], memo: dict[int, Any]) -> Any:
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, _Tensor | _Storage):
        return arrays[id(obj)]
    if isinstance(obj, _NpArray):
        if not hasattr(obj, "array"):
            raise CheckpointError("numpy array without data")
        return obj.array
    if isinstance(obj, _NpDType):
        return obj.dtype
    if isinstance(obj, _Named):
        return obj.dtype if obj.dtype is not None and obj.name[6:] in _TORCH_DTYPES else obj.name
    if isinstance(obj, dict):
        out = memo[id(obj)] = {}
        out.update((k, _build(v, arrays, memo)) for k, v in obj.items())
    elif isinstance(obj, list):
        out = memo[id(obj)] = []
        out.extend(_build(v, arrays, memo) for v in obj)
    elif isinstance(obj, tuple | set | frozenset):
        out = memo[id(obj)] = type(obj)(_build(v, arrays, memo) for v in obj)
    elif isinstance(obj, OpaqueObject):
        memo[id(obj)] = obj
        obj.args, obj.kwargs, obj.state = (
            _build(x, arrays, memo) for x in (obj.args, obj.kwargs, obj.state)
        )
        out = obj
    elif isinstance(obj, type) and issubclass(obj, OpaqueObject):
        out = obj
    elif isinstance(obj, _Inert | Callable):  # e.g. a bare rebuild function in the data
        raise CheckpointError(f"unsupported object {obj!r:.60} in the checkpoint")
    else:
        out = obj  # str, bytes, numbers, None
    return out


def _finish(
    obj: Any,
    limit: int,
    check: Callable[[_Storage], Any],
    read: Callable[[_Storage], bytes],
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
    return _build(obj, arrays, {})


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
        storages: dict[str, _Storage] = {}
        obj = _unpickle(zf.read(_checked_info(zf, pkls[0], limit)), storages, keep_unknown)
        big_endian = False
        if prefix + "byteorder" in zf.namelist():
            order = zf.read(_checked_info(zf, prefix + "byteorder", 16))
            if order not in (b"little", b"big"):
                raise CheckpointError(f"unknown byteorder {order[:16]!r}")
            big_endian = order == b"big"

        def check(s: _Storage) -> zipfile.ZipInfo:
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
        _scan(_Capped(f, size), globals_ok=storages is not None, keep_unknown=keep_unknown)
        end = f.tell()
        f.seek(start)
        return _Unpickler(f.read(end - start), storages, keep_unknown).load()

    if next_pickle() != _LEGACY_MAGIC:
        raise CheckpointError("a pickle without torch's magic number, not a torch.save file")
    version = next_pickle()
    if version != _LEGACY_PROTOCOL:
        raise CheckpointError(f"legacy protocol version {version!r:.20}, expected 1001")
    if not isinstance(next_pickle(), dict):
        raise CheckpointError("legacy sys_info is not a dict")
    storages: dict[str, _Storage] = {}
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

    def check(s: _Storage) -> None:
        if pos > size:
            raise CheckpointError(
                f"file has {size} bytes but its storages end at byte {pos} (truncated?)"
            )

    def read(s: _Storage) -> bytes:
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
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ------------------------------------------------------------------------ state-dict helpers
STATE_DICT_KEYS = ("params", "params_ema", "state_dict", "model")
WRAPPER_PREFIXES = ("module.", "generator.")


def extract_state_dict(
    checkpoint: Any,
    *,
    key: str | None = None,
    prefix: str | None = None,
    source: str = "checkpoint",
) -> dict[str, np.ndarray]:
    """The flat ``{name: array}`` state dict inside a loaded checkpoint.

    Args:
      checkpoint: what ``load_pth`` returned.
      key: top-level entry holding the weights (BasicSR ``'params'``/``'params_ema'``, mmagic
        ``'state_dict'``); None takes the first of ``STATE_DICT_KEYS`` present, else the
        checkpoint itself (a bare state dict).
      prefix: keep only names starting with it and strip it (e.g. ``'generator.'``); None strips
        a ``WRAPPER_PREFIXES`` prefix only when every name carries it (DataParallel, mmagic).
      source: file name for error messages.
    Nested dicts are flattened with ``'.'``; a non-array leaf raises ``CheckpointError``.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{source}: expected a dict, found {type(checkpoint).__name__}")
    if key is None:
        key = next((k for k in STATE_DICT_KEYS if isinstance(checkpoint.get(k), Mapping)), None)
    elif key not in checkpoint:
        raise CheckpointError(
            f"{source}: no entry {key!r}; top-level keys are {sorted(map(str, checkpoint))[:12]}"
        )
    flat: dict[str, np.ndarray] = {}

    def walk(node: Mapping, path: str) -> None:
        for k, v in node.items():
            name = f"{path}{k}"
            if isinstance(v, Mapping):
                walk(v, name + ".")
            elif isinstance(v, np.ndarray):
                flat[name] = v
            else:
                raise CheckpointError(
                    f"{source}: state dict entry {name!r} is a "
                    f"{type(v).__name__}, expected an array"
                )

    walk(checkpoint if key is None else checkpoint[key], "")
    if prefix is not None:
        flat = {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}
        if not flat:
            raise CheckpointError(f"{source}: no state dict entry starts with {prefix!r}")
        return flat
    stripped = True
    while flat and stripped:
        stripped = False
        for p in WRAPPER_PREFIXES:
            if all(k.startswith(p) for k in flat):
                flat, stripped = {k[len(p) :]: v for k, v in flat.items()}, True
    return flat
