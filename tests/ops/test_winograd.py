"""Winograd 3x3 convolution (ops_cuda/winograd.py): equal to torch's convolution, chosen only where
the rule says, never under gradients, and the generators still match NVIDIA's outputs with it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan.networks import stylegan2, stylegan3
from ops_cuda import _native, conv2d_resample, winograd
from tests.support.paths import OFFICIAL as FIXTURES


@pytest.fixture
def winograd_tiles(monkeypatch):
    """The tile size of every winograd.conv3x3 call made while the test runs."""
    tiles = []
    real = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *a, **k: tiles.append(a[4]) or real(*a, **k))
    return tiles


@pytest.fixture(scope="module")
def ext():
    return _native.load_extension("cpu")  # the transforms are C++: a failed build fails these tests


SHAPES = [  # N, C, O, H, W, pad y, pad x: odd sizes, partial tiles, asymmetric padding, 1x1 input
    (1, 3, 5, 7, 9, 0, 0),
    (2, 4, 6, 10, 13, 1, 1),
    (1, 8, 8, 5, 5, 2, 2),
    (3, 2, 3, 17, 6, 1, 2),
    (1, 16, 4, 1, 1, 1, 1),
]


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
@pytest.mark.parametrize("shape", SHAPES)
def test_equals_direct_convolution_float64(ext, shape, m):
    n, c, o, h, w, py, px = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    wt = torch.randn(o, c, 3, 3, generator=gen, dtype=torch.float64)
    want = F.conv2d(x, wt, padding=[py, px])
    for band_bytes in (1, 1 << 30):  # one tile row per band, and all in one band
        got = winograd.conv3x3(ext, x, wt, (py, px), m, band_bytes=band_bytes)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() <= 1e-12


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
def test_float32_error_is_rounding_only(ext, m):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 64, 23, 20, generator=gen)
    wt = torch.randn(32, 64, 3, 3, generator=gen) / 24
    want = F.conv2d(x.double(), wt.double(), padding=[1, 1])
    got = winograd.conv3x3(ext, x, wt, (1, 1), m)
    assert got.dtype == torch.float32
    assert (got.double() - want).abs().max().item() <= 1e-5 * want.abs().max().item()


def test_rule_sends_small_layers_to_onednn():
    assert winograd.pick_tile(16, 16, 256, 256) is None  # few channels: oneDNN is faster
    assert winograd.pick_tile(512, 512, 8, 8) is None  # too few tiles
    assert winograd.pick_tile(512, 512, 32, 32) == 2
    assert winograd.pick_tile(512, 512, 86, 86) == 4
    assert winograd.pick_tile(64, 64, 54, 54, batch=8) is None  # a batch: oneDNN gains more
    assert winograd.pick_tile(512, 512, 38, 38, batch=8) == 4


def test_conv2d_resample_uses_winograd_only_where_picked_and_without_gradients(winograd_tiles):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 256, 30, 30, generator=gen)
    w = torch.randn(128, 256, 3, 3, generator=gen) / 48
    want = F.conv2d(x, w, padding=1)
    with torch.no_grad():
        got = conv2d_resample.conv2d_resample(x, w, padding=1, impl="cpu")
    assert winograd_tiles == [2]
    assert (got - want).abs().max().item() <= 1e-5
    with torch.no_grad():  # the reference impl never takes it
        conv2d_resample.conv2d_resample(x, w, padding=1, impl="ref")
    conv2d_resample.conv2d_resample(x[:, :16], w[:, :16], padding=1, impl="cpu")  # few channels
    assert winograd_tiles == [2]
    # Under gradients: torch's convolution, so the backward is torch's too.
    xg = x.clone().requires_grad_()
    conv2d_resample.conv2d_resample(xg, w, padding=1, impl="cpu").square().sum().backward()
    assert winograd_tiles == [2]
    xr = x.clone().requires_grad_()
    F.conv2d(xr, w, padding=1).square().sum().backward()
    assert (xg.grad - xr.grad).abs().max().item() <= 1e-4


def _fixture(name: str):
    meta = json.loads((FIXTURES / f"{name}.json").read_text())
    with np.load(FIXTURES / f"{name}.npz") as npz:
        arrays = {k: torch.from_numpy(npz[k]) for k in npz.files}
    io = {k[3:]: v for k, v in arrays.items() if k.startswith("io/")}
    state = {k: v for k, v in arrays.items() if not k.startswith("io/")}
    return meta["init_kwargs"], state, io


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
@pytest.mark.parametrize("name", ["sg3_t", "sg2"])
def test_generators_match_official_with_every_conv3x3_by_winograd(monkeypatch, winograd_tiles, name, m):
    """The fixtures' small channel counts would all go to oneDNN: force the tile size everywhere.
    One image at a time: a batch of this size runs its layers as grouped convolutions (per-sample
    weights), which stay with torch."""
    monkeypatch.setattr(winograd, "pick_tile", lambda *a, **k: m)
    kwargs, state, io = _fixture(name)
    net = stylegan3 if name == "sg3_t" else stylegan2
    G = net.Generator(**kwargs).eval().requires_grad_(False)
    G.load_state_dict(state, strict=True)
    with torch.no_grad():
        img = torch.cat(
            [G.synthesis(io["ws_psi1.0"][i : i + 1], noise_mode="const", force_fp32=True) for i in range(2)]
        )
    assert winograd_tiles  # the 3x3 layers did go through Winograd
    assert (img - io["img_psi1.0"][:2]).abs().max().item() <= 1e-4


def test_modulated_conv_of_a_batch_shares_the_weight_where_winograd_runs(winograd_tiles):
    """Per-sample (grouped) weights would bypass Winograd: a batch scales the activations instead."""
    from ops_cuda.modconv import modulated_conv2d

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 128, 50, 50, generator=gen)
    weight = torch.randn(64, 128, 3, 3, generator=gen)
    styles = torch.randn(3, 128, generator=gen)
    with torch.no_grad():
        want = modulated_conv2d(x, weight, styles, padding=1, impl="ref")
        got = modulated_conv2d(x, weight, styles, padding=1, impl="cpu")
        # Few channels on a small image: grouped oneDNN.
        modulated_conv2d(x[:, :64, :30, :30], weight[:, :64], styles[:, :64], padding=1, impl="cpu")
    assert winograd_tiles == [4]
    assert (got - want).abs().max().item() <= 1e-4 * want.abs().max().item()


def test_an_empty_batch_gives_an_empty_output():
    x = torch.zeros(0, 64, 30, 30)
    w = torch.randn(64, 64, 3, 3)
    with torch.no_grad():
        y = conv2d_resample.conv2d_resample(x, w, padding=1, impl="cpu")
    assert y.shape == (0, 64, 30, 30)
