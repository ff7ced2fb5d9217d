"""The restricted unpickler behind ``edvr_jax.convert.pth`` (use that module's API).

torch pickles name a handful of globals: ``torch._utils._rebuild_tensor_v2`` & co., storage
classes such as ``torch.FloatStorage``, dtypes, ``collections.OrderedDict``, ``torch.Size``.
``Unpickler`` (a ``pickle.Unpickler``) maps exactly those, plus numpy's scalar/array
reconstructors and ``_codecs.encode``/``set``/``frozenset``/``bytearray``/``complex`` for plain
metadata, to functions of this module that only build inert records (``TensorRef``,
``StorageRef``) or plain data; any other global raises ``CheckpointError`` when its opcode is
reached, before anything could call it. ``scan`` first checks the whole pickle with
``pickletools``: names written inline (GLOBAL/INST, all torch writes with protocol 2) are
refused before even one of our functions runs; names built on the stack (STACK_GLOBAL,
protocol 4+) are left to ``find_class``. ``resolve`` then swaps the records for numpy arrays.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Callable, Mapping
from typing import Any

import ml_dtypes
import numpy as np

from edvr_jax.errors import UserError

_NOTHING_RAN = "nothing from the file was executed"


class CheckpointError(UserError, ValueError):
    """A checkpoint file is malformed, too large, or asks for something not admitted."""


# ------------------------------------------------------------------------------------ dtypes
# fmt: off
STORAGE_DTYPES = {  # torch.<name> storage classes (legacy and zip pickles) -> element dtype
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


class StorageRef(_Inert):
    """A torch storage: ``numel`` elements of ``dtype``; legacy views point into ``root``."""

    __slots__ = ("key", "dtype", "numel", "root", "offset")

    def __init__(self, key: str, dtype: np.dtype, numel: int, root=None, offset: int = 0):
        self.key, self.dtype, self.numel, self.root, self.offset = key, dtype, numel, root, offset


class TensorRef(_Inert):
    """A strided view (element offset/shape/strides of ``dtype``) into a ``StorageRef``."""

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


def _rebuild_tensor(storage, storage_offset, size, stride, dtype=None) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise CheckpointError(f"tensor storage must be a persistent storage, found {storage!r:.60}")
    (offset,), shape = _ints((storage_offset,), "tensor offset"), _ints(size, "tensor shape")
    stride = _ints(stride, "tensor stride")
    if len(shape) != len(stride):
        raise CheckpointError(f"tensor shape {shape} and stride {stride} differ in length")
    return TensorRef(storage, offset, shape, stride, storage.dtype if dtype is None else dtype)


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
) -> TensorRef:
    if metadata:
        raise CheckpointError(f"tensors with conj/neg bits are not supported ({metadata!r:.60})")
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(
    storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None
) -> TensorRef:
    if not (isinstance(dtype, _Named) and dtype.name[6:] in _TORCH_DTYPES) or metadata:
        raise CheckpointError(f"unsupported _rebuild_tensor_v3 dtype/metadata {dtype!r:.60}")
    return _rebuild_tensor(storage, storage_offset, size, stride, dtype.dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None) -> TensorRef:
    if not isinstance(data, TensorRef):
        raise CheckpointError(f"Parameter data must be a tensor, found {data!r:.60}")
    return data


_REBUILDS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func, new_type, args, state) -> TensorRef:
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
    for name, dtype in STORAGE_DTYPES.items():
        for module in ("torch", "torch.cuda", "torch.storage"):
            table[(module, name)] = _Named(f"torch.{name}", dtype)
    for name, dtype in _TORCH_DTYPES.items():
        table[("torch", name)] = _Named(f"torch.{name}", dtype)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "scalar")] = _np_scalar
        table[(module, "_reconstruct")] = _np_reconstruct
    return table


_ALLOWED = _allowed_globals()


def _py3_name(module: str, name: str) -> tuple[str, str]:
    """The python 3 name pickle itself would import (protocol <= 2 writes python 2 names)."""
    if (module, name) in NAME_MAPPING:
        return NAME_MAPPING[(module, name)]
    return IMPORT_MAPPING.get(module, module), name


def _admit(module: str, name: str, table: Mapping, keep_unknown: bool) -> Any:
    """What a global resolves to: ours from ``table``, an inert opaque class, or a refusal."""
    py3 = _py3_name(module, name)
    if py3 in table:
        return table[py3]
    if keep_unknown:
        return _opaque_class(*py3)
    written = "" if py3 == (module, name) else f" (written '{module}.{name}')"
    raise CheckpointError(
        f"refused global '{'.'.join(py3)}'{written}: only tensor, storage, dtype and container "
        f"types are admitted; {_NOTHING_RAN}"
    )


# --------------------------------------------------------------------- restricted unpickling
class Capped:
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


def scan(stream, *, globals_ok: bool, keep_unknown: bool) -> None:
    """Check one pickle's opcodes before it is run; leaves ``stream`` just after its STOP."""
    ops = 0
    for op, arg, _ in pickletools.genops(stream):
        ops += 1
        if op.name.startswith("EXT"):
            raise CheckpointError(f"refused opcode {op.name} (copyreg extension registry)")
        if op.name in ("GLOBAL", "INST"):
            module, _, name = arg.partition(" ")
            _admit(module, name, _ALLOWED if globals_ok else {}, keep_unknown and globals_ok)
        if op.name.endswith("PUT") and arg > ops:
            raise CheckpointError(f"refused memo index {arg} in a pickle of {ops} opcodes")


class Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, storages: dict | None, keep_unknown: bool):
        super().__init__(io.BytesIO(data))
        self._storages, self._keep_unknown = storages, keep_unknown

    def find_class(self, module: str, name: str) -> Any:
        main = self._storages is not None  # header pickles admit no global at all
        return _admit(module, name, _ALLOWED if main else {}, self._keep_unknown and main)

    def persistent_load(self, pid: Any) -> StorageRef:
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
        root = self._storages.setdefault(key, StorageRef(key, stype.dtype, numel))
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
        return StorageRef(str(view[0]), root.dtype, size, root, offset)


def unpickle(data: bytes, storages: dict | None = None, keep_unknown: bool = False) -> Any:
    stream = io.BytesIO(data)
    scan(stream, globals_ok=storages is not None, keep_unknown=keep_unknown)
    if stream.tell() != len(data):
        raise CheckpointError(f"{len(data) - stream.tell()} stray bytes after the pickle")
    return Unpickler(data, storages, keep_unknown).load()


def storage_leaves(obj: Any) -> list:
    """Every storage-backed placeholder in the unpickled structure (iterative, cycle-safe)."""
    seen, out, stack = set(), [], [obj]
    while stack:
        x = stack.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, TensorRef | StorageRef):
            out.append(x)
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list | tuple | set | frozenset):
            stack.extend(x)
        elif isinstance(x, OpaqueObject):
            stack.extend((x.args, x.kwargs, x.state))
    return out


def resolve(obj: Any, arrays: dict[int, np.ndarray], memo: dict[int, Any]) -> Any:
    """``obj`` with every record replaced: tensors/storages by ``arrays[id(record)]``, numpy
    records by numpy values, torch dtypes by ``numpy.dtype``, OrderedDicts by dicts."""
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, TensorRef | StorageRef):
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
        out.update((k, resolve(v, arrays, memo)) for k, v in obj.items())
    elif isinstance(obj, list):
        out = memo[id(obj)] = []
        out.extend(resolve(v, arrays, memo) for v in obj)
    elif isinstance(obj, tuple | set | frozenset):
        out = memo[id(obj)] = type(obj)(resolve(v, arrays, memo) for v in obj)
    elif isinstance(obj, OpaqueObject):
        memo[id(obj)] = obj
        obj.args, obj.kwargs, obj.state = (
            resolve(x, arrays, memo) for x in (obj.args, obj.kwargs, obj.state)
        )
        out = obj
    elif isinstance(obj, type) and issubclass(obj, OpaqueObject):
        out = obj
    elif isinstance(obj, _Inert | Callable):  # e.g. a bare rebuild function in the data
        raise CheckpointError(f"unsupported object {obj!r:.60} in the checkpoint")
    else:
        out = obj  # str, bytes, numbers, None
    return out
