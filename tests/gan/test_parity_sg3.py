"""StyleGAN3 generator (configs T and R) against outputs of NVIDIA's official implementation.

The fixtures (`tests/fixtures/official/sg3_{t,r}.{json,npz}`) hold the official constructor
kwargs, layer schedule, state dict and mapping/synthesis outputs; see their README.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gan.networks.stylegan3 import Generator
from tests.support.paths import OFFICIAL as FIXTURES

NETS = ["sg3_t", "sg3_r"]
NUM_IMAGES = 2  # images checked per output (of 4 in the fixture); the reference ops are slow on CPU


class Fixture:
    def __init__(self, name: str):
        self.meta = json.loads((FIXTURES / f"{name}.json").read_text())
        with np.load(FIXTURES / f"{name}.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        self.io = {k[3:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("io/")}
        self.state = {k: torch.from_numpy(v) for k, v in arrays.items() if not k.startswith("io/")}

    def build(self, load: bool = True) -> Generator:
        G = Generator(**self.meta["init_kwargs"])
        if load:
            G.load_state_dict(self.state, strict=True)
        return G.eval().requires_grad_(False)


@pytest.fixture(scope="module", params=NETS)
def fx(request) -> Fixture:
    return Fixture(request.param)  # a missing fixture fails: they are part of the repository


@pytest.fixture(scope="module")
def G(fx) -> Generator:
    return fx.build()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


# -- structure ---------------------------------------------------------------------------------


def test_state_dict_keys_equal_official(fx):
    G = fx.build(load=False)
    assert list(G.state_dict()) == list(fx.state)  # same names, same order
    for key, value in G.state_dict().items():
        assert value.shape == fx.state[key].shape, key
    assert G.num_ws == G.synthesis.num_ws == fx.io["ws_psi1.0"].shape[1] == 16
    assert G.init_kwargs == fx.meta["init_kwargs"]
    assert G.init_kwargs is not fx.meta["init_kwargs"]


def test_layer_schedule_equals_official(fx):
    G = fx.build(load=False)
    layers = fx.meta["layers"]
    assert G.synthesis.layer_names == [spec["name"] for spec in layers]
    for spec in layers:
        layer = getattr(G.synthesis, spec["name"])
        for key, want in spec.items():  # every attribute the official layer records, but its name
            if key == "name":
                continue
            got = getattr(layer, key)
            if isinstance(want, float):  # cutoffs and half widths: float64 maths, same formulas
                assert got == pytest.approx(want, rel=1e-12, abs=0), (spec["name"], key)
            else:
                assert got == want, (spec["name"], key)
    first = layers[0]
    assert G.synthesis.input.size == first["in_size"]
    assert G.synthesis.input.sampling_rate == first["in_sampling_rate"]
    assert G.synthesis.input.bandwidth == pytest.approx(first["in_cutoff"], rel=1e-12)


def test_designed_filters_equal_official(fx):
    """Filters are buffers, so loading the state dict would hide a wrong design: check fresh ones."""
    G = fx.build(load=False)
    checked = 0
    for key, value in G.state_dict().items():
        if key.endswith(("up_filter", "down_filter")):
            assert max_diff(value, fx.state[key]) <= 1e-7, key
            checked += 1
    assert checked == 2 * (len(fx.meta["layers"]) - 1)  # every layer but toRGB has both
    # Config R: radially symmetric (2-D) down filters, except in the critically sampled layers.
    radial = fx.meta["init_kwargs"].get("use_radial_filters", False)
    for name in G.synthesis.layer_names[:-1]:
        layer = getattr(G.synthesis, name)
        assert layer.down_filter.ndim == (2 if radial and not layer.is_critically_sampled else 1), name


# -- outputs -----------------------------------------------------------------------------------


def test_ws_match_official(fx, G):
    z, c = fx.io["z"], fx.io["c"]
    with torch.no_grad():
        for psi in ("1.0", "0.7"):
            ws = G.mapping(z, c, truncation_psi=float(psi))
            diff = max_diff(ws, fx.io[f"ws_psi{psi}"])
            print(f"ws psi={psi}: max abs diff {diff:.3g}")
            assert diff <= 1e-5


def test_image_psi1_matches_official(fx, G):
    ws = fx.io["ws_psi1.0"][:NUM_IMAGES]
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const", force_fp32=True)
    diff = max_diff(img, fx.io["img_psi1.0"][:NUM_IMAGES])
    print(f"img psi=1.0: max abs diff {diff:.3g}")
    assert diff <= 1e-4


def test_generator_forward_psi07_matches_official(fx, G):
    z, c = fx.io["z"][:NUM_IMAGES], fx.io["c"][:NUM_IMAGES]
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.7, noise_mode="const", force_fp32=True)
    diff = max_diff(img, fx.io["img_psi0.7"][:NUM_IMAGES])
    print(f"img psi=0.7: max abs diff {diff:.3g}")
    assert diff <= 1e-4


def test_transformed_image_matches_official(fx):
    G = fx.build()
    G.synthesis.input.transform.copy_(fx.io["input_transform"])
    ws = fx.io["ws_psi0.7"][:NUM_IMAGES]
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const", force_fp32=True)
    want = fx.io["img_psi0.7_transformed"][:NUM_IMAGES]
    diff = max_diff(img, want)
    print(f"img psi=0.7 transformed: max abs diff {diff:.3g}")
    assert diff <= 1e-4
    assert max_diff(want, fx.io["img_psi0.7"][:NUM_IMAGES]) > 0.01  # the transform does change the image


# -- per-sample input transform (tiny networks) ------------------------------------------------


def tiny_generator(config: str, **kwargs) -> Generator:
    torch.manual_seed(0)
    extra = dict(conv_kernel=1, use_radial_filters=True) if config == "r" else {}
    G = Generator(
        z_dim=16,
        c_dim=0,
        w_dim=16,
        img_resolution=16,
        img_channels=3,
        channel_base=512,
        channel_max=16,
        **extra,
        **kwargs,
    )
    return G.eval().requires_grad_(False)


def transform(angle_deg: float, tx: float, ty: float) -> torch.Tensor:
    a = math.radians(angle_deg)
    m = torch.tensor([[math.cos(a), math.sin(a), tx], [-math.sin(a), math.cos(a), ty], [0, 0, 1]])
    return torch.linalg.inv(m)


@pytest.mark.parametrize("config", ["t", "r"])
def test_per_sample_transform_equals_batch_wide(config):
    G = tiny_generator(config)
    ws = torch.randn([3, G.num_ws, G.w_dim], generator=torch.Generator().manual_seed(1))
    T = transform(30, 0.2, -0.1)
    with torch.no_grad():
        plain = G.synthesis(ws, force_fp32=True)
        per_sample = G.synthesis(ws, force_fp32=True, input_transform=T.expand(3, 3, 3))
        G.synthesis.input.transform.copy_(T)
        batch_wide = G.synthesis(ws, force_fp32=True)
    assert max_diff(per_sample, batch_wide) <= 1e-6
    assert max_diff(per_sample, plain) > 1e-2


@pytest.mark.parametrize("config", ["t", "r"])
def test_per_sample_transforms_equal_single_runs(config):
    G = tiny_generator(config)
    ws = torch.randn([3, G.num_ws, G.w_dim], generator=torch.Generator().manual_seed(2))
    Ts = torch.stack([torch.eye(3), transform(45, 0.0, 0.0), transform(-10, 0.1, 0.25)])
    with torch.no_grad():
        batch = G.synthesis(ws, force_fp32=True, input_transform=Ts)
        for i in range(3):
            G.synthesis.input.transform.copy_(Ts[i])
            alone = G.synthesis(ws[i : i + 1], force_fp32=True)
            assert max_diff(batch[i : i + 1], alone) <= 1e-5, i
    assert max_diff(batch[1], batch[2]) > 1e-2


def test_input_transform_batch_mismatch_raises():
    G = tiny_generator("t")
    ws = torch.zeros([3, G.num_ws, G.w_dim])
    with pytest.raises(ValueError, match="2 matrices for a batch of 3"):
        G.synthesis(ws, input_transform=torch.eye(3).expand(2, 3, 3))


# -- other behaviour ---------------------------------------------------------------------------


def test_fp16_layers_run_in_fp32_on_cpu():
    G = tiny_generator("t")  # default num_fp16_res=4: every layer of a 16 px network asks for fp16
    assert all(getattr(G.synthesis, name).use_fp16 for name in G.synthesis.layer_names)
    ws = torch.randn([2, G.num_ws, G.w_dim], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        auto = G.synthesis(ws)
        fp32 = G.synthesis(ws, force_fp32=True)
    assert auto.dtype == torch.float32 and torch.equal(auto, fp32)


def test_update_emas_tracks_input_magnitude():
    G = tiny_generator("t", magnitude_ema_beta=0.9)
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    x = torch.randn([2, layer.in_channels, layer.in_size[1], layer.in_size[0]]) * 3
    w = torch.randn([2, G.w_dim])
    layer.magnitude_ema.fill_(2.0)
    with torch.no_grad():
        layer(x, w)
        assert layer.magnitude_ema.item() == 2.0  # no update unless asked
        layer(x, w, update_emas=True)
    expected = 0.9 * 2.0 + 0.1 * x.square().mean().item()
    assert layer.magnitude_ema.item() == pytest.approx(expected, rel=1e-5)


def test_unknown_kwarg_is_refused():
    with pytest.raises(TypeError):
        tiny_generator("t", no_such_option=1)
