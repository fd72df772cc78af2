"""The CUDA kernels, compiled as plain C++ and run block by block on the CPU (one emulated thread
per block, see tests/ops/cuda_emulation.cpp), against the reference ops. This checks the tiling
and index maths of the GPU code on a machine without a GPU; the first run compiles the harness
(about 30 s, cached afterwards)."""

import hashlib
import math
from pathlib import Path

import pytest
import torch

from ops_cuda import _native, _native_ops, bias_act, filtered_lrelu, upfirdn2d

HARNESS = Path(__file__).resolve().parent / "cuda_emulation.cpp"


@pytest.fixture(scope="module")
def emu():
    files = [HARNESS, _native.CSRC / "ops_cuda_kernels.h", _native.CSRC / "ops_common.h"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files) + torch.__version__.encode())
    name = f"ops_cuda_emu_{digest.hexdigest()[:12]}"
    if _native.missing_tools("cpu"):
        pytest.skip(f"cannot compile the emulation harness: {_native.missing_tools('cpu')}")
    from torch.utils import cpp_extension

    folder = _native.extensions_root() / name
    folder.mkdir(parents=True, exist_ok=True)
    return cpp_extension.load(
        name=name,
        sources=[str(HARNESS)],
        extra_cflags=["-O2"],
        extra_include_paths=[str(_native.CSRC)],
        build_directory=str(folder),
        verbose=False,
    )


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _radial(taps):
    t = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    r = torch.hypot(t[:, None], t[None, :])
    f = torch.sinc(r / 2) * torch.exp(-0.05 * r**2)
    return (f / f.sum()).float()


SEP12 = upfirdn2d.setup_filter(torch.rand(12, generator=torch.Generator().manual_seed(1)), separable=True)
SEP24 = upfirdn2d.setup_filter(torch.rand(24, generator=torch.Generator().manual_seed(2)), separable=True)

CASES = {
    # name: (fu, fd, up, down, padding, (H, W)); sizes give several output tiles per plane
    "sg3_up2_down2": (SEP12, SEP12, 2, 2, [9, 8, 9, 8], (40, 37)),
    "sg3_up4_down2": (SEP24, SEP12, 4, 2, [-6, -9, -6, -9], (25, 38)),
    "sg3_last_crop": (SEP12, SEP12, 2, 2, [-11, -12, -11, -12], (30, 30)),
    "radial_down": (SEP12, _radial(12), 2, 2, [9, 8, 9, 8], (21, 35)),
    "radial_up_2d": (_radial(8), SEP12, 2, 1, [3, 4, 5, 2], (9, 11)),
    "torgb_identity": (None, None, 1, 1, 0, (19, 40)),
    "up1_down4": (None, upfirdn2d.setup_filter([1, 3, 3, 1]), 1, 4, [2, 1, 3, 3], (33, 17)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_emulated_cuda_filtered_lrelu_matches_ref(emu, case):
    fu, fd, up, down, padding, (h, w) = CASES[case]
    x = _rand(2, 3, h, w) * 2
    b = _rand(3, seed=1)
    for gain, slope, clamp, flip in [(math.sqrt(2), 0.2, None, False), (1.3, 0.05, 0.7, True)]:
        wu = _native_ops._prepare_filter(fu, float(up**2), flip, x)
        wd = _native_ops._prepare_filter(fd, 1.0, flip, x)
        c = -1.0 if clamp is None else clamp
        y = emu.filtered_lrelu_fwd(x, wu, wd, b, up, down, *upfirdn2d.parse_padding(padding), gain, slope, c)
        settings = dict(
            up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip
        )
        ref = filtered_lrelu.filtered_lrelu(x, fu, fd, b, impl="ref", **settings)
        assert y.shape == ref.shape
        assert torch.isfinite(y).all()  # every output written, no uninitialised shared memory read
        assert (y - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("case", list(CASES))
def test_emulated_cuda_filtered_lrelu_grad_matches_ref(emu, case):
    fu, fd, up, down, padding, (h, w) = CASES[case]
    x = _rand(2, 3, h, w) * 2
    b = _rand(3, seed=1)
    for gain, slope, clamp, flip in [(math.sqrt(2), 0.2, None, False), (1.3, 0.05, 0.7, True)]:
        wu = _native_ops._prepare_filter(fu, float(up**2), flip, x)
        wd = _native_ops._prepare_filter(fd, 1.0, flip, x)
        xr, br = x.clone().requires_grad_(), b.clone().requires_grad_()
        settings = dict(
            up=up, down=down, padding=padding, gain=gain, slope=slope, clamp=clamp, flip_filter=flip
        )
        ref = filtered_lrelu.filtered_lrelu(xr, fu, fd, br, impl="ref", **settings)
        dy = _rand(*ref.shape, seed=4)
        ref.backward(dy)
        c = -1.0 if clamp is None else clamp
        pad = upfirdn2d.parse_padding(padding)
        dx = emu.filtered_lrelu_grad(dy, x, wu, wd, b, up, down, *pad, gain, slope, c)
        assert dx.shape == x.shape
        assert torch.isfinite(dx).all()  # every dx written, no uninitialised shared memory read
        assert (dx - xr.grad).abs().max().item() <= 1e-5 * max(1.0, xr.grad.abs().max().item())


@pytest.mark.parametrize(
    "f", [None, SEP12, upfirdn2d.setup_filter([1, 3, 3, 1]), torch.rand(3, 5, generator=torch.Generator())]
)
@pytest.mark.parametrize(
    "up,down,padding", [(1, 1, 0), (2, 1, [3, 2, 1, 4]), (1, 2, 1), ((4, 1), (1, 2), [1, -1, 2, 0])]
)
def test_emulated_cuda_upfirdn2d_matches_ref(emu, f, up, down, padding):
    x = _rand(2, 3, 23, 21)
    w = _native_ops._prepare_filter(f, 2.0, False, x)
    (upx, upy), (downx, downy) = upfirdn2d.parse_scaling(up), upfirdn2d.parse_scaling(down)
    y = emu.upfirdn2d(x, w, upx, upy, downx, downy, *upfirdn2d.parse_padding(padding))
    ref = upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, gain=2.0, impl="ref")
    assert y.shape == ref.shape
    assert (y - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("act", list(bias_act.ACTIVATIONS))
def test_emulated_cuda_bias_act_matches_ref(emu, act):
    x = (_rand(2, 5, 3, 4) * 3).requires_grad_()
    b = _rand(5, seed=2)
    dy = _rand(2, 5, 3, 4, seed=3)
    act_id = _native_ops.ACT_IDS[act]
    ref = bias_act.bias_act(x, b, act=act, clamp=0.9, impl="ref")
    (ref * dy).sum().backward()
    spec = bias_act.ACTIVATIONS[act]
    y = emu.bias_act(dy, x.detach(), b, 1, act_id, spec.def_alpha, spec.def_gain, 0.9, False)
    dx = emu.bias_act(dy, x.detach(), b, 1, act_id, spec.def_alpha, spec.def_gain, 0.9, True)
    assert (y - ref.detach()).abs().max().item() <= 1e-5
    assert (dx - x.grad).abs().max().item() <= 1e-5
