"""The StyleGAN3 generator (alias-free; configs T and R), numerically faithful to NVIDIA's official one.

Parameter and buffer names, constructor arguments and their defaults equal the official
`training.networks_stylegan3` ones, so official weights load by name and an official pickle's
`init_kwargs` build the same network. The layer schedule (cutoffs, stopbands, sampling rates,
filter widths, sizes, channels) follows the StyleGAN3 paper (Karras et al. 2021, Appendix F).

Beyond the official API, `SynthesisNetwork.forward` takes an optional per-sample input transform
([N, 3, 3]), used by the renderer and the equivariance metrics; it replaces the batch-wide
`synthesis.input.transform` buffer for that call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.signal
import scipy.special
import torch

from gan.networks.generator import GeneratorBase
from gan.networks.layers import FullyConnectedLayer
from ops_cuda import modconv
from ops_cuda.filtered_lrelu import filtered_lrelu

NOISE_MODES = ("random", "const", "none")


def modulated_conv2d(
    x: torch.Tensor,  # [N, I, H, W]
    weight: torch.Tensor,  # [O, I, k, k]
    styles: torch.Tensor,  # [N, I]
    padding: int = 0,
    demodulate: bool = True,
    input_gain: torch.Tensor | None = None,  # scalar or [N, I]: scales the input channels
) -> torch.Tensor:
    """Per-sample modulated convolution. Demodulation first normalises weight and styles to unit
    mean square (so the products stay well inside fp16 range). The ops impl switch picks NVIDIA's
    grouped per-sample-weight formulation ('ref') or the cheaper one with the same result."""
    return modconv.modulated_conv2d(
        x, weight, styles, demodulate=demodulate, padding=padding, input_gain=input_gain, normalize=demodulate
    )


def design_lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR filter: 1-D separable (sinc) or 2-D radially symmetric (jinc).
    None stands for the identity (numtaps == 1)."""
    if numtaps < 1:
        raise ValueError(f"numtaps must be >= 1, got {numtaps}")
    if numtaps == 1:
        return None
    if not radial:
        f = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(f, dtype=torch.float32)
    t = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(t, t))
    with np.errstate(divide="ignore", invalid="ignore"):
        f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
    f = np.where(r == 0, cutoff, f)  # the jinc's limit at the centre (only for odd numtaps)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    f = f / np.sum(f)
    return torch.as_tensor(f, dtype=torch.float32)


class SynthesisInput(torch.nn.Module):
    """Fourier features: sinusoids of fixed random frequencies inside a disc of radius `bandwidth`,
    rotated and translated per sample by a transform predicted from w, then mixed by a learned
    linear map."""

    def __init__(
        self,
        w_dim: int,
        channels: int,
        size: int | list[int],  # [width, height] or one int for both
        sampling_rate: float,
        bandwidth: float,  # largest frequency of the features
    ):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = [int(s) for s in np.broadcast_to(np.asarray(size), [2])]  # [width, height]
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth

        # Frequencies roughly uniform in a disc; phases uniform.
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5

        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        # Predicts (cos, sin, tx, ty) of the per-sample inverse rotation and translation; starts at identity.
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=np.array([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3, 3))  # user's inverse transform of the image
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """w [N, w_dim] -> features [N, channels, height, width] (float32).

        transform: optional [N, 3, 3] (or [3, 3]) user transform replacing the `transform` buffer."""
        n = w.shape[0]
        user = self.transform if transform is None else transform.to(device=w.device, dtype=torch.float32)
        user = user.reshape(-1, 3, 3)
        if user.shape[0] not in (1, n):
            raise ValueError(f"input transform has {user.shape[0]} matrices for a batch of {n}")

        # The learned rotation (normalised cos/sin) and translation, both as inverse transforms.
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        rot = torch.eye(3, device=w.device).repeat(n, 1, 1)
        rot[:, 0, 0] = t[:, 0]
        rot[:, 0, 1] = -t[:, 1]
        rot[:, 1, 0] = t[:, 1]
        rot[:, 1, 1] = t[:, 0]
        shift = torch.eye(3, device=w.device).repeat(n, 1, 1)
        shift[:, 0, 2] = -t[:, 2]
        shift[:, 1, 2] = -t[:, 3]
        m = rot @ shift @ user  # rotate the image first, then translate, then the user transform

        # Transforming the sampling grid = transforming frequencies and phases of each sinusoid.
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ m[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ m[:, :2, :2]  # [N, C, 2]

        # A user transform may push frequencies above the band; fade them out before they alias.
        amplitudes = (
            1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)
        ).clamp(0, 1)

        # Sample positions: pixel centres, in units where the sampling rate spans 1.
        width, height = self.size
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * width / self.sampling_rate
        theta[1, 1] = 0.5 * height / self.sampling_rate
        grid = torch.nn.functional.affine_grid(theta.unsqueeze(0), [1, 1, height, width], align_corners=False)

        x = grid.unsqueeze(3) @ freqs.transpose(1, 2).reshape(n, 1, 1, 2, self.channels)  # [N, H, W, 1, C]
        x = x.squeeze(3) + phases.reshape(n, 1, 1, self.channels)
        x = torch.sin(x * (2 * math.pi)) * amplitudes.reshape(n, 1, 1, self.channels)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
            f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"
        )


