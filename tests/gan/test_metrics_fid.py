"""FID / KID maths on plain feature arrays, feature statistics and the statistics cache."""

import numpy as np
import pytest
import torch

from gan.metrics import fid


def _random_rotation(d, rng):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def test_fid_of_a_sample_against_itself_is_zero():
    x = np.random.default_rng(0).standard_normal((2000, 16)) @ np.diag(np.linspace(0.5, 2, 16)) + 3.0
    s = fid.stats_from_features(x)
    assert abs(fid.fid_from_stats(s, s)) < 1e-8


def test_fid_matches_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(1)
    d = 12
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    v1, v2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    # Independent formula: for diagonal matrices the square root is elementwise.
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    got = fid.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(expected, rel=1e-9)
    # The same covariances in a rotated basis (no longer diagonal) give the same distance.
    q = _random_rotation(d, rng)
    got_rotated = fid.frechet_distance(q @ mu1, q @ np.diag(v1) @ q.T, q @ mu2, q @ np.diag(v2) @ q.T)
    assert got_rotated == pytest.approx(expected, rel=1e-7)
    assert got > 0.5


def test_fid_of_sampled_gaussians_approaches_the_closed_form():
    rng = np.random.default_rng(2)
    d, n = 4, 200000
    v1, v2 = np.array([1.0, 2.0, 0.5, 1.5]), np.array([0.5, 1.0, 2.0, 1.0])
    a = rng.standard_normal((n, d)) * np.sqrt(v1)
    b = rng.standard_normal((n, d)) * np.sqrt(v2) + 0.5
    expected = d * 0.25 + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    got = fid.fid_from_stats(fid.stats_from_features(a), fid.stats_from_features(b))
    assert got == pytest.approx(expected, abs=0.03)


def test_fid_handles_singular_covariances():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 32))  # fewer samples than dimensions: rank-deficient covariance
    y = rng.standard_normal((5, 32)) + 1
    value = fid.fid_from_stats(fid.stats_from_features(x), fid.stats_from_features(y))
    assert np.isfinite(value) and value > 0


def test_kid_is_near_zero_for_the_same_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(4)
    real = rng.standard_normal((600, 16))
    same = rng.standard_normal((600, 16))
    shifted = rng.standard_normal((600, 16)) + 0.5
    kid_self = fid.kernel_inception_distance(real, real, num_subsets=20, max_subset_size=300)
    kid_same = fid.kernel_inception_distance(real, same, num_subsets=20, max_subset_size=300)
    kid_shift = fid.kernel_inception_distance(real, shifted, num_subsets=20, max_subset_size=300)
    # The unbiased estimate scatters around 0 (it can be negative); a shift stands far above it.
    assert abs(kid_self) < 0.05 and abs(kid_same) < 0.05
    assert kid_shift > 0.5
    assert kid_shift > 10 * max(abs(kid_self), abs(kid_same))


class _MeanColour(torch.nn.Module):
    """Stand-in detector: per-channel means and squared means of the image (6-d features)."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        x = images.float() / 255
        return torch.cat([x.mean(dim=(2, 3)), x.square().mean(dim=(2, 3))], dim=1)


def test_compute_feature_stats_matches_numpy_and_stops_at_max_items():
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (37, 3, 8, 8), dtype=np.uint8)
    batches = [images[i : i + 10] for i in range(0, 37, 10)]
    det = _MeanColour()
    stats = fid.compute_feature_stats(iter(batches), det, max_items=25, capture_all=True)
    feats = det(torch.from_numpy(images[:25])).double().numpy()
    assert stats.num == 25 and stats.features.shape == (25, 6)
    np.testing.assert_allclose(stats.mean, feats.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.cov, np.cov(feats, rowvar=False), rtol=1e-5, atol=1e-12)


def test_running_moments_survive_a_large_offset():
    rng = np.random.default_rng(6)
    x = 1e6 + rng.standard_normal((3000, 5)) * 1e-2
    m = fid._RunningMoments()
    for chunk in np.array_split(x, 7):
        m.add(chunk)
    np.testing.assert_allclose(m.m2 / (m.n - 1), np.cov(x, rowvar=False), rtol=1e-6, atol=1e-12)


def test_dataset_stats_are_cached_per_data_set_state(tmp_path):
    data = tmp_path / "data.zip"
    data.write_bytes(b"12345")
    calls = []

    def compute(features=False):
        calls.append(features)
        f = np.arange(12.0).reshape(4, 3)
        s = fid.stats_from_features(f)
        if not features:
            s.features = None
        return s

    path = fid.stats_cache_path(tmp_path / "cache", data, None, 32, "abc")
    a = fid.cached_dataset_stats(path, compute, capture_all=False)
    b = fid.cached_dataset_stats(path, compute, capture_all=False)
    assert len(calls) == 1 and path.is_file()
    np.testing.assert_array_equal(a.cov, b.cov)
    # KID needs the features themselves: a statistics-only entry is recomputed.
    c = fid.cached_dataset_stats(path, lambda: compute(True), capture_all=True)
    assert calls == [False, True] and c.features.shape == (4, 3)
    # Any change of count, resolution, detector or the data set file changes the key.
    assert fid.stats_cache_path(tmp_path / "cache", data, 100, 32, "abc") != path
    assert fid.stats_cache_path(tmp_path / "cache", data, None, 64, "abc") != path
    assert fid.stats_cache_path(tmp_path / "cache", data, None, 32, "abd") != path
    data.write_bytes(b"123456")
    assert fid.stats_cache_path(tmp_path / "cache", data, None, 32, "abc") != path


def test_folder_fingerprint_changes_when_a_file_is_added(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"x")
    before = fid.stats_cache_path(tmp_path, folder, None, 16, "h")
    (folder / "b.png").write_bytes(b"y")
    assert fid.stats_cache_path(tmp_path, folder, None, 16, "h") != before


def test_a_corrupt_cache_entry_is_recomputed(tmp_path):
    path = tmp_path / "stats.npz"
    path.write_bytes(b"truncated")
    stats = fid.cached_dataset_stats(path, lambda: fid.stats_from_features(np.eye(3)), capture_all=True)
    assert stats.num == 3 and fid.FeatureStats.load(path).num == 3
