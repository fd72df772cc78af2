"""StyleGAN2 G and D against outputs of NVIDIA's official implementation (fixtures), plus
behaviour the fixtures do not pin down (noise modes, conditioning, architectures, CPU fp16)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan.networks.stylegan2 import Discriminator, Generator, MinibatchStdLayer
from tests.support.paths import OFFICIAL as FIXTURES

TINY_G = dict(z_dim=8, w_dim=8, img_resolution=16, img_channels=3, channel_base=128, channel_max=8)
TINY_D = dict(img_resolution=16, img_channels=3, channel_base=128, channel_max=8)


def load_fixture(name: str) -> tuple[dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(init_kwargs, official state_dict, io tensors)."""
    cfg = json.loads((FIXTURES / f"{name}.json").read_text())
    data = np.load(FIXTURES / f"{name}.npz")
    state = {k: torch.from_numpy(data[k]) for k in data.files if not k.startswith("io/")}
    io = {k[3:]: torch.from_numpy(data[k]) for k in data.files if k.startswith("io/")}
    return cfg["init_kwargs"], state, io


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def sg2():
    kwargs, state, io = load_fixture("sg2")
    G = Generator(**kwargs).eval().requires_grad_(False)
    G.load_state_dict(state, strict=True)
    return G, io


@pytest.fixture(scope="module")
def disc():
    kwargs, state, io = load_fixture("disc")
    D = Discriminator(**kwargs).eval().requires_grad_(False)
    D.load_state_dict(state, strict=True)
    return D, io


# ---- parity with the official code ----------------------------------------------------------------


def test_generator_layout_matches_official(sg2):
    G, io = sg2
    assert G.num_ws == io["ws_psi1.0"].shape[1] == 10
    assert G.init_kwargs == load_fixture("sg2")[0]
    # Rebuilding from the saved kwargs gives the same parameter layout.
    assert Generator(**G.init_kwargs).state_dict().keys() == G.state_dict().keys()


@pytest.mark.parametrize("psi", ["1.0", "0.7"])
def test_mapping_matches_official(sg2, psi):
    G, io = sg2
    ws = G.mapping(io["z"], io["c"], truncation_psi=float(psi))
    assert max_diff(ws, io[f"ws_psi{psi}"]) <= 1e-5


@pytest.mark.parametrize("fused_modconv", [True, False])
@pytest.mark.parametrize("psi", ["1.0", "0.7"])
def test_synthesis_matches_official(sg2, psi, fused_modconv):
    G, io = sg2
    img = G.synthesis(io[f"ws_psi{psi}"], noise_mode="const", force_fp32=True, fused_modconv=fused_modconv)
    assert img.dtype == torch.float32
    assert max_diff(img, io[f"img_psi{psi}"]) <= 1e-4


def test_full_generator_forward_matches_official(sg2):
    G, io = sg2
    img = G(io["z"], io["c"], truncation_psi=0.7, noise_mode="const")
    assert max_diff(img, io["img_psi0.7"]) <= 1e-4


def test_discriminator_matches_official(disc):
    D, io = disc
    assert D.init_kwargs["conv_clamp"] == 256 and D.init_kwargs["num_fp16_res"] == 4  # official defaults
    logits = D(io["img"], torch.zeros([4, 0]))
    assert logits.shape == (4, 1)
    assert max_diff(logits, io["logits"]) <= 1e-4


# ---- noise modes ----------------------------------------------------------------------------------


def test_noise_modes(sg2):
    G, io = sg2
    ws = io["ws_psi0.7"][:2]
    const_a = G.synthesis(ws, noise_mode="const")
    const_b = G.synthesis(ws, noise_mode="const")
    none = G.synthesis(ws, noise_mode="none")
    rand_a = G.synthesis(ws, noise_mode="random")
    rand_b = G.synthesis(ws, noise_mode="random")
    assert torch.equal(const_a, const_b)
    assert max_diff(none, const_a) > 1e-3
    assert max_diff(rand_a, rand_b) > 1e-3
    assert max_diff(rand_a, const_a) > 1e-3
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="bogus")


def test_zero_noise_strength_makes_modes_equal():
    torch.manual_seed(0)
    G = Generator(c_dim=0, num_fp16_res=0, **TINY_G).eval()  # noise_strength starts at 0
    ws = torch.randn([2, G.num_ws, G.w_dim])
    with torch.no_grad():
        ref = G.synthesis(ws, noise_mode="none")
        assert torch.equal(G.synthesis(ws, noise_mode="const"), ref)
        assert torch.equal(G.synthesis(ws, noise_mode="random"), ref)


# ---- conditioning and gradients ---------------------------------------------------------------------


