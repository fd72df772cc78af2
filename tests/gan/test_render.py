"""The render boundary: stage-wise synthesis, caching, edits, transforms, errors and recipes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan.errors import UserError
from gan.model_io import load_model
from gan.recipe import RECIPE_KEY, model_ref, read_recipe, recipe_to_dict, write_png
from gan.render import Edit, RenderArgs, Renderer, input_transform_matrix
from gan.synthesis_stages import SynthesisStages

ARCHS = ["tiny_sg2_model_path", "tiny_sg3t_model_path"]


@pytest.fixture(params=ARCHS)
def model(request):
    return load_model(request.getfixturevalue(request.param))


@pytest.fixture
def sg3(tiny_sg3t_model_path):
    return load_model(tiny_sg3t_model_path)


def to_uint8(img: torch.Tensor) -> np.ndarray:
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()


def random_ws(G, seed=0) -> torch.Tensor:
    return torch.randn([1, G.num_ws, G.w_dim], generator=torch.Generator().manual_seed(seed))


# -- stage-wise execution ----------------------------------------------------------------------


def test_stages_reproduce_synthesis(model):
    G = model.G
    stages = SynthesisStages(G.synthesis)
    assert stages.ws_end[-1] == G.num_ws and stages.ws_end == sorted(stages.ws_end)
    with torch.no_grad():
        for seed in range(2):
            ws = random_ws(G, seed)
            ref = G.synthesis(ws, noise_mode="const", force_fp32=True)
            out = stages.run(ws, noise_mode="const", force_fp32=True)
            assert out.shape == ref.shape
            assert torch.equal(out, ref)


def test_stages_reproduce_synthesis_with_input_transform(sg3):
    G = sg3.G
    T = torch.from_numpy(input_transform_matrix((0.1, -0.05), 20.0)).float()[None]
    with torch.no_grad():
        ws = random_ws(G)
        ref = G.synthesis(ws, noise_mode="const", force_fp32=True, input_transform=T)
        out = SynthesisStages(G.synthesis).run(ws, T, noise_mode="const", force_fp32=True)
        plain = G.synthesis(ws, noise_mode="const", force_fp32=True)
    assert torch.equal(out, ref)
    assert not torch.equal(out, plain)


def test_stage_reads_only_its_ws_prefix(model):
    """Changing ws[k:] must not change the state after a stage with ws_end <= k."""
    G = model.G
    stages = SynthesisStages(G.synthesis)
    i = stages.num_stages // 2
    k = stages.ws_end[i]
    ws = random_ws(G)
    ws2 = ws.clone()
    ws2[:, k:] += 1.0
    with torch.no_grad():
        s1 = s2 = None
        for index in range(i + 1):
            s1 = stages.run_stage(index, s1, ws, noise_mode="const")
            s2 = stages.run_stage(index, s2, ws2, noise_mode="const")
    assert all(torch.equal(a, b) for a, b in zip(s1, s2))


# -- rendering -----------------------------------------------------------------------------------


def test_render_matches_official_seed_rule(model):
    G = model.G
    result = Renderer(model).render(RenderArgs(seed=7, psi=0.7))
    assert result.error is None
    z = torch.from_numpy(np.random.RandomState(7).randn(1, G.z_dim))
    with torch.no_grad():
        ws = G.mapping(z, torch.zeros([1, G.c_dim]), truncation_psi=0.7)
        img = G.synthesis(ws, noise_mode="const", force_fp32=True)
    assert result.image.dtype == np.uint8 and result.image.shape == (16, 16, 3)
    assert np.array_equal(result.image, to_uint8(img))
    assert np.array_equal(result.w, ws[0].numpy())
    assert set(result.timings) >= {"mapping", "synthesis", "total"}


def test_render_is_deterministic_and_fully_cached_on_repeat(model):
    renderer = Renderer(model)
    a = renderer.render(RenderArgs(seed=3, psi=0.5, truncation_cutoff=2))
    b = renderer.render(RenderArgs(seed=3, psi=0.5, truncation_cutoff=2))
    c = Renderer(model).render(RenderArgs(seed=3, psi=0.5, truncation_cutoff=2))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.image, c.image)
    assert a.cache_hits.stages_run == a.cache_hits.stages_total and a.cache_hits.mapping_misses == 1
    assert b.cache_hits.stages_run == 0 and b.cache_hits.mapping_hits == 1
    assert not np.array_equal(a.image, Renderer(model).render(RenderArgs(seed=4)).image)


@pytest.mark.parametrize("kind", ["edit", "mix"])
def test_cached_render_equals_uncached(model, kind):
    G = model.G
    stages = SynthesisStages(G.synthesis)
    k = stages.ws_end[len(stages.ws_end) // 2]  # a w index where a whole stage prefix stays valid
    direction = np.random.RandomState(1).randn(G.w_dim).astype(np.float32)
    if kind == "edit":
        changed = RenderArgs(seed=5, edits=[Edit(direction, 2.0, layer_start=k, name="d")])
    else:
        changed = RenderArgs(seed=5, mix_seed=9, mix_start=k)

    warm = Renderer(model)
    warm.render(RenderArgs(seed=5))
    cached = warm.render(changed)
    fresh = Renderer(model).render(changed)
    assert cached.error is None and fresh.error is None
    assert np.array_equal(cached.image, fresh.image)
    expected_reused = sum(end <= k for end in stages.ws_end)
    assert cached.cache_hits.stages_reused == expected_reused > 0
    assert cached.cache_hits.stages_run == stages.num_stages - expected_reused
    assert fresh.cache_hits.stages_run == stages.num_stages
    # The change really changed something.
    assert not np.array_equal(cached.image, warm.render(RenderArgs(seed=5)).image)


def test_cache_sequence_matches_fresh(model):
    """Interleaved interactive renders, each checked against an uncached renderer."""
    G = model.G
    rs = np.random.RandomState(3)
    d1, d2 = rs.randn(G.w_dim), rs.randn(G.num_ws, G.w_dim)
    sequence = [
        RenderArgs(seed=1),
        RenderArgs(seed=1, edits=[Edit(d1, 1.0, G.num_ws - 2)]),
        RenderArgs(seed=1, edits=[Edit(d1, 2.0, G.num_ws - 2)]),
        RenderArgs(seed=1, mix_seed=2, mix_start=2),
        RenderArgs(seed=1),
        RenderArgs(seed=1, edits=[Edit(d2, 0.5, 1, 3)]),
        RenderArgs(seed=1, psi=0.5, edits=[Edit(d1, 2.0, G.num_ws - 2)]),
        RenderArgs(seed=1, edits=[Edit(d1, 1.0, G.num_ws - 2)]),
    ]
    warm, cold = Renderer(model), Renderer(model, activation_cache_bytes=0)
    reused = 0
    for args in sequence:
        a, b = warm.render(args), cold.render(args)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.w, b.w)
        reused += a.cache_hits.stages_reused
    assert reused > 0


def test_edit_and_mix_change_only_their_layers(model):
    G = model.G
    renderer = Renderer(model)
    base = renderer.render(RenderArgs(seed=2)).w
    d = np.random.RandomState(0).randn(G.w_dim).astype(np.float32)
    edited = renderer.render(RenderArgs(seed=2, edits=[Edit(d, 1.5, 1, 3)])).w
    untouched = [0] + list(range(3, G.num_ws))
    np.testing.assert_array_equal(edited[untouched], base[untouched])
    np.testing.assert_allclose(edited[1:3], base[1:3] + 1.5 * d, rtol=0, atol=1e-6)

    per_layer = np.random.RandomState(1).randn(G.num_ws, G.w_dim).astype(np.float32)
    edited = renderer.render(RenderArgs(seed=2, edits=[Edit(per_layer, -1.0, 2)])).w
    np.testing.assert_allclose(edited[2:], base[2:] - per_layer[2:], rtol=0, atol=1e-6)

    mix = renderer.render(RenderArgs(seed=8)).w
    mixed = renderer.render(RenderArgs(seed=2, mix_seed=8, mix_start=1, mix_end=4)).w
    np.testing.assert_array_equal(mixed[1:4], mix[1:4])
    np.testing.assert_array_equal(mixed[4:], base[4:])


def test_explicit_z_and_w(model):
    renderer = Renderer(model)
    ref = renderer.render(RenderArgs(seed=11, psi=0.8))
    z = np.random.RandomState(11).randn(model.G.z_dim).tolist()
    by_z = Renderer(model).render(RenderArgs(z=z, psi=0.8))
    by_w = Renderer(model).render(RenderArgs(w=ref.w, psi=0.3))  # psi does not apply to an explicit w
    assert np.array_equal(ref.image, by_z.image) and np.array_equal(ref.image, by_w.image)
    one_w = Renderer(model).render(RenderArgs(w=ref.w[0]))
    assert np.array_equal(one_w.w, np.broadcast_to(ref.w[0], ref.w.shape))


def test_translate_rotate_sg3(sg3):
    G = sg3.G
    result = Renderer(sg3).render(RenderArgs(seed=1, translate=(0.1, -0.05), rotate=20.0))
    assert result.error is None
    m = np.array(
        [
            [np.cos(np.radians(20)), np.sin(np.radians(20)), 0.1],
            [-np.sin(np.radians(20)), np.cos(np.radians(20)), -0.05],
            [0, 0, 1],
        ]
    )
    np.testing.assert_allclose(input_transform_matrix((0.1, -0.05), 20.0), np.linalg.inv(m), atol=1e-12)
    T = torch.from_numpy(np.linalg.inv(m)).float()[None]
    with torch.no_grad():
        ws = torch.from_numpy(result.w)[None]
        img = G.synthesis(ws, noise_mode="const", force_fp32=True, input_transform=T)
    assert np.array_equal(result.image, to_uint8(img))
    assert not np.array_equal(result.image, Renderer(sg3).render(RenderArgs(seed=1)).image)


def test_transform_cache_keys(sg3):
    """A different transform must not reuse activations of another one."""
    renderer = Renderer(sg3)
    renderer.render(RenderArgs(seed=1))
    moved = renderer.render(RenderArgs(seed=1, rotate=10.0))
    assert moved.cache_hits.stages_reused == 0
    assert np.array_equal(moved.image, Renderer(sg3).render(RenderArgs(seed=1, rotate=10.0)).image)


def test_translate_rotate_sg2(tiny_sg2_model_path):
    # StyleGAN2 takes the same matrix; its synthesis resamples the 4x4 constant with it.
    sg2 = load_model(tiny_sg2_model_path)
    renderer = Renderer(sg2)
    plain = renderer.render(RenderArgs(seed=0))
    result = renderer.render(RenderArgs(seed=0, translate=(0.2, 0.0), rotate=15.0))
    assert result.error is None and result.cache_hits.stages_reused == 0
    T = torch.from_numpy(input_transform_matrix((0.2, 0.0), 15.0)).float()[None]
    with torch.no_grad():
        ws = torch.from_numpy(result.w)[None]
        img = sg2.G.synthesis(ws, noise_mode="const", force_fp32=True, input_transform=T)
    assert np.array_equal(result.image, to_uint8(img))
    assert not np.array_equal(result.image, plain.image)


def test_errors_become_strings(tiny_sg2_model_path, sg3, monkeypatch):
    sg2 = load_model(tiny_sg2_model_path)
    r = Renderer(sg2)
    cases = [
        RenderArgs(z=[0.0, 1.0]),
        RenderArgs(w=np.zeros([3, 5])),
        RenderArgs(noise_mode="loud"),
        RenderArgs(seed=-1),
        RenderArgs(seed=2**32),
        RenderArgs(mix_seed=1, mix_start=5, mix_end=2),
        RenderArgs(edits=[Edit(np.zeros(3), 1.0)]),
        RenderArgs(truncation_cutoff=99),
    ]
    for args in cases:
        result = r.render(args)
        assert result.image is None and isinstance(result.error, str) and result.error, args

    # Unexpected failures inside torch are reported too, not raised.
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(sg3.G.synthesis.input, "forward", boom)
    result = Renderer(sg3).render(RenderArgs(seed=0))
    assert result.image is None and result.error == "Rendering failed: RuntimeError: boom"
    # The renderer still works after an error.
    assert r.render(RenderArgs(seed=0)).error is None


def test_random_noise_is_not_cached(tiny_sg2_model_path):
    model = load_model(tiny_sg2_model_path)
    r = Renderer(model)
    a = r.render(RenderArgs(seed=0, noise_mode="random"))
    b = r.render(RenderArgs(seed=0, noise_mode="random"))
    assert b.cache_hits.stages_run == b.cache_hits.stages_total
    assert not np.array_equal(a.image, b.image)
    none = r.render(RenderArgs(seed=0, noise_mode="none"))
    assert not np.array_equal(none.image, r.render(RenderArgs(seed=0)).image)


def test_activation_cache_budget(model):
    r = Renderer(model, activation_cache_bytes=0)
    a = r.render(RenderArgs(seed=0))
    b = r.render(RenderArgs(seed=0))
    assert b.cache_hits.stages_reused == 0 and np.array_equal(a.image, b.image)


def test_conditional_model_needs_class(tmp_path, tiny_model_file):
    model = load_model(tiny_model_file(tmp_path / "cond.safetensors", "stylegan2", c_dim=3))
    r = Renderer(model)
    assert "class" in r.render(RenderArgs(seed=0)).error
    assert r.render(RenderArgs(seed=0, class_idx=3)).error is not None
    a, b = r.render(RenderArgs(seed=0, class_idx=0)), r.render(RenderArgs(seed=0, class_idx=2))
    assert a.error is None and not np.array_equal(a.image, b.image)


# -- recipes -------------------------------------------------------------------------------------


def _full_args(G, sg3: bool) -> RenderArgs:
    rs = np.random.RandomState(4)
    return RenderArgs(
        seed=123,
        psi=0.65,
        truncation_cutoff=3,
        translate=(0.125, -0.0625) if sg3 else (0.0, 0.0),
        rotate=33.3 if sg3 else 0.0,
        mix_seed=77,
        mix_start=2,
        mix_end=4,
        edits=[
            Edit(rs.randn(G.w_dim), 0.37, 1, 5, name="pca0"),  # float64 on purpose
            Edit(rs.randn(G.num_ws, G.w_dim).astype(np.float32), -1.1, 0, None, name="smile"),
        ],
    )


def test_recipe_round_trip_restores_identical_pixels(model, tmp_path):
    args = _full_args(model.G, model.arch.startswith("stylegan3"))
    first = Renderer(model).render(args)
    assert first.error is None
    path = tmp_path / "img.png"
    write_png(path, first.image, recipe_to_dict(args, model_ref(model), first.w))
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im), first.image)
        assert RECIPE_KEY in im.text

    recipe = read_recipe(path)
    assert recipe.model.sha256 == model.sha256 and recipe.model.arch == model.arch
    assert np.array_equal(recipe.w, first.w)
    again = Renderer(load_model(recipe.model.path)).render(recipe.args)
    assert np.array_equal(again.image, first.image)
    assert np.array_equal(again.w, first.w)


@pytest.mark.parametrize("latent", ["z", "w"])
def test_recipe_round_trip_explicit_latents(sg3, tmp_path, latent):
    rs = np.random.RandomState(0)
    if latent == "z":
        args = RenderArgs(z=rs.randn(sg3.G.z_dim), psi=0.9)
    else:
        args = RenderArgs(w=rs.randn(sg3.G.num_ws, sg3.G.w_dim).astype(np.float32))
    first = Renderer(sg3).render(args)
    write_png(tmp_path / "a.png", first.image, recipe_to_dict(args, model_ref(sg3), first.w))
    recipe = read_recipe(tmp_path / "a.png")
    assert getattr(recipe.args, latent) is not None
    assert np.array_equal(Renderer(sg3).render(recipe.args).image, first.image)


def test_read_recipe_errors(tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros([4, 4, 3], np.uint8)).save(plain)
    with pytest.raises(UserError, match="no stylegan-explorer recipe"):
        read_recipe(plain)
    bad = tmp_path / "bad.png"
    write_png(bad, np.zeros([4, 4, 3], np.uint8), {"version": 1, "psi": "x"})
    with pytest.raises(UserError, match="damaged"):
        read_recipe(bad)
    with pytest.raises(UserError):
        read_recipe(tmp_path / "missing.png")


def test_map_seed_is_the_mapping_a_render_uses(model):
    """Renderer.map_seed (the one seed -> z -> w rule: seed plane, video interpolation) gives the
    ws a render of that seed starts from, with the same truncation."""
    r = Renderer(model)
    args = RenderArgs(seed=5, psi=0.6, truncation_cutoff=2)
    np.testing.assert_array_equal(r.map_seed(5, args), r.render(args).w)


def test_equivariance_view_is_plain_data_and_says_why_not(sg3):
    r = Renderer(sg3)
    for move in (dict(translate=(0.25, 0.0)), dict(rotate=30.0)):
        view = r.equivariance_view(RenderArgs(seed=1, **move))
        assert view.error is None and view.psnr > 0
        for image in (view.image, view.reference, view.transformed):
            assert image.dtype == np.uint8 and image.shape == (16, 16, 3)
    assert "Translate or rotate" in r.equivariance_view(RenderArgs(seed=1)).error
    bad = r.equivariance_view(RenderArgs(seed=1, truncation_cutoff=99, translate=(0.1, 0.0)))
    assert "truncation cutoff" in bad.error and bad.image is None
