"""Training data sets: the reader (folder / zip, labels, xflip, subsets, errors), the sampler, and
the `gan dataset convert` tool (modes, transforms, labels, skipped files, atomic output)."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

from gan.cli import main as gan_main
from gan.data import dataset_tool
from gan.data.dataset import ImageDataset, InfiniteSampler
from gan.data.dataset_tool import ConvertConfig, DatasetWriter, apply_transform, convert_dataset
from gan.errors import UserError


def _rgb(size, seed=0, w=None) -> PIL.Image.Image:
    rng = np.random.default_rng(seed)
    return PIL.Image.fromarray(rng.integers(0, 256, (size, w or size, 3), dtype=np.uint8))


def _make_folder(root, n=4, size=16, labels=None):
    """n RGB PNGs (one in a sub-folder) plus a text file; labels: list written to dataset.json."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"sub/img{i}.png" if i == n - 1 else f"img{i}.png"
        (root / name).parent.mkdir(exist_ok=True)
        _rgb(size, seed=i).save(root / name)
        names.append(name)
    (root / "notes.txt").write_text("not an image")
    if labels is not None:
        (root / "dataset.json").write_text(
            json.dumps({"labels": [[n, lab] for n, lab in zip(names, labels)]})
        )
    return names


def _zip_folder(folder, zip_path):
    with zipfile.ZipFile(zip_path, "w") as z:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(folder).as_posix())
    return zip_path


# --- reader -------------------------------------------------------------------------------


def test_folder_dataset_items_and_properties(tmp_path):
    names = _make_folder(tmp_path / "data", n=4, size=16)
    _rgb(16, seed=9).save(tmp_path / "data" / "photo.jpg")
    names.append("photo.jpg")
    ds = ImageDataset(tmp_path / "data")
    assert len(ds) == 5 and ds.resolution == 16 and ds.num_channels == 3 and ds.name == "data"
    assert not ds.has_labels and ds.label_dim == 0 and ds.image_shape == [3, 16, 16]
    image, label = ds[0]
    assert image.dtype == np.uint8 and image.shape == (3, 16, 16)
    assert label.dtype == np.float32 and label.shape == (0,)
    # Sorted relative names, '/' separated; pixels as stored.
    assert [ds.image_name(i) for i in range(5)] == sorted(names)
    expected = np.asarray(PIL.Image.open(tmp_path / "data" / ds.image_name(2))).transpose(2, 0, 1)
    assert np.array_equal(ds[2][0], expected)


def test_zip_matches_folder_and_pickles_for_workers(tmp_path):
    _make_folder(tmp_path / "data", n=5, size=8, labels=[0, 2, 1, 2, 0])
    zpath = _zip_folder(tmp_path / "data", tmp_path / "data.zip")
    folder = ImageDataset(tmp_path / "data", use_labels=True)
    zipped = ImageDataset(zpath, use_labels=True)
    assert zipped.name == "data" and len(zipped) == len(folder) == 5
    for i in range(5):
        assert np.array_equal(zipped[i][0], folder[i][0])
        assert np.array_equal(zipped[i][1], folder[i][1])
    clone = pickle.loads(pickle.dumps(zipped))  # after the zip was opened
    assert np.array_equal(clone[3][0], zipped[3][0])
    loader = torch.utils.data.DataLoader(zipped, batch_size=5, num_workers=1)
    images, labels = next(iter(loader))
    assert images.shape == (5, 3, 8, 8) and images.dtype == torch.uint8 and labels.shape == (5, 3)
    assert np.array_equal(images.numpy(), np.stack([folder[i][0] for i in range(5)]))


def test_int_labels_become_one_hot_and_lists_stay_vectors(tmp_path):
    names = _make_folder(tmp_path / "a", n=3, size=8, labels=[2, 0, 1])
    ds = ImageDataset(tmp_path / "a", use_labels=True)
    assert ds.has_labels and ds.label_dim == 3
    by_name = {ds.image_name(i): ds.get_label(i) for i in range(3)}
    assert np.array_equal(by_name[names[0]], [0, 0, 1]) and np.array_equal(by_name[names[1]], [1, 0, 0])
    assert not ImageDataset(tmp_path / "a").has_labels  # labels only when asked for

    _make_folder(tmp_path / "b", n=3, size=8, labels=[[0.5, -1.0], [1, 2], [0.25, 0.0]])
    ds = ImageDataset(tmp_path / "b", use_labels=True)
    assert ds.label_dim == 2
    assert np.allclose(sorted(tuple(ds[i][1]) for i in range(3)), sorted([(0.5, -1), (1, 2), (0.25, 0)]))

    _make_folder(tmp_path / "c", n=2, size=8)
    assert not ImageDataset(tmp_path / "c", use_labels=True).has_labels  # no dataset.json: no labels


