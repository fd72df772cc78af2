"""Training data sets in NVIDIA's official layout, and an endless sampler for the training loop.

A data set is a folder (searched recursively) or a zip archive of square, power-of-two sized
PNG / JPEG images, optionally with a `dataset.json` at its root holding
`{"labels": [["00000/img00000000.png", 3], ...]}` (an integer class, or a list of numbers, per file).
Items are `(image, label)`: a uint8 CHW numpy image and a float32 label vector (one-hot for
integer classes, empty when labels are not used).

Only regular files are read (a FIFO or device named `x.png` would block or never end): folder
entries are checked with os.stat when listed and again on the open file; reads are bounded by
MAX_FILE_BYTES per file or zip member, so a huge file is named, never read whole.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from collections.abc import Iterator, Sized
from typing import IO

import numpy as np
import PIL.Image
import torch

from gan.errors import UserError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})
LABELS_FILE = "dataset.json"
_CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}  # image modes used as they are
_FIX = "convert the images with `gan dataset convert --source SRC --dest OUT.zip --resolution N`"
# What Pillow raises for files it cannot identify or decode.
_IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, PIL.Image.DecompressionBombError)
MAX_FILE_BYTES = 256 << 20  # per image or dataset.json; far above any training image
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


class FileTooLarge(UserError):
    """A file or zip member is larger than the read limit (it was not read)."""


def image_error_text(exc: BaseException) -> str:
    """What was wrong with an image, without the object reprs Pillow puts in its messages
    (`cannot identify image file <_io.BytesIO object at 0x...>`)."""
    if isinstance(exc, PIL.UnidentifiedImageError):
        return "not an image format Pillow can read"
    text = _OBJECT_REPR.sub("the file", str(exc)).strip()
    return text or type(exc).__name__


def _not_regular(mode: int) -> str | None:
    """None for a regular file, else what the entry is (for messages)."""
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _size(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):.1f} MiB" if nbytes >= 1 << 20 else f"{nbytes} bytes"


class FileSource:
    """The regular files of a folder (recursively) or of a zip archive, by relative '/'-separated
    name. Entries that cannot be used (sub-folders that cannot be read, FIFOs, devices, files
    whose status cannot be read) are left out and listed in `skipped` as (name, reason).

    The zip is opened lazily and once per process, so the object can be pickled into (and
    forked into) DataLoader worker processes.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.skipped: list[tuple[str, str]] = []
        self._sizes: dict[str, int] = {}
        if os.path.isdir(self.path):
            self.is_zip = False
            self._list_folder()
        elif os.path.isfile(self.path):
            self.is_zip = True
            try:
                with zipfile.ZipFile(self.path) as z:
                    self._sizes = {i.filename: i.file_size for i in z.infolist() if not i.is_dir()}
            except (zipfile.BadZipFile, OSError) as exc:
                raise UserError(
                    f"{self.path} is neither a folder nor a readable zip archive ({exc})"
                ) from None
        elif os.path.exists(self.path):
            kind = _not_regular(os.stat(self.path).st_mode)
            raise UserError(f"data set {self.path} is {kind}, not a folder or a zip archive")
        else:
            raise UserError(f"data set {self.path} does not exist")
        # macOS archive junk (resource forks) is never part of a data set.
        self._names = sorted(
            n for n in self._sizes if not (n.startswith("__MACOSX/") or n.rsplit("/", 1)[-1].startswith("._"))
        )
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None

    def _rel(self, path: str) -> str:
        return os.path.relpath(path, self.path).replace(os.sep, "/")

    def _list_folder(self) -> None:
        def unreadable(exc: OSError) -> None:
            self.skipped.append((self._rel(exc.filename) + "/", f"cannot read the folder ({exc.strerror})"))

        for root, _dirs, files in os.walk(self.path, onerror=unreadable):
            for f in files:
                full = os.path.join(root, f)
                name = self._rel(full)
                try:
                    st = os.stat(full)  # follows symlinks: a link to /dev/zero is a device
                except OSError as exc:
                    self.skipped.append((name, f"cannot read ({exc.strerror})"))
                    continue
                kind = _not_regular(st.st_mode)
                if kind is not None:
                    self.skipped.append((name, f"{kind}, not a regular file"))
                    continue
                self._sizes[name] = st.st_size
        self.skipped.sort()

    def names(self) -> list[str]:
        return list(self._names)

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def describe(self, name: str) -> str:
        """Where a file is, for messages."""
        return f"{name} (in {self.path})" if self.is_zip else os.path.join(self.path, name)

    def size(self, name: str) -> int:
        """Size in bytes when listed (a zip member's declared size)."""
        return self._sizes[name]

    def open(self, name: str) -> IO[bytes]:
        if not self.is_zip:
            return _open_regular(os.path.join(self.path, name))
        if self._zip is None or self._zip_pid != os.getpid():
            # A handle inherited through fork shares its file position with the parent: reopen.
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip.open(name)

    def read(self, name: str, limit: int | None = None) -> bytes:
        """The bytes of a file, at most `limit` (default MAX_FILE_BYTES) of them: FileTooLarge
        (nothing kept) when it is listed or turns out larger. OSError when it cannot be read."""
        limit = MAX_FILE_BYTES if limit is None else limit
        where = self.describe(name)
        if self._sizes.get(name, 0) > limit:
            raise FileTooLarge(f"{where} is {_size(self._sizes[name])}, more than the {_size(limit)} limit")
        with self.open(name) as f:
            data = f.read(limit + 1)  # a zip member's declared size may lie
        if len(data) > limit:
            raise FileTooLarge(f"{where} is larger than the {_size(limit)} limit")
        return data

    def close(self) -> None:
        if self._zip is not None and self._zip_pid == os.getpid():
            self._zip.close()
        self._zip = None

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _zip=None, _zip_pid=None)