def test_conditional_generator_and_discriminator_train_step():
    torch.manual_seed(0)
    G = Generator(c_dim=3, mapping_kwargs=dict(num_layers=2), num_fp16_res=0, **TINY_G).train()
    D = Discriminator(c_dim=3, mapping_kwargs=dict(num_layers=2), **TINY_D).train()
    assert D.cmap_dim == 8 and hasattr(D, "mapping") and hasattr(G.mapping, "embed")
    z = torch.randn([4, G.z_dim])
    c = torch.eye(3)[[0, 1, 2, 0]]
    img = G(z, c, update_emas=True)  # training mode: the non-fused modconv path
    assert img.shape == (4, 3, 16, 16) and torch.isfinite(img).all()
    assert G.mapping.w_avg.abs().sum() > 0  # the tracked average moved
    logits = D(img, c)
    assert logits.shape == (4, 1)
    torch.nn.functional.softplus(-logits).mean().backward()
    for name, module in [("G", G), ("D", D)]:
        for pname, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}.{pname}"
    # The labels matter for both networks.
    with torch.no_grad():
        other_c = torch.eye(3)[[1, 2, 0, 1]]
        assert max_diff(G(z, c, noise_mode="const"), G(z, other_c, noise_mode="const")) > 1e-4
        assert max_diff(D(img, c), D(img, other_c)) > 1e-6


def test_fused_and_unfused_modconv_agree_in_training_mode():
    torch.manual_seed(1)
    G = Generator(c_dim=0, num_fp16_res=0, fused_modconv_default="inference_only", **TINY_G)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    ws = torch.randn([3, G.num_ws, G.w_dim])
    with torch.no_grad():
        train_img = G.train().synthesis(ws, noise_mode="const")  # 'inference_only' -> not fused
        eval_img = G.eval().synthesis(ws, noise_mode="const")  # fused
    assert max_diff(train_img, eval_img) <= 1e-5


# ---- architectures, fp16 settings, minibatch stddev -----------------------------------------------


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_architectures_run(architecture):
    torch.manual_seed(0)
    G = Generator(c_dim=0, architecture=architecture, num_fp16_res=0, **TINY_G).eval()
    D = Discriminator(c_dim=0, architecture=architecture, **TINY_D)
    assert hasattr(G.synthesis.b8, "skip") == (architecture == "resnet")
    assert hasattr(G.synthesis.b8, "torgb") == (architecture == "skip")
    assert hasattr(D.b16, "fromrgb") and hasattr(D.b8, "fromrgb") == (architecture == "skip")
    with torch.no_grad():
        img = G(torch.randn([2, G.z_dim]), None)
        logits = D(img, None)
    assert img.shape == (2, 3, 16, 16) and logits.shape == (2, 1)
    assert torch.isfinite(img).all() and torch.isfinite(logits).all()
    with pytest.raises(ValueError, match="architecture"):
        Generator(c_dim=0, architecture="bogus", **TINY_G)


def test_fp16_blocks_run_in_float32_on_cpu():
    torch.manual_seed(0)
    G16 = Generator(c_dim=0, num_fp16_res=4, **TINY_G).eval()
    G32 = Generator(c_dim=0, num_fp16_res=0, **TINY_G).eval()
    G32.load_state_dict(G16.state_dict())
    assert G16.synthesis.b16.use_fp16 and not G32.synthesis.b16.use_fp16
    ws = torch.randn([2, G16.num_ws, G16.w_dim])
    with torch.no_grad():
        assert torch.equal(G16.synthesis(ws, noise_mode="const"), G32.synthesis(ws, noise_mode="const"))


def test_frozen_discriminator_layers_are_buffers():
    D = Discriminator(c_dim=0, block_kwargs=dict(freeze_layers=2), **TINY_D)
    params = dict(D.named_parameters())
    # b16: fromrgb (layer 0) and conv0 (layer 1) frozen; conv1 trainable.
    assert "b16.fromrgb.weight" not in params and "b16.conv0.weight" not in params
    assert "b16.conv1.weight" in params and "b16.fromrgb.weight" in D.state_dict()


def test_minibatch_std_groups_interleave():
    """Sample i belongs to group i % (N / group_size), as in the official layer."""
    torch.manual_seed(0)
    x = torch.randn([8, 4, 3, 3])
    y = MinibatchStdLayer(group_size=4, num_channels=2)(x)
    assert y.shape == (8, 6, 3, 3)
    for i in range(8):
        members = x[i % 2 :: 2]  # the 4 samples sharing i's group
        for f in range(2):
            part = members[:, 2 * f : 2 * f + 2]
            std = (part.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
            assert torch.allclose(y[i, 4 + f], std.expand(3, 3), atol=1e-6)
