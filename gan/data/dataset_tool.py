"""Turn a folder (or zip) of arbitrary images into a training data set.

Output: square, power-of-two sized RGB PNGs named `00000/img00000000.png` in a zip or a folder,
plus `dataset.json` (`{"labels": [[name, label], ...] | null}`), i.e. the official layout read by
`gan.data.dataset.ImageDataset`. Unreadable files are skipped and reported by name with the
reason: sub-folders that cannot be read, anything but a regular file (a FIFO named `x.png` would
block), files larger than `max_file_mb` (never read whole). The output appears atomically: it is
written under a temporary name next to the destination and renamed into place only when complete,
so an error or Ctrl-C leaves nothing behind; with `force`, an existing output is swapped for the
new one in one atomic step, so the destination always holds a complete data set. A full disk or
a folder we may not write to is a one-line error.
"""

from __future__ import annotations

import ctypes
import errno
import io
import json
import os
import shutil
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import PIL.Image
import PIL.ImageOps

from gan.data.dataset import (
    LABELS_FILE,
    FileSource,
    FileTooLarge,
    image_error_text,
    read_dataset_json,
)
from gan.errors import Cancelled, UserError
from gan.io.files import create_temp_dir, create_temp_file
from gan.progress import Progress

TRANSFORMS = ("center-crop", "center-crop-wide", "resize")
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, PIL.Image.DecompressionBombError)
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


@dataclass
class ConvertConfig:
    """Options of `gan dataset convert` (and of `convert_dataset`)."""

    source: str = field(
        metadata={"help": "folder (searched recursively) or zip of images in any size and mode"}
    )
    dest: str = field(metadata={"help": "output: a .zip file, or otherwise a folder"})
    resolution: int = field(default=256, metadata={"help": "output size in pixels (a power of two)"})
    transform: str = field(
        default="center-crop",
        metadata={
            "help": "center-crop: crop the largest centred square, then scale; center-crop-wide: crop the "
            "centre to --aspect, scale to full width and pad above and below with black; resize: "
            "scale to a square, ignoring the aspect ratio"
        },
    )
    aspect: float = field(
        default=4 / 3, metadata={"help": "width / height of the picture for center-crop-wide"}
    )
    force: bool = field(default=False, metadata={"help": "replace an existing output"})
    max_file_mb: float = field(
        default=256, metadata={"help": "skip (and name) source files larger than this many MiB, unread"}
    )
    labels_from_folders: bool = field(
        default=False,
        metadata={
            "help": "label each image with the class of its first-level sub-folder (sorted names = 0, 1, ...)"
        },
    )

    def validate(self) -> None:
        if self.resolution < 4 or self.resolution & (self.resolution - 1):
            raise UserError(
                f"--resolution must be a power of two (4, 8, ..., 256, 512, 1024), not {self.resolution}"
            )
        if self.transform not in TRANSFORMS:
            raise UserError(f"--transform must be one of {', '.join(TRANSFORMS)}, not {self.transform!r}")
        if not self.aspect > 0:
            raise UserError(f"--aspect must be positive, not {self.aspect}")
        if not self.max_file_mb > 0:
            raise UserError(f"max_file_mb must be positive, not {self.max_file_mb}")
        if not os.path.exists(self.source):
            raise UserError(f"--source {self.source} does not exist")
        src, dst = os.path.realpath(self.source), os.path.realpath(self.dest)
        if _inside(dst, src) or _inside(src, dst):
            raise UserError("--dest must not be --source, lie inside it, or contain it")


@dataclass
class ConvertReport:
    dest: str
    written: int
    skipped: list[tuple[str, str]]  # (file, reason)
    ignored: list[str]  # files that are not images by their extension
    num_classes: int | None  # None: the data set has no labels

    def summary(self) -> str:
        lines = [f"{self.written} image(s) written to {self.dest}"]
        if self.num_classes is not None:
            lines[0] += f" with labels ({self.num_classes} classes)" if self.num_classes else " with labels"
        if self.skipped:
            lines.append(f"{len(self.skipped)} file(s) skipped:")
            lines += [f"  {name}: {reason}" for name, reason in self.skipped]
        if self.ignored:
            lines.append(f"{len(self.ignored)} non-image file(s) ignored: {', '.join(self.ignored)}")
        return "\n".join(lines)


