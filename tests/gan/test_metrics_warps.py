"""The resampling operators behind EQ-T / EQ-R, checked against exact and analytic answers."""

import math

import pytest
import torch

from gan.metrics import equivariance as eq

H = W = 32


def _grid():
    return torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")


def _wave(px, py):
    # A band-limited test image (well below Nyquist), defined everywhere.
    tau = 2 * math.pi
    return torch.cos(tau * (0.11 * px + 0.07 * py) + 0.3) + 0.5 * torch.sin(tau * 0.05 * (px - py))


def test_integer_translation_moves_pixels_and_masks_the_gap():
    x = torch.randn(2, 3, H, W)
    z, m = eq.integer_translate(x, 3, -2)
    torch.testing.assert_close(z[:, :, 0 : H - 2, 3:], x[:, :, 2:, : W - 3])
    assert m[0, 0, : H - 2, 3:].all() and m[0, 0].sum() == (H - 2) * (W - 3)
    assert (z * (1 - m)).abs().sum() == 0


def test_fractional_translation_by_whole_pixels_equals_integer_translation():
    x = torch.randn(1, 3, H, W)
    zi, mi = eq.integer_translate(x, -3, 2)
    zf, mf = eq.fractional_translate(x, -3.0, 2.0)
    torch.testing.assert_close(zf * mf, zi * mf, atol=1e-6, rtol=0)
    assert (mf <= mi).all()
    # Valid columns: shift + a <= m < W + shift - (a - 1), i.e. [0, 27) for -3 and rows [5, 32) for 2.
    expected = torch.zeros(H, W)
    expected[5:, :27] = 1
    torch.testing.assert_close(mf[0, 0], expected)


def test_fractional_translation_of_a_smooth_image_matches_the_analytic_shift():
    yy, xx = _grid()
    img = _wave(xx, yy)[None, None]
    z, m = eq.fractional_translate(img, 2.3, -1.6)
    err = ((z[0, 0] - _wave(xx - 2.3, yy + 1.6)) * m[0, 0]).abs().max()
    assert err < 0.02
    assert m.sum() > 0.5 * H * W


def test_rotation_of_a_smooth_image_matches_the_analytic_rotation():
    yy, xx = _grid()
    img = _wave(xx, yy)[None, None]
    angle = 0.6
    z, m = eq.rotate(img, angle)
    # output(p) = input(mat^-1 p), in coordinates normalised to [-1, 1] across the image.
    inv = torch.linalg.inv(eq.rotation_matrix(angle).double())
    xn, yn = xx / W * 2 - 1, yy / H * 2 - 1
    xs = inv[0, 0] * xn + inv[0, 1] * yn
    ys = inv[1, 0] * xn + inv[1, 1] * yn
    ref = _wave((xs + 1) / 2 * W, (ys + 1) / 2 * H).float()
    assert ((z[0, 0] - ref) * m[0, 0]).abs().max() < 0.02
    assert 0.3 < m.mean() < 0.5


def test_quarter_turn_is_a_pixel_permutation():
    x = torch.randn(2, 3, H, W)
    z, m = eq.rotate(x, math.pi / 2)
    r = torch.rot90(x, 1, dims=(2, 3))
    # Not bit-exact: the windowed sinc grid is truncated, so its taps at whole pixels are ~1e-3, not 0.
    assert ((z - r) * m).abs().max() < 0.05
    assert ((z - r) * m).square().sum() / m.sum() < 1e-4


def test_zero_rotation_and_pseudo_rotation_keep_the_image():
    x = torch.randn(1, 3, H, W)
    z, m = eq.rotate(x, 0.0)
    assert ((z - x) * m).square().sum() / m.sum() < 1e-4
    y, pm = eq.pseudo_rotate(x, 0.0)
    torch.testing.assert_close(y * pm, x * pm, atol=1e-6, rtol=0)
    assert pm[0, 0].sum() == (H - 10) * (W - 10)


def test_pseudo_rotation_removes_frequencies_a_rotation_cannot_keep():
    # A checkerboard at Nyquist along x and y survives no 45-degree rotation.
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    checker = ((xx + yy) % 2 * 2 - 1).float()[None, None]
    y, m = eq.pseudo_rotate(checker, math.pi / 4)
    assert (y * m).abs().max() < 0.1
    y0, m0 = eq.pseudo_rotate(checker, 0.0)
    assert y0[m0 > 0].abs().min() > 0.99


@pytest.mark.parametrize("angle", [0.3, -2.0])
def test_bandlimit_filter_polyphase_components_sum_to_one(angle):
    f = eq.bandlimit_filter(eq.rotation_matrix(angle), a=3, amax=6, up=4)
    assert f.shape == (47, 47)
    for ry in range(4):
        for rx in range(4):
            assert float(f[ry::4, rx::4].sum()) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(f, f.flip(0).flip(1))  # point-symmetric: convolution == correlation
