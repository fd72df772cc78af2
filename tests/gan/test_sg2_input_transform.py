"""StyleGAN2 input transform: the learned 4x4 constant resampled as a band-limited periodic picture,
moved by the same matrices (and in the same directions) as the StyleGAN3 input."""

from __future__ import annotations

import math

import pytest
import torch

from gan.metrics.equivariance import rotation_matrix
from gan.networks.stylegan2 import Generator, transform_const
from gan.networks.stylegan3 import SynthesisInput
from tests.support.tiny import tiny_kwargs

TINY = tiny_kwargs("stylegan2", z_dim=8, w_dim=8, channel_base=128, channel_max=8)


def shift(tx: float, ty: float, n: int = 1) -> torch.Tensor:
    m = torch.eye(3).repeat(n, 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def turn(angle: float) -> torch.Tensor:
    """Input transform that turns the picture by +angle (the equivariance metrics' convention)."""
    return rotation_matrix(-angle)[None]


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    G = Generator(**TINY).eval().requires_grad_(False)
    # The initial noise strengths are 0; make the (fixed) noise visible so it is part of the check.
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.fill_(0.3)
    ws = G.mapping(torch.randn(3, G.z_dim), None)
    return G, ws


def with_const(G: Generator, const: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    saved = G.synthesis.b4.const.clone()
    try:
        G.synthesis.b4.const.copy_(const)
        return G.synthesis(ws, noise_mode="const")
    finally:
        G.synthesis.b4.const.copy_(saved)


def test_identity_transform_equals_no_transform_exactly(net):
    G, ws = net
    plain = G.synthesis(ws, noise_mode="const")
    assert torch.equal(
        G.synthesis(ws, noise_mode="const", input_transform=torch.eye(3).repeat(3, 1, 1)), plain
    )
    assert torch.equal(G.synthesis(ws, noise_mode="const", input_transform=torch.eye(3)[None]), plain)
    const = torch.randn(5, 4, 4)
    assert torch.equal(transform_const(const, torch.eye(3)[None])[0], const)


def test_quarter_image_shift_rolls_the_constant_by_one_pixel(net):
    G, ws = net
    const = G.synthesis.b4.const
    # A translation entry of -1/4 moves the content a quarter image right (+x) / down (+y).
    assert torch.equal(transform_const(const, shift(-0.25, 0))[0], torch.roll(const, 1, dims=-1))
    assert torch.equal(transform_const(const, shift(0, -0.25))[0], torch.roll(const, 1, dims=-2))
    assert torch.equal(
        transform_const(const, shift(0.5, 0.25))[0], torch.roll(const, (-1, -2), dims=(-2, -1))
    )
    # In the network the constant moves and the (constant) noise stays: equal to a rolled constant.
    moved = G.synthesis(ws, noise_mode="const", input_transform=shift(-0.25, 0.25, n=3))
    assert torch.equal(moved, with_const(G, torch.roll(const, (-1, 1), dims=(-2, -1)), ws))
    assert not torch.equal(moved, G.synthesis(ws, noise_mode="const"))


def test_off_grid_positions_use_the_continuous_polynomial():
    const = torch.randn(4, 4, 4)
    # Just off the grid the polynomial (not the exact copy) runs, and agrees with the samples.
    near = transform_const(const, shift(-0.25 + 2e-5, 0))[0]
    assert not torch.equal(near, torch.roll(const, 1, dims=-1))
    torch.testing.assert_close(near, torch.roll(const, 1, dims=-1), atol=5e-3 * const.abs().max(), rtol=0)


def test_nyquist_frequency_is_a_real_cosine():
    # (-1)^column: its half-pixel shift falls on the cosine's zeros; a third of a pixel gives cos(pi/3).
    checker = torch.tensor([1.0, -1.0, 1.0, -1.0]).expand(1, 4, 4)
    torch.testing.assert_close(
        transform_const(checker, shift(0.125, 0)), torch.zeros(1, 1, 4, 4), atol=1e-6, rtol=0
    )
    third = transform_const(checker, shift(1 / 12, 0))[0]
    torch.testing.assert_close(third, 0.5 * checker, atol=1e-6, rtol=0)
    assert torch.equal(transform_const(checker, shift(0.25, 0))[0], -checker)


def test_translations_compose():
    torch.manual_seed(1)
    const = torch.randn(6, 4, 4)
    # Without a Nyquist component, any two shifts give one shift by the sum.
    spectrum = torch.fft.fft2(const)
    spectrum[:, 2, :] = 0
    spectrum[:, :, 2] = 0
    smooth = torch.fft.ifft2(spectrum).real
    a, b = (0.07, -0.031), (0.052, 0.113)
    twice = transform_const(transform_const(smooth, shift(*a))[0], shift(*b))[0]
    once = transform_const(smooth, shift(a[0] + b[0], a[1] + b[1]))[0]
    torch.testing.assert_close(twice, once, atol=1e-5, rtol=0)
    # The Nyquist cosine loses its sine part on the grid, so with it a fractional shift composes
    # with whole-pixel shifts only.
    twice = transform_const(transform_const(const, shift(*a))[0], shift(0.25, -0.5))[0]
    once = transform_const(const, shift(a[0] + 0.25, a[1] - 0.5))[0]
    torch.testing.assert_close(twice, once, atol=1e-5, rtol=0)


def test_quarter_turn_is_rot90(net):
    G, ws = net
    const = G.synthesis.b4.const
    # Turning the picture by +90 degrees (y down) = torch.rot90 with k=1: out[i, j] = in[j, 3 - i].
    assert torch.equal(transform_const(const, turn(math.pi / 2))[0], torch.rot90(const, 1, dims=(-2, -1)))
    assert torch.equal(transform_const(const, turn(-math.pi / 2))[0], torch.rot90(const, -1, dims=(-2, -1)))
    moved = G.synthesis(ws, noise_mode="const", input_transform=turn(math.pi / 2))
    assert torch.equal(moved, with_const(G, torch.rot90(const, 1, dims=(-2, -1)), ws))


def test_the_same_matrix_moves_stylegan3_features_and_the_stylegan2_constant_alike():
    # A StyleGAN3 input sampled on a 4x4 grid spanning the image, with whole-cycle frequencies so
    # its features are periodic and band-limited: exactly what transform_const assumes. Both then
    # evaluate the same continuous picture at the transformed positions, for any matrix.
    torch.manual_seed(2)
    layer = SynthesisInput(w_dim=4, channels=4, size=4, sampling_rate=4, bandwidth=1.5)
    layer.freqs.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 1.0]]))
    w = torch.randn(1, 4)
    with torch.no_grad():
        still = layer(w)[0]  # the learned transform starts at the identity
        for m in (
            shift(0.13, -0.07),
            shift(-0.25, 0.0),
            turn(math.pi / 2),
            turn(math.pi / 2) @ shift(0.1, 0.2),
        ):
            torch.testing.assert_close(
                transform_const(still, m)[0], layer(w, transform=m)[0], atol=1e-5, rtol=0
            )


def test_bad_transforms_are_refused(net):
    G, ws = net
    with pytest.raises(ValueError, match="2 matrices for a batch of 3"):
        G.synthesis(ws, input_transform=torch.eye(3).repeat(2, 1, 1))
    with pytest.raises(ValueError, match="no constant input"):
        G.synthesis.b8(torch.zeros(3, 8, 4, 4), None, ws[:, :3], input_transform=torch.eye(3)[None])