class SynthesisLayer(torch.nn.Module):
    """Modulated convolution followed by the alias-suppressed nonlinearity: upsample to a higher
    temporary rate, leaky ReLU, low-pass filter and downsample to the output rate (or, for the
    final toRGB layer, a plain modulated 1x1 convolution with bias and clamp)."""

    def __init__(
        self,
        w_dim: int,
        is_torgb: bool,
        is_critically_sampled: bool,  # last layers: sampled at exactly the Nyquist rate
        use_fp16: bool,  # run in fp16 (CUDA only) unless force_fp32
        in_channels: int,
        out_channels: int,
        in_size: int | list[int],
        out_size: int | list[int],
        in_sampling_rate: int,
        out_sampling_rate: int,
        in_cutoff: float,
        out_cutoff: float,
        in_half_width: float,
        out_half_width: float,
        conv_kernel: int = 3,  # 1 for config R
        filter_size: int = 6,  # filter taps per unit of resampling factor
        lrelu_upsampling: int = 2,  # extra oversampling around the nonlinearity
        use_radial_filters: bool = False,  # radially symmetric down filters (config R)
        conv_clamp: float | None = 256,  # clamp of the layer output, None = off
        magnitude_ema_beta: float = 0.999,  # decay of the tracked input magnitude
    ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = [int(s) for s in np.broadcast_to(np.asarray(in_size), [2])]  # [width, height]
        self.out_size = [int(s) for s in np.broadcast_to(np.asarray(out_size), [2])]
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        # The nonlinearity runs at this rate.
        oversampling = 1 if is_torgb else lrelu_upsampling
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * oversampling
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel])
        )
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))  # running mean square of the input

        self.up_factor = self._rate_ratio(self.tmp_sampling_rate, in_sampling_rate)
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        fs = self.tmp_sampling_rate
        up_filter = design_lowpass_filter(self.up_taps, in_cutoff, in_half_width * 2, fs)
        self.register_buffer("up_filter", up_filter)
        self.down_factor = self._rate_ratio(self.tmp_sampling_rate, out_sampling_rate)
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        down_filter = design_lowpass_filter(
            self.down_taps, out_cutoff, out_half_width * 2, fs, radial=self.down_radial
        )
        self.register_buffer("down_filter", down_filter)
        self.padding = self._padding()

    @staticmethod
    def _rate_ratio(high: float, low: float) -> int:
        factor = int(np.rint(high / low))
        if low * factor != high:
            raise ValueError(f"sampling rate {high} is not an integer multiple of {low}")
        return factor

    def _padding(self) -> list[int]:
        """[x0, x1, y0, y1] padding of the upsampled signal so the output has out_size samples,
        with the sample grids aligned as in the paper's symmetric interpretation (Appendix C.3)."""
        pads = []
        for in_size, out_size in zip(self.in_size, self.out_size):
            total = (out_size - 1) * self.down_factor + 1  # wanted size before downsampling
            total -= (in_size + self.conv_kernel - 1) * self.up_factor  # size after conv and upsampling
            total += self.up_taps + self.down_taps - 2  # lost to the two filters
            lo = (total + self.up_factor) // 2
            pads += [lo, total - lo]
        return pads

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",  # unused (StyleGAN3 has no noise); kept for API compatibility
        force_fp32: bool = False,
        update_emas: bool = False,
    ) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        expected = (self.in_channels, self.in_size[1], self.in_size[0])
        if tuple(x.shape[1:]) != expected or w.shape != (x.shape[0], self.w_dim):
            raise ValueError(
                f"{type(self).__name__}: got x {tuple(x.shape)}, w {tuple(w.shape)}; "
                f"expected x [N, {', '.join(map(str, expected))}], w [N, {self.w_dim}]"
            )
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()  # normalises the input to unit mean square

        styles = self.affine(w)
        if self.is_torgb:
            styles = styles * (1 / math.sqrt(self.in_channels * self.conv_kernel**2))

        use_fp16 = self.use_fp16 and not force_fp32 and x.device.type == "cuda"
        dtype = torch.float16 if use_fp16 else torch.float32
        x = modulated_conv2d(
            x.to(dtype),
            self.weight,
            styles,
            padding=self.conv_kernel - 1,
            demodulate=not self.is_torgb,
            input_gain=input_gain,
        )
        x = filtered_lrelu(
            x,
            fu=self.up_filter,
            fd=self.down_filter,
            b=self.bias.to(x.dtype),
            up=self.up_factor,
            down=self.down_factor,
            padding=self.padding,
            gain=1 if self.is_torgb else math.sqrt(2),
            slope=1 if self.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )
        return x

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, "
            f"is_critically_sampled={self.is_critically_sampled}, use_fp16={self.use_fp16}, "
            f"in_size={self.in_size}, out_size={self.out_size}, "
            f"in_sampling_rate={self.in_sampling_rate}, out_sampling_rate={self.out_sampling_rate}, "
            f"in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g}, "
            f"in_half_width={self.in_half_width:g}, out_half_width={self.out_half_width:g}, "
            f"in_channels={self.in_channels}, out_channels={self.out_channels}"
        )


