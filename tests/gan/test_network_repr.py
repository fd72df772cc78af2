"""The networks' printed form names each layer's shape (attrs_repr), so `print(G)` shows a model's
structure at a glance."""

from __future__ import annotations

from gan.networks.stylegan2 import Discriminator
from tests.support.tiny import make_plain_generator


def test_stylegan2_repr_lists_layer_settings():
    text = repr(make_plain_generator("stylegan2"))
    assert "w_dim=16, num_ws=6, img_resolution=16, img_channels=3, num_fp16_res=0" in text
    assert "in_channels=16, out_channels=16, w_dim=16, resolution=8, up=2, activation=lrelu" in text
    assert "z_dim=16, c_dim=0, w_dim=16, num_ws=6" in text
    assert "FullyConnectedLayer(in_features=16, out_features=16, activation=lrelu)" in text


def test_discriminator_repr_lists_layer_settings():
    D = Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=64, channel_max=16)
    text = repr(D)
    assert text.startswith("Discriminator(\n  c_dim=0, img_resolution=16, img_channels=3\n")
    assert "Conv2dLayer(in_channels=4, out_channels=8, activation=lrelu, up=1, down=2)" in text
    assert "resolution=16, architecture=resnet, use_fp16=" in text
