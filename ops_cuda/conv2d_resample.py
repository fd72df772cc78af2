"""2-D convolution fused with FIR up/downsampling (StyleGAN2 `conv2d_resample` semantics).

Upsampling is a strided transposed convolution followed by the FIR filter; downsampling is the
FIR filter followed by a strided convolution. Both equal "upsample2d, conv, downsample2d" done
naively, but skip the work on inserted zeros / dropped pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ops_cuda._dispatch import get_registry
from ops_cuda.upfirdn2d import Padding, get_filter_size, parse_padding, upfirdn2d
from ops_cuda.weight_cache import derived


def conv3x3_ref(x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
    """The 'conv3x3' op: F.conv2d with stride 1 and no groups (faster twins in the registry)."""
    return F.conv2d(x, w, padding=list(padding))


def scaled_conv3x3_ref(
    x: torch.Tensor,
    w: torch.Tensor,
    padding: int,
    up: int,
    f: torch.Tensor | None,
    flip_weight: bool,
    in_scale: torch.Tensor | None,
    out_scale: torch.Tensor | None,
) -> torch.Tensor:
    """The 'scaled_conv3x3' op: conv2d_resample(x * in_scale, w, f, up, padding, flip_weight) *
    out_scale for a 3x3 w [O, I, 3, 3], x [N, I, H, W], up 1 or 2, in_scale [N, I] and out_scale
    [N, O] (each optional): a modulated convolution with a shared weight. The CPU twin applies the
    scales inside its Winograd transforms instead of in two passes over the activations."""
    n = x.shape[0]
    if in_scale is not None:
        x = x * in_scale.to(x.dtype).reshape(n, -1, 1, 1)
    x = conv2d_resample(x, w.to(x.dtype), f=f, up=up, padding=padding, flip_weight=flip_weight)
    if out_scale is not None:
        x = x * out_scale.to(x.dtype).reshape(out_scale.shape[0], -1, 1, 1)
    return x


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    stride: int = 1,
    padding: tuple[int, int] = (0, 0),
    groups: int = 1,
    transpose: bool = False,
    flip_weight: bool = True,
    impl: str = "auto",
) -> torch.Tensor:
    # torch convolutions correlate; flip_weight=False asks for a true convolution.
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return get_registry().resolve("conv_transpose2d", impl, x.device)(
            x, w, stride, tuple(padding), groups
        )
    if stride == 1 and groups == 1 and w.shape[2:] == (3, 3):
        return get_registry().resolve("conv3x3", impl, x.device)(x, w, tuple(padding))
    return F.conv2d(x, w, stride=stride, padding=list(padding), groups=groups)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    impl: str = "auto",
) -> torch.Tensor:
    """Convolve x [N, C_in, H, W] with w [C_out, C_in/groups, kh, kw], optionally resampling.

    f is the FIR filter (see upfirdn2d.setup_filter), up/down integer factors, `padding` the
    padding of the (upsampled) input as in upfirdn2d. impl selects the upfirdn2d implementation.
    """
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError("conv2d_resample expects x [N, C, H, W] and w [O, I, kh, kw]")
    if not (isinstance(up, int) and up >= 1 and isinstance(down, int) and down >= 1):
        raise ValueError(f"conv2d_resample: up and down must be ints >= 1, got {up}, {down}")
    out_ch, in_ch_per_group, kh, kw = (int(s) for s in w.shape)
    fw, fh = get_filter_size(f)
    px0, px1, py0, py1 = parse_padding(padding)

    # Centre the filter so the output is aligned like upsample2d / downsample2d would do it.
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    pad = [px0, px1, py0, py1]

    if kw == 1 and kh == 1 and down > 1 and up == 1:
        # A 1x1 conv commutes with resampling: shrink first, then convolve fewer pixels.
        x = upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, impl=impl)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    if kw == 1 and kh == 1 and up > 1 and down == 1:
        # Same for upsampling: convolve the small image, then grow it.
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pad, gain=up**2, flip_filter=flip_filter, impl=impl)

    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, impl=impl)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1:
        # conv_transpose2d wants [C_in, C_out/groups, kh, kw]; swap the channel axes per group.
        # A transposed conv is a true convolution of the zero-stuffed input, hence the inverted flip.
        flip_taps = flip_weight and (kh > 1 or kw > 1)
        if groups == 1:
            # The flipped taps are part of what the weight cache keeps.
            if flip_taps:
                w = derived(w, "transposed_flipped", lambda: w.flip([2, 3]).transpose(0, 1).contiguous())
            else:
                w = derived(w, "transposed", lambda: w.transpose(0, 1).contiguous())
        else:
            w = w.reshape(groups, out_ch // groups, in_ch_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_ch_per_group, out_ch // groups, kh, kw)
            w = w.flip([2, 3]) if flip_taps else w
        # The transposed conv already grows the image by kernel-1 (minus the stride overlap);
        # take that out of the padding and let the conv do the symmetric part of any cropping.
        px0, px1 = px0 - (kw - 1), px1 - (kw - up)
        py0, py1 = py0 - (kh - 1), py1 - (kh - up)
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=(pyt, pxt), groups=groups, transpose=True, impl=impl)
        x = upfirdn2d(
            x,
            f,
            padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt],
            gain=up**2,
            flip_filter=flip_filter,
            impl=impl,
        )
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
        return x

    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=(py0, px0), groups=groups, flip_weight=flip_weight, impl=impl)

    # General case: no resampling but asymmetric or negative padding.
    x = upfirdn2d(x, None, padding=pad, flip_filter=flip_filter, impl=impl)
    return _conv(x, w, groups=groups, flip_weight=flip_weight, impl=impl)
