"""Network blending between a base generator and a fine-tuned copy; interpolation helpers."""

from __future__ import annotations

import copy

import numpy as np
import PIL.Image
import pytest
import torch

from gan.cli import main as gan_main
from gan.edit.blend import (
    blend_generators,
    blend_models,
    blend_resolutions,
    blendable_partners,
    check_blendable,
)
from gan.edit.interpolate import lerp, slerp
from gan.edit.measure import render_edited
from gan.errors import UserError
from gan.model_io import load_model, save_model
from gan.render import RenderArgs, Renderer
from tests.support.tiny import TINY_COMMON, make_tiny_generator


def _fine_tuned(G, seed=1, amount=0.3):
    """A copy of G whose synthesis weights moved a little, like a short fine-tune."""
    tuned = copy.deepcopy(G)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in tuned.named_parameters():
            if name.startswith("synthesis."):
                p.add_(torch.randn(p.shape, generator=gen) * amount * (p.std() if p.numel() > 1 else 1))
    return tuned


def _images(G, ws):
    with torch.no_grad():
        return G.synthesis(ws, noise_mode="const")


@pytest.fixture(scope="module")
def pair():
    base = make_tiny_generator("stylegan2")
    return base, _fine_tuned(base)


@pytest.fixture(scope="module")
def ws(pair):
    base, _ = pair
    with torch.no_grad():
        return base.mapping(torch.randn(3, base.z_dim, generator=torch.Generator().manual_seed(0)), None)


def test_weight_zero_is_base_and_weight_one_at_lowest_is_tuned(pair, ws):
    base, tuned = pair
    assert check_blendable(base, tuned) is None
    assert blend_resolutions(base) == [4, 8, 16]
    assert torch.equal(_images(blend_generators(base, tuned, 8, 0.0), ws), _images(base, ws))
    assert torch.equal(_images(blend_generators(base, tuned, 4, 1.0), ws), _images(tuned, ws))
    assert not torch.equal(_images(tuned, ws), _images(base, ws))
    # The inputs are not modified.
    assert not torch.equal(base.synthesis.b16.conv1.weight, tuned.synthesis.b16.conv1.weight)


def test_layers_split_at_the_resolution_and_weight_mixes_smoothly(pair):
    base, tuned = pair
    half = blend_generators(base, tuned, 8, 0.5)
    sb, st, sh = base.state_dict(), tuned.state_dict(), half.state_dict()
    for name, value in sh.items():
        if name.startswith("synthesis.b4.") or name.startswith("mapping."):
            assert torch.equal(value, sb[name]), name
        elif value.is_floating_point():
            torch.testing.assert_close(value, (sb[name] + st[name]) / 2, rtol=1e-6, atol=1e-6)
    # Image distance to the base grows with the weight.
    w = base.mapping(torch.randn(2, base.z_dim, generator=torch.Generator().manual_seed(3)), None)
    dist = [
        float((_images(blend_generators(base, tuned, 8, a), w) - _images(base, w)).abs().mean())
        for a in (0.25, 0.5, 1)
    ]
    assert dist[0] < dist[1] < dist[2]


def test_not_blendable_pairs_are_refused_with_a_reason(pair):
    base, _ = pair
    unrelated = make_tiny_generator("stylegan2", seed=5)
    reason = check_blendable(base, unrelated)
    assert reason is not None and "unrelated" in reason
    with pytest.raises(UserError, match="cannot blend these models: the weights are unrelated"):
        blend_generators(base, unrelated, 8, 0.5)
    from gan.networks.stylegan2 import Generator

    torch.manual_seed(0)
    wider = Generator(c_dim=0, channel_base=256, channel_max=32, num_fp16_res=0, **TINY_COMMON)
    assert "channel_max: 16 vs 32" in check_blendable(base, wider)
    sg3 = make_tiny_generator("stylegan3-t")
    assert check_blendable(base, sg3) is not None
    assert blend_resolutions(sg3) == [16]
    with pytest.raises(UserError, match="not one of this model's: 4, 8, 16"):
        blend_generators(base, _fine_tuned(base), 32, 0.5)
    with pytest.raises(UserError, match="from 0 to 1"):
        blend_generators(base, _fine_tuned(base), 8, 1.5)


def test_blend_loaded_models_and_render(tmp_path, pair):
    base, tuned = pair
    save_model(tmp_path / "base.safetensors", base)
    save_model(tmp_path / "tuned.safetensors", tuned)
    a, b = load_model(tmp_path / "base.safetensors"), load_model(tmp_path / "tuned.safetensors")
    assert check_blendable(a, b) is None
    other = tmp_path / "other.safetensors"
    save_model(other, make_tiny_generator("stylegan3-t"))
    assert "architectures differ" in check_blendable(a, load_model(other))
    mixed = blend_models(a, b, 8, 1.0)
    assert mixed.metadata["blend"]["weight"] == 1.0 and mixed.sha256 not in (a.sha256, b.sha256)
    base_img = Renderer(a).render(RenderArgs(seed=4)).image
    mixed_img = Renderer(mixed).render(RenderArgs(seed=4)).image
    assert mixed_img is not None and not np.array_equal(base_img, mixed_img)
    assert np.array_equal(Renderer(blend_models(a, b, 8, 0.0)).render(RenderArgs(seed=4)).image, base_img)


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory, pair):
    folder = tmp_path_factory.mktemp("blend")
    base, tuned = pair
    paths = [str(folder / "base.safetensors"), str(folder / "tuned.safetensors")]
    save_model(paths[0], base)
    save_model(paths[1], tuned)
    return paths