def test_xflip_doubles_with_mirrored_second_half(tmp_path):
    _make_folder(tmp_path / "d", n=3, size=8, labels=[0, 1, 1])
    ds = ImageDataset(tmp_path / "d", xflip=True, use_labels=True)
    assert len(ds) == 6
    for i in range(3):
        assert np.array_equal(ds[i + 3][0], ds[i][0][:, :, ::-1])
        assert np.array_equal(ds[i + 3][1], ds[i][1])
        assert not np.array_equal(ds[i + 3][0], ds[i][0])


def test_max_size_is_a_deterministic_subset(tmp_path):
    _make_folder(tmp_path / "e", n=6, size=8)
    a = ImageDataset(tmp_path / "e", max_size=3, seed=1)
    b = ImageDataset(tmp_path / "e", max_size=3, seed=1)
    names_a = [a.image_name(i) for i in range(len(a))]
    assert len(a) == 3 and names_a == [b.image_name(i) for i in range(3)] and names_a == sorted(names_a)
    others = {
        tuple(ImageDataset(tmp_path / "e", max_size=3, seed=s).image_name(i) for i in range(3))
        for s in range(8)
    }
    assert len(others) > 1
    assert len(ImageDataset(tmp_path / "e", max_size=3, xflip=True)) == 6
    assert len(ImageDataset(tmp_path / "e", max_size=100)) == 6


def test_greyscale_dataset(tmp_path):
    (tmp_path / "g").mkdir()
    for i in range(2):
        PIL.Image.fromarray(np.full((8, 8), 40 * i, np.uint8), "L").save(tmp_path / "g" / f"{i}.png")
    ds = ImageDataset(tmp_path / "g")
    assert ds.num_channels == 1 and ds[1][0].shape == (1, 8, 8) and ds[1][0].max() == 40


