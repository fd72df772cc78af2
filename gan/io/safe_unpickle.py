"""A restricted unpickler for NVIDIA's StyleGAN network pickles that runs no code from the file.

Those pickles were written with plain `pickle.dump`. Every global they reference is looked up
here in a fixed allow-list and replaced by our own stand-in; anything else is refused with a
ModelLoadError naming it. In particular:

- Networks are "persistent" objects: `torch_utils.persistence._reconstruct_persistent_obj(meta)`
  with meta = {type: 'class', version, module_src, class_name, state}; class_name is the bare
  class name ('Generator'). The official loader executes module_src; we keep it as text beside
  class_name and state in a `PersistentRecord`.
- TensorFlow-era pickles are a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects whose
  state holds numpy variables; they become `TFNetworkRecord`s.
- Tensors: `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
  hooks[, metadata])` (torch 2 also `_rebuild_tensor_v3(..., dtype)` for newer dtypes and
  `torch._tensor._rebuild_from_type_v2` for tensors with Python state), parameters
  `torch._utils._rebuild_parameter(data, requires_grad, hooks)` (torch 2 also
  `_rebuild_parameter_with_state`), storages `torch.storage._load_from_bytes(bytes)` - parsed by
  `legacy_storage`, never by torch.load.
- numpy arrays, scalars and dtypes (numpy 1: `numpy.core.multiarray`, numpy 2: `numpy._core...`)
  are rebuilt from their raw bytes; object arrays are refused.
- Plain torch containers (ModuleList, ...) and `dnnlib.EasyDict` become records / dicts.

`load_restricted(f)` returns the unpickled structure with all stand-ins resolved to plain Python,
numpy arrays, torch tensors and records.
"""

from __future__ import annotations

import math
import pickle
import struct
import types
from collections import OrderedDict
from typing import Any, BinaryIO

import numpy as np
import torch

from gan.errors import ModelLoadError
from gan.io.legacy_storage import Storage, StorageType, parse_legacy_storage


class _Damaged(Exception):
    """A record in the pickle that our stand-ins cannot accept (reported as a damaged file)."""


class PersistentRecord:
    """What `_reconstruct_persistent_obj(meta)` would have rebuilt: the class name (bare in real
    files: 'Generator'), the object's __dict__ and the defining module's source, kept as text only
    (gan.io.official_families reads it with `ast`; nothing ever executes it)."""

    def __init__(self, class_name: str, state: dict, version: Any = None, module_src: str = ""):
        self.class_name = class_name
        self.state = state
        self.version = version
        self.module_src = module_src

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name})"


class ModuleRecord:
    """A plain torch.nn container (ModuleList, ...) pickled by reference: its __dict__ only."""

    class_name = "torch.nn.Module"
    state: dict | None = None  # set by __setstate__ (pickle's BUILD); NEWOBJ does not call __init__

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise _Damaged(f"unexpected state for {self.class_name}")
        self.state = state

    def __repr__(self) -> str:
        return f"ModuleRecord({self.class_name})"


class TFNetworkRecord:
    """Stand-in for `dnnlib.tflib.network.Network` of the TensorFlow StyleGAN2 / StyleGAN2-ADA
    repos: only its pickled state (name, static_kwargs, components, variables as (TF name, numpy
    array) pairs, build_module_src as text). Nothing of TensorFlow is needed or run."""

    class_name = "dnnlib.tflib.network.Network"
    state: dict | None = None  # set by __setstate__ (pickle's BUILD)

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise _Damaged("unexpected state for a TensorFlow network")
        self.state = state

    def __repr__(self) -> str:
        name = (self.state or {}).get("name")
        return f"TFNetworkRecord({name})"


class _EasyDict(dict):
    """Stand-in for dnnlib.EasyDict (a dict with attribute access); becomes a plain dict."""

    def __setstate__(self, state):
        pass  # EasyDict keeps its items in the dict itself; any __dict__ state is irrelevant