@dataclass(frozen=True)
class LayerSchedule:
    """Per-layer design of the synthesis network: entry i describes the output of layer i
    (i = 0 .. num_layers, the last being toRGB); the Fourier input uses entry 0 as well."""

    cutoffs: np.ndarray  # f_c: cutoff frequency
    stopbands: np.ndarray  # f_t: minimum stopband frequency
    sampling_rates: np.ndarray  # s: sampling rate (power of two)
    half_widths: np.ndarray  # f_h: transition band half width
    sizes: np.ndarray  # spatial size including margins
    channels: np.ndarray  # feature channels


def layer_schedule(
    img_resolution: int,
    img_channels: int,
    channel_base: int,
    channel_max: int,
    num_layers: int,
    num_critical: int,
    first_cutoff: float,
    first_stopband: float,
    last_stopband_rel: float,
    margin_size: int,
) -> LayerSchedule:
    """Cutoffs and stopbands grow geometrically from the first layer to the last non-critical one,
    then stay at the image's Nyquist limit; everything else follows from them."""
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution  # the critically sampled layers have no margin
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return LayerSchedule(cutoffs, stopbands, sampling_rates, half_widths, sizes, channels)


class SynthesisNetwork(torch.nn.Module):
    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,  # channels scale as channel_base / 2 / cutoff ...
        channel_max: int = 512,  # ... capped at channel_max
        num_layers: int = 14,  # layers excluding toRGB
        num_critical: int = 2,  # critically sampled layers at the end
        first_cutoff: float = 2,  # cutoff of the first layer, f_{c,0}
        first_stopband: float = 2**2.1,  # minimum stopband of the first layer, f_{t,0}
        last_stopband_rel: float = 2**0.3,  # minimum stopband of the last layer, relative to its cutoff
        margin_size: int = 10,  # samples of margin around the image in the intermediate layers
        output_scale: float = 0.25,  # scale of the output image
        num_fp16_res: int = 4,  # layers at the highest this-many resolutions use fp16 (CUDA only)
        **layer_kwargs,  # SynthesisLayer options: conv_kernel, filter_size, lrelu_upsampling, ...
    ):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        s = layer_schedule(
            img_resolution,
            img_channels,
            channel_base,
            channel_max,
            num_layers,
            num_critical,
            first_cutoff,
            first_stopband,
            last_stopband_rel,
            margin_size,
        )
        self.schedule = s
        self.input = SynthesisInput(
            w_dim=w_dim,
            channels=int(s.channels[0]),
            size=int(s.sizes[0]),
            sampling_rate=s.sampling_rates[0],
            bandwidth=s.cutoffs[0],
        )
        self.layer_names: list[str] = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim,
                is_torgb=idx == num_layers,
                is_critically_sampled=idx >= num_layers - num_critical,
                use_fp16=bool(s.sampling_rates[idx] * 2**num_fp16_res > img_resolution),
                in_channels=int(s.channels[prev]),
                out_channels=int(s.channels[idx]),
                in_size=int(s.sizes[prev]),
                out_size=int(s.sizes[idx]),
                in_sampling_rate=int(s.sampling_rates[prev]),
                out_sampling_rate=int(s.sampling_rates[idx]),
                in_cutoff=float(s.cutoffs[prev]),
                out_cutoff=float(s.cutoffs[idx]),
                in_half_width=float(s.half_widths[prev]),
                out_half_width=float(s.half_widths[idx]),
                **layer_kwargs,
            )
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(
        self,
        ws: torch.Tensor,  # [N, num_ws, w_dim]
        noise_mode: str = "random",  # ignored (no noise in StyleGAN3); accepted like StyleGAN2's
        force_fp32: bool = False,
        update_emas: bool = False,
        input_transform: torch.Tensor | None = None,  # [N, 3, 3]; None = the `input.transform` buffer
    ) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0], transform=input_transform)
        for name, w in zip(self.layer_names, ws[1:]):
            layer = getattr(self, name)
            x = layer(x, w, noise_mode=noise_mode, force_fp32=force_fp32, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, num_layers={self.num_layers}, "
            f"num_critical={self.num_critical}, margin_size={self.margin_size}, "
            f"num_fp16_res={self.num_fp16_res}"
        )


class Generator(GeneratorBase):
    """Mapping network (2 layers unless mapping_kwargs says otherwise) + synthesis network."""

    synthesis_class = SynthesisNetwork
    mapping_defaults = {"num_layers": 2}
