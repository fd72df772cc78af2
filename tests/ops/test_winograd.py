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
    """(tile size, up) of every Winograd convolution made while the test runs."""
    tiles = []
    real = winograd.convolve

    def spy(ext, x, u, out_size, padding, m, up=1, *args, **kwargs):
        tiles.append((m, up))
        return real(ext, x, u, out_size, padding, m, up, *args, **kwargs)

    monkeypatch.setattr(winograd, "convolve", spy)
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
    assert winograd_tiles == [(2, 1)]
    assert (got - want).abs().max().item() <= 1e-5
    with torch.no_grad():  # the reference impl never takes it
        conv2d_resample.conv2d_resample(x, w, padding=1, impl="ref")
    conv2d_resample.conv2d_resample(x[:, :16], w[:, :16], padding=1, impl="cpu")  # few channels
    assert winograd_tiles == [(2, 1)]
    # Under gradients: torch's convolution, so the backward is torch's too.
    xg = x.clone().requires_grad_()
    conv2d_resample.conv2d_resample(xg, w, padding=1, impl="cpu").square().sum().backward()
    assert winograd_tiles == [(2, 1)]
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
    assert (m, 1) in winograd_tiles  # the 3x3 layers did go through Winograd
    if name == "sg2" and m == 4:  # and StyleGAN2's upsampling layers as four phase convolutions
        assert (4, 2) in winograd_tiles
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
    assert winograd_tiles == [(4, 1)]
    assert (got - want).abs().max().item() <= 1e-4 * want.abs().max().item()


def test_an_empty_batch_gives_an_empty_output():
    x = torch.zeros(0, 64, 30, 30)
    w = torch.randn(64, 64, 3, 3)
    with torch.no_grad():
        y = conv2d_resample.conv2d_resample(x, w, padding=1, impl="cpu")
    assert y.shape == (0, 64, 30, 30)


@pytest.mark.parametrize("m", winograd.TILE_SIZES)
@pytest.mark.parametrize("flip_weight", [False, True])
@pytest.mark.parametrize("taps", ["binomial", "asymmetric-2d", "asymmetric-1d"])
def test_upsampling_layer_as_four_phase_convolutions_equals_conv2d_resample(ext, m, flip_weight, taps):
    """StyleGAN2's up=2 layer (transposed convolution, then the 4-tap filter) as four 3x3 phase
    convolutions at the input's resolution, interleaved by the output transform, with per-sample
    channel scales inside the transforms: the same numbers as conv2d_resample, to float64 rounding.
    Asymmetric filters catch a flipped filter or phase; odd sizes catch a shifted one."""
    from ops_cuda.upfirdn2d import setup_filter

    gen = torch.Generator().manual_seed(4)
    f = {
        "binomial": lambda: setup_filter([1, 3, 3, 1]),
        "asymmetric-2d": lambda: setup_filter(torch.rand(4, 4, generator=gen) + 0.1),
        "asymmetric-1d": lambda: setup_filter(torch.rand(4, generator=gen) + 0.1, separable=True),
    }[taps]()
    x = torch.randn(2, 5, 13, 11, generator=gen, dtype=torch.float64)
    w = torch.randn(6, 5, 3, 3, generator=gen, dtype=torch.float64)
    s_in = torch.rand(2, 5, generator=gen, dtype=torch.float64) + 0.5
    s_out = torch.rand(2, 6, generator=gen, dtype=torch.float64) + 0.5
    want = conv2d_resample.scaled_conv3x3_ref(x, w, 1, 2, f, flip_weight, s_in, s_out)
    u = winograd.transform_weight_up2(w, f, m, flip_weight)
    got = winograd.convolve(ext, x, u, (13, 11), (1, 1), m, up=2, in_scale=s_in, out_scale=s_out)
    assert got.shape == want.shape == (2, 6, 26, 22)
    # The filter is float32 (setup_filter); the phase kernels are formed from it in float64.
    assert (got - want).abs().max().item() <= 1e-6 * want.abs().max().item()


@pytest.mark.parametrize("flip_weight", [False, True])
def test_scaled_conv_cpu_twin_equals_reference(flip_weight):
    """The 'scaled_conv3x3' op: scales inside the transforms equal scaling the activations."""
    from ops_cuda._cpu_ops import scaled_conv3x3_cpu

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 128, 30, 26, generator=gen, dtype=torch.float64)
    w = torch.randn(48, 128, 3, 3, generator=gen, dtype=torch.float64)
    s_in, s_out = torch.rand(2, 128, generator=gen, dtype=torch.float64), torch.rand(2, 48, generator=gen)
    assert winograd.tile_for(x, w, (1, 1)) is not None  # really the Winograd path
    want = conv2d_resample.scaled_conv3x3_ref(x, w, 1, 1, None, flip_weight, s_in, s_out)
    got = scaled_conv3x3_cpu(x, w, 1, 1, None, flip_weight, s_in, s_out)
    assert (got - want).abs().max().item() <= 1e-12 * want.abs().max().item()


def test_upsampling_phases_only_with_f4x4_and_never_for_gradients():
    """Four phases by F(2x2) would do 16/9 of the direct multiply-adds: small inputs stay with
    oneDNN; and scales that want a gradient (projection) keep torch's differentiable path."""
    w = torch.zeros(128, 256, 3, 3)
    assert winograd.tile_for(torch.zeros(1, 256, 64, 64), w, (1, 1), up=2) == 4
    assert winograd.tile_for(torch.zeros(1, 256, 32, 32), w, (1, 1), up=2) is None
    styles = torch.ones(1, 256, requires_grad=True)
    assert winograd.tile_for(torch.zeros(1, 256, 64, 64), w, (1, 1), up=2, scales=(styles,)) is None
    with torch.no_grad():
        assert winograd.tile_for(torch.zeros(1, 256, 64, 64), w, (1, 1), up=2, scales=(styles,)) == 4


def test_modulated_upsampling_layer_runs_by_phases_and_matches_reference(winograd_tiles):
    from ops_cuda.modconv import modulated_conv2d
    from ops_cuda.upfirdn2d import setup_filter

    gen = torch.Generator().manual_seed(6)
    x = torch.randn(1, 128, 48, 48, generator=gen)
    weight = torch.randn(64, 128, 3, 3, generator=gen)
    styles = torch.randn(1, 128, generator=gen)
    f = setup_filter([1, 3, 3, 1])
    kw = dict(up=2, padding=1, resample_filter=f, flip_weight=False)
    with torch.no_grad():
        want = modulated_conv2d(x, weight, styles, impl="ref", **kw)
        got = modulated_conv2d(x, weight, styles, impl="cpu", **kw)
    assert winograd_tiles == [(4, 2)]
    assert got.shape == want.shape == (1, 64, 96, 96)
    assert (got - want).abs().max().item() <= 1e-4 * want.abs().max().item()