def _open_regular(path: str) -> IO[bytes]:
    """open(path, "rb") that refuses anything but a regular file without blocking: O_NONBLOCK
    makes opening a FIFO return at once, and the open file is checked (the entry may have been
    replaced since it was listed)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        kind = _not_regular(os.fstat(fd).st_mode)
        if kind is not None:
            raise OSError(f"{path} is {kind}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_dataset_json(files: FileSource):
    """The parsed dataset.json of a data set, or None when it has none; UserError if it is not JSON."""
    if LABELS_FILE not in files:
        return None
    try:
        return json.loads(files.read(LABELS_FILE))
    except (ValueError, OSError, RecursionError) as exc:
        raise UserError(f"{files.describe(LABELS_FILE)} is not valid JSON: {exc}") from None


def seeded_subset(num_items: int, num: int | None, seed: int = 0) -> np.ndarray:
    """Indices of all items, or of a seeded random subset of `num` of them, sorted: the official
    max_size rule (seeded shuffle, first `num`), shared by data sets and metrics."""
    indices = np.arange(num_items, dtype=np.int64)
    if num is None or num >= num_items:
        return indices
    np.random.RandomState(seed % (1 << 31)).shuffle(indices)
    return np.sort(indices[:num])


class ImageDataset(torch.utils.data.Dataset):
    """A training data set: see the module docstring for the layout.

    resolution: when given, the images must have this size. use_labels: read `dataset.json`.
    xflip: append a mirrored copy of every image (doubles the length). max_size: use a fixed,
    seed-dependent random subset of this many images (before xflip).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        resolution: int | None = None,
        use_labels: bool = False,
        xflip: bool = False,
        max_size: int | None = None,
        seed: int = 0,
    ):
        self.path = os.fspath(path)
        self._files = FileSource(self.path)
        self.name = os.path.splitext(os.path.basename(os.path.normpath(self.path)))[0]
        self._names = [n for n in self._files.names() if os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
        unusable = [
            (n, why)
            for n, why in self._files.skipped
            if n.endswith("/") or os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS
        ]
        if unusable:
            shown = "; ".join(f"{n}: {why}" for n, why in unusable[:3])
            more = f" and {len(unusable) - 3} more" if len(unusable) > 3 else ""
            raise UserError(
                f"data set {self.path} has entries that cannot be read ({shown}{more}); remove or fix them"
            )
        if not self._names:
            kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise UserError(f"data set {self.path} contains no images ({kinds})")
        self._mode, self._resolution = self._check_headers(resolution)
        self._labels = self._load_labels() if use_labels else None

        if max_size is not None and max_size < 1:
            raise UserError(f"max_size must be at least 1, not {max_size}")
        raw_idx = seeded_subset(len(self._names), max_size, seed)
        flip = np.zeros(len(raw_idx), dtype=bool)
        if xflip:
            raw_idx = np.tile(raw_idx, 2)
            flip = np.concatenate([flip, ~flip])
        self._raw_idx = raw_idx
        self._xflip = flip

    # --- validation ---------------------------------------------------------------------

    def _check_headers(self, resolution: int | None) -> tuple[str, int]:
        """Read every image header (cheap: no pixels are decoded) so bad files fail up front."""
        first_name, first_size, first_mode = None, None, None
        for name in self._names:
            where = self._files.describe(name)
            try:
                with self._files.open(name) as f, PIL.Image.open(f) as img:
                    size, mode = img.size, img.mode
            except _IMAGE_ERRORS as exc:
                raise UserError(
                    f"cannot read image {where}: {image_error_text(exc)}; remove or replace the file"
                ) from None
            if size[0] != size[1]:
                raise UserError(
                    f"image {where} is {size[0]}x{size[1]} pixels; training images must be square "
                    f"with a power-of-two size: {_FIX}"
                )
            if mode not in _CHANNELS:
                raise UserError(
                    f"image {where} has Pillow mode {mode!r}; training images must be 8-bit greyscale, "
                    f"RGB or RGBA: {_FIX}"
                )
            if first_name is None:
                first_name, first_size, first_mode = name, size, mode
            elif size != first_size:
                raise UserError(
                    f"image {where} is {size[0]}x{size[1]} pixels but {first_name} is "
                    f"{first_size[0]}x{first_size[1]}; all images must have the same size: {_FIX}"
                )
            elif _CHANNELS[mode] != _CHANNELS[first_mode]:
                raise UserError(
                    f"image {where} is {mode} but {first_name} is {first_mode}; all images must have "
                    f"the same number of channels: {_FIX}"
                )
        res = first_size[0]
        if res < 4 or res & (res - 1):
            raise UserError(
                f"the images in {self.path} are {res}x{res} pixels; the size must be a power of two "
                f"(4, 8, ..., 256, 512, 1024): {_FIX}"
            )
        if resolution is not None and resolution != res:
            raise UserError(
                f"the images in {self.path} are {res}x{res} pixels, not the requested "
                f"{resolution}x{resolution}: {_FIX}"
            )
        return first_mode, res

    def _load_labels(self) -> np.ndarray | None:
        meta = read_dataset_json(self._files)
        where = self._files.describe(LABELS_FILE)
        entries = meta.get("labels") if isinstance(meta, dict) else None
        if entries is None:
            return None
        if not isinstance(entries, list):
            raise UserError(f'"labels" in {where} must be a list of [file name, label] pairs')
        try:
            table = {str(name).replace("\\", "/"): label for name, label in entries}
        except (TypeError, ValueError):
            raise UserError(f'"labels" in {where} must be a list of [file name, label] pairs') from None
        missing = [n for n in self._names if n not in table]
        if missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            raise UserError(
                f"{len(missing)} image(s) have no label in {where}: {shown}; add their labels or train "
                "without labels"
            )
        values = [table[n] for n in self._names]
        if _is_int(values[0]):
            bad = next((n for n, v in zip(self._names, values) if not _is_int(v) or v < 0), None)
            if bad is not None:
                raise UserError(
                    f"the label of {bad} in {where} is {table[bad]!r}; the first label is a class number, "
                    "so every label must be an integer class (0, 1, ...)"
                )
            classes = np.array(values, dtype=np.int64)
            onehot = np.zeros((len(values), int(classes.max()) + 1), dtype=np.float32)
            onehot[np.arange(len(values)), classes] = 1
            return onehot
        size = len(values[0]) if isinstance(values[0], list) else -1
        for name, v in zip(self._names, values):
            if not (isinstance(v, list) and len(v) == size and all(_is_number(x) for x in v)):
                raise UserError(
                    f"the label of {name} in {where} is {v!r}; labels must all be integer classes, or all "
                    f"lists of {max(size, 1)} numbers"
                )
        return np.array(values, dtype=np.float32).reshape(len(values), size)

    # --- items --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._raw_idx)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        image = self._load_image(int(self._raw_idx[idx]))
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return np.ascontiguousarray(image), self.get_label(idx)

    def _load_image(self, raw_i: int) -> np.ndarray:
        name = self._names[raw_i]
        where = self._files.describe(name)
        try:
            data = self._files.read(name)
            with PIL.Image.open(io.BytesIO(data)) as img:
                mode = img.mode
                array = np.array(img)
        except _IMAGE_ERRORS as exc:
            raise UserError(
                f"cannot decode image {where}: {image_error_text(exc)}; remove or replace the file"
            ) from None
        if array.ndim == 2:
            array = array[:, :, np.newaxis]
        expected = (self._resolution, self._resolution, self.num_channels)
        if array.shape != expected or array.dtype != np.uint8 or mode not in _CHANNELS:
            raise UserError(f"image {where} changed since the data set was opened ({array.shape}, {mode})")
        return array.transpose(2, 0, 1)

    def get_label(self, idx: int) -> np.ndarray:
        if self._labels is None:
            return np.zeros(0, dtype=np.float32)
        return self._labels[self._raw_idx[idx]].copy()

    def image_name(self, idx: int) -> str:
        """Relative file name of item idx (mirrored items share the name of their original)."""
        return self._names[self._raw_idx[idx]]

    def close(self) -> None:
        self._files.close()

    # --- shape --------------------------------------------------------------------------

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def num_channels(self) -> int:
        return _CHANNELS[self._mode]

    @property
    def image_shape(self) -> list[int]:
        return [self.num_channels, self._resolution, self._resolution]

    @property
    def label_dim(self) -> int:
        return 0 if self._labels is None else int(self._labels.shape[1])

    @property
    def has_labels(self) -> bool:
        return self.label_dim > 0


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class InfiniteSampler(torch.utils.data.Sampler):
    """Endless stream of item indices: a fresh seeded permutation per pass over the data.

    With several processes (distributed training) each rank takes every num_replicas-th index of
    the same stream, so the ranks see disjoint items of each pass.
    """

    def __init__(
        self, dataset: Sized, rank: int = 0, num_replicas: int = 1, shuffle: bool = True, seed: int = 0
    ):
        if len(dataset) < 1:
            raise ValueError("InfiniteSampler needs a non-empty data set")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.size = len(dataset)
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng(self.seed)
        position = 0
        while True:
            order = rng.permutation(self.size) if self.shuffle else np.arange(self.size)
            for i in order:
                if position % self.num_replicas == self.rank:
                    yield int(i)
                position += 1
