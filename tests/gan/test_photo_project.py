"""Projection on tiny generators: the loss falls, a generated image is found again, batches are
independent problems, noise buffers round-trip through the renderer and the .npz file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan.errors import Cancelled, UserError
from gan.photo.losses import DiscriminatorFeatures, VGGPerceptual, ms_ssim, psnr, ssim, ssim_uint8
from gan.photo.pipeline import projection_render_args
from gan.photo.project import (
    ProjectConfig,
    load_projection,
    noise_buffers,
    project,
    save_projection,
    w_stats,
)
from gan.render import Renderer
from tests.support.tiny import make_tiny_generator

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = dict(w_avg_samples=500)


def _render(G, ws: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const", force_fp32=True)
    return ((img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8))[0].numpy()


def _seed_image(G, seed: int) -> np.ndarray:
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim).astype(np.float32))
    with torch.no_grad():
        return _render(G, G.mapping(z, None))


class _Model:
    """The parts of a LoadedModel the renderer reads."""

    def __init__(self, G, arch):
        self.G, self.arch, self.metadata, self.source, self.sha256 = G, arch, {}, "tiny", "0" * 64


@pytest.fixture(scope="module")
def sg2_quiet():
    """A tiny StyleGAN2 whose noise is switched off, so a seed's image is reachable through w alone."""
    G = make_tiny_generator("stylegan2")
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.zero_()
    return G


def test_projection_finds_a_generated_image_again(sg2_quiet):
    G = sg2_quiet
    target = _seed_image(G, 1)
    avg, _ = w_stats(G, 500, 0)
    start = psnr(_render(G, avg.reshape(1, 1, -1).expand(1, G.num_ws, -1)), target)
    [result] = project(G, target, ProjectConfig(steps=100, optimize_noise=False, **FAST))
    assert result.history[-1] < 0.5 * result.history[0]
    reached = psnr(result.image, target)
    assert reached > 25 and reached > start + 8, (start, reached)
    assert result.ws.shape == (G.num_ws, G.w_dim)
    assert np.allclose(result.ws, result.ws[0])  # plain w: every layer the same
    assert result.noise == {}


def test_projection_lowers_the_loss_with_d_features_and_noise():
    G = make_tiny_generator("stylegan2")
    from gan.networks.stylegan2 import Discriminator

    torch.manual_seed(0)
    D = Discriminator(
        c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16, num_fp16_res=0
    )
    target = _seed_image(make_tiny_generator("stylegan2", seed=3), 4)
    before = {n: b.clone() for n, b in noise_buffers(G).items()}
    seen = []
    [result] = project(G, target, ProjectConfig(steps=40, preview_every=10, **FAST), D=D, on_step=seen.append)
    assert set(result.losses) == {"pixel", "ms_ssim", "d", "total"}
    assert result.history[-5:].mean() < result.history[:5].mean()
    # The caller's generator keeps its own noise; the projection has its own, white noise.
    assert all(torch.equal(before[n], b) for n, b in noise_buffers(G).items())
    assert set(result.noise) == set(before)
    for value in result.noise.values():
        assert abs(value.mean()) < 1e-4 and value.std() == pytest.approx(1.0, abs=1e-3)
    assert [p.step for p in seen] == list(range(1, 41))
    assert [p.step for p in seen if p.image is not None] == [10, 20, 30, 40]
    assert seen[-1].image.shape == (16, 16, 3)


def test_rendering_a_projection_gives_its_image_exactly():
    G = make_tiny_generator("stylegan2")
    target = _seed_image(make_tiny_generator("stylegan2", seed=3), 4)
    [result] = project(G, target, ProjectConfig(steps=8, w_plus=True, **FAST))
    assert not np.allclose(result.ws, result.ws[0])  # W+: the layers moved apart
    renderer = Renderer(_Model(G, "stylegan2"))
    rendered = renderer.render(projection_render_args(result))
    assert rendered.error is None
    assert np.array_equal(rendered.image, result.image)
    # The renderer put the model's own noise back afterwards, and its cache tells noise apart.
    plain = renderer.render(projection_render_args(result, noise=None))
    assert not np.array_equal(plain.image, result.image)
    again = renderer.render(projection_render_args(result))
    assert np.array_equal(again.image, result.image)


