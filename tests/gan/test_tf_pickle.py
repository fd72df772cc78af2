"""TensorFlow-era StyleGAN2 / StyleGAN2-ADA pickles beyond the one NVIDIA-written fixture: other
resolutions, channel counts, conditional, grayscale / RGBA, resnet / skip / orig architectures,
and damaged or hostile files.

The files are written by tests/support/official_layout.py from one of our StyleGAN2 networks in
the TF naming and layout; the converted network must then compute exactly what the source did.
(The TF naming itself is pinned by NVIDIA's tf32 fixture in test_official_pickles_nvidia.py.)
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from gan.errors import ModelLoadError
from gan.model_io import load_model
from gan.networks.stylegan2 import Discriminator, Generator
from tests.support.official_layout import (
    install_official_modules,
    tf_discriminator_variables,
    tf_generator_variables,
    tf_network,
    write_tf_snapshot,
)


@pytest.fixture(autouse=True)
def official_modules(monkeypatch):
    return install_official_modules(monkeypatch)


def networks(
    res=16, channels=3, c_dim=0, fmap_base=64, fmap_max=16, g_arch="skip", d_arch="resnet", mapping=None
):  # noqa: E501
    """(G, D, G static_kwargs, D static_kwargs): our networks with random weights and the TF
    settings that describe them."""
    torch.manual_seed(res + channels + c_dim)
    g_static = dict(
        latent_size=8,
        dlatent_size=8,
        label_size=c_dim,
        resolution=res,
        num_channels=channels,
        fmap_base=fmap_base,
        fmap_max=fmap_max,
        architecture=g_arch,
    )
    g_static["truncation_psi"] = 0.5  # a sampling setting TF files carry; not part of the weights
    if mapping is not None:
        g_static["mapping_layers"] = mapping
    G = Generator(
        z_dim=8,
        c_dim=c_dim,
        w_dim=8,
        img_resolution=res,
        img_channels=channels,
        channel_base=fmap_base * 2,
        channel_max=fmap_max,
        num_fp16_res=0,
        conv_clamp=None,
        architecture=g_arch,
        mapping_kwargs=dict(num_layers=8 if mapping is None else mapping),
    )
    d_static = dict(
        label_size=c_dim,
        resolution=res,
        num_channels=channels,
        fmap_base=fmap_base,
        fmap_max=fmap_max,
        architecture=d_arch,
        mbstd_group_size=2,
    )
    D = Discriminator(
        c_dim=c_dim,
        img_resolution=res,
        img_channels=channels,
        architecture=d_arch,
        channel_base=fmap_base * 2,
        channel_max=fmap_max,
        num_fp16_res=0,
        conv_clamp=None,
        epilogue_kwargs=dict(mbstd_group_size=2),
        mapping_kwargs=dict(num_layers=0),  # TF's D_main default
    )
    with torch.no_grad():
        for net in (G, D):
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
        for name, buf in G.named_buffers():
            if name.endswith("noise_const"):
                buf.normal_()
    return G.eval(), D.eval(), g_static, d_static


def outputs(G, D, c_dim: int):
    torch.manual_seed(1)
    z, c = torch.randn([2, G.z_dim]), torch.eye(max(c_dim, 1))[[0, 1 % max(c_dim, 1)], :c_dim]
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7)
        img = G.synthesis(ws, noise_mode="const")
        return ws, img, D(img, c)


CASES = {
    "config-f-like skip/resnet": dict(),
    "conditional": dict(c_dim=3),
    "grayscale": dict(channels=1),
    "rgba": dict(channels=4),
    "resnet G, skip D, 32 px": dict(res=32, g_arch="resnet", d_arch="skip"),
    "orig (progressive era)": dict(g_arch="orig", d_arch="orig"),
    "config-e channels, 2 mapping layers": dict(fmap_base=32, fmap_max=32, mapping=2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_converted_networks_compute_what_the_source_did(tmp_path, case):
    settings = CASES[case]
    G, D, g_static, d_static = networks(**settings)
    path = tmp_path / "tf.pkl"
    write_tf_snapshot(path, G, D, g_static, d_static)
    model = load_model(path)
    assert model.metadata["era"] == "tensorflow" and model.arch == "stylegan2"
    assert model.g_kwargs["architecture"] == settings.get("g_arch", "skip")
    assert model.d_kwargs["architecture"] == settings.get("d_arch", "resnet")
    assert all(not net["unused_variables"] for net in model.metadata["official_networks"].values())
    expected = outputs(G, D, settings.get("c_dim", 0))
    for got_net in (model.G, model.G_train):
        got = outputs(got_net, model.D, settings.get("c_dim", 0))
        for a, b, what in zip(got, expected, ("ws", "img", "logits")):
            assert (a - b).abs().max().item() <= 1e-5, what


def test_unknown_tf_setting_is_refused_by_name(tmp_path):
    G, D, g_static, d_static = networks()
    path = tmp_path / "tf.pkl"
    write_tf_snapshot(path, G, D, dict(g_static, spatial_dropout=0.5), d_static)
    with pytest.raises(ModelLoadError, match="settings this converter does not know: spatial_dropout"):
        load_model(path)


def test_old_network_format_is_refused(tmp_path):
    G, D, g_static, d_static = networks()
    path = tmp_path / "tf.pkl"
    net = tf_network("Gs", g_static, [])
    net.state["version"] = 3
    with open(path, "wb") as f:
        pickle.dump((net, net, net), f)
    with pytest.raises(ModelLoadError, match="format version 3.*StyleGAN1 files are not supported"):
        load_model(path)


def test_missing_variable_and_wrong_values_are_refused(tmp_path):
    G, D, g_static, d_static = networks()
    top, mapping, synthesis = tf_generator_variables(G)

    def write(d_variables):
        parts = {
            "mapping": tf_network("G_mapping", g_static, mapping),
            "synthesis": tf_network("G_synthesis", g_static, synthesis),
        }
        gs = tf_network("Gs", g_static, top, parts)
        path = tmp_path / "tf.pkl"
        with open(path, "wb") as f:
            pickle.dump((gs, tf_network("D", d_static, d_variables), gs), f)
        return path

    good = tf_discriminator_variables(D)
    without = [(n, v) for n, v in good if n != "Output/bias"]
    with pytest.raises(ModelLoadError, match="lacks TensorFlow variables its settings need: Output/bias"):
        load_model(write(without))
    as_text = [(n, "0.5" if n == "Output/bias" else v) for n, v in good]
    with pytest.raises(ModelLoadError, match="variable Output/bias is a str, not a numeric array"):
        load_model(write(as_text))
    objects = [(n, np.array([None], dtype=object) if n == "Output/bias" else v) for n, v in good]
    with pytest.raises(ModelLoadError, match="unsupported numpy dtype"):
        load_model(write(objects))
    wrong_shape = [(n, np.zeros(7, np.float32) if n == "Output/bias" else v) for n, v in good]
    with pytest.raises(ModelLoadError, match="wrong shapes"):
        load_model(write(wrong_shape))
    # Only G_ema is needed to render: a damaged D does not stop that.
    assert load_model(write(without), training_nets=False).D is None


def test_build_module_source_is_never_run(tmp_path, monkeypatch):
    from tests.support import official_layout as layout

    marker = tmp_path / "ran"
    monkeypatch.setattr(layout, "MARKER_COMMAND", f"touch {marker}")
    G, D, g_static, d_static = networks()
    path = tmp_path / "tf.pkl"
    write_tf_snapshot(path, G, D, g_static, d_static)
    assert f"touch {marker}".encode() in path.read_bytes()
    load_model(path)
    assert not marker.exists()
