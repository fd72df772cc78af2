"""Reference ops against NVIDIA's official outputs, plus properties, gradients and dispatch."""

import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import ops_cuda
from ops_cuda import bias_act, conv2d_resample, filtered_lrelu, fma, upfirdn2d
from ops_cuda._dispatch import IMPL_TABLE, Registry
from tests.ops.conftest import max_diff, official_bias_act, official_filtered_lrelu, official_upfirdn2d

ATOL = 1e-5  # measured: the reference matches the official fixtures bit-exactly on CPU


# --- parity with the official implementation -------------------------------------------------


def test_bias_act_matches_official(official):
    t = official[0]
    y, x, b = official_bias_act(official, "ref")
    assert max_diff(y, t["bias_act/y"]) <= ATOL
    assert max_diff(x.grad, t["bias_act/dx"]) <= ATOL
    assert max_diff(b.grad, t["bias_act/db"]) <= ATOL


def test_upfirdn2d_matches_official(official):
    t = official[0]
    y, x = official_upfirdn2d(official, "ref")
    assert y.shape == t["upfirdn2d/y"].shape
    assert max_diff(y, t["upfirdn2d/y"]) <= ATOL
    assert max_diff(x.grad, t["upfirdn2d/dx"]) <= ATOL


@pytest.mark.parametrize("layer", ["L2_36_64", "L11_84_64"])
def test_filtered_lrelu_matches_official(official, layer):
    t = official[0]
    y, x, b, k = official_filtered_lrelu(official, layer, "ref")
    assert y.shape == t[k + "y"].shape
    assert max_diff(y, t[k + "y"]) <= ATOL
    assert max_diff(x.grad, t[k + "dx"]) <= ATOL
    assert max_diff(b.grad, t[k + "db"]) <= ATOL


# --- properties -------------------------------------------------------------------------------


def test_bias_act_formula_and_defaults():
    x = torch.randn(2, 3, 4, 5)
    b = torch.randn(3)
    y = bias_act.bias_act(x, b, act="lrelu")  # defaults: alpha 0.2, gain sqrt(2)
    expected = F.leaky_relu(x + b[None, :, None, None], 0.2) * math.sqrt(2)
    torch.testing.assert_close(y, expected)
    y = bias_act.bias_act(x * 100, act="linear", gain=2.0, clamp=5.0)
    torch.testing.assert_close(y, (x * 200).clamp(-5, 5))
    b2 = torch.randn(5)
    torch.testing.assert_close(bias_act.bias_act(x, b2, dim=3, act="tanh"), torch.tanh(x + b2))
    for act, spec in bias_act.ACTIVATIONS.items():
        expected_gain = math.sqrt(2) if act in ("relu", "lrelu", "swish") else 1.0
        assert spec.def_gain == pytest.approx(expected_gain), act


def test_delta_filter_is_identity():
    x = torch.randn(2, 3, 9, 7)
    delta = torch.zeros(5, 5)
    delta[2, 2] = 1
    torch.testing.assert_close(upfirdn2d.filter2d(x, delta), x)
    torch.testing.assert_close(upfirdn2d.upfirdn2d(x, None), x)


def test_separable_filter_equals_outer_product():
    x = torch.randn(1, 2, 10, 11)
    taps = torch.rand(8)
    f1 = upfirdn2d.setup_filter(taps, separable=True)
    f2 = upfirdn2d.setup_filter(taps, separable=False)
    assert f1.ndim == 1 and f2.ndim == 2 and f2.sum().item() == pytest.approx(1.0)
    for kwargs in [dict(up=2, padding=[3, 2, 4, 1]), dict(down=2, padding=1), dict(up=[2, 1], down=[1, 2])]:
        torch.testing.assert_close(upfirdn2d.upfirdn2d(x, f1, **kwargs), upfirdn2d.upfirdn2d(x, f2, **kwargs))


def test_filter_is_a_convolution_not_a_correlation():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1  # an impulse reproduces the filter itself, unflipped
    f = torch.arange(9, dtype=torch.float32).reshape(3, 3)
    torch.testing.assert_close(upfirdn2d.filter2d(x, f)[0, 0, 1:4, 1:4], f)
    torch.testing.assert_close(upfirdn2d.filter2d(x, f, flip_filter=True)[0, 0, 1:4, 1:4], f.flip([0, 1]))