def test_noise_of_another_model_is_a_render_error():
    G = make_tiny_generator("stylegan2")
    renderer = Renderer(_Model(G, "stylegan2"))
    args = projection_render_args(
        type(
            "P",
            (),
            {
                "ws": np.zeros((G.num_ws, G.w_dim), np.float32),
                "noise": {"synthesis.x.noise_const": np.zeros((4, 4))},
            },
        )()
    )
    assert "no noise buffer" in renderer.render(args).error


def test_a_batch_is_independent_problems():
    """Image 0 of a batch comes out as it does alone: the other image does not pull on it."""
    G = make_tiny_generator("stylegan3-t")
    targets = np.stack([_seed_image(G, s) for s in (1, 2)])
    config = ProjectConfig(steps=6, **FAST)
    both = project(G, targets, config)
    [first] = project(G, targets[0], config)
    assert np.allclose(both[0].ws, first.ws, atol=1e-4)  # Adam amplifies float rounding a little
    assert not np.allclose(both[1].ws, first.ws, atol=1e-3)
    assert both[0].losses["total"] == pytest.approx(first.losses["total"], rel=1e-2)


def test_several_targets_with_noise_buffers_are_refused():
    G = make_tiny_generator("stylegan2")
    target = np.zeros((2, 16, 16, 3), np.uint8)
    with pytest.raises(UserError, match="one at a time"):
        project(G, target, ProjectConfig(steps=2, **FAST))


def test_wrong_target_size_and_bad_settings_are_errors():
    G = make_tiny_generator("stylegan3-t")
    with pytest.raises(UserError, match="align or crop"):
        project(G, np.zeros((32, 32, 3), np.uint8), ProjectConfig(steps=2, **FAST))
    with pytest.raises(UserError, match="steps"):
        ProjectConfig(steps=0).validate()
    with pytest.raises(UserError, match="unknown preset"):
        ProjectConfig.preset("perfect")
    assert ProjectConfig.preset("best").w_plus and ProjectConfig.preset("fast").steps < ProjectConfig().steps


def test_cancel_stops_the_projection():
    G = make_tiny_generator("stylegan3-t")
    calls = []
    with pytest.raises(Cancelled):
        project(
            G,
            _seed_image(G, 1),
            ProjectConfig(steps=50, **FAST),
            should_stop=lambda: calls.append(1) or len(calls) >= 3,
        )
    assert len(calls) == 3


def test_npz_round_trip(tmp_path):
    G = make_tiny_generator("stylegan2")
    [result] = project(G, _seed_image(G, 2), ProjectConfig(steps=3, w_plus=True, **FAST))
    result.model = {"sha256": "ab" * 32, "path": "/m.safetensors", "arch": "stylegan2"}
    result.source = {"photo": "/me.jpg", "how": "crop"}
    save_projection(tmp_path / "p.npz", result)
    back = load_projection(tmp_path / "p.npz")
    assert np.array_equal(back.ws, result.ws) and back.w_plus
    assert set(back.noise) == set(result.noise)
    assert all(np.array_equal(back.noise[k], result.noise[k]) for k in result.noise)
    assert np.array_equal(back.image, result.image) and np.array_equal(back.target, result.target)
    assert back.model == result.model and back.source == result.source
    assert back.config["steps"] == 3 and back.losses == pytest.approx(result.losses)


def test_damaged_npz_files_are_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"nope")
    with pytest.raises(UserError, match="not a projection file"):
        load_projection(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(UserError, match="damaged or not a projection"):
        load_projection(tmp_path / "other.npz")
    with pytest.raises(UserError, match="does not exist"):
        load_projection(tmp_path / "missing.npz")


# --- distances -----------------------------------------------------------------------------------


def test_ssim_and_ms_ssim():
    rng = torch.Generator().manual_seed(0)
    x = torch.rand([2, 3, 64, 64], generator=rng) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2), atol=1e-5)
    noisy = (x + 0.3 * torch.randn(x.shape, generator=rng)).clamp(-1, 1)
    assert (ssim(x, noisy) < 0.9).all() and (ms_ssim(x, noisy) < 0.95).all()
    assert (ssim(x, x * 0.5) > ssim(x, -x)).all()
    a = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    assert ssim_uint8(a, a) == pytest.approx(1.0, abs=1e-5) and psnr(a, a) == float("inf")