class _Frozen:
    """Base of stand-ins a file may name but never change: pickle's BUILD opcode (which sets
    attributes or calls __setstate__) is refused on them, so a refused file cannot leave state
    behind for the next file loaded in the same process."""

    __slots__ = ()

    def __setstate__(self, state):
        raise _Damaged(f"the file tries to change {self!r}")

    def __setattr__(self, name, value):
        raise _Damaged(f"the file tries to change {self!r}")


class _TypeToken(_Frozen):
    """Stand-in for a class the file only names (torch.Tensor, numpy.ndarray, ...)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)

    def __repr__(self) -> str:
        return f"<{self.name}>"


class _Callable(_Frozen):
    """An allow-listed function as the unpickler hands it out: callable, but (unlike a plain
    function, whose __defaults__ or __dict__ BUILD could set) unchangeable."""

    __slots__ = ("_fn",)

    def __init__(self, fn):
        object.__setattr__(self, "_fn", fn)

    def __call__(self, *args):
        return self._fn(*args)

    def __repr__(self) -> str:
        return f"<{self._fn.__name__}>"


_TENSOR_TYPE = _TypeToken("torch.Tensor")
_PARAMETER_TYPE = _TypeToken("torch.nn.Parameter")
_NDARRAY_TYPE = _TypeToken("numpy.ndarray")


# ---- torch tensors ---------------------------------------------------------------------------


def _as_size(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise _Damaged(f"malformed tensor {what}")
    return tuple(value)


def _tensor_from_storage(storage, offset, size, stride, dtype: torch.dtype | None = None) -> torch.Tensor:
    if not isinstance(storage, Storage) or not isinstance(offset, int) or offset < 0:
        raise _Damaged("malformed tensor record")
    size, stride = _as_size(size, "size"), _as_size(stride, "stride")
    flat = storage.flat
    if dtype is not None and dtype != flat.dtype:
        if not storage.untyped or flat.numel() % torch.empty(0, dtype=dtype).element_size():
            raise _Damaged("tensor dtype does not fit its storage")
        flat = flat.view(dtype)
    if math.prod(size) > max(flat.numel(), 1):  # weights never overlap; refuse allocation bombs
        raise _Damaged("tensor does not fit its storage (more elements than stored)")
    try:
        # A view, never a copy: many tensors sharing one storage cost its bytes once.
        return flat.as_strided(size, stride, offset)
    except RuntimeError as exc:
        raise _Damaged(f"tensor does not fit its storage ({exc})") from exc


def _check_metadata(metadata) -> None:
    if metadata:  # conj/neg bits: never set on network weights
        raise _Damaged(f"unsupported tensor metadata {metadata!r:.80}")


def _rebuild_tensor(storage, offset, size, stride):
    return _tensor_from_storage(storage, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks, metadata=None):
    _check_metadata(metadata)
    return _tensor_from_storage(storage, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    _check_metadata(metadata)
    if not isinstance(dtype, torch.dtype):
        raise _Damaged("malformed tensor dtype")
    return _tensor_from_storage(storage, offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad, backward_hooks):
    if not isinstance(data, torch.Tensor):
        raise _Damaged("malformed parameter record")
    return data  # we only need the values; load_state_dict puts them into our own Parameters


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    return _rebuild_parameter(data, requires_grad, backward_hooks)


_TENSOR_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type(func, new_type, args, state):
    """torch's wrapper for tensors with Python state; only our own rebuilders may be inside."""
    func = func._fn if isinstance(func, _Callable) else None
    if func not in _TENSOR_REBUILDERS or new_type not in (_TENSOR_TYPE, _PARAMETER_TYPE):
        raise _Damaged("unsupported tensor subclass record")
    if not isinstance(args, tuple):
        raise _Damaged("malformed tensor record")
    return func(*args)


def _load_storage_from_bytes(data) -> Storage:
    return parse_legacy_storage(data)


# ---- numpy -------------------------------------------------------------------------------------


