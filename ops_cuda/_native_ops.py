"""Autograd wrappers that run the compiled kernels (CPU or CUDA) behind the public ops.

`make_impls(ext, device_type)` returns the implementation functions registered in
`_dispatch.IMPL_TABLE` (through `_cpu_ops` / `_cuda_ops`). They take the normalised arguments of the
matching `*_ref` function. Gradients: upfirdn2d's backward is another upfirdn2d (its adjoint), so
it is differentiable to any order; bias_act and filtered_lrelu compute first-order gradients with
the kernels and, when a graph of the gradient is requested (create_graph=True, e.g. an R1
penalty), differentiate the reference maths instead. Filters are constants (no gradient).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType

import torch

from ops_cuda.bias_act import ACTIVATIONS, bias_act_ref
from ops_cuda.filtered_lrelu import filtered_lrelu_ref
from ops_cuda.upfirdn2d import upfirdn2d_ref

# Activation ids of ops_common.h (enum Act).
ACT_IDS = {name: i for i, name in enumerate(ACTIVATIONS)}
assert list(ACT_IDS) == ["linear", "relu", "lrelu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"]

SUPPORTED_DTYPES = {
    "cpu": (torch.float32, torch.float64),
    "cuda": (torch.float32, torch.float64, torch.float16),
}


def _unsupported(op: str, device_type: str, x: torch.Tensor) -> bool:
    if x.dtype in SUPPORTED_DTYPES[device_type]:
        return False
    names = ", ".join(str(d).removeprefix("torch.") for d in SUPPORTED_DTYPES[device_type])
    # The default warning filter shows each distinct message once per process.
    warnings.warn(
        f"ops_cuda.{op}: the {device_type} kernels support {names}, not {x.dtype}; using impl='ref' "
        f"for this call. To fix: convert the input to float32 or pass impl='ref'.",
        RuntimeWarning,
        stacklevel=3,
    )
    return True


def _prepare_filter(
    f: torch.Tensor | None, gain: float, flip_filter: bool, like: torch.Tensor
) -> torch.Tensor:
    """Taps as the kernels want them: correlation order (flipped unless flip_filter), gain folded
    in (gain ** (ndim / 2), so a separable filter carries sqrt(gain) per pass), on x's device, in
    float32 (float64 for float64 x; half inputs are computed in float32 on CUDA)."""
    if f is None:
        f = torch.ones([1], dtype=torch.float32, device=like.device)
    w = f.to(device=like.device, dtype=torch.float64) * (gain ** (f.ndim / 2))
    if not flip_filter:
        w = w.flip(list(range(w.ndim)))
    return w.to(torch.float64 if like.dtype == torch.float64 else torch.float32).contiguous()


def _adjoint_padding(n_in: int, n_out: int, up: int, down: int, pad0: int, taps: int) -> tuple[int, int]:
    """Padding of the upfirdn2d (up=down, down=up, flipped filter) that is the adjoint of this axis."""
    return taps - 1 - pad0, n_in * up - n_out * down + pad0 + 1 - up


def _ref_vjp(ref: Callable, args: list, needs: list[bool], grad: torch.Tensor) -> list[torch.Tensor | None]:
    """Gradients of ref(*args) wrt the tensor args flagged in `needs`, keeping the graph (double
    backward)."""
    inputs = [a for a, n in zip(args, needs) if n]
    y = ref(*args)
    grads = iter(torch.autograd.grad(y, inputs, grad, create_graph=True, allow_unused=True))
    return [next(grads) if n else None for n in needs]


def make_impls(ext: ModuleType, device_type: str) -> dict[str, Callable]:
    """Implementation functions of bias_act, upfirdn2d and filtered_lrelu on top of extension `ext`."""

    class UpFirDn2d(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, up, down, padding):
            ctx.save_for_backward(w)
            ctx.geometry = (x.shape, up, down, padding)
            return ext.upfirdn2d(x.contiguous(), w, up[0], up[1], down[0], down[1], *padding)

        @staticmethod
        def backward(ctx, dy):
            (w,) = ctx.saved_tensors
            x_shape, (upx, upy), (downx, downy), (px0, px1, py0, py1) = ctx.geometry
            fh, fw = (w.shape[0], w.shape[0]) if w.ndim == 1 else tuple(w.shape)
            ax = _adjoint_padding(x_shape[3], dy.shape[3], upx, downx, px0, fw)
            ay = _adjoint_padding(x_shape[2], dy.shape[2], upy, downy, py0, fh)
            wt = w.flip(list(range(w.ndim))).contiguous()
            dx = UpFirDn2d.apply(dy, wt, (downx, downy), (upx, upy), (*ax, *ay))
            return dx, None, None, None, None

    def upfirdn2d_native(x, f, up, down, padding, flip_filter, gain):
        if _unsupported("upfirdn2d", device_type, x):
            return upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
        w = _prepare_filter(f, gain, flip_filter, x)
        return UpFirDn2d.apply(x, w, up, down, padding)

    class BiasAct(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, b, dim, act, alpha, gain, clamp):
            # Save the inputs themselves (not contiguous copies) so a double backward can reach them.
            bb = b if b is not None else x.new_empty([0])
            ctx.save_for_backward(x, bb)
            ctx.args = (dim, act, alpha, gain, clamp, b is not None)
            c = -1.0 if clamp is None else clamp
            return ext.bias_act_fwd(x.contiguous(), bb.contiguous(), dim, ACT_IDS[act], alpha, gain, c)

        @staticmethod
        def backward(ctx, dy):
            x, bb = ctx.saved_tensors
            dim, act, alpha, gain, clamp, has_b = ctx.args
            b = bb if has_b else None
            need_x, need_b = ctx.needs_input_grad[0], has_b and ctx.needs_input_grad[1]
            if torch.is_grad_enabled():  # create_graph: differentiate the reference maths
                ref = lambda x, b: bias_act_ref(x, b, dim, act, alpha, gain, clamp)  # noqa: E731
                dx, db = _ref_vjp(ref, [x, b], [need_x, need_b], dy)
            else:
                c = -1.0 if clamp is None else clamp
                dx = ext.bias_act_grad(
                    dy.contiguous(), x.contiguous(), bb.contiguous(), dim, ACT_IDS[act], alpha, gain, c
                )
                db = dx.sum([i for i in range(dx.ndim) if i != dim]) if need_b else None
            return dx if need_x else None, db, None, None, None, None, None

    def bias_act_native(x, b, dim, act, alpha, gain, clamp):
        if x.ndim == 0 or _unsupported("bias_act", device_type, x):
            return bias_act_ref(x, b, dim, act, alpha, gain, clamp)
        if b is not None:
            b = b.to(x.dtype)
        return BiasAct.apply(x, b, dim % x.ndim, act, alpha, gain, clamp)

    class FilteredLrelu(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, b, fu, fd, wu, wd, up, down, padding, gain, slope, clamp, flip_filter):
            bb = b if b is not None else x.new_empty([0])
            ctx.save_for_backward(x, bb, wu, wd)
            ctx.args = (fu, fd, b is not None, up, down, padding, gain, slope, clamp, flip_filter)
            c = -1.0 if clamp is None else clamp
            return ext.filtered_lrelu_fwd(
                x.contiguous(), wu, wd, bb.contiguous(), up, down, *padding, gain, slope, c
            )

        @staticmethod
        def backward(ctx, dy):
            x, bb, wu, wd = ctx.saved_tensors
            fu, fd, has_b, up, down, padding, gain, slope, clamp, flip_filter = ctx.args
            b = bb if has_b else None
            need_x, need_b = ctx.needs_input_grad[0], has_b and ctx.needs_input_grad[1]
            if torch.is_grad_enabled():  # create_graph: differentiate the reference maths

                def ref(x, b):
                    return filtered_lrelu_ref(
                        x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter
                    )

                dx, db = _ref_vjp(ref, [x, b], [need_x, need_b], dy)
            else:
                args = (ext, x, b, wu, wd, dy, up, down, padding, gain, slope, clamp)
                dx, db = _filtered_lrelu_grad_fused(*args)
                dx = dx if need_x else None
                db = db if need_b else None
            return (dx, db) + (None,) * 11

    def filtered_lrelu_native(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter):
        if _unsupported("filtered_lrelu", device_type, x):
            return filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
        wu = _prepare_filter(fu, float(up**2), flip_filter, x)
        wd = _prepare_filter(fd, 1.0, flip_filter, x)
        if b is not None:
            b = b.to(x.dtype)
        return FilteredLrelu.apply(x, b, fu, fd, wu, wd, up, down, padding, gain, slope, clamp, flip_filter)

    return {
        "upfirdn2d": upfirdn2d_native,
        "bias_act": bias_act_native,
        "filtered_lrelu": filtered_lrelu_native,
    }


def _filtered_lrelu_grad_fused(ext, x, b, wu, wd, dy, up, down, padding, gain, slope, clamp):
    """First-order gradient of filtered_lrelu with the fused backward kernel (the upsampled signal
    is recomputed row band by row band inside it, never stored)."""
    bb = b.contiguous() if b is not None else x.new_empty([0])
    c = -1.0 if clamp is None else clamp
    dx, sums = ext.filtered_lrelu_grad(
        dy.contiguous(), x.contiguous(), wu, wd, bb, up, down, *padding, gain, slope, c
    )
    return dx, (sums.sum(0) if b is not None else None)


def _filtered_lrelu_grad(ext, x, b, wu, wd, dy, up, down, padding, gain, slope, clamp):
    """The previous, unfused first-order gradient of filtered_lrelu (kept for bench.ops, which times it
    against the fused kernel, and as a cross-check in the tests): upfirdn2d kernel calls and torch
    elementwise ops that materialise the full-size upsampled signal, then the adjoints of the two
    resampling steps."""
    px0, px1, py0, py1 = padding
    xb = x if b is None else x + b.reshape(1, -1, 1, 1)
    u = ext.upfirdn2d(xb.contiguous(), wu, up, up, 1, 1, px0, px1, py0, py1)
    fuh, fuw = (wu.shape[0],) * 2 if wu.ndim == 1 else tuple(wu.shape)
    fdh, fdw = (wd.shape[0],) * 2 if wd.ndim == 1 else tuple(wd.shape)
    # Adjoint of the filter + downsample step (padding 0): upsample dy by `down`.
    ax = _adjoint_padding(u.shape[3], dy.shape[3], 1, down, 0, fdw)
    ay = _adjoint_padding(u.shape[2], dy.shape[2], 1, down, 0, fdh)
    wdt = wd.flip(list(range(wd.ndim))).contiguous()
    du = ext.upfirdn2d(dy.contiguous(), wdt, down, down, 1, 1, *ax, *ay)
    # d/du clamp(lrelu(u) * gain): the same rule as the kernels' flrelu_grad.
    pos = u > 0
    v = torch.where(pos, u, u * slope) * gain
    du = du * torch.where(pos, gain, slope * gain)
    if clamp is not None:
        du = du * ((v >= -clamp) & (v <= clamp))
    del u, v, pos
    # Adjoint of the upsample + filter step: filter and downsample by `up`.
    ax = _adjoint_padding(x.shape[3], du.shape[3], up, 1, px0, fuw)
    ay = _adjoint_padding(x.shape[2], du.shape[2], up, 1, py0, fuh)
    wut = wu.flip(list(range(wu.ndim))).contiguous()
    dx = ext.upfirdn2d(du.contiguous(), wut, 1, 1, up, up, *ax, *ay)
    db = dx.sum([0, 2, 3]) if b is not None else None
    return dx, db
