"""Refining a direction through a differentiable classifier: the target class still flips with
the slider while the kept head's prediction moves much less than along the starting direction."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gan.edit.directions import Direction
from gan.edit.pca import sample_w
from gan.edit.refine import RefineConfig, refine_direction
from gan.errors import Cancelled, UserError
from tests.support.tiny import make_tiny_generator


class ColourNet(torch.nn.Module):
    """Logits from the mean colour: 'light' (dark / bright) from the brightness, 'tint'
    (green / red) from red minus green."""

    config = SimpleNamespace(resolution=16)

    def forward(self, x):
        m = x.mean(dim=(2, 3))
        bright, red = m.sum(dim=1), m[:, 0] - m[:, 1]
        return {"light": 40 * torch.stack([-bright, bright], 1), "tint": 40 * torch.stack([-red, red], 1)}


class ColourClassifier:
    heads = {"light": ["dark", "bright"], "tint": ["green", "red"]}

    def __init__(self):
        self.net = ColourNet()


@pytest.fixture(scope="module")
def G():
    return make_tiny_generator("stylegan2")


def _colours(G, ws):
    """Brightness and redness of the images of ws [N, w_dim] or [N, num_ws, w_dim]."""
    ws = torch.from_numpy(np.ascontiguousarray(ws, dtype=np.float32))
    if ws.ndim == 2:
        ws = ws[:, None].repeat(1, G.num_ws, 1)
    with torch.no_grad():
        m = G.synthesis(ws, noise_mode="const").mean(dim=(2, 3))
    return m.sum(dim=1).numpy(), (m[:, 0] - m[:, 1]).numpy()


def _entangled_direction(G) -> Direction:
    """Half 'brighter', half 'redder': least-squares directions of both, summed."""
    ws = sample_w(G, 400, seed=3)
    bright, red = _colours(G, ws)
    x = ws - ws.mean(axis=0)
    b = np.linalg.lstsq(x, bright - bright.mean(), rcond=None)[0]
    r = np.linalg.lstsq(x, red - red.mean(), rcond=None)[0]
    v = b / np.linalg.norm(b) + r / np.linalg.norm(r)
    v /= np.linalg.norm(v)
    return Direction("light", "attribute", v, scale=float(np.std(ws @ v)))


def _effect(G, d: Direction, strength: float):
    """Mean |change of redness| and the share of bright images at +strength / dark at -strength."""
    ws = sample_w(G, 64, seed=99)
    _, red0 = _colours(G, ws)
    out = []
    ws_plus = np.repeat(ws[:, None], G.num_ws, axis=1)
    for sign in (1, -1):
        bright, red = _colours(G, ws_plus + sign * strength * d.scale * d.vector)
        out.append((np.abs(red - red0).mean(), ((bright > 0) == (sign > 0)).mean()))
    return np.mean([o[0] for o in out]), np.mean([o[1] for o in out])


def test_refinement_keeps_the_kept_head_and_the_target(G):
    start = _entangled_direction(G)
    config = RefineConfig(
        target="light=bright", keep=("tint",), strength=3.0, steps=40, batch=8, lr=0.05, shift=1
    )
    steps = []
    refined, history = refine_direction(
        G, ColourClassifier(), start, config, progress=lambda done, total, what="": steps.append((done, what))
    )
    assert len(history) == len(steps) == 40 and [d for d, _ in steps] == list(range(1, 41))
    assert steps[-1][1] == f"target {history[-1].target_loss:.3f}, keep {history[-1].keep_loss:.3f}"
    assert np.isclose(np.linalg.norm(refined.vector), 1, atol=1e-5)
    assert refined.name == start.name and refined.layer_start == start.layer_start
    red_before, hits_before = _effect(G, start, 3.0)
    red_after, hits_after = _effect(G, refined, 3.0)
    assert red_after < 0.5 * red_before, (red_before, red_after)
    assert hits_after >= min(0.9, hits_before), (hits_before, hits_after)
    assert history[-1].keep_loss < history[0].keep_loss
    assert "refined for 40 steps" in refined.help


def test_per_layer_refinement_gives_a_w_plus_direction_that_keeps_the_kept_head(G):
    start = _entangled_direction(G)
    config = RefineConfig(
        target="light=bright",
        keep=("tint",),
        strength=3.0,
        steps=40,
        batch=8,
        lr=0.05,
        shift=1,
        per_layer=True,
    )
    refined, history = refine_direction(G, ColourClassifier(), start, config)
    v = refined.vector
    assert v.shape == (G.num_ws, G.w_dim)
    assert np.isclose(np.sqrt((v**2).sum(axis=1).mean()), 1, atol=1e-5)  # unit RMS row norm
    assert not np.allclose(v, v[0]), "the rows should have moved apart"
    red_before, hits_before = _effect(G, start, 3.0)
    red_after, hits_after = _effect(G, refined, 3.0)
    assert red_after < 0.5 * red_before, (red_before, red_after)
    assert hits_after >= min(0.9, hits_before), (hits_before, hits_after)
    assert "refined per layer for 40 steps" in refined.help
    # Refining it again keeps it per layer, even without the flag.
    again, _ = refine_direction(
        G, ColourClassifier(), refined, RefineConfig(target="light=bright", keep=("tint",), steps=1)
    )
    assert again.vector.shape == (G.num_ws, G.w_dim)


def test_refinement_checks_its_config_and_can_be_cancelled(G):
    start = _entangled_direction(G)
    clf = ColourClassifier()
    for bad, message in [
        (RefineConfig(target="light=grey"), "not a class"),
        (RefineConfig(target="light=bright", keep=("hair",)), "not a classifier head"),
        (RefineConfig(target="light=bright", keep=("light",)), "cannot also be kept"),
        (RefineConfig(target="light=bright", keep=(), steps=0), "steps must be"),
    ]:
        with pytest.raises(UserError, match=message):
            refine_direction(G, clf, start, bad)
    with pytest.raises(Cancelled):
        refine_direction(
            G, clf, start, RefineConfig(target="light=bright", keep=("tint",)), should_stop=lambda: True
        )
