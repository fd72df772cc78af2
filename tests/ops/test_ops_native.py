"""The compiled ('cpu') kernels against the reference ops: forward, gradients, official fixtures,
whole tiny StyleGAN3 generators, and the build/fallback machinery.

The extension is built (or loaded from the on-disk cache) once per module; the first build takes
20-60 s, afterwards this file runs in seconds.
"""

import json
import math
import warnings

import pytest
import torch

import ops_cuda
from ops_cuda import _native, bias_act, filtered_lrelu, upfirdn2d
from ops_cuda._dispatch import IMPL_TABLE, Registry
from tests.ops.conftest import max_diff, official_bias_act, official_filtered_lrelu, official_upfirdn2d
from tests.support.tiny import make_plain_generator

TOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def native():
    try:
        return _native.load_extension("cpu")
    except _native.NativeBuildError as exc:
        pytest.skip(f"C++ kernels cannot be built here: {exc}")


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _rand(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _run_both(fn, inputs, seed=1):
    """fn(impl, *inputs) for impl 'cpu' and 'ref': outputs and gradients of a random projection."""
    results = {}
    for impl in ("cpu", "ref"):
        leaves = [
            t.detach().clone().requires_grad_(t.requires_grad) if t is not None else None for t in inputs
        ]
        y = fn(impl, *leaves)
        weights = torch.randn(y.shape, generator=_gen(seed), dtype=y.dtype)
        (y * weights).sum().backward()
        results[impl] = (y.detach(), [t.grad if t is not None else None for t in leaves])
    return results


def _assert_match(results, tol=TOL):
    (y_cpu, g_cpu), (y_ref, g_ref) = results["cpu"], results["ref"]
    assert y_cpu.shape == y_ref.shape
    scale = max(1.0, y_ref.abs().max().item())
    assert (y_cpu - y_ref).abs().max().item() <= tol * scale
    for a, b in zip(g_cpu, g_ref):
        assert (a is None) == (b is None)
        if a is not None:
            scale = max(1.0, b.abs().max().item())
            assert (a - b).abs().max().item() <= tol * scale


# --- filters used below ---------------------------------------------------------------------------


def _radial(taps, seed=3):
    t = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    r = torch.hypot(t[:, None], t[None, :])
    f = torch.sinc(r / 2) * torch.exp(-0.05 * r**2) + 0.01 * torch.rand(
        taps, taps, generator=_gen(seed), dtype=torch.float64
    )
    return (f / f.sum()).float()  # 2-D, not separable


def _radial_mirrored(taps):
    """A radial filter whose rows mirror exactly (like StyleGAN3-R's down filters), which the CPU
    kernel folds before filtering."""
    t = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    r = torch.hypot(t[:, None], t[None, :])
    f = (torch.sinc(r / 2) * torch.exp(-0.05 * r**2)).float()
    f = f / f.sum()
    assert torch.equal(f, f.flip(0))
    return f


FILTERS = {
    "none": None,
    "sep8": upfirdn2d.setup_filter(torch.rand(8, generator=_gen(1)), separable=True),
    "outer4": upfirdn2d.setup_filter([1, 3, 3, 1]),
    "rand3x5": torch.rand(3, 5, generator=_gen(2)),
    "radial6": _radial(6),
}


# --- upfirdn2d ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fname", list(FILTERS))
@pytest.mark.parametrize(
    "up,down,padding",
    [
        (1, 1, 0),
        (2, 1, [3, 2, 1, 4]),
        (1, 2, 1),
        (4, 1, [2, 1, 3, 0]),
        (1, 4, [3, 3, 2, 2]),
        (4, 2, [-1, 3, 2, -2]),
        ((2, 1), (1, 2), [1, -1, 2, 0]),
        (3, 3, [1, 1, 1, 1]),
    ],
)
def test_upfirdn2d_matches_ref(fname, up, down, padding):
    f = FILTERS[fname]
    x = _rand(2, 3, 13, 11).requires_grad_()
    for flip, gain in [(False, 1.0), (True, 2.5)]:
        res = _run_both(
            lambda impl, x, flip=flip, gain=gain: upfirdn2d.upfirdn2d(
                x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain, impl=impl
            ),
            [x],
        )
        _assert_match(res)


def test_upfirdn2d_batch1_noncontiguous_and_wide_channels():
    f = FILTERS["sep8"]
    base = _rand(1, 9, 17, 24)
    x = base.transpose(2, 3)[:, ::2]  # [1, 5, 24, 17], neither contiguous nor dense
    assert not x.is_contiguous()
    res = _run_both(lambda impl, x: upfirdn2d.upsample2d(x, f, impl=impl), [x.requires_grad_()])
    _assert_match(res)
    res = _run_both(lambda impl, x: upfirdn2d.downsample2d(x, f, impl=impl), [x])
    _assert_match(res)


def test_upfirdn2d_empty_output_is_a_clear_error():
    with pytest.raises(RuntimeError, match="output would be empty"):
        upfirdn2d.upfirdn2d(torch.zeros(1, 1, 2, 2), FILTERS["sep8"], padding=-1, impl="cpu")


# --- bias_act -------------------------------------------------------------------------------------


@pytest.mark.parametrize("act", list(bias_act.ACTIVATIONS))
def test_bias_act_matches_ref(act):
    x = (_rand(2, 5, 6, 7) * 3).requires_grad_()
    b = _rand(5, seed=4).requires_grad_()
    for clamp in (None, 0.8):
        res = _run_both(
            lambda impl, x, b, clamp=clamp: bias_act.bias_act(x, b, act=act, clamp=clamp, impl=impl),
            [x, b],
        )
        _assert_match(res)


@pytest.mark.parametrize("dim,shape", [(0, (4, 6)), (1, (3, 4)), (3, (2, 3, 4, 5)), (-1, (2, 7))])
def test_bias_act_dims_gain_alpha_and_no_bias(dim, shape):
    x = (_rand(*shape) * 2).requires_grad_()
    b = _rand(shape[dim], seed=5).requires_grad_()
    res = _run_both(
        lambda impl, x, b: bias_act.bias_act(
            x, b, dim=dim, act="lrelu", alpha=0.1, gain=3.0, clamp=2.0, impl=impl
        ),
        [x, b],
    )
    _assert_match(res)
    res = _run_both(lambda impl, x: bias_act.bias_act(x, act="swish", impl=impl), [x])
    _assert_match(res)
    xt = _rand(shape[-1], shape[0]).t().requires_grad_()  # non-contiguous
    res = _run_both(lambda impl, x: bias_act.bias_act(x, act="tanh", gain=2.0, impl=impl), [xt])
    _assert_match(res)


# --- filtered_lrelu -------------------------------------------------------------------------------

SEP12 = upfirdn2d.setup_filter(torch.rand(12, generator=_gen(6)), separable=True)
SEP24 = upfirdn2d.setup_filter(torch.rand(24, generator=_gen(7)), separable=True)

FLRELU_CASES = {
    # name: (fu, fd, up, down, padding, size)
    "sg3_up2_down2": (SEP12, SEP12, 2, 2, [9, 8, 9, 8], (19, 21)),
    "sg3_up4_down2": (SEP24, SEP12, 4, 2, [-6, -9, -6, -9], (19, 19)),
    "sg3_last_crop": (SEP12, SEP12, 2, 2, [-11, -12, -11, -12], (30, 30)),
    "radial_down": (SEP12, _radial(12), 2, 2, [9, 8, 9, 8], (15, 17)),
    "radial_up_2d": (_radial(8), SEP12, 2, 1, [3, 4, 5, 2], (9, 11)),
    "torgb_identity": (None, None, 1, 1, 0, (8, 9)),
    "up1_down4": (
        None,
        upfirdn2d.setup_filter(torch.rand(8, generator=_gen(8))),
        1,
        4,
        [2, 1, 3, 3],
        (17, 13),
    ),
    "up4_down4_2d": (_radial(8), _radial(8), 4, 4, [5, 6, 4, 7], (7, 9)),
    "up2_down4_mixed": (_radial(6), SEP24, 2, 4, [10, 9, 11, 12], (13, 10)),
    # Exactly mirrored 2-D down filters (even and odd taps), the StyleGAN3-R layers.
    "mirrored_down": (SEP12, _radial_mirrored(12), 2, 2, [9, 8, 9, 8], (15, 17)),
    "mirrored_odd_up4": (SEP24, _radial_mirrored(7), 4, 2, [2, 3, 1, 4], (9, 8)),
    # Separable up filter with no horizontal downsampling (the up-phases interleave in one row).
    "up2_down1_sep": (SEP12, SEP12, 2, 1, [4, 5, 6, 3], (9, 10)),
    "up4_down1_sep": (SEP24, upfirdn2d.setup_filter([1, 2, 1]), 4, 1, [3, 2, 4, 1], (7, 6)),
}


@pytest.mark.parametrize("case", list(FLRELU_CASES))
@pytest.mark.parametrize("batch", [1, 3])
def test_filtered_lrelu_matches_ref(case, batch):
    fu, fd, up, down, padding, (h, w) = FLRELU_CASES[case]
    x = (_rand(batch, 4, h, w) * 2).requires_grad_()
    b = _rand(4, seed=9).requires_grad_()
    for gain, slope, clamp, flip in [
        (math.sqrt(2), 0.2, None, False),
        (1.3, 0.05, 0.7, True),
        (1.0, 1.0, 1.5, False),
    ]:
        res = _run_both(
            lambda impl, x, b, gain=gain, slope=slope, clamp=clamp, flip=flip: filtered_lrelu.filtered_lrelu(
                x,
                fu,
                fd,
                b,
                up=up,
                down=down,
                padding=padding,
                gain=gain,
                slope=slope,
                clamp=clamp,
                flip_filter=flip,
                impl=impl,
            ),
            [x, b],
        )
        _assert_match(res)


def test_filtered_lrelu_noncontiguous_input_and_no_bias():
    x = _rand(2, 11, 3, 20).permute(0, 2, 3, 1)[:, :, 1:, :]  # [2, 3, 19, 11] view
    assert not x.is_contiguous()
    res = _run_both(
        lambda impl, x: filtered_lrelu.filtered_lrelu(
            x, SEP12, SEP12, None, up=2, down=2, padding=[9, 8, 9, 8], clamp=1.0, impl=impl
        ),
        [x.requires_grad_()],
    )
    _assert_match(res)


# --- the fused backward kernel -------------------------------------------------------------------


def _flrelu_grads_fused_and_ref(case, batch, gain, slope, clamp, flip, dtype=torch.float32, noncontig=False):
    """(dx, db) of the fused kernel (called directly) and of autograd through the reference."""
    from ops_cuda import _native_ops

    fu, fd, up, down, padding, (h, w) = FLRELU_CASES[case]
    pad = upfirdn2d.parse_padding(padding)
    x = _rand(batch, 4, h, w, dtype=dtype) * 2
    b = _rand(4, seed=9, dtype=dtype)
    if noncontig:
        x = _rand(batch, w, 4, h + 1, dtype=dtype).permute(0, 2, 3, 1)[:, :, 1:] * 2
    xr, br = x.clone().requires_grad_(), b.clone().requires_grad_()
    settings = dict(up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    y = filtered_lrelu.filtered_lrelu(xr, fu, fd, br, impl="ref", **settings)
    dy = _rand(*y.shape, seed=5, dtype=dtype)
    if noncontig:
        dy = _rand(*reversed(y.shape), seed=5, dtype=dtype).permute(3, 2, 1, 0)
        assert not dy.is_contiguous() and not x.is_contiguous()
    y.backward(dy)
    ext = _native.load_extension("cpu")
    wu = _native_ops._prepare_filter(fu, float(up**2), flip, x)
    wd = _native_ops._prepare_filter(fd, 1.0, flip, x)
    dx, db = _native_ops._filtered_lrelu_grad_fused(ext, x, b, wu, wd, dy, up, down, pad, gain, slope, clamp)
    return (dx, db), (xr.grad, br.grad)


FLRELU_PARAMS = [(math.sqrt(2), 0.2, None, False), (1.3, 0.05, 0.7, True), (1.0, 1.0, 1.5, False)]


@pytest.mark.parametrize("case", list(FLRELU_CASES))
@pytest.mark.parametrize("batch", [1, 3])
def test_filtered_lrelu_fused_backward_matches_ref(case, batch):
    for gain, slope, clamp, flip in FLRELU_PARAMS:
        (dx, db), (dx_ref, db_ref) = _flrelu_grads_fused_and_ref(case, batch, gain, slope, clamp, flip)
        assert dx.shape == dx_ref.shape and db.shape == db_ref.shape
        assert (dx - dx_ref).abs().max().item() <= TOL * max(1.0, dx_ref.abs().max().item())
        assert (db - db_ref).abs().max().item() <= TOL * 10 * max(1.0, db_ref.abs().max().item())


@pytest.mark.parametrize("case", ["sg3_up2_down2", "radial_up_2d", "up1_down4", "up4_down4_2d"])
def test_filtered_lrelu_fused_backward_float64_and_noncontiguous(case):
    for gain, slope, clamp, flip in FLRELU_PARAMS[:2]:
        (dx, db), (dx_ref, db_ref) = _flrelu_grads_fused_and_ref(
            case, 2, gain, slope, clamp, flip, dtype=torch.float64, noncontig=True
        )
        assert dx.dtype == torch.float64
        torch.testing.assert_close(dx, dx_ref, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(db, db_ref, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("case", ["sg3_up4_down2", "radial_down", "up2_down4_mixed"])
def test_filtered_lrelu_fused_backward_matches_the_unfused_one(case):
    from ops_cuda import _native_ops

    fu, fd, up, down, padding, (h, w) = FLRELU_CASES[case]
    pad = upfirdn2d.parse_padding(padding)
    x, b = _rand(2, 3, h, w) * 2, _rand(3, seed=2)
    ext = _native.load_extension("cpu")
    wu = _native_ops._prepare_filter(fu, float(up**2), False, x)
    wd = _native_ops._prepare_filter(fd, 1.0, False, x)
    y = ext.filtered_lrelu_fwd(x, wu, wd, b, up, down, *pad, 1.4, 0.2, 0.9)
    args = (ext, x, b, wu, wd, _rand(*y.shape, seed=3), up, down, pad, 1.4, 0.2, 0.9)
    fused, unfused = _native_ops._filtered_lrelu_grad_fused(*args), _native_ops._filtered_lrelu_grad(*args)
    for a, b in zip(fused, unfused):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_filtered_lrelu_backward_uses_the_fused_kernel(monkeypatch):
    from ops_cuda import _native_ops

    def unfused(*args, **kwargs):
        raise AssertionError("the unfused backward was used on CPU")

    monkeypatch.setattr(_native_ops, "_filtered_lrelu_grad", unfused)
    x = _rand(2, 3, 11, 12).requires_grad_()
    b = _rand(3, seed=2).requires_grad_()
    y = filtered_lrelu.filtered_lrelu(x, SEP12, SEP12, b, up=2, down=2, padding=[9, 8, 9, 8], impl="cpu")
    y.square().sum().backward()
    assert x.grad.shape == x.shape and b.grad.shape == b.shape and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "fu,fd,up,down,padding,clamp",
    [
        ([1, 3, 3, 1], [1, 2, 1], 2, 2, 2, None),
        ([1, 3, 3, 1], [1, 2, 1], 2, 2, [1, 2, 3, 0], 0.6),
        ("radial", [1, 2, 1], 4, 2, [3, 1, 2, 2], None),
        ([1, 2, 1], "radial", 1, 4, [2, 2, 1, 3], 0.5),
        (None, None, 1, 1, 0, 0.4),
    ],
)
def test_gradcheck_float64_fused_backward(fu, fd, up, down, padding, clamp):
    def filt(f):
        if isinstance(f, str):
            return _radial(4).double()
        return None if f is None else upfirdn2d.setup_filter(f)

    fu, fd = filt(fu), filt(fd)
    # A small eps so the finite differences rarely straddle a kink (0 for lrelu, +-clamp).
    x = torch.randn(2, 2, 5, 4, dtype=torch.float64, generator=_gen(10)).requires_grad_()
    b = torch.randn(2, dtype=torch.float64, generator=_gen(11)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, b: filtered_lrelu.filtered_lrelu(
            x, fu, fd, b, up=up, down=down, padding=padding, slope=0.3, clamp=clamp, impl="cpu"
        ),
        (x, b),
        eps=1e-7,
    )


def test_filtered_lrelu_grad_rejects_a_wrong_dy_shape():
    ext = _native.load_extension("cpu")
    x = _rand(1, 2, 8, 8)
    w = upfirdn2d.setup_filter([1, 3, 3, 1])
    with pytest.raises(RuntimeError, match="dy must be"):
        ext.filtered_lrelu_grad(_rand(1, 2, 3, 3), x, w, w, x[0, 0, 0, :0], 2, 2, 2, 2, 2, 2, 1.0, 0.2, -1.0)


# --- float64, double backward, unsupported dtypes ---------------------------------------------


def test_gradcheck_float64_native():
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True, generator=_gen(10))
    b = torch.randn(2, dtype=torch.float64, requires_grad=True, generator=_gen(11))
    f = FILTERS["rand3x5"]
    assert torch.autograd.gradcheck(
        lambda x: upfirdn2d.upfirdn2d(x, f, up=2, down=2, padding=2, impl="cpu"), (x,)
    )
    assert torch.autograd.gradcheck(
        lambda x, b: bias_act.bias_act(x, b, act="elu", clamp=1.0, impl="cpu"), (x, b)
    )
    fu, fd = upfirdn2d.setup_filter([1, 3, 3, 1]), upfirdn2d.setup_filter([1, 2, 1])
    assert torch.autograd.gradcheck(
        lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=2, impl="cpu"), (x, b)
    )
    # Second order (e.g. an R1 penalty through the discriminator), on a smaller input.
    x, b = x[:, :1, :4, :3].detach().requires_grad_(), b[:1].detach().requires_grad_()
    assert torch.autograd.gradgradcheck(
        lambda x: upfirdn2d.upfirdn2d(x, f, up=2, padding=1, impl="cpu"), (x,)
    )
    assert torch.autograd.gradgradcheck(lambda x, b: bias_act.bias_act(x, b, act="swish", impl="cpu"), (x, b))
    assert torch.autograd.gradgradcheck(
        lambda x, b: filtered_lrelu.filtered_lrelu(
            x, fu, fd, b, up=2, down=2, padding=2, slope=0.3, impl="cpu"
        ),
        (x, b),
    )


def test_unsupported_dtype_warns_and_uses_ref():
    x = _rand(1, 2, 4, 4).to(torch.bfloat16)
    with pytest.warns(RuntimeWarning, match="convert the input to float32"):
        y = bias_act.bias_act(x, act="lrelu", impl="cpu")
    torch.testing.assert_close(y, bias_act.bias_act(x, act="lrelu", impl="ref"))


# --- official fixtures --------------------------------------------------------------------------


def test_official_bias_act_and_upfirdn2d_cpu(official):
    t = official[0]
    y, x, b = official_bias_act(official, "cpu")
    assert max_diff(y, t["bias_act/y"]) <= TOL
    assert max_diff(x.grad, t["bias_act/dx"]) <= TOL and max_diff(b.grad, t["bias_act/db"]) <= TOL * 10

    y, x = official_upfirdn2d(official, "cpu")
    assert max_diff(y, t["upfirdn2d/y"]) <= TOL and max_diff(x.grad, t["upfirdn2d/dx"]) <= TOL


@pytest.mark.parametrize("layer", ["L2_36_64", "L11_84_64"])
def test_official_filtered_lrelu_cpu(official, layer):
    t = official[0]
    y, x, b, k = official_filtered_lrelu(official, layer, "cpu")
    assert y.shape == t[k + "y"].shape
    scale = t[k + "y"].abs().max().item()
    assert max_diff(y, t[k + "y"]) <= TOL * max(1, scale)
    assert max_diff(x.grad, t[k + "dx"]) <= TOL * max(1, t[k + "dx"].abs().max().item())
    assert max_diff(b.grad, t[k + "db"]) <= TOL * max(1, t[k + "db"].abs().max().item())


# --- whole generators -----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["stylegan3-t", "stylegan3-r"])
def test_tiny_sg3_generator_cpu_equals_ref(arch):
    G = make_plain_generator(arch).requires_grad_(False)
    z = torch.randn(2, 16, generator=_gen(12))
    images = {}
    for impl in ("cpu", "ref"):
        with ops_cuda.prefer_impl(impl):
            images[impl] = G(z, None, noise_mode="const")
    assert images["cpu"].shape == (2, 3, 16, 16)
    assert (images["cpu"] - images["ref"]).abs().max().item() <= 1e-4


# --- build machinery and dispatch ---------------------------------------------------------------


def test_auto_uses_the_cpu_kernels_and_capabilities_report_them():
    caps = ops_cuda.capabilities("cpu")
    for op in ("bias_act", "upfirdn2d", "filtered_lrelu"):
        assert caps[op]["impl"] == "cpu" and caps[op]["state"] == "ready", caps[op]
    # fma has no compiled kernel at all: that is not a failure the user could fix.
    assert caps["fma"]["impl"] == "ref" and caps["fma"]["state"] == "ref only", caps["fma"]
    json.dumps(caps)
    from ops_cuda import _cpu_ops
    from ops_cuda._dispatch import get_registry

    assert get_registry().resolve("filtered_lrelu", "auto", "cpu") is _cpu_ops.filtered_lrelu_cpu


def test_extension_name_tracks_the_sources(monkeypatch, tmp_path):
    name = _native.extension_name("cpu")
    assert name.startswith("ops_cuda_cpu_") and name == _native.extension_name("cpu")
    copy = tmp_path / "csrc"
    copy.mkdir()
    for path in _native.source_files("cpu"):
        (copy / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(_native, "CSRC", copy)
    assert _native.extension_name("cpu") == name
    (copy / "ops_common.h").write_text((copy / "ops_common.h").read_text() + "\n// edited\n")
    assert _native.extension_name("cpu") != name  # an edit means a rebuild


def test_capabilities_never_build_by_surprise(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setattr(_native, "extension_name", lambda kind: f"ops_cuda_{kind}_not_built_test")
    assert "not built yet" in _native.status("cpu")
    caps = Registry().capabilities("cpu")
    assert (
        caps["filtered_lrelu"]["state"] == "not built"
        and "first use builds" in caps["filtered_lrelu"]["reason"]
    )
    assert list(tmp_path.iterdir()) == []  # nothing was compiled


def test_missing_compiler_is_a_clear_build_error(monkeypatch):
    monkeypatch.setattr(_native, "missing_tools", lambda kind: "no C++ compiler found; install g++")
    with pytest.raises(_native.NativeBuildError, match="install g\\+\\+"):
        _native.load_extension.__wrapped__("cpu")


def test_failed_build_falls_back_to_ref_with_one_warning():
    table = {op: dict(impls) for op, impls in IMPL_TABLE.items()}
    table["upfirdn2d"]["cpu"] = "ops_cuda._no_such_kernels:upfirdn2d_cpu"
    registry = Registry(table)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert registry.resolve("upfirdn2d", "auto", "cpu") is upfirdn2d.upfirdn2d_ref
        registry.resolve("upfirdn2d", "cpu", "cpu")
    assert len(caught) == 1 and "To fix" in str(caught[0].message)
