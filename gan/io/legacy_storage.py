"""Parse the bytes of a torch storage pickled with plain `pickle` - without torch.load.

When a tensor is pickled with plain `pickle.dump` (as NVIDIA's training code does), its storage
reduces to `torch.storage._load_from_bytes(b)` where `b` is `torch.save(storage, ...,
_use_new_zipfile_serialization=False)`: the legacy format, a sequence of protocol-2 pickles

    magic number 0x1950a86a20f9469cfc6c, protocol version 1001, sys_info dict,
    the object: a persistent id ('storage', <torch.FloatStorage etc.>, key, location, numel, view),
    the list of storage keys,

followed, for each key, by an int64 element count and the raw little-endian element bytes.
(torch 1.6 briefly used the zip format of torch.save here: data.pkl + data/<key>; read too.)
We read either layout with a restricted unpickler that knows only the storage type names.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from dataclasses import dataclass

import torch

from gan.errors import ModelLoadError

_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001

# Legacy typed storage classes (torch.<Name> and torch.cuda.<Name>) -> element dtype.
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
    # torch >= 2 pickles storages of newer dtypes untyped (bytes) and passes the dtype separately.
    "UntypedStorage": torch.uint8,
}


@dataclass(frozen=True)
class StorageType:
    """Stand-in for a storage class named in the pickle."""

    name: str
    dtype: torch.dtype


@dataclass
class Storage:
    """A storage read from the file: a flat tensor of its elements (on the CPU)."""

    flat: torch.Tensor
    untyped: bool  # True for UntypedStorage: flat is bytes, the tensor gives its own dtype

    @property
    def dtype(self) -> torch.dtype:
        return self.flat.dtype


@dataclass(frozen=True)
class _StorageRef:
    key: str
    storage_type: StorageType
    numel: int
    view: tuple | None


class _StorageUnpickler(pickle._Unpickler):
    def find_class(self, module: str, name: str):
        if module in ("torch", "torch.cuda", "torch.storage") and name in _STORAGE_DTYPES:
            return StorageType(name, _STORAGE_DTYPES[name])
        raise ModelLoadError(
            f"a tensor's storage record references `{module}.{name}`, which is not a torch storage type; "
            "the file is corrupt or was crafted to run code. Nothing from it was executed."
        )

    def persistent_load(self, pid):
        # legacy: ('storage', type, key, location, numel, view); zip: the same without view
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, *rest = pid
        view = rest[0] if rest else None
        if not (isinstance(storage_type, StorageType) and isinstance(key, str) and isinstance(numel, int)):
            raise pickle.UnpicklingError("malformed storage record")
        return _StorageRef(key, storage_type, numel, view)


def _load_one(f: io.BytesIO):
    return _StorageUnpickler(f).load()


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty(0, dtype=dtype).element_size()


def _read_zip(data: bytes) -> tuple[_StorageRef, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pkl = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise ModelLoadError("a tensor's storage record is a zip without data.pkl; the file is corrupt.")
        root = _StorageUnpickler(io.BytesIO(archive.read(pkl[0]))).load()
        if not isinstance(root, _StorageRef):
            raise ModelLoadError("a tensor's storage record does not hold a storage; the file is corrupt.")
        info = archive.getinfo(f"{pkl[0][: -len('data.pkl')]}data/{root.key}")
        if info.file_size > len(data):  # torch stores entries uncompressed; refuse zip bombs
            raise ModelLoadError("a tensor's storage record is inconsistent; the file is corrupt.")
        return root, archive.read(info)


def _read_legacy(data: bytes) -> tuple[_StorageRef, bytes]:
    f = io.BytesIO(data)
    magic, protocol, sys_info = _load_one(f), _load_one(f), _load_one(f)
    if magic != _MAGIC or protocol != _PROTOCOL:
        raise ModelLoadError("a tensor's storage record has an unknown layout; the file is corrupt.")
    if isinstance(sys_info, dict) and sys_info.get("little_endian", True) is not True:
        raise ModelLoadError("the file's tensors were written on a big-endian machine; not supported.")
    root = _load_one(f)
    keys = _load_one(f)
    if not isinstance(root, _StorageRef) or not isinstance(keys, list):
        raise ModelLoadError("a tensor's storage record does not hold a storage; the file is corrupt.")
    if keys != [root.key]:
        raise ModelLoadError("a tensor's storage record lists unexpected storages; the file is corrupt.")
    (count,) = struct.unpack("<q", f.read(8))
    if count != root.numel:
        raise ModelLoadError("a tensor's storage has an inconsistent size; the file is corrupt.")
    return root, f.read(count * _itemsize(root.storage_type.dtype))


def parse_legacy_storage(data: bytes) -> Storage:
    """The storage in `data` (the bytes torch pickles for one storage)."""
    if not isinstance(data, (bytes, bytearray)):
        raise ModelLoadError("a tensor's storage record is not a byte string; the file is corrupt.")
    try:
        root, raw = _read_zip(data) if data[:2] == b"PK" else _read_legacy(data)
    except ModelLoadError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        struct.error,
        ValueError,
        TypeError,
        KeyError,
        zipfile.BadZipFile,
    ) as exc:
        raise ModelLoadError(
            f"a tensor's storage record is damaged ({exc}); the file is corrupt or truncated."
        ) from exc
    itemsize = _itemsize(root.storage_type.dtype)
    if len(raw) != root.numel * itemsize:
        raise ModelLoadError("a tensor's data is cut short; the file is truncated.")
    count = root.numel
    if count == 0:
        flat = torch.empty(0, dtype=root.storage_type.dtype)
    else:
        flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(root.storage_type.dtype)
    if root.view is not None:  # storage views: only very old torch wrote them; (key, offset, size)
        try:
            _, offset, size = root.view
            flat = flat[offset : offset + size]
        except (TypeError, ValueError) as exc:
            raise ModelLoadError("a tensor's storage view is malformed; the file is corrupt.") from exc
    return Storage(flat=flat, untyped=root.storage_type.name == "UntypedStorage")
