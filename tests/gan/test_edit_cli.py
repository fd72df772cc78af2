"""`gan directions pca | attribute | list` on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan.cli import main as gan_main
from gan.edit.classifier import ClassifierConfig, TrainOptions, save_classifier, train_classifier
from gan.edit.directions import load_directions
from gan.model_io import load_model


@pytest.fixture
def model_path(tmp_path, tiny_model_file):
    return tiny_model_file(tmp_path / "m.safetensors", "stylegan2")


def test_pca_then_list(model_path, capsys):
    assert (
        gan_main(["directions", "pca", "--model", model_path, "--num-samples", "400", "--components", "3"])
        == 0
    )
    assert "3 direction(s) written to" in capsys.readouterr().out
    dirs = load_directions(load_model(model_path))
    assert [d.name for d in dirs] == ["pc0", "pc1", "pc2"]
    assert gan_main(["directions", "list", "--model", model_path]) == 0
    out = capsys.readouterr().out
    assert "pc0" in out and "pca" in out and "ws 0..2" in out
    assert gan_main(["directions", "list", "--model", model_path, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_pca_out_file_leaves_the_model_alone(model_path, tmp_path):
    before = open(model_path, "rb").read()
    out = tmp_path / "dirs.json"
    argv = [
        "directions",
        "pca",
        "--model",
        model_path,
        "--num-samples",
        "100",
        "--components",
        "2",
        "--out",
        str(out),
    ]
    assert gan_main(argv) == 0
    assert open(model_path, "rb").read() == before
    assert [d["name"] for d in json.loads(out.read_text())["directions"]] == ["pc0", "pc1"]


def _brightness_classifier(model_path, path):
    """A tiny classifier whose 'style' head says 'anime' for the brighter half of the model's images."""
    G = load_model(model_path).G
    with torch.no_grad():
        ws = G.mapping(torch.randn(256, G.z_dim, generator=torch.Generator().manual_seed(1)), None)
        images = G.synthesis(ws, noise_mode="const")
    brightness = images.mean(dim=(1, 2, 3)).numpy()
    style = (brightness > np.median(brightness)).astype(np.int64)
    uint8 = ((images.permute(0, 2, 3, 1).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    rng = np.random.default_rng(0)
    labels = {"style": style, "hair_colour": rng.integers(0, 5, 256), "glasses": rng.integers(0, 2, 256)}
    config = ClassifierConfig(resolution=16, channels=(8, 16))
    clf = train_classifier(uint8, labels, config, TrainOptions(epochs=6, lr=1e-2, augment=False))
    save_classifier(path, clf)


def test_attribute_directions_with_a_classifier(model_path, tmp_path, capsys):
    clf_path = tmp_path / "clf.safetensors"
    _brightness_classifier(model_path, clf_path)
    argv = ["directions", "attribute", "--model", model_path, "--classifier", str(clf_path)]
    assert gan_main(argv + ["--attributes", "anime", "--num-samples", "300"]) == 0
    (anime,) = load_directions(load_model(model_path))
    assert anime.name == "anime" and anime.kind == "attribute"
    # Moving along the direction makes the images brighter (what the classifier calls anime).
    G = load_model(model_path).G
    with torch.no_grad():
        w = G.mapping(torch.randn(16, G.z_dim, generator=torch.Generator().manual_seed(9)), None)
        d = torch.from_numpy(anime.vector) * anime.scale * 2
        plus, minus = G.synthesis(w + d, noise_mode="const"), G.synthesis(w - d, noise_mode="const")
    assert float(plus.mean()) > float(minus.mean())
    capsys.readouterr()
    grid = tmp_path / "sweep.png"
    measure = [
        "directions",
        "measure",
        "--model",
        model_path,
        "--classifier",
        str(clf_path),
        "--direction",
        "anime",
    ]
    measure += [
        "--strength",
        "2",
        "--seeds",
        "0-15",
        "--grid",
        str(grid),
        "--grid-seeds",
        "2",
        "--grid-steps",
        "3",
    ]
    assert gan_main(measure + ["--control"]) == 0
    out = capsys.readouterr().out
    assert "style=anime:" in out and "hair_colour unchanged" in out
    assert "direction 'random (control for anime)'" in out
    from PIL import Image

    assert Image.open(grid).size == (48, 32)
    assert gan_main(measure[:-8] + ["--direction", "nope"]) == 2
    assert "no direction 'nope'" in capsys.readouterr().err
    assert gan_main(argv + ["--attributes", "cartoon", "--num-samples", "40"]) == 2
    assert "unknown attribute 'cartoon'" in capsys.readouterr().err
    missing = [
        "directions",
        "attribute",
        "--model",
        model_path,
        "--classifier",
        str(tmp_path / "none.safetensors"),
    ]
    assert gan_main(missing) == 2
    assert "does not exist" in capsys.readouterr().err


def test_list_without_directions_and_bad_model(model_path, tmp_path, capsys):
    assert gan_main(["directions", "list", "--model", model_path]) == 0
    assert "no stored directions" in capsys.readouterr().out
    assert gan_main(["directions", "list", "--model", str(tmp_path / "nope.pkl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_refine_replaces_only_the_named_direction(model_path, tmp_path, capsys):
    clf_path = tmp_path / "clf.safetensors"
    _brightness_classifier(model_path, clf_path)
    assert (
        gan_main(["directions", "pca", "--model", model_path, "--num-samples", "200", "--components", "2"])
        == 0
    )
    argv = ["directions", "attribute", "--model", model_path, "--classifier", str(clf_path)]
    assert gan_main(argv + ["--attributes", "anime", "--num-samples", "300"]) == 0
    before = {d.name: d for d in load_directions(load_model(model_path))}
    refine = ["directions", "refine", "--model", model_path, "--classifier", str(clf_path), "--force"]
    assert gan_main(refine + ["--steps", "3", "--batch", "4", "--keep", "hair_colour"]) == 0
    assert "1 direction(s) written" in capsys.readouterr().out
    after = {d.name: d for d in load_directions(load_model(model_path))}
    assert list(after) == list(before)  # same directions, same order
    assert "refined for 3 steps" in after["anime"].help
    assert not np.array_equal(after["anime"].vector, before["anime"].vector)
    assert np.array_equal(after["pc0"].vector, before["pc0"].vector)
    assert gan_main(refine + ["--target", "style=cartoon"]) == 2
    assert "not a class of the classifier" in capsys.readouterr().err
    assert gan_main(refine + ["--direction", "nope"]) == 2
    assert "no direction 'nope'" in capsys.readouterr().err


def test_existing_directions_and_shipped_models_need_force(model_path, tmp_path, capsys, monkeypatch):
    """Nothing is replaced silently, and the refusal comes before the long work."""
    import gan.edit.pca
    import gan.resources

    pca = ["directions", "pca", "--model", model_path, "--num-samples", "200", "--components", "2"]
    assert gan_main(pca) == 0
    before = open(model_path, "rb").read()
    computed = []
    real = gan.edit.pca.compute_pca_directions
    monkeypatch.setattr(
        gan.edit.pca, "compute_pca_directions", lambda *a, **k: computed.append(1) or real(*a, **k)
    )
    capsys.readouterr()
    assert gan_main(pca) == 2
    err = capsys.readouterr().err
    assert "already has direction(s) pc0, pc1" in err and "--force" in err and "--out" in err
    assert not computed and open(model_path, "rb").read() == before
    assert gan_main(pca + ["--force"]) == 0 and computed
    # --out writes a copy; an existing --out is not overwritten either.
    out = tmp_path / "copy.json"
    assert gan_main(pca + ["--out", str(out)]) == 0 and out.is_file()
    assert gan_main(pca + ["--out", str(out)]) == 2
    assert f"--out {out} exists" in capsys.readouterr().err
    # A model shipped with the program needs --force even for new names.
    shipped = tmp_path / "resources" / "models"
    shipped.mkdir(parents=True)
    ship = shipped / "default.safetensors"
    ship.write_bytes(open(model_path, "rb").read())
    monkeypatch.setattr(gan.resources, "RESOURCES", tmp_path / "resources")
    argv = ["directions", "pca", "--model", str(ship), "--num-samples", "200", "--components", "3"]
    assert gan_main(argv) == 2
    assert "shipped with the program" in capsys.readouterr().err


def test_long_steps_report_progress_without_a_terminal(model_path, capsys):
    argv = ["directions", "pca", "--model", model_path, "--num-samples", "400", "--components", "2"]
    assert gan_main(argv) == 0
    err = capsys.readouterr().err
    assert "sampling 400 ws for 2 PCA directions" in err
    assert "sampling W: 400/400 w (100%" in err  # a plain line, stderr is no terminal here


def test_measure_stores_the_slider_range(model_path, tmp_path, capsys):
    clf_path = tmp_path / "clf.safetensors"
    _brightness_classifier(model_path, clf_path)
    argv = ["directions", "attribute", "--model", model_path, "--classifier", str(clf_path)]
    assert gan_main(argv + ["--attributes", "anime", "--num-samples", "200"]) == 0
    (anime,) = load_directions(load_model(model_path))
    assert anime.range == (-4.0, 4.0)  # the default until measured
    measure = ["directions", "measure", "--model", model_path, "--classifier", str(clf_path)]
    measure += ["--direction", "anime", "--seeds", "0-7"]
    assert gan_main(measure + ["--strength", "2.5", "--set-range", "low"]) == 0
    assert "slider range of 'anime' set to -2.5 .. 4" in capsys.readouterr().out
    assert gan_main(measure + ["--strength", "3", "--set-range"]) == 0
    (anime,) = load_directions(load_model(model_path))
    assert anime.range == (-3.0, 3.0)
    assert gan_main(["directions", "list", "--model", model_path]) == 0
    assert "slider -3..3" in capsys.readouterr().out