def test_blend_cli_writes_a_blended_model(pair, pair_files, tmp_path, ws):
    out = str(tmp_path / "blended.safetensors")
    argv = ["blend", *pair_files, "--resolution", "8", "--weight", "0.5", "--out", out]
    assert gan_main(argv) == 0
    model = load_model(out)
    assert model.metadata["blend"]["resolution"] == 8 and model.metadata["blend"]["weight"] == 0.5
    torch.testing.assert_close(_images(model.G, ws), _images(blend_generators(*pair, 8, 0.5), ws))
    assert gan_main(argv) == 2  # exists: needs --force
    assert gan_main([*argv, "--force"]) == 0


def test_blend_cli_grid_columns_are_the_weights(pair, pair_files, tmp_path):
    grid_path = tmp_path / "grid.png"
    assert (
        gan_main(["blend", *pair_files, "--grid", str(grid_path), "--grid-seeds", "3-5", "--weights", "0,1"])
        == 0
    )
    grid = np.asarray(PIL.Image.open(grid_path))
    assert grid.shape == (3 * 16, 2 * 16, 3)
    base, tuned = pair
    # The default split is the middle resolution (8); column 0 is the base, column 1 the swap.
    assert np.array_equal(grid[:, :16], np.concatenate(list(render_edited(base, [3, 4, 5]))))
    swapped = render_edited(blend_generators(base, tuned, 8, 1.0), [3, 4, 5])
    assert np.array_equal(grid[:, 16:], np.concatenate(list(swapped)))


def test_blend_cli_measures_class_rates_per_weight(pair_files, capsys):
    assert gan_main(["blend", *pair_files, "--measure", "--seeds", "0-9", "--weights", "0,0.5,1"]) == 0
    out = capsys.readouterr().out
    assert "class rates of 10 seeds at blend weights 0 / 0.5 / 1:" in out
    photo = next(line for line in out.splitlines() if "style=photo" in line)
    anime = next(line for line in out.splitlines() if "style=anime" in line)
    for a, b in zip(photo.split(":")[1].split("/"), anime.split(":")[1].split("/")):
        assert int(a.strip().rstrip("%")) + int(b.strip().rstrip("%")) == 100


def test_blend_cli_refuses_bad_input(pair_files, tmp_path, capsys):
    assert gan_main(["blend", *pair_files]) == 2
    assert "nothing to do" in capsys.readouterr().err
    unrelated = str(tmp_path / "unrelated.safetensors")
    save_model(unrelated, make_tiny_generator("stylegan2", seed=5))
    assert gan_main(["blend", pair_files[0], unrelated, "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "cannot blend" in capsys.readouterr().err and not (tmp_path / "x.safetensors").exists()
    assert gan_main(["blend", *pair_files, "--resolution", "32", "--grid", str(tmp_path / "g.png")]) == 2
    assert "not one of this model's: 4, 8, 16" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gan_main(["blend", *pair_files, "--measure", "--weights", "0,2"])


def test_lerp_and_slerp():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    np.testing.assert_allclose(lerp(a, b, 0.5), [0.5, 1.0])
    path = slerp(a, b, np.linspace(0, 1, 5))
    assert path.shape == (5, 2)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linspace(1, 2, 5), rtol=1e-5)
    mid = slerp(a, b, 0.5)
    np.testing.assert_allclose(mid / np.linalg.norm(mid), [np.sqrt(0.5), np.sqrt(0.5)], rtol=1e-5)
    np.testing.assert_allclose(slerp(a, 3 * a, 0.5), 2 * a, rtol=1e-6)  # parallel: no NaN


def test_blend_cli_refuses_an_existing_out_before_loading_anything(pair_files, tmp_path, capsys, monkeypatch):
    import gan.model_io

    out = tmp_path / "taken.safetensors"
    out.write_bytes(b"someone's file")
    loaded = []
    monkeypatch.setattr(gan.model_io, "load_model", lambda *a, **k: loaded.append(a))
    assert gan_main(["blend", *pair_files, "--out", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert not loaded and out.read_bytes() == b"someone's file"
    assert gan_main(["blend", *pair_files, "--out", str(tmp_path / "x.pt")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err and not loaded


def test_blend_partners_are_only_models_that_blend(pair, tmp_path):
    # The explorer offers the other shipped models for blending; a model of another architecture
    # or lineage (the comparison runs' StyleGAN2 / StyleGAN3-R beside the default) must not be one.
    base, tuned = pair
    paths = {}
    for name, G, arch in (
        ("tuned", tuned, "stylegan2"),
        ("unrelated", make_tiny_generator("stylegan2", seed=5), "stylegan2"),
        ("sg3", make_tiny_generator("stylegan3-t"), "stylegan3-t"),
    ):
        paths[name] = str(tmp_path / f"{name}.safetensors")
        save_model(paths[name], G, arch=arch)
    (tmp_path / "broken.safetensors").write_bytes(b"not a model")
    candidates = [*paths.values(), str(tmp_path / "broken.safetensors")]
    assert blendable_partners(base, candidates) == [paths["tuned"]]