class _DTypeRecord:
    """Stand-in for numpy.dtype(code, align, copy) + its __setstate__ (byte order)."""

    def __init__(self, code, align=False, copy=True):
        if not isinstance(code, str):
            raise _Damaged("malformed numpy dtype")
        try:
            dtype = np.dtype(code)
        except TypeError as exc:
            raise _Damaged(f"unknown numpy dtype {code!r:.40}") from exc
        if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biufcSU":
            raise _Damaged(f"unsupported numpy dtype {code!r:.40}")
        self.dtype = dtype

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) >= 2 and state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


def _numpy_dtype(value) -> np.dtype:
    if not isinstance(value, _DTypeRecord):
        raise _Damaged("malformed numpy dtype")
    return value.dtype


class _ArrayRecord:
    """Stand-in for numpy.core.multiarray._reconstruct(ndarray, shape, b'b') + __setstate__."""

    def __init__(self, subtype, shape, typecode):
        if subtype is not _NDARRAY_TYPE:
            raise _Damaged("unsupported numpy array subclass")
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise _Damaged("malformed numpy array")
        _version, shape, dtype, fortran, raw = state
        order = "F" if fortran else "C"
        self.array = _array_from_bytes(raw, _numpy_dtype(dtype), _as_size(shape, "shape"), order)


def _array_from_bytes(raw, dtype: np.dtype, shape: tuple[int, ...], order: str) -> np.ndarray:
    if isinstance(raw, str):  # protocol 0-2 may carry the bytes as a latin-1 string
        raw = raw.encode("latin-1")
    if not isinstance(raw, (bytes, bytearray)):
        raise _Damaged("numpy array data is not raw bytes (object arrays are not supported)")
    count = int(np.prod(shape, dtype=np.int64))
    if count * dtype.itemsize != len(raw):
        raise _Damaged("numpy array data does not match its shape")
    return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order=order).copy(order="C")


def _numpy_frombuffer(buffer, dtype, shape, order):
    if order not in ("C", "F"):
        raise _Damaged("malformed numpy array")
    return _array_from_bytes(buffer, _numpy_dtype(dtype), _as_size(shape, "shape"), order)


def _numpy_scalar(dtype, raw=None):
    dtype = _numpy_dtype(dtype)
    if not isinstance(raw, (bytes, str)):
        raise _Damaged("malformed numpy scalar")
    return _array_from_bytes(raw, dtype, (), "C")[()]


# ---- misc --------------------------------------------------------------------------------------


def _codecs_encode(text, encoding="utf-8"):
    """Protocol <= 2 pickles bytes as _codecs.encode(str, 'latin1')."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Damaged("unsupported _codecs.encode call")
    return text.encode("latin-1")


def _persistent_record(meta) -> PersistentRecord:
    """Stand-in for torch_utils.persistence._reconstruct_persistent_obj: keeps the data, never
    executes meta['module_src']."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise _Damaged("malformed persistent object record")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise _Damaged("malformed persistent object record")
    src = meta.get("module_src")
    return PersistentRecord(class_name, state, meta.get("version"), src if isinstance(src, str) else "")


def _module_record_class(qualname: str) -> type[ModuleRecord]:
    return type(f"ModuleRecord_{qualname.rsplit('.', 1)[1]}", (ModuleRecord,), {"class_name": qualname})


_TORCH_DTYPE_NAMES = (
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
    "complex64",
    "complex128",
    "uint16",
    "uint32",
    "uint64",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
)

_TORCH_CONTAINERS = ("ModuleList", "ModuleDict", "Sequential")


