"""ADA augmentation: identity at p=0, real changes at p=1, exact geometry, gradients, the p controller."""

from __future__ import annotations

import math

import pytest
import torch

from gan.train.augment import AdaController, AugmentPipe, augment_preset


def _images(n=4, c=3, size=16, seed=0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _smooth(n=8, size=32) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    img = torch.stack([torch.sin(2 * x + y), torch.cos(3 * y) * x, x * y])
    return img.unsqueeze(0).repeat(n, 1, 1, 1)


def _gen(seed=1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_bgc_preset_has_the_papers_twelve_augmentations():
    assert set(augment_preset("bgc")) == {
        "xflip",
        "rotate90",
        "xint",
        "scale",
        "rotate",
        "aniso",
        "xfrac",
        "brightness",
        "contrast",
        "lumaflip",
        "hue",
        "saturation",
    }
    with pytest.raises(ValueError):
        augment_preset("nope")
    pipe = AugmentPipe(**augment_preset("bgc"))
    assert pipe.scale_std == 0.2 and pipe.contrast_std == 0.5 and pipe.xint_max == 0.125
    assert set(pipe.state_dict()) == {"p"}


def test_p_zero_is_identity():
    pipe = AugmentPipe(**augment_preset("bgc"), p=0.0)
    x = _images()
    assert torch.equal(pipe(x, generator=_gen()), x)


def test_p_one_changes_images_but_keeps_shape_dtype_and_range():
    pipe = AugmentPipe(**augment_preset("bgc"), p=1.0)
    x = _smooth(n=16)
    out = pipe(x, generator=_gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    per_image_change = (out - x).abs().flatten(1).mean(1)
    assert (per_image_change > 0.05).all()  # every image was altered
    # Contrast and saturation (std 0.5 and 1 octave) push some pixels far out of [-1, 1]; most stay.
    assert out.abs().flatten().quantile(0.95) < 2.5
    assert out.abs().mean() < 2 * x.abs().mean()


def test_seeded_generator_is_deterministic():
    pipe = AugmentPipe(**augment_preset("bgc"), p=0.7)
    x = _images()
    a = pipe(x, generator=_gen(5))
    b = pipe(x, generator=_gen(5))
    c = pipe(x, generator=_gen(6))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_gradients_flow_through_the_pipe():
    pipe = AugmentPipe(**augment_preset("bgc"), p=1.0)
    x = _images(n=2, size=8).double().requires_grad_(True)
    out = pipe(x, generator=_gen())
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # The whole pipe (fixed random draws) is a linear map of the image: check its exact Jacobian.
    small = _images(n=1, size=8).double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: pipe(t, generator=_gen(3)), (small,), eps=1e-6, atol=1e-5)


def test_integer_translation_is_exact_away_from_the_border():
    pipe = AugmentPipe(xint=1, p=1.0)
    x = _images(n=6, size=16)
    out = pipe(x, generator=_gen(2))
    for k in range(len(x)):
        errors = {
            (dy, dx): (out[k, :, 4:12, 4:12] - x[k, :, 4 - dy : 12 - dy, 4 - dx : 12 - dx]).abs().max().item()
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        }
        assert min(errors.values()) < 1e-5, errors


@pytest.mark.parametrize("name", ["xflip", "rotate90"])
def test_flips_and_quarter_turns_are_about_the_image_centre(name):
    # sym6 is not symmetric, so a mirrored image is only close to exact on smooth content.
    pipe = AugmentPipe(**{name: 1}, p=1.0)
    x = _smooth(n=8)
    out = pipe(x, generator=_gen(4))
    seen = set()
    for k in range(len(x)):
        candidates = {f"rot{r}": torch.rot90(x[k], r, dims=(1, 2)) for r in range(4)}
        candidates["flip"] = x[k].flip(2)
        errors = {key: (out[k] - c).abs().max().item() for key, c in candidates.items()}
        best = min(errors, key=errors.get)
        assert errors[best] < 0.03, errors
        seen.add(best)
    assert len(seen) >= 2  # some images were transformed, some not


def test_hue_and_saturation_leave_grey_alone_and_brightness_shifts_all_channels():
    grey = _images(n=4, c=1, size=8).repeat(1, 3, 1, 1)
    pipe = AugmentPipe(hue=1, saturation=1, p=1.0)
    assert torch.allclose(pipe(grey, generator=_gen()), grey, atol=1e-5)
    coloured = _images(n=4, size=8)
    assert not torch.allclose(pipe(coloured, generator=_gen()), coloured, atol=1e-3)
    bright = AugmentPipe(brightness=1, p=1.0)(coloured, generator=_gen())
    shift = bright - coloured
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() > 1e-3


def test_single_channel_images():
    pipe = AugmentPipe(**augment_preset("bgc"), p=1.0)
    x = _images(n=3, c=1, size=16)
    out = pipe(x, generator=_gen())
    assert out.shape == x.shape and torch.isfinite(out).all() and not torch.allclose(out, x)


def test_controller_raises_p_when_d_overfits_and_lowers_it_otherwise():
    pipe = AugmentPipe(**augment_preset("bgc"), p=0.0)
    ada = AdaController(pipe, target=0.6, kimg=0.1)  # 100 images move p from 0 to 1
    for _ in range(4):
        ada.observe(torch.tensor([2.0, 1.0, 3.0, -0.5, 0.7]))
    # mean sign = (4 - 1) / 5 = 0.6 exactly: no change
    assert ada.update() == 0.0 and ada.last_sign_mean == pytest.approx(0.6)
    ada.observe(torch.ones(10))  # D is confident on reals: overfitting
    assert ada.update() == pytest.approx(0.1)
    ada.observe(torch.ones(10))
    assert ada.update(num_images=20) == pytest.approx(0.3)
    ada.observe(-torch.ones(10))  # D doubts reals: less augmentation
    assert ada.update() == pytest.approx(0.2)
    assert ada.last_sign_mean == -1
    for _ in range(30):
        ada.observe(-torch.ones(10))
        ada.update()
    assert float(pipe.p) == 0.0  # clamped at 0
    for _ in range(30):
        ada.observe(torch.ones(10))
        ada.update()
    assert float(pipe.p) == 1.0  # and at 1
    assert ada.update() == 1.0  # nothing observed: unchanged
    assert math.isclose(float(pipe.p), 1.0)
