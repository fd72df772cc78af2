"""fd_toon / kid_toon: Fréchet distance and KID in the shipped toon classifier's feature space."""

import json
import math

import numpy as np
import pytest
import torch

from gan.cli import main
from gan.metrics import METRICS, run_metrics
from gan.metrics.inception import WeightsSource
from gan.metrics.runner import generated_batches
from gan.metrics.toon_features import load_toon_features
from gan.model_io import load_model
from tests.support.metric_fakes import FakeDetector, FakeGenerator, ImageListDataset


def _images_of(G, num, seed):
    return torch.cat(list(generated_batches(G, num, 16, seed)))


@pytest.fixture(scope="module")
def features():
    return load_toon_features()  # the shipped classifier


def test_features_of_any_size_and_channel_count(features):
    images = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8)
    out = features(images)
    assert out.shape == (5, features.feature_dim) and features.feature_dim == 96
    # Other sizes are resized to the classifier's 64 px; grey images count as RGB.
    small = torch.nn.functional.interpolate(images.float(), size=32, mode="area").round().to(torch.uint8)
    assert features(small).shape == (5, 96)
    grey = images[:, :1]
    assert torch.allclose(features(grey), features(grey.repeat(1, 3, 1, 1)))
    with pytest.raises(ValueError, match="uint8"):
        features(images.float())
    assert features.sha256.startswith("toon-pool-v1:") and len(features.sha256) > 20


def test_names_say_it_is_not_fid():
    for name in ("fd_toon10k_full", "kid_toon10k_full", "fd_toon50k_full", "kid_toon50k_full"):
        assert METRICS[name].features == "toon"
    assert "not FID" in METRICS["fd_toon10k_full"].help
    assert METRICS["fid50k_full"].features == "inception"


def test_toon_distances_rank_matching_data_first_without_inception(tmp_path):
    G = FakeGenerator()
    matching = ImageListDataset(_images_of(G, 48, seed=100))
    noise = ImageListDataset(torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8))
    names = ["fd_toon10k_full", "kid_toon10k_full", "fid50k_full"]
    offline = WeightsSource(cache=tmp_path / "no-weights", allow_download=False)
    good = run_metrics(names, G, matching, num=48, inception_source=offline, cache=False)
    bad = run_metrics(names, G, noise, num=48, inception_source=offline, cache=False)
    # No Inception weights: FID is skipped, the toon metrics need none.
    assert set(good.values) == {"fd_toon10k_full", "kid_toon10k_full"} and "fid50k_full" in good.skipped
    assert all(math.isfinite(v) for v in good.values.values())
    assert good.values["fd_toon10k_full"] < bad.values["fd_toon10k_full"]
    assert good.values["kid_toon10k_full"] < bad.values["kid_toon10k_full"]


def test_one_pass_of_generated_images_feeds_both_feature_networks(monkeypatch):
    G = FakeGenerator()
    data = ImageListDataset(_images_of(G, 40, seed=7))
    calls = []
    original = G.mapping

    def counting_mapping(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(G, "mapping", counting_mapping)
    kw = dict(num=32, detector=FakeDetector(), cache=False, batch_size=16)
    both = run_metrics(["fid50k_full", "fd_toon10k_full", "kid_toon10k_full"], G, data, **kw)
    assert len(calls) == 2  # 32 images in batches of 16, once for both feature networks
    alone = run_metrics(["fd_toon10k_full"], G, data, **kw)
    fid_alone = run_metrics(["fid50k_full"], G, data, **kw)
    assert both.values["fd_toon10k_full"] == pytest.approx(alone.values["fd_toon10k_full"], rel=1e-9)
    assert both.values["fid50k_full"] == pytest.approx(fid_alone.values["fid50k_full"], rel=1e-9)


def test_missing_classifier_skips_with_the_fix(tmp_path):
    G = FakeGenerator()
    data = ImageListDataset(_images_of(G, 8, seed=1))
    report = run_metrics(
        ["fd_toon10k_full", "swd"], G, data, num=8, classifier_path=tmp_path / "nope.safetensors", cache=False
    )
    assert "swd" in report.values
    assert "--classifier" in report.skipped["fd_toon10k_full"]


def test_cli_reports_toon_metrics(tiny_sg3t_model_path, tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "data"
    folder.mkdir()
    images = _images_of(load_model(tiny_sg3t_model_path).G, 8, seed=5)
    for i, img in enumerate(images):
        Image.fromarray(np.ascontiguousarray(img.permute(1, 2, 0).numpy())).save(folder / f"{i}.png")
    args = ["metrics", "--model", tiny_sg3t_model_path, "--data", str(folder), "--num", "8"]
    assert main([*args, "--json", "--metrics", "fd_toon10k_full,kid_toon10k_full"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["results"]) == {"fd_toon10k_full", "kid_toon10k_full"} and not out["skipped"]
    assert out["results"]["fd_toon10k_full"] > 0
    assert main([*args, "--metrics", "fd_toon10k_full"]) == 0  # the table, from the cached real stats
    assert "fd_toon10k_full" in capsys.readouterr().out