def test_up_down_shapes_and_round_trip():
    x = torch.randn(2, 3, 8, 6)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    up = upfirdn2d.upsample2d(x, f)
    assert up.shape == (2, 3, 16, 12)
    down = upfirdn2d.downsample2d(up, f)
    assert down.shape == x.shape
    # A constant image survives up+down exactly away from the zero-padded borders.
    ones = torch.ones(1, 1, 12, 12)
    rt = upfirdn2d.downsample2d(upfirdn2d.upsample2d(ones, f), f)
    torch.testing.assert_close(rt[..., 2:-2, 2:-2], ones[..., 2:-2, 2:-2])
    assert upfirdn2d.upsample2d(x, f, up=[2, 3]).shape == (2, 3, 24, 12)
    assert upfirdn2d.upfirdn2d(x, f, padding=-1).shape == (2, 3, 3, 1)


def test_setup_filter_gain_and_flip():
    f = upfirdn2d.setup_filter([1, 2, 3], gain=4, flip_filter=True)
    assert f.shape == (3, 3) and f.dtype == torch.float32
    assert f.sum().item() == pytest.approx(4.0)
    assert f[0, 0] > f[2, 2]  # flipped
    fs = upfirdn2d.setup_filter(list(range(1, 9)), gain=4)
    assert fs.ndim == 1 and fs.sum().item() == pytest.approx(2.0)  # sqrt(gain) per separable pass


def _conv2d_resample_generic(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """The slow path the fused variants must equal: upsample, convolve, downsample."""
    fw, fh = upfirdn2d.get_filter_size(f)
    px0, px1, py0, py1 = upfirdn2d.parse_padding(padding)
    if up > 1:
        px0, px1, py0, py1 = (
            px0 + (fw + up - 1) // 2,
            px1 + (fw - up) // 2,
            py0 + (fh + up - 1) // 2,
            py1 + (fh - up) // 2,
        )
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    x = upfirdn2d.upfirdn2d(
        x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter
    )
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x


@pytest.mark.parametrize(
    "k,up,down,padding,groups,flip_weight,flip_filter",
    [
        (3, 2, 1, 1, 1, True, False),
        (3, 2, 1, 1, 2, False, False),
        (3, 1, 2, 1, 1, True, True),
        (1, 2, 1, 0, 1, True, False),
        (1, 1, 2, 0, 2, True, False),
        (3, 1, 1, 1, 2, False, False),
        (3, 1, 1, [2, 0, 1, 1], 1, True, False),
        (3, 2, 2, 1, 1, True, False),
    ],
)
def test_conv2d_resample_fast_paths_equal_generic(k, up, down, padding, groups, flip_weight, flip_filter):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, k, k, generator=g, dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    kw = dict(
        up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=flip_filter
    )
    y = conv2d_resample.conv2d_resample(x, w, f, **kw)
    torch.testing.assert_close(y, _conv2d_resample_generic(x, w, f, **kw))


def test_conv2d_resample_sg2_shapes():
    x = torch.randn(1, 4, 8, 8)
    w = torch.randn(5, 4, 3, 3)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert conv2d_resample.conv2d_resample(x, w, f, up=2, padding=1).shape == (1, 5, 16, 16)
    assert conv2d_resample.conv2d_resample(x, w, f, down=2, padding=1).shape == (1, 5, 4, 4)
    assert conv2d_resample.conv2d_resample(x, w, padding=1).shape == (1, 5, 8, 8)


def test_fma():
    a, b, c = torch.randn(2, 3, 4), torch.randn(1, 3, 1), torch.randn(4)
    torch.testing.assert_close(fma.fma(a, b, c), a * b + c)


def test_filtered_lrelu_equals_its_definition():
    x = torch.randn(1, 3, 10, 10)
    b = torch.randn(3)
    fu = upfirdn2d.setup_filter(torch.rand(8), separable=True)
    fd = upfirdn2d.setup_filter(torch.rand(5))
    y = filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=[5, 4, 5, 4], clamp=0.5)
    h = upfirdn2d.upfirdn2d(x + b[None, :, None, None], fu, up=2, padding=[5, 4, 5, 4], gain=4)
    h = (F.leaky_relu(h, 0.2) * math.sqrt(2)).clamp(-0.5, 0.5)
    torch.testing.assert_close(y, upfirdn2d.upfirdn2d(h, fd, down=2))
    assert y.shape == (1, 3, (10 * 2 + 9 - 7 - 4 + 1) // 2, (10 * 2 + 9 - 7 - 4 + 1) // 2)


# --- gradients (float64 gradcheck on tiny inputs) ---------------------------------------------


def test_gradcheck_bias_act():
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    for act in ["lrelu", "tanh", "swish", "softplus"]:
        assert torch.autograd.gradcheck(lambda x, b, act=act: bias_act.bias_act(x, b, act=act), (x, b))


def test_gradcheck_upfirdn2d():
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    f2 = upfirdn2d.setup_filter([1, 2, 1])
    f1 = upfirdn2d.setup_filter(torch.rand(8), separable=True)
    assert torch.autograd.gradcheck(
        lambda x: upfirdn2d.upfirdn2d(x, f2, up=2, down=1, padding=[1, 2, 0, 1]), (x,)
    )
    assert torch.autograd.gradcheck(lambda x: upfirdn2d.upfirdn2d(x, f1, up=[1, 2], down=2, padding=3), (x,))


def test_gradcheck_filtered_lrelu():
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    fu = upfirdn2d.setup_filter([1, 3, 3, 1])
    fd = upfirdn2d.setup_filter([1, 2, 1])
    assert torch.autograd.gradcheck(
        lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=2), (x, b)
    )


