"""Measuring a direction with a classifier; sweep grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan.edit.directions import Direction
from gan.edit.measure import measure_edit, random_like, render_edited, sweep_grid
from gan.errors import Cancelled
from gan.render import RenderArgs, Renderer
from tests.support.tiny import make_tiny_generator


class BrightnessClassifier:
    """'anime' when the image is brighter than mid-grey; 'hair_colour' always 'black'."""

    heads = {"style": ["photo", "anime"], "hair_colour": ["black", "brown"]}

    def predict(self, images):
        bright = images.reshape(len(images), -1).mean(axis=1) > 127.5
        return {"style": bright.astype(np.int64), "hair_colour": np.zeros(len(images), np.int64)}


@pytest.fixture(scope="module")
def G():
    return make_tiny_generator("stylegan2")


def _brightness_direction(G):
    """The gradient of mean brightness with respect to w, as a unit direction."""
    w = G.mapping(torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(0)), None).detach()
    w = w[:, :1].clone().requires_grad_(True)
    G.synthesis(w.repeat(1, G.num_ws, 1), noise_mode="const").mean().backward()
    g = w.grad.sum(dim=(0, 1)).numpy()
    return Direction("bright", "attribute", g / np.linalg.norm(g), scale=float(np.linalg.norm(g)) ** -1 * 0.5)


def test_render_edited_matches_the_renderer(G, tiny_sg2_model_path):
    from gan.model_io import load_model

    model = load_model(tiny_sg2_model_path)
    shared = Direction("x", "pca", np.linspace(-1, 1, model.G.w_dim), layer_start=1, layer_end=4, scale=0.7)
    rows = np.random.default_rng(0).standard_normal((model.G.num_ws, model.G.w_dim))
    per_layer = Direction("y", "attribute", rows, layer_start=1, layer_end=4, scale=0.7)
    for d in (shared, per_layer):
        ours = render_edited(model.G, [3, 4], d, 2.0)
        for i, seed in enumerate([3, 4]):
            expected = Renderer(model).render(RenderArgs(seed=seed, edits=[d.edit(2.0)])).image
            assert np.abs(ours[i].astype(int) - expected.astype(int)).max() <= 1
    with pytest.raises(Cancelled):
        render_edited(model.G, [1], should_stop=lambda: True)


def test_measure_reports_rates_and_kept_classes(G):
    d = _brightness_direction(G)
    m = measure_edit(G, BrightnessClassifier(), d, strength=50.0, seeds=range(12))
    assert m.rate("style", "anime", 50.0) > m.rate("style", "anime", 0.0) >= m.rate("style", "anime", -50.0)
    assert m.rate("style", "anime", 50.0) == 1.0 and m.rate("style", "photo", -50.0) == 1.0
    assert m.kept("hair_colour", 50.0) == 1.0
    assert "style=anime" in m.summary() and "hair_colour unchanged: 100%" in m.summary()


def test_sweep_grid_shape(G):
    d = Direction("x", "pca", np.ones(G.w_dim, np.float32) / 4)
    grid = sweep_grid(G, d, [-1, 0, 1], seeds=[0, 1])
    assert grid.shape == (32, 48, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[:16, 16:32], render_edited(G, [0])[0])


def test_random_control_moves_as_far_as_the_direction():
    d = Direction("anime", "attribute", np.eye(8)[0], layer_start=2, layer_end=5, scale=1.7)
    a, b = random_like(d), random_like(d)
    assert np.array_equal(a.vector, b.vector) and not np.array_equal(a.vector, random_like(d, seed=1).vector)
    assert np.isclose(np.linalg.norm(a.vector), 1) and abs(float(a.vector @ d.vector)) < 0.99
    assert (a.scale, a.layer_start, a.layer_end) == (1.7, 2, 5) and "anime" in a.name
    # Per layer: one random row per w, unit RMS row norm like the direction it controls.
    c = random_like(Direction("anime", "attribute", np.ones((4, 8)) / np.sqrt(8)))
    assert c.vector.shape == (4, 8) and np.isclose(np.sqrt((c.vector**2).sum(axis=1).mean()), 1)
