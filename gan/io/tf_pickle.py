"""TensorFlow-era StyleGAN2 / StyleGAN2-ADA network pickles, without TensorFlow.

Such a file is a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects (TFNetworkRecords
here). Each holds `static_kwargs` (the TF build function's settings: latent_size, fmap_base,
...), `components` (sub-networks: G's `mapping` and `synthesis`) and `variables`, a list of (TF
variable name, numpy array). Its `build_module_src` (the TF code) is never run or even parsed.

We translate the settings to the constructor kwargs of the PyTorch StyleGAN2 networks and the
variables to their state_dict, following the facts of NVIDIA's own converter (legacy.py of the
StyleGAN3 repo): TF dense weights are [in, out] (transposed), TF conv weights are [kh, kw, in,
out] (to [out, in, kh, kw]), the up-sampling convolutions' kernels are flipped (TF ran them as
transposed convolutions), TF style biases (`mod_bias`) are stored minus 1, the constant input
has a batch axis, noise inputs are global variables `noise0..` of the synthesis network, and a
progressive-growing-era network (ToRGB_lod<i>) uses the 'orig' architecture.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gan.errors import ModelLoadError
from gan.io.safe_unpickle import TFNetworkRecord

MAX_COMPONENT_DEPTH = 4  # G -> synthesis is 1 deep; anything deeper is not a StyleGAN2 network

# TF settings that only affected sampling or how the TF graph was built, not the weights.
_IGNORED_G = {
    "truncation_psi",
    "truncation_cutoff",
    "style_mixing_prob",
    "structure",
    "conditioning",
    "fused_modconv",
}
_IGNORED_D = {"structure", "conditioning"}


def is_tf_snapshot(data: Any) -> bool:
    return isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, TFNetworkRecord) for n in data)


def _state(net: TFNetworkRecord, what: str) -> dict:
    state = net.state
    if not isinstance(state, dict):
        raise ModelLoadError(f"{what} is a TensorFlow network without a state; the file is damaged.")
    version = state.get("version")
    if not isinstance(version, int) or version < 4:
        raise ModelLoadError(
            f"{what} is a TensorFlow network pickle of format version {version!r}; only version 4 and "
            "newer (StyleGAN2 and StyleGAN2-ADA TensorFlow releases) can be converted. StyleGAN1 files "
            "are not supported."
        )
    return state


def _static_kwargs(net: TFNetworkRecord, what: str) -> dict:
    kwargs = _state(net, what).get("static_kwargs")
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ModelLoadError(f"{what}: static_kwargs of the TensorFlow network are malformed.")
    return kwargs


def collect_variables(net: TFNetworkRecord, what: str) -> dict[str, np.ndarray]:
    """All variables of `net` and its components, named 'component/.../variable' as in TF."""
    out: dict[str, np.ndarray] = {}

    def visit(node: Any, prefix: str, depth: int) -> None:
        if not isinstance(node, TFNetworkRecord):
            where = prefix.rstrip("/") or "<root>"
            raise ModelLoadError(f"{what}: component {where} is not a TensorFlow network.")
        if depth > MAX_COMPONENT_DEPTH:
            raise ModelLoadError(f"{what}: TensorFlow components nest deeper than a StyleGAN2 network does.")
        state = _state(node, what)
        variables = state.get("variables")
        if not isinstance(variables, (list, tuple)):
            raise ModelLoadError(f"{what}: the variables of {prefix or 'the network'} are malformed.")
        for item in variables:
            if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
                raise ModelLoadError(f"{what}: a variable entry of {prefix or 'the network'} is malformed.")
            name, value = item
            if isinstance(value, np.generic):  # 0-d variables (noise_strength) pickle as numpy scalars
                value = np.asarray(value)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
                kind = f"array of {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ModelLoadError(f"{what}: variable {prefix}{name} is a {kind}, not a numeric array.")
            out[prefix + name] = value
        components = state.get("components") or {}
        if not isinstance(components, dict):
            raise ModelLoadError(f"{what}: the components of {prefix or 'the network'} are malformed.")
        for name, comp in components.items():
            visit(comp, f"{prefix}{name}/", depth + 1)

    visit(net, "", 0)
    return out


class _Settings:
    """Reads TF static_kwargs with defaults and remembers which were read, so that any setting
    we do not know is refused by name instead of being silently ignored."""

    def __init__(self, kwargs: dict, ignored: set[str], what: str):
        self.kwargs, self.ignored, self.what = kwargs, ignored, what
        self.read: set[str] = set()

    def __call__(self, name: str, default: Any = None, none: Any = None) -> Any:
        self.read.add(name)
        value = self.kwargs.get(name, default)
        return none if value is None else value

    def check_all_known(self) -> None:
        unknown = sorted(set(self.kwargs) - self.read - self.ignored)
        if unknown:
            raise ModelLoadError(
                f"{self.what} uses TensorFlow settings this converter does not know: {', '.join(unknown)}. "
                "Only StyleGAN2 / StyleGAN2-ADA configurations (config-e/f, skip/resnet/orig) are supported."
            )


def generator_kwargs(net: TFNetworkRecord, what: str) -> dict:
    """Constructor kwargs of our (= the official PyTorch) StyleGAN2 Generator for TF network `net`
    (values as the file holds them; the caller makes them plain Python)."""
    kw = _Settings(_static_kwargs(net, what), _IGNORED_G, what)
    kwargs = dict(
        z_dim=kw("latent_size", 512),
        c_dim=kw("label_size", 0),
        w_dim=kw("dlatent_size", 512),
        img_resolution=kw("resolution", 1024),
        img_channels=kw("num_channels", 3),
        channel_base=kw("fmap_base", 16384) * 2,  # TF: channels = fmap_base / 2^stage; PyTorch: base / res
        channel_max=kw("fmap_max", 512),
        num_fp16_res=kw("num_fp16_res", 0),
        conv_clamp=kw("conv_clamp", None),
        architecture=kw("architecture", "skip"),
        resample_filter=kw("resample_kernel", [1, 3, 3, 1]),
        use_noise=kw("use_noise", True),
        activation=kw("nonlinearity", "lrelu"),
        mapping_kwargs=dict(
            num_layers=kw("mapping_layers", 8),
            embed_features=kw("label_fmaps", None),
            layer_features=kw("mapping_fmaps", None),
            activation=kw("mapping_nonlinearity", "lrelu"),
            lr_multiplier=kw("mapping_lrmul", 0.01),
            w_avg_beta=kw("w_avg_beta", 0.995, none=1),
        ),
    )
    kw.check_all_known()
    return kwargs


def discriminator_kwargs(net: TFNetworkRecord, what: str) -> dict:
    kw = _Settings(_static_kwargs(net, what), _IGNORED_D, what)
    activation = kw("nonlinearity", "lrelu")
    kwargs = dict(
        c_dim=kw("label_size", 0),
        img_resolution=kw("resolution", 1024),
        img_channels=kw("num_channels", 3),
        architecture=kw("architecture", "resnet"),
        channel_base=kw("fmap_base", 16384) * 2,
        channel_max=kw("fmap_max", 512),
        num_fp16_res=kw("num_fp16_res", 0),
        conv_clamp=kw("conv_clamp", None),
        cmap_dim=kw("mapping_fmaps", None),
        block_kwargs=dict(
            activation=activation,
            resample_filter=kw("resample_kernel", [1, 3, 3, 1]),
            freeze_layers=kw("freeze_layers", 0),
        ),
        mapping_kwargs=dict(
            num_layers=kw("mapping_layers", 0),
            embed_features=kw("mapping_fmaps", None),
            layer_features=kw("mapping_fmaps", None),
            activation=activation,
            lr_multiplier=kw("mapping_lrmul", 0.1),
        ),
        epilogue_kwargs=dict(
            mbstd_group_size=kw("mbstd_group_size", None),
            mbstd_num_channels=kw("mbstd_num_features", 1),
            activation=activation,
        ),
    )
    kw.check_all_known()
    return kwargs


def _progressive_rgb(variables: dict[str, np.ndarray], kind: str, resolution: int) -> bool:
    """Rename <kind>_lod<i>/... (progressive-growing era) to <res>x<res>/<kind>/...; True if any."""
    found = False
    for name in list(variables):
        match = re.fullmatch(rf"(.*?){kind}_lod(\d+)/(.*)", name)
        if match:
            res = resolution // 2 ** int(match.group(2))
            variables[f"{match.group(1)}{res}x{res}/{kind}/{match.group(3)}"] = variables.pop(name)
            found = True
    return found


def _dense(a: np.ndarray) -> np.ndarray:
    return a.transpose()


def _conv(a: np.ndarray) -> np.ndarray:
    return a.transpose(3, 2, 0, 1)


def _conv_flipped(a: np.ndarray) -> np.ndarray:
    return a[::-1, ::-1].transpose(3, 2, 0, 1)


def _style_bias(a: np.ndarray) -> np.ndarray:
    return a + 1


def _first_map(a: np.ndarray) -> np.ndarray:
    return a[0, 0]


def _first(a: np.ndarray) -> np.ndarray:
    return a[0]


_Transform = Callable[[np.ndarray], np.ndarray] | None
_Rules = list[tuple[str, str, _Transform]]


def _modulated_layer_rules(ours: str, theirs: str, weight: _Transform, noise: str = "") -> _Rules:
    """The rules of one modulated synthesis layer: our synthesis.{ours}.* from TF's
    synthesis/{theirs}/*, with `noise` the TF name of its noise input ("" for ToRGB, which has none)."""
    rules = [
        (rf"synthesis\.{ours}\.weight", f"synthesis/{theirs}/weight", weight),
        (rf"synthesis\.{ours}\.bias", f"synthesis/{theirs}/bias", None),
        (rf"synthesis\.{ours}\.affine\.weight", f"synthesis/{theirs}/mod_weight", _dense),
        (rf"synthesis\.{ours}\.affine\.bias", f"synthesis/{theirs}/mod_bias", _style_bias),
    ]
    if noise:
        rules += [
            (rf"synthesis\.{ours}\.noise_const", f"synthesis/{noise}", _first_map),
            (rf"synthesis\.{ours}\.noise_strength", f"synthesis/{theirs}/noise_strength", None),
        ]
    return rules


# (our parameter name, TF variable name, transform); the first pattern that matches applies. Named
# groups of the pattern fill the template; `{n}` is the noise input index of a block's conv0 (conv1
# uses n + 1).
_G_RULES: _Rules = [
    (r"mapping\.w_avg", "dlatent_avg", None),
    (r"mapping\.embed\.weight", "mapping/LabelEmbed/weight", _dense),
    (r"mapping\.embed\.bias", "mapping/LabelEmbed/bias", None),
    (r"mapping\.fc(?P<i>\d+)\.weight", "mapping/Dense{i}/weight", _dense),
    (r"mapping\.fc(?P<i>\d+)\.bias", "mapping/Dense{i}/bias", None),
    (r"synthesis\.b4\.const", "synthesis/4x4/Const/const", _first),
    *_modulated_layer_rules(r"b4\.conv1", "4x4/Conv", _conv, noise="noise0"),
    *_modulated_layer_rules(r"b(?P<r>\d+)\.conv0", "{r}x{r}/Conv0_up", _conv_flipped, noise="noise{n}"),
    *_modulated_layer_rules(r"b(?P<r>\d+)\.conv1", "{r}x{r}/Conv1", _conv, noise="noise{n1}"),
    *_modulated_layer_rules(r"b(?P<r>\d+)\.torgb", "{r}x{r}/ToRGB", _conv),
    (r"synthesis\.b(?P<r>\d+)\.skip\.weight", "synthesis/{r}x{r}/Skip/weight", _conv_flipped),
]

_D_RULES: _Rules = [
    (r"b(?P<r>\d+)\.fromrgb\.weight", "{r}x{r}/FromRGB/weight", _conv),
    (r"b(?P<r>\d+)\.fromrgb\.bias", "{r}x{r}/FromRGB/bias", None),
    (r"b(?P<r>\d+)\.conv0\.weight", "{r}x{r}/Conv0/weight", _conv),
    (r"b(?P<r>\d+)\.conv0\.bias", "{r}x{r}/Conv0/bias", None),
    (r"b(?P<r>\d+)\.conv1\.weight", "{r}x{r}/Conv1_down/weight", _conv),
    (r"b(?P<r>\d+)\.conv1\.bias", "{r}x{r}/Conv1_down/bias", None),
    (r"b(?P<r>\d+)\.skip\.weight", "{r}x{r}/Skip/weight", _conv),
    (r"mapping\.embed\.weight", "LabelEmbed/weight", _dense),
    (r"mapping\.embed\.bias", "LabelEmbed/bias", None),
    (r"mapping\.fc(?P<i>\d+)\.weight", "Mapping{i}/weight", _dense),
    (r"mapping\.fc(?P<i>\d+)\.bias", "Mapping{i}/bias", None),
    (r"b4\.conv\.weight", "4x4/Conv/weight", _conv),
    (r"b4\.conv\.bias", "4x4/Conv/bias", None),
    (r"b4\.fc\.weight", "4x4/Dense0/weight", _dense),
    (r"b4\.fc\.bias", "4x4/Dense0/bias", None),
    (r"b4\.out\.weight", "Output/weight", _dense),
    (r"b4\.out\.bias", "Output/bias", None),
]


def _tf_name(template: str, groups: dict[str, str]) -> str:
    fields = dict(groups)
    if "r" in groups:  # noise inputs are numbered over all layers: 4x4 has 0, res r has 2*log2(r)-5, -4
        fields["n"] = 2 * (int(groups["r"]).bit_length() - 1) - 5
        fields["n1"] = fields["n"] + 1
    return template.format(**fields)


# Buffers that are fixed functions of the settings (filters), not weights.
_DERIVED = re.compile(r".*\.(resample_filter|act_filter)")


@dataclass
class Conversion:
    """A TF network translated: constructor kwargs of our network and where its weights come from."""

    kwargs: dict
    variables: dict[str, np.ndarray]
    rules: _Rules
    what: str

    def state_dict_for(self, net: torch.nn.Module) -> tuple[dict[str, torch.Tensor], list[str]]:
        """(state_dict for our network `net` built from `kwargs`, TF variables it did not use).
        Unused variables are reported, not refused: NVIDIA's converter ignores them too (e.g. the
        ToRGB layers of lower levels of detail in progressive-era files)."""
        out, used, missing = {}, set(), []
        for name, tensor in net.state_dict().items():
            found = next(((m, t, f) for p, t, f in self.rules if (m := re.fullmatch(p, name))), None)
            if found is None:
                if _DERIVED.fullmatch(name):
                    out[name] = tensor
                    continue
                raise ModelLoadError(f"{self.what}: no TensorFlow variable is known for parameter {name}.")
            match, template, transform = found
            tf_name = _tf_name(template, match.groupdict())
            if tf_name not in self.variables:
                missing.append(tf_name)
                continue
            used.add(tf_name)
            value = self.variables[tf_name]
            value = transform(value) if transform else value
            out[name] = torch.from_numpy(np.array(value, dtype=np.float32, order="C"))
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ModelLoadError(
                f"{self.what} lacks TensorFlow variables its settings need: {shown}. The file is damaged or "
                "is not a StyleGAN2 / StyleGAN2-ADA network."
            )
        return out, sorted(set(self.variables) - used)


def convert_generator(net: TFNetworkRecord, what: str) -> Conversion:
    kwargs = generator_kwargs(net, what)
    variables = collect_variables(net, what)
    if _progressive_rgb(variables, "ToRGB", kwargs["img_resolution"]):
        kwargs["architecture"] = "orig"
    return Conversion(kwargs, variables, _G_RULES, what)


def convert_discriminator(net: TFNetworkRecord, what: str) -> Conversion:
    kwargs = discriminator_kwargs(net, what)
    variables = collect_variables(net, what)
    if _progressive_rgb(variables, "FromRGB", kwargs["img_resolution"]):
        kwargs["architecture"] = "orig"
    return Conversion(kwargs, variables, _D_RULES, what)