# --- dispatch ---------------------------------------------------------------------------------


def test_unknown_impl_is_a_value_error():
    with pytest.raises(ValueError, match="unknown impl"):
        bias_act.bias_act(torch.zeros(1, 1), impl="fast")
    with pytest.raises(ValueError, match="unknown impl"):
        upfirdn2d.filter2d(torch.zeros(1, 1, 2, 2), None, impl="")


def test_unavailable_impl_warns_once_and_falls_back():
    # Only reference implementations registered, as on a machine without compiled kernels.
    registry = Registry({op: {"ref": impls["ref"]} for op, impls in IMPL_TABLE.items()})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn = registry.resolve("upfirdn2d", "cuda", "cpu")
        assert fn is registry.resolve("upfirdn2d", "ref", "cpu")
        registry.resolve("upfirdn2d", "cuda", "cpu")  # cached: no second warning
        assert registry.resolve("upfirdn2d", "auto", "cpu") is fn  # auto falls back silently
    assert len(caught) == 1
    assert "impl='ref'" in str(caught[0].message) and "To fix" in str(caught[0].message)


def test_registered_native_impl_is_picked_by_auto_and_broken_one_falls_back():
    table = {op: dict(impls) for op, impls in IMPL_TABLE.items()}
    table["fma"]["cpu"] = "ops_cuda.fma:fma_ref"  # stand-in for a C++ kernel
    table["bias_act"]["cpu"] = "ops_cuda._no_such_module:bias_act_cpu"
    registry = Registry(table)
    assert registry.capabilities("cpu")["fma"]["impl"] == "cpu"
    assert registry.resolve("fma", "auto", "cpu") is fma.fma_ref
    with pytest.warns(RuntimeWarning, match="loading ops_cuda._no_such_module"):
        assert registry.resolve("bias_act", "auto", "cpu") is bias_act.bias_act_ref
    caps = registry.capabilities("cpu")["bias_act"]
    assert caps["impl"] == "ref" and "ModuleNotFoundError" in caps["reason"]


def test_capabilities_is_plain_data():
    caps = ops_cuda.capabilities("cpu")
    assert set(caps) >= {"bias_act", "upfirdn2d", "filtered_lrelu", "fma"}
    assert all(v["impl"] in ("ref", "cpu", "cuda") for v in caps.values())
    json.dumps(caps)


def test_prefer_impl_redirects_auto_only_inside_the_block():
    from ops_cuda._dispatch import get_registry

    reg = get_registry()
    with ops_cuda.prefer_impl("ref"):
        assert reg.resolve("bias_act", "auto", "cpu") is reg.resolve("bias_act", "ref", "cpu")
    with pytest.raises(ValueError, match="unknown impl"):
        with ops_cuda.prefer_impl("fast"):
            pass