def _error(path, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        ImageDataset(path, **kwargs)
    return str(info.value)


def test_reader_errors_name_the_problem_and_the_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "contains no images" in _error(tmp_path / "empty")
    assert "does not exist" in _error(tmp_path / "missing")
    (tmp_path / "bad.zip").write_bytes(b"no zip")
    assert "zip" in _error(tmp_path / "bad.zip")
    zpath = tmp_path / "empty.zip"
    zipfile.ZipFile(zpath, "w").close()
    assert "contains no images" in _error(zpath)

    _make_folder(tmp_path / "wide", n=2, size=8)
    _rgb(8, w=12).save(tmp_path / "wide" / "img1.png")
    msg = _error(tmp_path / "wide")
    assert "img1.png" in msg and "12x8" in msg and "square" in msg and "gan dataset convert" in msg

    _make_folder(tmp_path / "mixed", n=3, size=16)
    _rgb(8).save(tmp_path / "mixed" / "img1.png")
    msg = _error(tmp_path / "mixed")
    assert "img1.png" in msg and "8x8" in msg and "16x16" in msg and "gan dataset convert" in msg

    _make_folder(tmp_path / "odd", n=2, size=12)
    msg = _error(tmp_path / "odd")
    assert "12x12" in msg and "power of two" in msg

    _make_folder(tmp_path / "res", n=2, size=8)
    assert "not the requested 16x16" in _error(tmp_path / "res", resolution=16)

    _make_folder(tmp_path / "palette", n=2, size=8)
    _rgb(8).convert("P").save(tmp_path / "palette" / "img0.png")
    assert "img0.png" in _error(tmp_path / "palette") and "'P'" in _error(tmp_path / "palette")


def test_corrupt_images_are_named(tmp_path):
    _make_folder(tmp_path / "junk", n=2, size=8)
    (tmp_path / "junk" / "random.png").write_bytes(os.urandom(300))
    msg = _error(tmp_path / "junk")
    assert "random.png" in msg and "cannot read" in msg

    # A truncated PNG still has a valid header: it fails when its pixels are decoded.
    _make_folder(tmp_path / "cut", n=2, size=16)
    data = (tmp_path / "cut" / "img0.png").read_bytes()
    (tmp_path / "cut" / "img0.png").write_bytes(data[: len(data) // 2])
    ds = ImageDataset(tmp_path / "cut")
    with pytest.raises(UserError, match="img0.png"):
        ds[0]


def test_labels_missing_for_a_file(tmp_path):
    _make_folder(tmp_path / "l", n=3, size=8, labels=[0, 1])  # zip() drops the third
    with pytest.raises(UserError, match=r"1 image\(s\) have no label.*sub/img2.png"):
        ImageDataset(tmp_path / "l", use_labels=True)
    (tmp_path / "l" / "dataset.json").write_text(
        '{"labels": [["img0.png", 0], ["img1.png", "cat"], ["sub/img2.png", 1]]}'
    )
    with pytest.raises(UserError, match="img1.png"):
        ImageDataset(tmp_path / "l", use_labels=True)
    (tmp_path / "l" / "dataset.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        ImageDataset(tmp_path / "l", use_labels=True)


# --- sampler ------------------------------------------------------------------------------


def _take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_infinite_sampler_passes_are_permutations_and_ranks_are_disjoint():
    data = list(range(10))
    stream = _take(InfiniteSampler(data, seed=3), 30)
    for p in range(3):
        assert sorted(stream[10 * p : 10 * p + 10]) == data
    assert stream[:10] != stream[10:20]  # reshuffled each pass
    assert stream == _take(InfiniteSampler(data, seed=3), 30)
    assert stream != _take(InfiniteSampler(data, seed=4), 30)
    assert _take(InfiniteSampler(data, shuffle=False), 12) == data + [0, 1]
    r0 = _take(InfiniteSampler(data, rank=0, num_replicas=2, seed=3), 5)
    r1 = _take(InfiniteSampler(data, rank=1, num_replicas=2, seed=3), 5)
    assert sorted(r0 + r1) == data and r0 == stream[0:10:2]
    with pytest.raises(ValueError):
        InfiniteSampler(data, rank=2, num_replicas=2)


# --- dataset tool ---------------------------------------------------------------------------


def _messy_source(root):
    """Images of every awkward kind in two class folders, plus junk."""
    (root / "cats").mkdir(parents=True)
    (root / "dogs").mkdir()
    rgba = np.zeros((12, 20, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :10, 3] = 255  # left half opaque red, right half transparent
    PIL.Image.fromarray(rgba, "RGBA").save(root / "cats" / "rgba.png")
    PIL.Image.fromarray(np.full((9, 9), 128, np.uint8), "L").save(root / "cats" / "grey.png")
    _rgb(10, seed=1).convert("P").save(root / "cats" / "palette.png")
    PIL.Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(root / "dogs" / "deep.png")  # 16-bit white
    _rgb(30, seed=2, w=40).save(root / "dogs" / "photo.jpg", quality=90)
    (root / "dogs" / "random.png").write_bytes(os.urandom(200))
    data = (root / "cats" / "grey.png").read_bytes()
    (root / "dogs" / "cut.png").write_bytes(data[: len(data) // 2])
    (root / "readme.txt").write_text("hello")


def test_convert_messy_folder_to_zip_with_folder_labels(tmp_path):
    _messy_source(tmp_path / "src")
    dest = tmp_path / "out" / "set.zip"
    report = convert_dataset(
        ConvertConfig(str(tmp_path / "src"), str(dest), resolution=8, labels_from_folders=True),
    )
    assert report.written == 5 and report.num_classes == 2
    assert sorted(n for n, _ in report.skipped) == ["dogs/cut.png", "dogs/random.png"]
    assert report.ignored == ["readme.txt"]
    summary = report.summary()
    assert "5 image(s) written" in summary and "dogs/random.png" in summary and "readme.txt" in summary

    ds = ImageDataset(dest, use_labels=True)
    assert len(ds) == 5 and ds.resolution == 8 and ds.num_channels == 3 and ds.label_dim == 2
    classes = [int(np.argmax(ds[i][1])) for i in range(5)]
    assert classes == [0, 0, 0, 1, 1]  # cats/grey, cats/palette, cats/rgba, dogs/deep, dogs/photo
    grey, rgba, deep = ds[0][0], ds[2][0], ds[3][0]
    assert abs(int(grey.mean()) - 128) <= 1
    assert deep.min() >= 254  # 16-bit white stays white (not clipped to grey or black)
    # center-crop keeps the middle 12x12 of the 20x12 RGBA: red left, white (was transparent) right.
    assert rgba[0, :, :3].min() > 200 and rgba[1:, :, :3].max() < 40  # left: red
    assert rgba[:, :, -3:].min() > 200  # right: white
    with zipfile.ZipFile(dest) as z:
        meta = json.loads(z.read("dataset.json"))
        assert meta["class_names"] == ["cats", "dogs"]
        assert z.namelist()[0] == "00000/img00000000.png"
    assert sorted(os.listdir(tmp_path / "out")) == ["set.zip"]  # no temporary files left


def test_convert_to_folder_carries_source_labels(tmp_path):
    _make_folder(tmp_path / "src", n=3, size=20, labels=[[1.5], [2.5], [3.5]])
    os.remove(tmp_path / "src" / "sub" / "img2.png")
    PIL.Image.new("RGB", (20, 20)).save(tmp_path / "src" / "unlabelled.png")
    report = convert_dataset(ConvertConfig(str(tmp_path / "src"), str(tmp_path / "dst"), resolution=4))
    assert report.written == 2 and report.skipped == [
        ("unlabelled.png", "no label in the source dataset.json")
    ]
    ds = ImageDataset(tmp_path / "dst", use_labels=True)
    assert len(ds) == 2 and ds.resolution == 4 and [float(ds[i][1][0]) for i in range(2)] == [1.5, 2.5]


def test_transforms():
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :10] = 255  # white left quarter
    pil = PIL.Image.fromarray(img)
    crop = np.asarray(apply_transform(pil, 8, "center-crop"))
    assert crop.shape == (8, 8, 3) and crop.max() < 30  # the middle square is all black
    stretched = np.asarray(apply_transform(pil, 8, "resize"))
    assert stretched[:, 0].min() > 220 and stretched[:, -1].max() < 30
    wide = np.asarray(apply_transform(PIL.Image.new("RGB", (40, 20), "white"), 8, "center-crop-wide", 2.0))
    assert wide.shape == (8, 8, 3)
    assert wide[:2].max() == 0 and wide[-2:].max() == 0 and wide[3:5].min() == 255  # black bars above/below


def test_existing_output_needs_force_and_foreign_folders_are_kept(tmp_path):
    _make_folder(tmp_path / "src", n=2, size=8)
    dest = tmp_path / "set.zip"
    dest.write_bytes(b"old")
    cfg = ConvertConfig(str(tmp_path / "src"), str(dest), resolution=8)
    with pytest.raises(UserError, match="already exists.*--force"):
        convert_dataset(cfg)
    assert dest.read_bytes() == b"old"
    cfg.force = True
    assert convert_dataset(cfg).written == 2
    assert len(ImageDataset(dest)) == 2

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("keep me")
    with pytest.raises(UserError, match="refusing"):
        convert_dataset(ConvertConfig(str(tmp_path / "src"), str(precious), resolution=8, force=True))
    assert (precious / "thesis.txt").read_text() == "keep me"
    # A folder data set written earlier is replaced.
    cfg_dir = ConvertConfig(str(tmp_path / "src"), str(tmp_path / "dirset"), resolution=8)
    convert_dataset(cfg_dir)
    cfg_dir.force, cfg_dir.resolution = True, 4
    convert_dataset(cfg_dir)
    assert ImageDataset(tmp_path / "dirset").resolution == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dirset", "precious", "set.zip", "src"]


@pytest.mark.parametrize("dest_name", ["set.zip", "setdir"])
def test_interrupt_leaves_nothing_behind(tmp_path, monkeypatch, dest_name):
    _make_folder(tmp_path / "src", n=4, size=8)
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    original = dataset_tool.apply_transform
    monkeypatch.setattr(dataset_tool, "apply_transform", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        convert_dataset(ConvertConfig(str(tmp_path / "src"), str(out / dest_name), resolution=8))
    assert os.listdir(out) == []


def test_writer_discards_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "w.zip") as writer:
            writer.add(np.zeros((8, 8, 3), np.uint8), 0)
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    with DatasetWriter(tmp_path / "w.zip") as writer:
        assert writer.add(np.zeros((8, 8, 3), np.uint8), 1) == "00000/img00000000.png"
    assert ImageDataset(tmp_path / "w.zip", use_labels=True).label_dim == 2


def test_convert_refuses_bad_options(tmp_path):
    _make_folder(tmp_path / "src", n=2, size=8)
    with pytest.raises(UserError, match="power of two"):
        convert_dataset(ConvertConfig(str(tmp_path / "src"), str(tmp_path / "o.zip"), resolution=100))
    with pytest.raises(UserError, match="must not"):
        convert_dataset(ConvertConfig(str(tmp_path / "src"), str(tmp_path / "src" / "o.zip"), resolution=8))
    (tmp_path / "flat").mkdir()
    _rgb(8).save(tmp_path / "flat" / "a.png")
    with pytest.raises(UserError, match="a.png.*sub-folder"):
        convert_dataset(
            ConvertConfig(str(tmp_path / "flat"), str(tmp_path / "f.zip"), 8, labels_from_folders=True)
        )
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match="none of the 1"):
        convert_dataset(ConvertConfig(str(tmp_path / "bad"), str(tmp_path / "b.zip"), 8))
    assert not (tmp_path / "b.zip").exists()


def test_cli_convert(tmp_path, capsys):
    _messy_source(tmp_path / "src")
    args = ["dataset", "convert", "--source", str(tmp_path / "src"), "--dest", str(tmp_path / "o.zip")]
    assert gan_main(args + ["--resolution", "16", "--transform", "resize"]) == 0
    out = capsys.readouterr().out
    assert "5 image(s) written" in out and "dogs/random.png" in out
    assert ImageDataset(tmp_path / "o.zip", resolution=16).num_channels == 3
    assert gan_main(args + ["--resolution", "16"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (
        gan_main(
            args + ["--resolution", "8", "--force", "--aspect", "2:1", "--transform", "center-crop-wide"]
        )
        == 0
    )
    assert ImageDataset(tmp_path / "o.zip").resolution == 8


# --- hostile sources: FIFOs, devices, huge files, unreadable folders, full disks ----------------------


@pytest.fixture
def no_hang():
    """Turn a hang (e.g. open() of a FIFO) into a test failure instead of a stuck suite."""
    import signal

    def hung(signum, frame):
        raise TimeoutError("hung: the code blocked on a file")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_and_device_named_like_images_are_skipped_without_hanging(tmp_path, no_hang):
    _make_folder(tmp_path / "src", n=3, size=8)
    os.mkfifo(tmp_path / "src" / "x.png")
    os.symlink("/dev/zero", tmp_path / "src" / "zero.png")
    report = convert_dataset(ConvertConfig(str(tmp_path / "src"), str(tmp_path / "o.zip"), 8))
    assert report.written == 3
    reasons = dict(report.skipped)
    assert reasons["x.png"] == "a FIFO, not a regular file"
    assert reasons["zero.png"] == "a character device, not a regular file"
    summary = report.summary()
    assert "x.png: a FIFO" in summary and "zero.png: a character device" in summary
    # The training reader refuses such a data set at once, naming the entry.
    with pytest.raises(UserError, match=r"x\.png: a FIFO, not a regular file"):
        ImageDataset(tmp_path / "src")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_an_entry_swapped_for_a_fifo_after_listing_does_not_block(tmp_path, no_hang):
    from gan.data.dataset import FileSource

    _make_folder(tmp_path / "src", n=2, size=8)
    files = FileSource(tmp_path / "src")
    os.remove(tmp_path / "src" / "img0.png")
    os.mkfifo(tmp_path / "src" / "img0.png")
    with pytest.raises(OSError, match="a FIFO, not a regular file"):
        files.read("img0.png")


def test_files_larger_than_the_limit_are_named_and_never_read(tmp_path, monkeypatch):
    from gan.data import dataset as dataset_mod

    _make_folder(tmp_path / "src", n=2, size=8)
    with open(tmp_path / "src" / "huge.png", "wb") as f:
        f.truncate(300 << 20)  # sparse: 300 MiB, over the 256 MiB default, no disk used
    opened = []
    original_open = dataset_mod.FileSource.open
    monkeypatch.setattr(
        dataset_mod.FileSource, "open", lambda self, n: opened.append(n) or original_open(self, n)
    )
    report = convert_dataset(ConvertConfig(str(tmp_path / "src"), str(tmp_path / "o.zip"), 8))
    assert report.written == 2 and "huge.png" not in opened
    reason = dict(report.skipped)["huge.png"]
    assert reason.startswith("too large, not read") and "300.0 MiB" in reason and "256.0 MiB limit" in reason

    # A zip member over the limit (here a small limit): named and skipped, not read.
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w") as z:
        buf = __import__("io").BytesIO()
        _rgb(8).save(buf, format="png")
        z.writestr("ok.png", buf.getvalue())
        z.writestr("big.png", b"\0" * (2 << 20))
    opened.clear()
    cfg = ConvertConfig(str(big), str(tmp_path / "o2.zip"), 8, max_file_mb=1)
    report = convert_dataset(cfg)
    assert report.written == 1 and opened == ["ok.png"]
    assert "more than the 1.0 MiB limit" in dict(report.skipped)["big.png"]

    # The training reader bounds its reads the same way.
    monkeypatch.setattr(dataset_mod, "MAX_FILE_BYTES", 100)
    ds = ImageDataset(tmp_path / "o.zip")
    with pytest.raises(
        UserError, match=r"img00000000\.png.*larger than the 100 bytes limit|more than the 100"
    ):
        ds[0]


def test_unreadable_sub_folders_are_named(tmp_path, monkeypatch):
    _make_folder(tmp_path / "src", n=2, size=8)
    locked = tmp_path / "src" / "locked"
    locked.mkdir()
    _rgb(8).save(locked / "hidden.png")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):  # as if chmod 000 (tests may run as root)
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = convert_dataset(ConvertConfig(str(tmp_path / "src"), str(tmp_path / "o.zip"), 8))
    assert report.written == 2
    assert dict(report.skipped)["locked/"] == "cannot read the folder (Permission denied)"
    with pytest.raises(UserError, match=r"locked/: cannot read the folder"):
        ImageDataset(tmp_path / "src")


def test_skipped_reasons_show_no_object_reprs(tmp_path):
    _messy_source(tmp_path / "src")
    report = convert_dataset(ConvertConfig(str(tmp_path / "src"), str(tmp_path / "o.zip"), 8))
    summary = report.summary()
    assert "dogs/random.png: unreadable (not an image format Pillow can read)" in summary
    assert "object at 0x" not in summary
    (tmp_path / "ds").mkdir()
    _rgb(8).save(tmp_path / "ds" / "a.png")
    (tmp_path / "ds" / "b.png").write_bytes(os.urandom(300))
    message = str(pytest.raises(UserError, ImageDataset, tmp_path / "ds").value)
    assert "b.png" in message and "object at 0x" not in message


@pytest.mark.parametrize("dest_name", ["setdir", "set.zip"])
def test_force_replaces_in_one_atomic_step(tmp_path, monkeypatch, dest_name):
    _make_folder(tmp_path / "src", n=2, size=8)
    dest = tmp_path / dest_name
    convert_dataset(ConvertConfig(str(tmp_path / "src"), str(dest), resolution=8))
    checks = []

    def watched(fn):
        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            checks.append(os.path.exists(dest) and len(ImageDataset(dest)) == 2)  # a whole data set
            return out

        return call

    for name in ("rename", "replace"):
        monkeypatch.setattr(dataset_tool.os, name, watched(getattr(os, name)))
    monkeypatch.setattr(dataset_tool, "_exchange", watched(dataset_tool._exchange))
    monkeypatch.setattr(dataset_tool, "_remove", watched(dataset_tool._remove))
    cfg = ConvertConfig(str(tmp_path / "src"), str(dest), resolution=4, force=True)
    convert_dataset(cfg)
    monkeypatch.undo()
    assert checks and all(checks), checks  # never a moment without a complete data set at dest
    assert ImageDataset(dest).resolution == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dest_name, "src"])


@pytest.mark.parametrize(
    "error,expected",
    [
        (OSError(28, "No space left on device"), "No space left on device (disk full); nothing was written"),
        (
            PermissionError(13, "Permission denied"),
            "Permission denied; nothing was written. Choose a destination",
        ),
    ],
)
def test_full_disk_and_permission_errors_are_one_line(tmp_path, monkeypatch, capsys, error, expected):
    _make_folder(tmp_path / "src", n=3, size=8)

    def fail(self, name, data):
        raise error

    monkeypatch.setattr(DatasetWriter, "_write", fail)
    out = tmp_path / "out"
    args = [
        "dataset",
        "convert",
        "--source",
        str(tmp_path / "src"),
        "--dest",
        str(out / "o.zip"),
        "--resolution",
        "8",
    ]
    assert gan_main(args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]  # other lines: progress
    assert len(errors) == 1 and expected in errors[0] and "Traceback" not in err
    assert os.listdir(out) == []

    # Creating the output in a folder we may not write to.
    monkeypatch.undo()

    def no_permission(target, suffix=".tmp"):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(dataset_tool, "create_temp_file", no_permission)
    with pytest.raises(UserError, match="Permission denied; nothing was written"):
        convert_dataset(ConvertConfig(str(tmp_path / "src"), str(out / "o.zip"), 8))
