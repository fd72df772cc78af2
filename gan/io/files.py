"""File helpers for model I/O: atomic writes, hashing and format sniffing."""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
from pathlib import Path

from gan.errors import ModelLoadError, UserError


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view[: 1 << 24])
        view = view[written:]


def _create_beside(target: str | os.PathLike, suffix: str, create):
    """create(path) on a new hidden name next to target, retrying names that already exist."""
    target = Path(target)
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"
        try:
            return create(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file or folder next to {target}")


def create_temp_file(target: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, Path]:
    """(open fd, path) of a new hidden file next to target, for writing it atomically.

    Unlike tempfile.mkstemp (mode 0600) it gets the usual permissions, 0666 minus the umask, which
    the finished file keeps after the rename."""

    def make(path: Path) -> tuple[int, Path]:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666), path

    return _create_beside(target, suffix, make)


def create_temp_dir(target: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """A new hidden folder next to target (0777 minus the umask, unlike tempfile.mkdtemp's 0700)."""

    def make(path: Path) -> Path:
        os.mkdir(path, 0o777)
        return path

    return _create_beside(target, suffix, make)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write data to path so that readers see either the old file or the complete new one.

    The bytes go to a temporary file in the same directory (so os.replace is atomic), are
    flushed to disk, then renamed over path. On any failure (full disk, interrupt) the
    temporary file is removed and path is left as it was.
    """
    path = Path(path)
    fd, tmp = create_temp_file(path)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_format(path: str | os.PathLike) -> str:
    """'safetensors', 'pickle' or 'torch-zip' from the first bytes; ModelLoadError otherwise."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file. Check the path.")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a directory, not a model file.")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read the file ({exc.strerror}).") from exc
    if len(head) == 0:
        raise ModelLoadError(f"{path} is empty (0 bytes); the download or copy may have failed.")
    if head[:2] == b"PK":
        return "torch-zip"
    if head[:1] == b"\x80" and len(head) >= 2 and 2 <= head[1] <= 5:
        return "pickle"
    # safetensors: 8-byte little-endian header length, then the JSON header starting with '{'.
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    raise ModelLoadError(
        f"{path} is neither a stylegan-explorer .safetensors model nor an official StyleGAN .pkl "
        "(unrecognised file contents). Check that you picked the right file."
    )


def write_error(path: str | os.PathLike, exc: OSError) -> UserError:
    """The user-facing error for a failed atomic write (which leaves nothing behind)."""
    hint = " (disk full)" if exc.errno == errno.ENOSPC else ""
    return UserError(f"cannot write {path}: {exc.strerror or exc}{hint}; nothing was written")
