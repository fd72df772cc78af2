"""The procedural toon-faces data set: determinism, styles, labels, the CLI."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from gan.cli import main as gan_main
from gan.data import toon
from gan.data.dataset import ImageDataset
from gan.errors import Cancelled, UserError


def _pixels(seed, index, res=32, styles=toon.STYLES):
    image, attrs = toon.toon_image(seed, index, res, styles)
    return np.asarray(image), attrs


def test_deterministic_per_seed_and_index():
    a, attrs_a = _pixels(7, 3)
    b, attrs_b = _pixels(7, 3)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and attrs_a == attrs_b
    c, _ = _pixels(8, 3)
    d, _ = _pixels(7, 4)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_identity_does_not_depend_on_styles():
    _, both = _pixels(5, 11)
    _, only_anime = _pixels(5, 11, styles=("anime",))
    assert only_anime["style"] == 1
    for key in ("hair_colour", "skin_tone", "glasses", "rotate", "translate"):
        assert both[key] == only_anime[key]


def test_both_styles_of_one_identity_differ():
    identity, pose, _ = toon.sample_image(3, 0)
    photo = np.asarray(toon.render_toon(identity, "photo", pose, 64)).astype(np.float32)
    anime = np.asarray(toon.render_toon(identity, "anime", pose, 64)).astype(np.float32)
    assert np.abs(photo - anime).mean() > 5
    # The anime style has dark outlines: clearly more near-black pixels than the photo style.
    assert (anime.max(axis=2) < 70).sum() > 1.5 * (photo.max(axis=2) < 70).sum() + 10


def test_pose_moves_the_head_not_the_background():
    identity, _, _ = toon.sample_image(4, 0)
    still = np.asarray(toon.render_toon(identity, "anime", toon.ToonPose(), 64)).astype(np.int32)
    turned = np.asarray(toon.render_toon(identity, "anime", toon.ToonPose(rotate=10.0), 64)).astype(np.int32)
    assert np.abs(still - turned).mean() > 2
    assert np.array_equal(still[:3, :3], turned[:3, :3])  # top-left corner: background only


def test_attribute_statistics_cover_every_class():
    seen = {k: set() for k in ("style", "hair_colour", "skin_tone", "glasses", "hair_style")}
    for i in range(200):
        _, _, style = toon.sample_image(0, i)
        identity, _, _ = toon.sample_image(0, i)
        seen["style"].add(style)
        for key in ("hair_colour", "skin_tone", "glasses", "hair_style"):
            seen[key].add(identity.attributes()[key])
    assert seen["style"] == set(toon.STYLES)
    assert seen["hair_colour"] == set(range(len(toon.HAIR_COLOURS)))
    assert seen["skin_tone"] == set(range(len(toon.SKIN_TONES)))
    assert seen["glasses"] == {0, 1}


def test_cli_writes_a_readable_labelled_data_set(tmp_path, capsys):
    out = tmp_path / "toon.zip"
    argv = ["dataset", "toon", "--count", "12", "--resolution", "32", "--out", str(out), "--seed", "2"]
    assert gan_main(argv) == 0
    assert "12 toon face(s)" in capsys.readouterr().out
    dataset = ImageDataset(out, use_labels=True)
    assert len(dataset) == 12 and dataset.resolution == 32 and dataset.label_dim == 2
    with zipfile.ZipFile(out) as z:
        meta = json.loads(z.read("dataset.json"))
    assert meta["class_names"] == ["photo", "anime"]
    labels = dict(meta["labels"])
    attributes = dict(meta["attributes"])
    assert set(labels) == set(attributes)
    for name, label in labels.items():
        assert attributes[name]["style"] == label
        assert set(attributes[name]) >= {"hair_colour", "skin_tone", "glasses", "earrings", "rotate"}
    # The same pixels as the library function.
    image, label = dataset[5]
    expected, attrs = _pixels(2, 5)
    assert np.array_equal(image.transpose(1, 2, 0), expected)
    assert label[attrs["style"]] == 1
    # An existing output is refused without --force; a folder output works too.
    assert gan_main(argv) == 2
    folder = tmp_path / "anime"
    argv = ["dataset", "toon", "--count", "3", "--resolution", "16", "--out", str(folder)]
    argv += ["--styles", "anime"]
    assert gan_main(argv) == 0
    anime_only = ImageDataset(folder, use_labels=True)
    assert all(np.argmax(anime_only[i][1]) == 1 for i in range(3))


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(count=0), "--count"),
        (dict(resolution=48), "power of two"),
        (dict(styles=("photo", "cartoon")), "cartoon"),
        (dict(styles=()), "at least one"),
    ],
)
def test_bad_options_are_refused(tmp_path, change, message):
    config = toon.ToonConfig(out=str(tmp_path / "x"), **change)
    with pytest.raises(UserError, match=message):
        toon.make_toon_dataset(config)
    assert not (tmp_path / "x").exists()


def test_stop_leaves_nothing_behind(tmp_path):
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        config = toon.ToonConfig(out=str(tmp_path / "t.zip"), count=10, resolution=16)
        toon.make_toon_dataset(config, should_stop=should_stop)
    assert list(tmp_path.iterdir()) == []


def test_parallel_workers_write_the_same_data_set(tmp_path):
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        seen = []
        config = toon.ToonConfig(out=str(out), count=10, resolution=16, workers=workers)
        toon.make_toon_dataset(
            config, progress=lambda done, total, what="", seen=seen: seen.append((done, total, what))
        )
        assert seen[0] == (1, 10, "drawing toon faces") and seen[-1] == (10, 10, "drawing toon faces")
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert len(files) == 11
    for rel in files:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel
