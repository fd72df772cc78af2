"""The fast modulated convolution (styles on the activations, demodulation from a matmul) against
NVIDIA's per-sample-weight formulation ('ref'): outputs, gradients and second-order gradients."""

import pytest
import torch

from ops_cuda import modconv, prefer_impl
from ops_cuda._dispatch import get_registry
from ops_cuda.upfirdn2d import setup_filter

TOL = 2e-5


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


FIR = setup_filter([1, 3, 3, 1])
CASES = {
    # name: (kwargs, in_ch, out_ch, kernel, size)
    "sg3_layer": (dict(padding=2, normalize=True, input_gain=torch.tensor(0.7)), 5, 6, 3, 9),
    "sg3_r_layer": (dict(padding=0, normalize=True, input_gain=torch.tensor(1.3)), 6, 4, 1, 7),
    "sg3_torgb": (dict(demodulate=False, input_gain=torch.tensor(0.5)), 6, 3, 1, 8),
    "sg2_conv": (dict(padding=1), 4, 5, 3, 8),
    "sg2_up": (dict(padding=1, up=2, resample_filter=FIR, flip_weight=False), 4, 3, 3, 6),
    "sg2_torgb": (dict(demodulate=False), 5, 3, 1, 8),
    "down": (dict(padding=1, down=2, resample_filter=FIR), 3, 4, 3, 10),
    "per_sample_gain": (dict(padding=1, normalize=True), 4, 4, 3, 7),
    # Weight larger than a sample's activations: the fast impl scales the activations instead.
    "wide_small": (dict(padding=1, normalize=True, input_gain=torch.tensor(0.9)), 24, 20, 3, 3),
    "wide_small_up": (dict(padding=1, up=2, resample_filter=FIR, flip_weight=False), 24, 20, 3, 3),
}


def _inputs(case, batch, dtype=torch.float32):
    kwargs, in_ch, out_ch, k, size = CASES[case]
    kwargs = dict(kwargs)
    x = _rand(batch, in_ch, size, size, seed=1, dtype=dtype)
    weight = _rand(out_ch, in_ch, k, k, seed=2, dtype=dtype)
    styles = _rand(batch, in_ch, seed=3, dtype=dtype) + 1
    if case == "per_sample_gain":
        kwargs["input_gain"] = _rand(batch, in_ch, seed=4, dtype=dtype).abs() + 0.5
    if isinstance(kwargs.get("input_gain"), torch.Tensor):
        kwargs["input_gain"] = kwargs["input_gain"].to(dtype)
    return x, weight, styles, kwargs


def _run(impl, x, weight, styles, kwargs, fused=True):
    leaves = [t.detach().clone().requires_grad_() for t in (x, weight, styles)]
    y = modconv.modulated_conv2d(*leaves, fused=fused, impl=impl, **kwargs)
    (y * _rand(*y.shape, seed=9, dtype=y.dtype)).sum().backward()
    return y.detach(), [t.grad for t in leaves]


def _close(a, b, tol=TOL):
    assert a.shape == b.shape
    assert (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("fused", [True, False])
def test_fast_matches_ref_forward_and_backward(case, batch, fused):
    x, weight, styles, kwargs = _inputs(case, batch)
    y_fast, g_fast = _run("cpu", x, weight, styles, kwargs)
    y_ref, g_ref = _run("ref", x, weight, styles, kwargs, fused=fused)
    _close(y_fast, y_ref)
    for a, b in zip(g_fast, g_ref):
        _close(a, b)


@pytest.mark.parametrize(
    "case",
    ["sg3_layer", "sg3_r_layer", "sg2_torgb", "sg2_up", "per_sample_gain", "wide_small", "wide_small_up"],
)
def test_fast_matches_ref_in_float64_to_rounding(case):
    x, weight, styles, kwargs = _inputs(case, 2, dtype=torch.float64)
    y_fast, g_fast = _run("cpu", x, weight, styles, kwargs)
    y_ref, g_ref = _run("ref", x, weight, styles, kwargs)
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-11, atol=1e-12)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("case", ["sg3_layer", "sg3_r_layer", "sg2_torgb", "sg2_up", "wide_small"])
def test_second_order_gradients_match(case):
    """Path-length regularisation differentiates d(output)/d(styles) again."""
    x, weight, styles, kwargs = _inputs(case, 2, dtype=torch.float64)
    grads = {}
    for impl in ("cpu", "ref"):
        w = weight.clone().requires_grad_()
        s = styles.clone().requires_grad_()
        y = modconv.modulated_conv2d(x, w, s, impl=impl, **kwargs)
        (gs,) = torch.autograd.grad((y * _rand(*y.shape, seed=5, dtype=y.dtype)).sum(), s, create_graph=True)
        gs.square().sum().backward()
        grads[impl] = w.grad
    torch.testing.assert_close(grads["cpu"], grads["ref"], rtol=1e-10, atol=1e-11)