def _build_allow_list() -> dict[tuple[str, str], Any]:
    """A fresh allow-list for one load: functions wrapped unchangeable, classes made anew."""
    allow: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record,
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("_codecs", "encode"): _codecs_encode,
        ("dnnlib.util", "EasyDict"): _EasyDict,
        ("dnnlib", "EasyDict"): _EasyDict,
        ("dnnlib.tflib.network", "Network"): TFNetworkRecord,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
        ("torch._tensor", "_rebuild_from_type"): _rebuild_from_type,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("torch._tensor", "Tensor"): _TENSOR_TYPE,
        ("torch", "Tensor"): _TENSOR_TYPE,
        ("torch.nn.parameter", "Parameter"): _PARAMETER_TYPE,
        ("numpy", "ndarray"): _NDARRAY_TYPE,
        ("numpy", "dtype"): _DTypeRecord,
    }
    for core in ("numpy.core", "numpy._core"):
        allow[(f"{core}.multiarray", "_reconstruct")] = _ArrayRecord
        allow[(f"{core}.multiarray", "scalar")] = _numpy_scalar
        allow[(f"{core}.numeric", "_frombuffer")] = _numpy_frombuffer
    for name in _TORCH_DTYPE_NAMES:
        dtype = getattr(torch, name, None)
        if isinstance(dtype, torch.dtype):
            allow[("torch", name)] = dtype
    for name in _TORCH_CONTAINERS:
        qualname = f"torch.nn.modules.container.{name}"
        allow[("torch.nn.modules.container", name)] = _module_record_class(qualname)
    allow[("torch.nn.modules.linear", "Identity")] = _module_record_class("torch.nn.modules.linear.Identity")
    return {key: _Callable(v) if isinstance(v, types.FunctionType) else v for key, v in allow.items()}


# What pickle's BUILD may give a state to: the stand-ins that expect one.
_BUILDABLE = (ModuleRecord, TFNetworkRecord, _ArrayRecord, _DTypeRecord, _EasyDict)

# Python 2 era module names that protocol <= 2 pickles may use.
_RENAMED_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


def _load_build(self) -> None:
    """BUILD: only our record stand-ins take a state; on anything else (a tensor, a function, a
    class, a dtype) a file could only mean to change something it should not."""
    state = self.stack.pop()
    inst = self.stack[-1]
    if not isinstance(inst, _BUILDABLE):
        kind = type(inst).__name__
        raise _Damaged(f"it tries to set the state of a {kind}, which network pickles never do")
    inst.__setstate__(state)


def _only_into_dicts(load):
    """SETITEM / SETITEMS, refused unless the target (below the key and value, or below the mark)
    is a dict: tensors and arrays also take items, and a file has no business changing them."""

    def checked(self) -> None:
        if load is pickle._Unpickler.load_setitem:
            target = self.stack[-3] if len(self.stack) >= 3 else None
        else:
            target = self.metastack[-1][-1] if self.metastack and self.metastack[-1] else None
        if not isinstance(target, dict):
            raise _Damaged(f"it stores items into a {type(target).__name__}, which network pickles never do")
        load(self)

    return checked


class RestrictedUnpickler(pickle._Unpickler):
    """Python's own (pure) unpickler resolving globals only through the allow-list above. The pure
    one keeps its memo in a dict (the C one sizes a table by the largest memo index a file names:
    16 GB for a 10-byte file), and lets BUILD and SETITEM(S) be limited to our stand-ins."""

    dispatch = dict(pickle._Unpickler.dispatch)
    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.SETITEM[0]] = _only_into_dicts(pickle._Unpickler.load_setitem)
    dispatch[pickle.SETITEMS[0]] = _only_into_dicts(pickle._Unpickler.load_setitems)

    def __init__(self, file: BinaryIO, source: str):
        super().__init__(file)
        self._allow = _build_allow_list()
        self._source = source

    def find_class(self, module: str, name: str):
        module = _RENAMED_MODULES.get(module, module)
        try:
            return self._allow[(module, name)]
        except KeyError:
            raise ModelLoadError(
                f"refusing to load {self._source}: it references `{module}.{name}`, which is not on the "
                "list of things an official StyleGAN network pickle may contain. The file may be malicious "
                "or come from other code; nothing from it was executed."
            ) from None

    def persistent_load(self, pid):
        raise _Damaged("the pickle uses persistent ids, which network pickles never do")