def test_ssim_matches_the_definition_with_a_2d_window():
    """SSIM (Wang et al. 2004) written out with a full 11x11 Gaussian window per channel and no
    padding, in float64: our separable, batched version gives the same value per image."""
    rng = torch.Generator().manual_seed(1)
    x = torch.rand([2, 3, 24, 20], generator=rng, dtype=torch.float64)
    y = (x + 0.2 * torch.randn(x.shape, generator=rng, dtype=torch.float64)).clamp(0, 1)
    t = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-(t**2) / (2 * 1.5**2))
    window = torch.outer(g, g) / torch.outer(g, g).sum()
    k = window.expand(3, 1, 11, 11)

    def mean(v):
        return torch.nn.functional.conv2d(v, k, groups=3)

    mx, my = mean(x), mean(y)
    sxx, syy, sxy = mean(x * x) - mx**2, mean(y * y) - my**2, mean(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    expected = ((2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))).mean(
        dim=[1, 2, 3]
    )
    got = ssim((x * 2 - 1).float(), (y * 2 - 1).float())
    assert torch.allclose(got.double(), expected, atol=1e-5)


def test_discriminator_features_are_per_image():
    from gan.networks.stylegan2 import Discriminator

    D = Discriminator(
        c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16, num_fp16_res=0
    )
    feats = DiscriminatorFeatures(D)
    x = torch.rand([3, 3, 16, 16]) * 2 - 1
    a, b = feats(x), feats(x.flip(0))
    d = DiscriminatorFeatures.distance(a, b)
    assert d.shape == (3,) and d[1] == pytest.approx(0.0, abs=1e-6) and d[0] > 0
    single = DiscriminatorFeatures.distance(feats(x[:1]), feats(x[2:]))
    assert single[0] == pytest.approx(float(d[0]), rel=1e-4)  # the minibatch does not mix images


def test_vgg_lpips_from_a_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    shapes = [
        (64, 3),
        (64, 64),
        (128, 64),
        (128, 128),
        (256, 128),
        (256, 256),
        (256, 256),
        (512, 256),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
    ]
    indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    state = {}
    for i, (o, c) in zip(indices, shapes):
        state[f"features.{i}.weight"] = torch.randn(o, c, 3, 3) * (2 / (9 * c)) ** 0.5
        state[f"features.{i}.bias"] = torch.zeros(o)
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    torch.save(state, tmp_path / "vgg16.pth")
    vgg = VGGPerceptual(tmp_path / "vgg16.pth")
    x = torch.rand([2, 3, 32, 32]) * 2 - 1
    d = vgg.distance(vgg(x), vgg(x.flip(0)))
    assert d.shape == (2,) and (d > 0).all()
    assert float(vgg.distance(vgg(x), vgg(x))[0]) == pytest.approx(0.0, abs=1e-6)
    del state["features.28.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(UserError, match="not torchvision's VGG16"):
        VGGPerceptual(tmp_path / "broken.pth")


def test_a_projection_recipe_drives_videos():
    """MP4 exports start from the view's recipe (as a PNG stores it): its w and noise stay in
    every frame."""
    from gan.recipe import model_ref, recipe_from_dict, recipe_to_dict
    from gan.video import VideoJob, frame_args

    G = make_tiny_generator("stylegan2")
    [result] = project(G, _seed_image(G, 2), ProjectConfig(steps=3, **FAST))
    model = _Model(G, "stylegan2")
    recipe = recipe_to_dict(projection_render_args(result), model_ref(model))
    view = recipe_from_dict(recipe).args
    job = VideoJob(
        kind="sweep", view=view, fps=4, duration=1, strength=2.0, direction=np.ones(16, np.float32)
    )
    renderer = Renderer(model)
    frames = list(frame_args(job, renderer, job.direction))
    assert all(np.array_equal(f.w, result.ws) and set(f.noise) == set(result.noise) for f in frames)
    np.testing.assert_array_equal(renderer.render(frames[1]).image, result.image)  # strength 0
    assert not np.array_equal(renderer.render(frames[0]).image, result.image)


def test_one_thread_when_the_machine_is_busy(monkeypatch):
    from gan.photo import project as module

    monkeypatch.setattr(module.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(module.os, "getloadavg", lambda: (5.0, 5.0, 5.0))
    assert module.threads_for_load() == 1
    monkeypatch.setattr(module.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert module.threads_for_load() is None
