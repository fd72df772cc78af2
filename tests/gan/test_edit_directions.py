"""Directions: PCA (GANSpace), attribute boundaries (InterFaceGAN), storage in file and sidecar."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan.edit.attribute import compute_attribute_directions, resolve_attributes
from gan.edit.directions import (
    Direction,
    _parse_list,
    load_directions,
    orthogonalize,
    save_directions,
    sidecar_path,
)
from gan.edit.pca import compute_pca_directions, default_layer_range, sample_w
from gan.errors import Cancelled, UserError
from gan.model_io import load_model
from gan.render import RenderArgs, Renderer
from tests.support.official_layout import install_official_modules, write_snapshot
from tests.support.tiny import make_tiny_generator


@pytest.fixture(scope="module")
def G():
    return make_tiny_generator("stylegan3-t")


def test_pca_directions_are_orthonormal_and_ordered(G):
    calls = []
    dirs = compute_pca_directions(
        G, num_samples=3000, num_components=6, progress=lambda d, t, what="": calls.append((d, t))
    )
    assert [d.name for d in dirs] == [f"pc{i}" for i in range(6)] and all(d.kind == "pca" for d in dirs)
    V = np.stack([d.vector for d in dirs]).astype(np.float64)
    assert np.allclose(V @ V.T, np.eye(6), atol=1e-5)
    scales = [d.scale for d in dirs]
    assert scales == sorted(scales, reverse=True) and scales[-1] > 0
    # The slider unit is the std of fresh samples along the component.
    ws = sample_w(G, 3000, seed=99).astype(np.float64)
    assert np.std(ws @ V[0]) == pytest.approx(scales[0], rel=0.1)
    assert calls[-1] == (3000, 3000)
    # Layer rule: early components coarse, late ones fine.
    assert (dirs[0].layer_start, dirs[0].layer_end) == default_layer_range(0, 6, G.num_ws) == (0, 8)
    assert (dirs[5].layer_start, dirs[5].layer_end) == (8, 16)
    again = compute_pca_directions(G, num_samples=3000, num_components=6)
    assert all(np.array_equal(a.vector, b.vector) for a, b in zip(dirs, again))


def test_pca_can_be_cancelled_and_checks_arguments(G):
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) >= 2

    with pytest.raises(Cancelled):
        compute_pca_directions(G, num_samples=5000, num_components=4, should_stop=should_stop)
    assert len(polls) == 2  # stopped after one batch, not at the end
    with pytest.raises(UserError, match="components"):
        compute_pca_directions(G, num_samples=100, num_components=17)
    with pytest.raises(UserError, match="too few"):
        compute_pca_directions(G, num_samples=10, num_components=8)


def _projection_labels(u, v):
    def label(images, ws):
        w = ws.numpy().astype(np.float64)
        return {"a": (w @ u > 0).astype(float), "b": (w @ v > 0.1).astype(float)}

    return label


def test_attribute_direction_recovers_a_known_boundary_and_orthogonalises(G):
    rng = np.random.default_rng(1)
    ws = sample_w(G, 2000, seed=5)
    # Boundaries through the middle of the cloud, along random directions.
    u, v = (x / np.linalg.norm(x) for x in rng.standard_normal((2, G.w_dim)))
    centre = ws.mean(axis=0)
    label = _projection_labels(u, v)

    def centred(images, w):
        return label(images, w - torch.from_numpy(centre))

    plain = compute_attribute_directions(G, centred, ["a", "b"], num_samples=2000, render=False)
    assert float(plain[0].vector @ u) > 0.9 and float(plain[1].vector @ v) > 0.9
    assert plain[0].kind == "attribute" and "held-out accuracy" in plain[0].help
    cond = compute_attribute_directions(G, centred, ["a"], num_samples=2000, condition_on=["b"], render=False)
    assert abs(float(cond[0].vector @ plain[1].vector)) < 1e-5
    assert np.linalg.norm(cond[0].vector) == pytest.approx(1, abs=1e-5)
    assert float(cond[0].vector @ u) > 0.5 and "orthogonal to b" in cond[0].help
    # The slider unit is the std of the sampled ws along the direction.
    assert cond[0].scale == pytest.approx(np.std(ws.astype(np.float64) @ cond[0].vector), rel=0.1)


def test_attribute_rendering_path_and_errors(G):
    seen = []

    def by_brightness(images, ws):
        seen.append(images.shape)
        return {"bright": (images.mean(dim=(1, 2, 3)) > images.mean()).float().numpy()}

    dirs = compute_attribute_directions(G, by_brightness, ["bright"], num_samples=64)
    assert seen[0][1:] == (3, 16, 16) and dirs[0].name == "bright"
    with pytest.raises(UserError, match="unknown attribute"):
        compute_attribute_directions(G, by_brightness, ["dark"], num_samples=64)

    def constant(images, ws):
        return {"never": np.zeros(len(ws))}

    with pytest.raises(UserError, match="at least 5"):
        compute_attribute_directions(G, constant, ["never"], num_samples=64, render=False)

    def colours(images, ws):
        first = (ws[:, 0] > ws[:, 0].median()).float().numpy()
        return {"hair=red": first, "hair=blue": 1 - first, "hair=green": np.zeros(len(ws))}

    skipped = []
    dirs = compute_attribute_directions(
        G, colours, ["hair"], 64, condition_on=["hair"], render=False, on_skip=lambda k, r: skipped.append(k)
    )
    assert [d.name for d in dirs] == ["hair=blue", "hair=red"] and skipped == ["hair=green"]
    with pytest.raises(UserError, match="at least 5"):  # named explicitly: an error, not a skip
        compute_attribute_directions(G, colours, ["hair=green"], num_samples=64, render=False)


def test_attribute_names_resolve_groups_and_aliases():
    keys = ["glasses", "hair_colour=black", "hair_colour=blue", "style=anime", "style=photo"]
    assert resolve_attributes(["anime"], keys) == [("anime", "style=anime", "style")]
    assert resolve_attributes(["hair_colour"], keys) == [
        ("hair_colour=black", "hair_colour=black", "hair_colour"),
        ("hair_colour=blue", "hair_colour=blue", "hair_colour"),
    ]
    assert resolve_attributes(["glasses"], keys) == [("glasses", "glasses", "glasses")]


def test_orthogonalize():
    a = np.array([1.0, 1.0, 0.0], np.float32)
    out = orthogonalize(a, [np.array([1.0, 0.0, 0.0])])
    assert np.allclose(out, [0, 1, 0])
    with pytest.raises(UserError):
        orthogonalize(a, [np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])])


def _dirs(w_dim, num=3):
    rng = np.random.default_rng(0)
    return [
        Direction(
            f"d{i}",
            "pca",
            rng.standard_normal(w_dim).astype(np.float32),
            i,
            None if i == 0 else 5,
            0.5 + i,
            "h",
        )
        for i in range(num)
    ]


def _same(a: list[Direction], b: list[Direction]) -> bool:
    return [x.to_json() for x in a] == [x.to_json() for x in b]


def test_save_load_in_our_model_file(tmp_path, tiny_model_file):
    path = tiny_model_file(tmp_path / "m.safetensors", "stylegan2")
    before = load_model(path)
    assert load_directions(before) == []
    dirs = _dirs(before.G.w_dim)
    assert save_directions(path, dirs) == str(path)
    after = load_model(path)
    assert _same(load_directions(after), dirs)
    assert after.metadata["note"] == "tiny test model"  # other metadata kept
    for name, p in before.G.state_dict().items():
        assert torch.equal(p, after.G.state_dict()[name])
    assert not (tmp_path / "m.safetensors.directions.json").exists()
    # Same names are replaced, others kept; replace=True drops the rest.
    new = Direction("d1", "attribute", np.ones(before.G.w_dim, np.float32), scale=2.0, help="new")
    save_directions(path, [new])
    names = [(d.name, d.kind) for d in load_directions(load_model(path))]
    assert names == [("d0", "pca"), ("d1", "attribute"), ("d2", "pca")]
    save_directions(path, [new], replace=True)
    assert [d.name for d in load_directions(load_model(path))] == ["d1"]
    # A per-layer (W+) direction round-trips through the file; a wrong row count is refused.
    rows = np.random.default_rng(1).standard_normal((before.G.num_ws, before.G.w_dim)).astype(np.float32)
    save_directions(path, [Direction("wplus", "attribute", rows, scale=1.5)])
    stored = {d.name: d for d in load_directions(load_model(path))}["wplus"]
    assert np.array_equal(stored.vector, rows) and stored.scale == 1.5
    with pytest.raises(UserError, match="per layer"):
        save_directions(path, [Direction("x", "pca", rows[:-1])])
    # Renders: a direction's edit moves the image.
    model = load_model(path)
    d = load_directions(model)[0]
    r = Renderer(model)
    a = r.render(RenderArgs(seed=1)).image
    b = r.render(RenderArgs(seed=1, edits=[d.edit(3.0)])).image
    assert a is not None and b is not None and not np.array_equal(a, b)


def test_save_load_sidecar_for_official_pickles(tmp_path, monkeypatch):
    official_modules = install_official_modules(monkeypatch)
    pkl = tmp_path / "network-snapshot.pkl"
    write_snapshot(pkl, official_modules, "sg2", only_g_ema=True)
    content = pkl.read_bytes()
    model = load_model(pkl)
    dirs = _dirs(model.G.w_dim)
    # An official pickle is never rewritten: its directions go to the sidecar.
    assert save_directions(pkl, dirs) == sidecar_path(pkl)
    assert pkl.read_bytes() == content
    assert _same(load_directions(load_model(pkl)), dirs)
    with pytest.raises(UserError, match="not in our format"):
        save_directions(pkl, dirs, where="file")
    # A sidecar of another file is refused with a clear message.
    side = tmp_path / "network-snapshot.pkl.directions.json"
    data = json.loads(side.read_text())
    data["model_sha256"] = "0" * 64
    side.write_text(json.dumps(data))
    with pytest.raises(UserError, match="another model"):
        load_directions(load_model(pkl))


def test_sidecar_next_to_our_file_and_bad_vectors(tmp_path, tiny_model_file):
    path = tiny_model_file(tmp_path / "m.safetensors", "stylegan2")
    model = load_model(path)
    save_directions(path, _dirs(model.G.w_dim, 1))
    side = save_directions(path, _dirs(model.G.w_dim, 2)[1:], where="sidecar")
    assert side == sidecar_path(path)
    assert [d.name for d in load_directions(load_model(path))] == ["d0", "d1"]
    with pytest.raises(UserError, match=r"has shape \[7\]"):
        save_directions(path, [Direction("x", "pca", np.ones(7, np.float32))])
    with pytest.raises(UserError, match="unique"):
        save_directions(path, [Direction("x", "pca", np.ones(16)), Direction("x", "pca", np.ones(16))])


def test_direction_slider_range_round_trip_and_checks():
    v = np.ones(8, np.float32) / np.sqrt(8)
    d = Direction(name="a", kind="attribute", vector=v)
    assert d.range == (-4.0, 4.0) and d.to_json()["range"] == [-4.0, 4.0]
    d = Direction(name="a", kind="attribute", vector=v, range=(-2.5, 4))
    back = Direction.from_json(d.to_json())
    assert back.range == (-2.5, 4.0)
    old = d.to_json()
    del old["range"]  # files written before ranges existed
    assert Direction.from_json(old).range == (-4.0, 4.0)
    with pytest.raises(ValueError, match="slider range must hold 0"):
        Direction(name="a", kind="attribute", vector=v, range=(1.0, 3.0))
    with pytest.raises(UserError, match="damaged"):
        _parse_list([dict(old, range="wide")], "m.safetensors")
