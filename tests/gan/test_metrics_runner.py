"""gan.metrics.compute / run_metrics with stand-in generator, detector and data set."""

import math
import warnings

import pytest
import torch

from gan.errors import UserError
from gan.metrics import METRICS, compute, run_metrics
from gan.metrics.inception import WeightsSource
from gan.metrics.runner import generated_batches
from tests.support.metric_fakes import FakeDetector, FakeGenerator, FakeStyleGAN2, ImageListDataset


def _images_of(G, num, seed):
    return torch.cat(list(generated_batches(G, num, 16, seed)))


@pytest.fixture()
def offline(tmp_path):
    return WeightsSource(cache=tmp_path / "no-weights", allow_download=False)


def test_all_metrics_run_and_rank_a_matching_data_set_first(tmp_path):
    G = FakeGenerator()
    matching = ImageListDataset(_images_of(G, 48, seed=100))
    noise = ImageListDataset(torch.randint(0, 256, (48, 3, 32, 32), dtype=torch.uint8))
    names = ["fid50k_full", "kid50k_full", "swd", "eqt50k_int", "eqt50k_frac", "eqr50k"]
    good = run_metrics(names, G, matching, num=48, detector=FakeDetector(), cache=False)
    bad = run_metrics(names[:3], G, noise, num=48, detector=FakeDetector(), cache=False)
    assert list(good.values) == names and not good.skipped
    assert all(math.isfinite(v) or v == math.inf for v in good.values.values())
    for name in names[:3]:
        assert good.values[name] < bad.values[name], name
    assert good.values["eqt50k_int"] > 80 and good.values["eqr50k"] > 40


def test_missing_inception_weights_skip_fid_and_kid_only(offline):
    G = FakeGenerator()
    data = ImageListDataset(_images_of(G, 8, seed=1))
    report = run_metrics("fid50k_full,kid50k_full,eqt50k_int", G, data, num=4, inception_source=offline)
    assert set(report.skipped) == {"fid50k_full", "kid50k_full"}
    assert "missing" in report.skipped["fid50k_full"] and "--inception" in report.skipped["fid50k_full"]
    assert set(report.values) == {"eqt50k_int"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = compute(["fid50k_full", "eqt50k_int"], G, data, num=4, inception_source=offline)
    assert set(values) == {"eqt50k_int"}
    assert any("fid50k_full skipped" in str(w.message) for w in caught)


def test_stylegan2_skips_equivariance_with_the_reason():
    report = run_metrics(["eqt50k_int", "eqr50k"], FakeStyleGAN2(), num=4)
    assert set(report.skipped) == {"eqt50k_int", "eqr50k"} and not report.values
    assert "StyleGAN2" in report.skipped["eqr50k"]


def test_bad_requests_are_user_errors():
    G = FakeGenerator()
    with pytest.raises(UserError, match="unknown metric"):
        run_metrics(["fid1k"], G)
    with pytest.raises(UserError, match="--data"):
        run_metrics(["swd"], G, num=4)
    with pytest.raises(UserError, match="does not exist"):
        run_metrics(["swd"], G, "/no/such/dataset.zip", num=4)


def test_real_statistics_are_cached_on_disk(tmp_path):
    G = FakeGenerator()
    zip_path = tmp_path / "data.zip"
    zip_path.write_bytes(b"stand-in: the cache key only looks at the file's path, size and time")
    data = ImageListDataset(_images_of(G, 20, seed=5), path=zip_path)
    det = FakeDetector()
    first = run_metrics(["fid50k_full", "kid50k_full"], G, data, num=10, detector=det, cache=tmp_path / "c")
    assert det.calls == 20 + 10  # all real images, then the generated ones
    second = run_metrics(["fid50k_full", "kid50k_full"], G, data, num=10, detector=det, cache=tmp_path / "c")
    assert det.calls == 30 + 10  # only generated images this time
    assert first.values == second.values
    assert len(list((tmp_path / "c" / "dataset-stats").iterdir())) == 1


def test_metric_table_uses_the_official_names():
    assert {"fid50k_full", "kid50k_full", "eqt50k_int", "eqt50k_frac", "eqr50k", "swd"} <= set(METRICS)


def test_a_folder_of_pngs_is_read_through_the_dataset_reader(tmp_path):
    from PIL import Image

    G = FakeGenerator(resolution=16)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(_images_of(G, 12, seed=9)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    det = FakeDetector()
    report = run_metrics(["fid50k_full", "swd"], G, str(folder), num=12, detector=det, cache=tmp_path / "c")
    assert set(report.values) == {"fid50k_full", "swd"} and det.calls == 24
    assert len(list((tmp_path / "c" / "dataset-stats").glob("pngs-*.npz"))) == 1


def test_swd_refuses_a_data_set_of_another_size():
    G = FakeGenerator(resolution=32)
    small = ImageListDataset(_images_of(FakeGenerator(resolution=16), 4, seed=0))
    with pytest.raises(UserError, match="equal size"):
        run_metrics(["swd"], G, small, num=4)