def test_auto_uses_the_fast_formulation_on_cpu_and_ref_inside_prefer_impl():
    registry = get_registry()
    assert registry.resolve("modulated_conv2d", "auto", "cpu") is modconv.modulated_conv2d_fast
    with prefer_impl("ref"):
        assert registry.resolve("modulated_conv2d", "auto", "cpu") is modconv.modulated_conv2d_ref


def test_shape_errors_say_what_is_wrong():
    x, weight, styles, _ = _inputs("sg2_conv", 2)
    with pytest.raises(ValueError, match="styles"):
        modconv.modulated_conv2d(x, weight, styles[:, :2])
    with pytest.raises(ValueError, match="expects x"):
        modconv.modulated_conv2d(x[0], weight, styles)


@pytest.mark.parametrize("case", ["sg3_layer", "wide_small", "sg2_torgb"])
def test_inference_without_grad_matches_ref(case):
    """Without autograd the fast impl takes the filter norms in one pass (vector_norm)."""
    x, weight, styles, kwargs = _inputs(case, 2, dtype=torch.float64)
    with torch.no_grad():
        fast = modconv.modulated_conv2d(x, weight, styles, impl="cpu", **kwargs)
        ref = modconv.modulated_conv2d(x, weight, styles, impl="ref", **kwargs)
    torch.testing.assert_close(fast, ref, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("case", ["sg3_r_layer", "sg3_torgb", "sg2_torgb"])
def test_1x1_layers_run_as_a_batched_matmul(case, monkeypatch):
    """No (grouped) convolution for 1x1 layers: torch's CPU grouped 1x1 conv takes a slow path."""

    def no_conv(*args, **kwargs):
        raise AssertionError("a 1x1 modulated conv reached conv2d_resample")

    monkeypatch.setattr(modconv, "conv2d_resample", no_conv)
    x, weight, styles, kwargs = _inputs(case, 3)
    y_fast, g_fast = _run("cpu", x, weight, styles, kwargs)
    monkeypatch.undo()
    y_ref, g_ref = _run("ref", x, weight, styles, kwargs)
    _close(y_fast, y_ref)
    for a, b in zip(g_fast, g_ref):
        _close(a, b)


@pytest.mark.parametrize("case", ["sg3_layer", "sg2_conv", "sg2_up", "down", "per_sample_gain"])
@pytest.mark.parametrize("batch", [1, 3])
def test_frozen_weight_gradients_for_styles_match_ref(case, batch):
    """Projection: the weight is frozen and only styles (and x) need gradients, so the fast impl
    scales the activations instead of forming per-sample weights; same values and gradients."""
    x, weight, styles, kwargs = _inputs(case, batch, dtype=torch.float64)
    out = {}
    for impl in ("cpu", "ref"):
        xs, s = x.clone().requires_grad_(), styles.clone().requires_grad_()
        y = modconv.modulated_conv2d(xs, weight, s, impl=impl, **kwargs)
        (y * _rand(*y.shape, seed=7, dtype=y.dtype)).sum().backward()
        out[impl] = (y.detach(), xs.grad, s.grad)
    for a, b in zip(out["cpu"], out["ref"]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)