# Bounds on the unpickled structure, so nothing downstream (conversion to plain data, JSON, state
# dict collection) can recurse too deep or blow up on shared references. Real network pickles
# nest about 15 deep and hold a few thousand objects.
MAX_DEPTH = 100
MAX_EXPANDED_OBJECTS = 1_000_000  # objects counted as if every shared reference were a copy
MAX_INT = 2**63  # integers beyond int64 are never settings or sizes of a network


class _Resolver:
    """Replaces numpy/EasyDict stand-ins by real values (records keep their identity), refusing
    cycles, nesting deeper than MAX_DEPTH, huge integers and shared references that would expand
    to more than MAX_EXPANDED_OBJECTS (a few kB of pickle can describe an exponential tree)."""

    def __init__(self):
        self.memo: dict[int, Any] = {}
        self.sizes: dict[int, int] = {}  # expanded object count of each resolved container
        self.active: set[int] = set()  # containers on the current path (cycle detection)
        self.expanded = 0

    def _count(self, n: int) -> None:
        self.expanded += n
        if self.expanded > MAX_EXPANDED_OBJECTS:
            raise _Damaged(
                f"its structure expands to more than {MAX_EXPANDED_OBJECTS:,} objects through shared "
                "references (a network pickle holds a few thousand)"
            )

    def resolve(self, value: Any, depth: int = 0) -> Any:
        key = id(value)
        if key in self.active:
            raise _Damaged("it contains a cyclic structure, which network pickles never do")
        if key in self.memo:
            self._count(self.sizes.get(key, 1))  # a shared reference counts as a copy
            return self.memo[key]
        if depth > MAX_DEPTH:
            raise _Damaged(f"it nests deeper than {MAX_DEPTH} levels")
        before = self.expanded
        self._count(1)
        self.active.add(key)
        try:
            out = self._convert(value, depth + 1)
        finally:
            self.active.discard(key)
        self.memo[key] = out
        self.sizes[key] = self.expanded - before
        return out

    def _convert(self, value: Any, depth: int) -> Any:
        if isinstance(value, bool) or value is None or isinstance(value, (float, str, bytes)):
            return value
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise _Damaged("it holds an integer beyond 64 bits, which no network setting is")
            return value
        if isinstance(value, _ArrayRecord):
            if value.array is None:
                raise _Damaged("numpy array without data")
            return value.array
        if isinstance(value, _DTypeRecord):
            return value.dtype
        if isinstance(value, _TypeToken):
            return value.name
        if isinstance(value, dict):
            out = OrderedDict() if isinstance(value, OrderedDict) else {}
            for k, v in value.items():
                out[self.resolve(k, depth)] = self.resolve(v, depth)
            return out
        if isinstance(value, list):
            return [self.resolve(v, depth) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v, depth) for v in value)
        if isinstance(value, (set, frozenset)):
            return type(value)(self.resolve(v, depth) for v in value)
        if isinstance(value, (PersistentRecord, ModuleRecord, TFNetworkRecord)):
            value.state = self.resolve(value.state or {}, depth)
            return value
        if isinstance(value, (StorageType, Storage)):
            raise _Damaged("a bare storage outside a tensor")
        return value  # tensors, numpy scalars and arrays, torch dtypes, allow-listed callables


def load_restricted(file: BinaryIO, source: str) -> Any:
    """Unpickle `file` through the allow-list; ModelLoadError on anything refused or damaged."""
    try:
        obj = RestrictedUnpickler(file, source).load()
        return _Resolver().resolve(obj)
    except ModelLoadError:
        raise
    except _Damaged as exc:
        raise ModelLoadError(f"{source} is damaged: {exc}. Re-download or re-copy the file.") from exc
    except (EOFError, pickle.UnpicklingError) as exc:
        detail = str(exc) or type(exc).__name__
        raise ModelLoadError(
            f"{source} is truncated or not a valid pickle ({detail}). Re-download or re-copy the file."
        ) from exc
    except (
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
        RecursionError,
        MemoryError,
        RuntimeError,
        struct.error,
    ) as exc:
        raise ModelLoadError(
            f"{source} is damaged ({type(exc).__name__}: {exc}). Re-download or re-copy the file."
        ) from exc