def convert_dataset(
    config: ConvertConfig,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ConvertReport:
    """progress(done, total, "converting") per source file (the CLI's bar, a GUI's progress);
    should_stop() -> True cancels (raises Cancelled; nothing is written)."""
    config.validate()
    files = FileSource(config.source)
    try:
        return _convert(config, files, progress, should_stop)
    finally:
        files.close()


def _convert(
    config: ConvertConfig, files: FileSource, progress: Progress | None, should_stop
) -> ConvertReport:
    image_exts = _openable_extensions()
    names = [n for n in files.names() if os.path.splitext(n)[1].lower() in image_exts]
    chosen = set(names)
    ignored = [n for n in files.names() if n not in chosen and n != LABELS_FILE]
    if not names:
        raise UserError(f"--source {config.source} contains no image files")
    labels, class_names = _source_labels(files, names, config.labels_from_folders)

    skipped: list[tuple[str, str]] = list(files.skipped)  # unreadable folders, FIFOs, devices
    limit = int(config.max_file_mb * (1 << 20))
    with DatasetWriter(config.dest, force=config.force) as writer:
        if class_names is not None:
            writer.meta["class_names"] = class_names
        for done, name in enumerate(names):
            if should_stop is not None and should_stop():
                raise Cancelled(f"data set conversion stopped after {done} of {len(names)} files")
            if progress is not None:
                progress(done + 1, len(names), "converting")
            if labels is not None and name not in labels:
                skipped.append((name, f"no label in the source {LABELS_FILE}"))
                continue
            try:
                image = load_rgb(io.BytesIO(files.read(name, limit)))
            except FileTooLarge as exc:
                skipped.append((name, f"too large, not read ({exc})"))
                continue
            except _IMAGE_ERRORS as exc:
                skipped.append((name, f"unreadable ({image_error_text(exc)})"))
                continue
            out = apply_transform(image, config.resolution, config.transform, config.aspect)
            writer.add(out, None if labels is None else labels[name])
        if writer.count == 0:
            raise UserError(
                f"none of the {len(names)} image file(s) in {config.source} could be used; nothing written"
            )
    num_classes = None if labels is None else (len(class_names) if class_names is not None else 0)
    return ConvertReport(config.dest, writer.count, skipped, ignored, num_classes)


# --- images ---------------------------------------------------------------------------------


def load_rgb(f) -> PIL.Image.Image:
    """Decode an image of any Pillow mode into 8-bit RGB (transparent areas become white)."""
    with PIL.Image.open(f) as opened:
        img = PIL.ImageOps.exif_transpose(opened)  # phone photos store their rotation in EXIF
        img.load()
    if img.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own conversion clips 16-bit values at 255; scale the range down instead.
        values = np.asarray(img).astype(np.float64) / 257.0
        img = PIL.Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in _ALPHA_MODES:
        background = PIL.Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = PIL.Image.alpha_composite(background, img.convert("RGBA"))
    return img.convert("RGB")


def apply_transform(
    img: PIL.Image.Image, resolution: int, transform: str, aspect: float = 4 / 3
) -> PIL.Image.Image:
    """Make a resolution x resolution RGB image (see ConvertConfig.transform)."""
    w, h = img.size
    size = (resolution, resolution)
    if transform == "resize":
        return img.resize(size, PIL.Image.LANCZOS)
    if transform == "center-crop":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        return img.resize(size, PIL.Image.LANCZOS, box=(left, top, left + s, top + s))
    if transform == "center-crop-wide":
        cw, ch = (round(h * aspect), h) if w / h > aspect else (w, round(w / aspect))
        cw, ch = max(cw, 1), max(ch, 1)
        left, top = (w - cw) // 2, (h - ch) // 2
        out_h = max(1, min(resolution, round(resolution / aspect)))
        picture = img.resize((resolution, out_h), PIL.Image.LANCZOS, box=(left, top, left + cw, top + ch))
        canvas = PIL.Image.new("RGB", size, (0, 0, 0))
        canvas.paste(picture, (0, (resolution - out_h) // 2))
        return canvas
    raise ValueError(f"unknown transform {transform!r}")


def _openable_extensions() -> set[str]:
    PIL.Image.init()
    return {ext for ext, fmt in PIL.Image.registered_extensions().items() if fmt in PIL.Image.OPEN}


# --- labels ---------------------------------------------------------------------------------


def _source_labels(
    files: FileSource, names: list[str], from_folders: bool
) -> tuple[dict | None, list | None]:
    """Labels by source file name and the class names, from sub-folders or a source dataset.json."""
    if from_folders:
        loose = [n for n in names if "/" not in n]
        if loose:
            shown = ", ".join(loose[:3]) + (", ..." if len(loose) > 3 else "")
            raise UserError(
                f"--labels-from-folders: {len(loose)} image(s) lie directly in {files.path} ({shown}); "
                "move every image into a sub-folder named after its class"
            )
        class_names = sorted({n.split("/", 1)[0] for n in names})
        index = {c: i for i, c in enumerate(class_names)}
        return {n: index[n.split("/", 1)[0]] for n in names}, class_names
    meta = read_dataset_json(files)
    entries = meta.get("labels") if isinstance(meta, dict) else None
    if entries is None:
        return None, None
    try:
        labels = {str(name).replace("\\", "/"): label for name, label in entries}
    except (TypeError, ValueError):
        raise UserError(
            f'"labels" in {files.describe(LABELS_FILE)} must be a list of [file name, label] pairs'
        ) from None
    class_names = meta.get("class_names")
    return labels, class_names if isinstance(class_names, list) else None


# --- output ---------------------------------------------------------------------------------


class DatasetWriter:
    """Writes a data set (zip or folder) atomically; use as a context manager.

    Everything goes to a hidden temporary file or folder next to `dest`; leaving the `with`
    block normally writes `dataset.json` and renames it into place, leaving it by an exception
    (including KeyboardInterrupt) deletes it. An existing `dest` is refused unless `force`, and
    even then a folder is only replaced when it holds a `dataset.json` (i.e. is a data set).
    """

    def __init__(self, dest: str | os.PathLike, force: bool = False):
        self.dest = os.path.abspath(os.fspath(dest))
        self.is_zip = self.dest.lower().endswith(".zip")
        self.count = 0
        self.meta: dict[str, Any] = {}  # extra keys for dataset.json
        self._labels: list = []
        self._tmp: str | None = None
        self._zip: zipfile.ZipFile | None = None
        self._file: IO[bytes] | None = None
        if os.path.lexists(self.dest):
            if not force:
                raise UserError(
                    f"{dest} already exists; pass --force to replace it or choose another destination"
                )
            if os.path.isdir(self.dest) and not os.path.islink(self.dest):
                if not os.path.isfile(os.path.join(self.dest, LABELS_FILE)):
                    raise UserError(
                        f"refusing to replace the folder {dest}: it has no {LABELS_FILE}, so it is not a "
                        "data set written by this tool; remove it yourself or choose another destination"
                    )

    def __enter__(self) -> DatasetWriter:
        try:
            os.makedirs(os.path.dirname(self.dest), exist_ok=True)
            if self.is_zip:
                fd, tmp = create_temp_file(self.dest)
                self._tmp = str(tmp)
                self._file = os.fdopen(fd, "wb")
                # PNG data is already compressed: store it as it is.
                self._zip = zipfile.ZipFile(self._file, "w", compression=zipfile.ZIP_STORED)
            else:
                self._tmp = str(create_temp_dir(self.dest))
        except OSError as exc:
            self._discard()
            raise self._write_error(exc) from None
        return self

    def _write_error(self, exc: OSError) -> UserError:
        """One line for a failed write (the caller discards what was written)."""
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            what, fix = " (disk full)", " Free some space and run it again."
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            what, fix = "", " Choose a destination in a folder you can write to."
        else:
            what, fix = "", ""
        reason = exc.strerror or str(exc)
        return UserError(f"cannot write the data set {self.dest}: {reason}{what}; nothing was written.{fix}")

    def add(self, image: PIL.Image.Image | np.ndarray, label: Any = None) -> str:
        """Append one image (PIL or HxWxC / HxW uint8) with its label; returns its name in the data set."""
        if isinstance(image, np.ndarray):
            image = PIL.Image.fromarray(image)
        name = f"{self.count // 1000:05d}/img{self.count:08d}.png"
        buf = io.BytesIO()
        image.save(buf, format="png")
        try:
            self._write(name, buf.getvalue())
        except OSError as exc:
            raise self._write_error(exc) from None
        self._labels.append([name, label])
        self.count += 1
        return name

    def _write(self, name: str, data: bytes) -> None:
        if self._zip is not None:
            self._zip.writestr(name, data)
            return
        path = os.path.join(self._tmp, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                have = [label is not None for _, label in self._labels]
                if any(have) and not all(have):
                    raise ValueError("either every image of a data set has a label or none has")
                meta = {"labels": self._labels if all(have) and have else None, **self.meta}
                try:
                    self._write(LABELS_FILE, json.dumps(meta).encode())
                    self._close_zip(sync=True)
                    self._commit()
                except OSError as exc:
                    raise self._write_error(exc) from None
        finally:
            self._discard()

    def _commit(self) -> None:
        """Put the finished output at dest in one atomic step: a rename when nothing is there or
        a file replaces a file, else an atomic swap of the two (the old output, then at the
        temporary name, is deleted afterwards). So dest never lacks a complete data set."""
        exists = os.path.lexists(self.dest)
        if not exists or (self.is_zip and not os.path.isdir(self.dest)):
            os.replace(self._tmp, self.dest)
            self._tmp = None
            return
        if not _exchange(self._tmp, self.dest):
            self._commit_in_two_steps()
            return
        # self._tmp now holds the previous output; _discard deletes it.

    def _commit_in_two_steps(self) -> None:
        """For systems without an atomic swap: move the old output aside, then the new one in
        (a crash between the two leaves the old output at <tmp>.old)."""
        old = f"{self._tmp}.old"
        os.rename(self.dest, old)
        try:
            os.rename(self._tmp, self.dest)
        except BaseException:
            os.rename(old, self.dest)
            raise
        self._tmp = None
        _remove(old)

    def _close_zip(self, sync: bool = False) -> None:
        if self._zip is not None:
            zip_file, self._zip = self._zip, None
            zip_file.close()  # writes the zip's table of contents
        if self._file is not None:
            file, self._file = self._file, None
            try:
                if sync:
                    file.flush()
                    os.fsync(file.fileno())
            finally:
                file.close()

    def _discard(self) -> None:
        try:
            self._close_zip()
        except OSError:
            pass  # the temporary file is deleted below anyway
        if self._tmp is not None:
            _remove(self._tmp)
            self._tmp = None


_RENAME_EXCHANGE = 2  # linux/fs.h
_RENAME_SWAP = 2  # macOS stdio.h, renamex_np
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Swap two existing paths atomically (Linux renameat2 RENAME_EXCHANGE, macOS renamex_np
    RENAME_SWAP). False when this system or file system cannot; OSError for other failures."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    path_a, path_b = os.fsencode(a), os.fsencode(b)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        fn = libc.renameat2
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        rc = fn(_AT_FDCWD, path_a, _AT_FDCWD, path_b, _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        fn = libc.renamex_np
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        rc = fn(path_a, path_b, _RENAME_SWAP)
    else:
        return False
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False
